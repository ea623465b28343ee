"""The privacy notice and the article 30 record are complete (issue 16 item 10)
and follow the configuration: a `[register]`/`[retention]` TOML file of
distinctive values is loaded through ``JUTELLA_CONFIG``, and every value is
looked for in the rendered /privacy in Finnish, English and Swedish; the
defaults show the other side of each switch (no DPO, no processors,
returning-visitor history on, no marketing)."""

from __future__ import annotations

import html as htmllib

import pytest

from tests.chat_clients import visitor
from tests.helpers import add_staff, sign_in

CONFIG = """
returning_visitor_history = false

[retention]
chat_days = 123
offline_days = 234
metadata_days = 45
audit_days = 678
backups_days = 17

[register]
version = "7b"
updated = 2027-01-15

[register.dpo]
name = "Tietosuojavastaava Outi Oja"
email = "dpo@jamko.example"
phone = "+358 40 000 0000"

[[register.processors]]
name = "Hostikas Oy"
kind = "hosting"
location = "Finland"

[[register.processors]]
name = "Postikulku Ab"
kind = "mail"
service = "smtp.postikulku.example"

[register.marketing]
enabled = true
consent_version = "2026-12a"
purpose_fi = "Kerromme tapahtumista sähköpostilla MARKKINOINTI-FI."
purpose_en = "We tell about events by email MARKETING-EN."
purpose_sv = "Vi berättar om evenemang per e-post MARKNAD-SV."
"""

# every section the notice has, by its id
SECTIONS = ("controller", "contact", "register", "purpose", "content", "sources", "transfers", "protection",
            "retention", "rights", "automated")

# what each language must say, section by section, whatever the configuration
ALWAYS = {
    "fi": {"stored": ["liittämät tiedostot", "arvio ja sen kommentti", "lähettämään keskustelun tekstin",
                      "muistiinpanot ja tunnisteet", "vastaukset", "käyttöloki", "henkilökunnan käyttäjätilit"],
           "restricted": ["rajoitettu", "kunnes rajoitus poistetaan"],
           "object": ["21 artiklan 1 kohta", "oikeutettuun etuun", "suoramarkkinointi", "puheenjohtaja@jamko.fi"],
           "automated": ["automaattiseen päätöksentekoon"]},
    "en": {"stored": ["files the customer attaches", "rating the customer gives", "transcript to be sent",
                      "internal notes and labels", "replies sent", "access log", "staff accounts"],
           "restricted": ["restricted", "until the restriction is lifted"],
           "object": ["Article 21(1)", "legitimate interest", "direct marketing", "puheenjohtaja@jamko.fi"],
           "automated": ["No automated decision-making"]},
    "sv": {"stored": ["filer som kunden bifogar", "betyg", "utskrift skickad", "anteckningar och etiketter",
                      "svaren", "åtkomstlogg", "användarkonton"],
           "restricted": ["begränsats", "tills begränsningen hävs"],
           "object": ["artikel 21.1", "berättigade intresse", "direktmarknadsföring", "puheenjohtaja@jamko.fi"],
           "automated": ["automatiserat beslutsfattande"]},
}

CONFIGURED = {
    "fi": {"dpo": "Tietosuojavastaava", "hosting": "palvelimen ja tietokannan ylläpito",
           "mail": "sähköpostin välitys", "returning": "ei näe palaavan selaimen aiempia keskusteluja",
           "marketing": ["MARKKINOINTI-FI", "suostumus (6 artiklan 1 kohdan a alakohta)",
                         "Suostumuksen peruuttaminen", "suostumus markkinointiviesteihin: suostumustekstin"],
           "version": "Versio 7b, päivitetty 2027-01-15", "backups": "Varmuuskopiot: 17 päivää"},
    "en": {"dpo": "Data protection officer", "hosting": "hosting of the server and its database",
           "mail": "email delivery", "returning": "do not see a returning browser's earlier chats",
           "marketing": ["MARKETING-EN", "consent (GDPR Article 6(1)(a))", "Withdrawing consent",
                         "consent to marketing email given on the email form"],
           "version": "Version 7b, updated 2027-01-15", "backups": "Backups: 17 days"},
    "sv": {"dpo": "Dataskyddsombud", "hosting": "drift av servern och databasen",
           "mail": "förmedling av e-post", "returning": "ser inte en återkommande webbläsares tidigare samtal",
           "marketing": ["MARKNAD-SV", "samtycke (artikel 6.1 a", "Återkallande av samtycke",
                         "samtycke till marknadsföring per e-post"],
           "version": "Version 7b, uppdaterad 2027-01-15", "backups": "Säkerhetskopior: 17 dagar"},
}

DEFAULTS = {
    "fi": {"no_processors": "palvelu ei käytä ulkopuolisia palveluja",
           "returning": "näkee uuden keskustelun rinnalla saman selaimen aiemmat keskustelut",
           "backups": "Varmuuskopiot: 30 päivää"},
    "en": {"no_processors": "the service uses no outside services",
           "returning": "agents see that browser's earlier chats beside the new one",
           "backups": "Backups: 30 days"},
    "sv": {"no_processors": "tjänsten använder inga utomstående tjänster",
           "returning": "ser kundtjänsten webbläsarens tidigare samtal bredvid det nya",
           "backups": "Säkerhetskopior: 30 dagar"},
}


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return htmllib.unescape(page[start:page.index("</section>", start)])


def notice(live, lang: str) -> str:
    r = live.client().get("/privacy", params={"lang": lang})
    assert r.status_code == 200 and r.headers["content-language"] == lang
    for name in SECTIONS:
        assert f'<section id="{name}">' in r.text, name
    return r.text


def check_always(page: str, lang: str) -> None:
    words = ALWAYS[lang]
    for item in words["stored"]:
        assert item in section(page, "content"), item
    for item in words["restricted"]:
        assert item in section(page, "retention"), item
    for item in words["object"]:
        assert item in section(page, "rights"), item
    for item in words["automated"]:
        assert item in section(page, "automated"), item


@pytest.fixture
def configured(tmp_path, monkeypatch):
    path = tmp_path / "jutella.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("JUTELLA_CONFIG", str(path))


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("lang", ["fi", "en", "sv"])
def test_the_notice_lists_everything_from_the_configuration(configured, live, lang):
    page = notice(live, lang)
    check_always(page, lang)
    want = CONFIGURED[lang]
    assert want["version"] in htmllib.unescape(page)
    contact = section(page, "contact")
    assert want["dpo"] in contact and "Tietosuojavastaava Outi Oja" in contact and "dpo@jamko.example" in contact
    transfers = section(page, "transfers")
    assert f"Hostikas Oy (Finland): {want['hosting']}" in transfers
    assert f"Postikulku Ab: {want['mail']}" in transfers and "smtp.postikulku.example" in transfers
    assert DEFAULTS[lang]["no_processors"] not in transfers
    assert want["returning"] in section(page, "content")
    purpose = section(page, "purpose")
    assert want["marketing"][0] in purpose and want["marketing"][1] in purpose
    assert want["marketing"][2] in section(page, "rights")
    assert want["marketing"][3] in section(page, "content")
    retention = section(page, "retention")
    for days in (123, 234, 45, 678):
        assert f"{days} " in retention, days
    assert want["backups"] in retention


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("lang", ["fi", "en", "sv"])
def test_the_default_notice_follows_the_default_configuration(live, lang):
    page = notice(live, lang)
    check_always(page, lang)
    assert 'id="dpo"' not in page and 'id="marketing"' not in page and 'id="processors"' not in page
    assert CONFIGURED[lang]["marketing"][2] not in page  # no consent to withdraw
    assert DEFAULTS[lang]["no_processors"] in section(page, "transfers")
    assert DEFAULTS[lang]["returning"] in section(page, "content")
    assert DEFAULTS[lang]["backups"] in section(page, "retention")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_record_of_processing_has_version_date_staff_and_processors(configured, live):
    add_staff(live, "chair@example.org", ["privacy"])
    rec = sign_in(live, "chair@example.org").get("/api/v1/privacy/record").json()
    assert rec["version"] == "7b" and rec["date"] == "2027-01-15"
    assert any("staff" in c for c in rec["categories_of_data_subjects"])
    assert any(c.startswith("staff:") for c in rec["categories_of_personal_data"])
    assert rec["data_protection_officer"]["email"] == "dpo@jamko.example"
    assert [p["name"] for p in rec["processors"]] == ["Hostikas Oy", "Postikulku Ab"]
    assert any("Postikulku Ab" in r for r in rec["recipients"])
    assert rec["retention_days"] == {"chat": 123, "offline_messages": 234, "metadata": 45, "audit_log": 678,
                                     "backups": 17}
    assert rec["automated_decision_making"] == "none"
    assert any("2026-12a" in p for p in rec["purposes"])


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("history", [True, False])
def test_agents_see_a_returning_browsers_earlier_chats_only_when_the_setting_says(live, history):
    """The notice says what agents see (above); here the setting does it."""
    live.rt.settings.returning_visitor_history = history  # the live server's own settings object
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    v, _ = visitor(live)
    v.message("first visit")
    first = v.until(lambda f: f["type"] == "ack")["conversation"]
    v.send(type="end")
    v.until(lambda f: f["type"] == "event" and f.get("state") == "closed")
    v.message("back again", client_id="c2")  # the same browser (its visitor) starts a new chat
    second = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert second != first
    earlier = http.get(f"/api/v1/conversations/{second}").json()["visitor_info"]["earlier"]
    assert [c["id"] for c in earlier] == ([first] if history else [])
