"""Single sign-on's pure rules (accounts/oidc.py, docs/sso.md): which roles
and departments the provider's groups give, when the provider's word counts
as a second factor, the settings' checks, and the refusals' words in every
language (the sign-in page shows them; they are looked up by code, so the
catalogue test's source scan does not see them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from jutella.accounts.oidc import REFUSALS, Identity, resolve, second_factor_asserted
from jutella.settings import Settings, SettingsError, load_settings

LOCALE = Path(__file__).resolve().parents[2] / "src" / "jutella" / "locale"
GROUPS = {
    "chat-agents": {"roles": ["agent"]},
    "membership-team": {"departments": ["Jäsenyys"]},
    "chat-admins": {"roles": ["admin", "agent"]},
    "board": {"roles": ["privacy"], "departments": ["Hallitus"]},
}


def settings(**values) -> Settings:
    return Settings(oidc_issuer="https://id.example.org/realms/staff", oidc_client_id="jutella",
                    oidc_groups=GROUPS, **values)


def person(**values) -> Identity:
    return Identity(**{"subject": "s", "email": "a@example.org", "email_verified": True, "name": "A", "groups": [],
                       **values})


def test_the_groups_give_the_union_of_their_roles_and_departments():
    s = settings()
    assert resolve(s, ["chat-agents", "membership-team", "students"]) == (["agent"], ["Jäsenyys"])
    assert resolve(s, ["chat-admins", "board"]) == (["admin", "agent", "privacy"], ["Hallitus"])
    assert resolve(s, ["board"]) == (["privacy"], [])  # departments only with the agent role
    assert resolve(s, ["membership-team"]) == ([], [])  # a department without a role: no account
    assert resolve(s, ["students"]) == ([], []) and resolve(s, []) == ([], [])
    assert resolve(s, ["Chat-Agents"]) == ([], [])  # group names are compared exactly


def test_the_providers_second_factor_counts_only_as_configured():
    s = settings()
    assert second_factor_asserted(s, person(amr=["pwd", "mfa"]))
    assert second_factor_asserted(s, person(amr=["hwk"]))
    assert not second_factor_asserted(s, person(amr=["pwd"]))
    assert not second_factor_asserted(s, person(acr="2"))
    s = settings(oidc_mfa_amr="otp", oidc_mfa_acr="2,urn:mfa")
    assert not second_factor_asserted(s, person(amr=["mfa"]))
    assert second_factor_asserted(s, person(acr="urn:mfa"))


def test_the_settings_say_what_is_wrong_in_one_line(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("JUTELLA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("JUTELLA_OIDC_ISSUER", "http://id.example.org")
    with pytest.raises(SettingsError, match="JUTELLA_OIDC_ISSUER: must be the provider's https://"):
        load_settings()
    monkeypatch.setenv("JUTELLA_OIDC_ISSUER", "https://id.example.org/")
    with pytest.raises(SettingsError, match="JUTELLA_OIDC_CLIENT_ID: needed with JUTELLA_OIDC_ISSUER"):
        load_settings()
    monkeypatch.setenv("JUTELLA_OIDC_CLIENT_ID", "jutella")
    monkeypatch.setenv("JUTELLA_OIDC_SSO_ONLY", "true")
    with pytest.raises(SettingsError, match="JUTELLA_OIDC_SSO_ONLY: needs JUTELLA_OIDC_EMERGENCY_ADMIN"):
        load_settings()
    monkeypatch.setenv("JUTELLA_OIDC_EMERGENCY_ADMIN", "IT@Example.ORG")
    monkeypatch.setenv("JUTELLA_OIDC_GROUPS", '{"staff": {"roles": ["agent"], "departments": ["Tekniikka"]}}')
    loaded = load_settings()
    assert loaded.oidc_issuer == "https://id.example.org" and loaded.oidc_emergency_admin == "IT@example.org"
    assert loaded.oidc_groups["staff"].departments == ["Tekniikka"] and loaded.oidc_configured
    monkeypatch.setenv("JUTELLA_OIDC_GROUPS", '{"staff": {"roles": ["owner"]}}')
    with pytest.raises(SettingsError, match="oidc_groups.staff.roles"):
        load_settings()


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_every_refusal_has_words_in_every_language(lang):
    translations: dict[str, str] = {}
    for path in sorted((LOCALE / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as fh:
            translations.update({m.id: m.string for m in read_po(fh, locale=lang) if m.id and m.string})
    missing = [message for message in REFUSALS.values() if message not in translations]
    assert not missing
