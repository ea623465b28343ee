"""Single sign-on with OpenID Connect against a real provider process
(tests/oidc_provider.py, started once for the module): a browser's way
through jutella and the provider is followed over HTTP with httpx, from
the sign-in page's button to the console. Covers the account made from the
groups, an unmapped person refused with words on the sign-in page, roles
and departments re-synced on each sign-in, an account the provider no
longer maps disabled (and enabled again), the checks on the ID token,
SSO-only mode with its emergency administrator, and the second factor the
admin role needs (the provider's ``amr``, or jutella's own code)."""

from __future__ import annotations

import json
import re
import subprocess  # nosec B404: the test's own provider process
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from jutella.accounts.oidc import CALLBACK_PATH
from jutella.chat import departments as D
from jutella.store.models import AuditEntry, StaffAccount, StaffDepartment

from tests.conftest import BOTH, free_port
from tests.helpers import PASSWORD, add_staff, error_code, eventually, http_client

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {
    "chat-agents": {"roles": ["agent"]},
    "membership-team": {"departments": ["Jäsenyys"]},
    "chat-admins": {"roles": ["admin", "agent"]},
    "privacy-officer": {"roles": ["privacy"]},
}
CONSOLE = {"X-Requested-With": "fetch"}  # what the console's own fetches send (GET /me)


class ProviderProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(  # nosec B603: this interpreter, the tests' own module
            [sys.executable, "-m", "tests.oidc_provider", str(self.port)], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.http = http_client(base_url=self.url, timeout=10)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the provider stopped: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                return self.http.get("/.well-known/openid-configuration").status_code == 200
            except httpx.TransportError:
                return False
        eventually(up, timeout=20, interval=0.05)

    def user(self, name: str, **claims: Any) -> None:
        body = {"sub": f"sub-{name}", "email": f"{name}@example.org", "name": name.title(), **claims}
        assert self.http.put(f"/_test/users/{name}", json=body).status_code == 200

    def tamper(self, mode: str | None) -> None:
        assert self.http.put("/_test/tamper", json={"mode": mode}).status_code == 200

    def log(self) -> list[dict[str, Any]]:
        return self.http.get("/_test/log").json()

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def provider():
    p = ProviderProcess()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def client_id() -> str:
    return f"jutella-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sso_only() -> bool:
    return False  # a test turns it on with @pytest.mark.parametrize("sso_only", [True])


@pytest.fixture
def settings_overrides(provider, client_id, sso_only) -> dict[str, Any]:
    values: dict[str, Any] = {"oidc_issuer": provider.url, "oidc_client_id": client_id,
                              "oidc_client_secret": "s3cret-" + client_id, "oidc_groups": GROUPS}
    if sso_only:
        values.update(oidc_sso_only=True, oidc_emergency_admin="root@example.org")
    return values


@pytest.fixture
def sso(live, provider, client_id):
    """The provider knows this test's jutella as a client (its callback URL)."""
    body = {"secret": "s3cret-" + client_id, "redirect_uris": [live.url + CALLBACK_PATH]}
    assert provider.http.put(f"/_test/clients/{client_id}", json=body).status_code == 200
    return live


def browser() -> httpx.Client:
    """One person's browser: cookies kept, redirects followed between the two servers."""
    return http_client(follow_redirects=True, timeout=15)


def sso_sign_in(live, name: str, c: httpx.Client | None = None,
                lang: str = "en") -> tuple[httpx.Client, httpx.Response]:
    """The console's "Sign in with single sign-on", the provider's form, and back."""
    c = c or browser()
    c.headers["Accept-Language"] = lang
    page = c.get(live.url + "/console")
    assert sso_data(page)["enabled"] is True  # the sign-in page shows the button
    form = c.get(live.url + "/console/sso/start")
    assert form.status_code == 200 and "Test identity provider" in form.text, form.text
    return c, c.post(str(form.url), data={"username": name})


def sso_data(page: httpx.Response) -> dict[str, Any]:
    """The sign-in page's single sign-on block (static/console/sso.js reads it)."""
    found = re.search(r'<script type="application/json" id="jutella-sso">(.*?)</script>', page.text)
    assert found, page.text[:500]
    return json.loads(found.group(1))


def me(live, c: httpx.Client) -> httpx.Response:
    return c.get(live.url + "/api/v1/me", headers=CONSOLE)


def api(live, c: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
    token = me(live, c).json()["csrf_token"]
    return c.request(method, live.url + path, headers={"X-CSRF-Token": token}, **kw)


def account(live, email: str) -> StaffAccount | None:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(StaffAccount).where(StaffAccount.email == email))).scalar_one_or_none()
    return live.call(q)


def memberships(live, account_id: int) -> set[str]:
    async def q():
        async with live.rt.db.reader() as s:
            from jutella.store.models import Department
            return set((await s.execute(select(Department.name).join(
                StaffDepartment, StaffDepartment.department_id == Department.id)
                .where(StaffDepartment.account_id == account_id))).scalars())
    return live.call(q)


def audit(live, *actions: str) -> list[AuditEntry]:
    async def q():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry).where(AuditEntry.action.in_(actions))
                                         .order_by(AuditEntry.seq))).scalars())
    return live.call(q)


def test_first_sign_in_makes_the_account_its_groups_map(sso, provider):
    live = sso
    live.call(D.create, live.rt, actor_id=None, name="Jäsenyys")
    live.call(D.create, live.rt, actor_id=None, name="Tekniikka")
    provider.user("aino", groups=["chat-agents", "membership-team", "students"])
    c, landed = sso_sign_in(live, "aino")
    assert landed.status_code == 200 and landed.url == httpx.URL(live.url + "/console")
    body = me(live, c).json()
    assert body["account"]["email"] == "aino@example.org" and body["account"]["name"] == "Aino"
    assert body["account"]["roles"] == ["agent"] and body["account"]["sso"] is True
    assert body["account"]["password"] is False and body["require_totp"] is False
    assert memberships(live, body["account"]["id"]) == {"Jäsenyys"}
    # the flow was the authorisation code flow with PKCE (S256), state and nonce
    mine = live.rt.settings.oidc_client_id
    asked = [e for e in provider.log() if e["endpoint"] == "authorize" and e["client_id"] == mine]
    assert asked[-1]["code_challenge_method"] == "S256" and asked[-1]["nonce"] and asked[-1]["state"]
    assert asked[-1]["scope"].split()[0] == "openid"
    traded = [e for e in provider.log() if e["endpoint"] == "token" and e.get("redirect_uri", "").startswith(live.url)]
    assert traded[-1]["auth_method"] == "client_secret_basic" and len(traded[-1]["code_verifier"]) >= 43
    rows = audit(live, "account.create", "account.departments", "login")
    assert [(r.action, r.detail.get("sso"), r.detail.get("via")) for r in rows] == [
        ("account.create", True, None), ("account.departments", True, None), ("login", None, "sso")]
    # the groups only in userinfo (the ID token without them) count the same
    provider.user("eero", groups=["chat-agents"], groups_in_userinfo=True)
    c2, landed = sso_sign_in(live, "eero")
    assert me(live, c2).json()["account"]["roles"] == ["agent"]
    # the account list tells an administrator that these sign in through the provider
    add_staff(live, "root@example.org", ["admin"])
    admin = live.client()
    token = admin.post("/api/v1/public/staff/login", json={"email": "root@example.org", "password": PASSWORD}
                       ).json()["csrf_token"]
    listed = {a["email"]: a for a in admin.get("/api/v1/accounts", headers={"X-CSRF-Token": token}).json()}
    assert listed["aino@example.org"]["sso"] is True and listed["aino@example.org"]["active"] is True
    assert listed["root@example.org"]["sso"] is False


def test_an_unmapped_person_is_refused_with_words_on_the_sign_in_page(sso, provider):
    live = sso
    provider.user("ville", groups=["students"])
    _, landed = sso_sign_in(live, "ville")
    assert landed.url.path == "/console/sso" and landed.url.params["error"] == "sso_unmapped"
    assert sso_data(landed)["notice"].startswith("Your account at the identity provider is not in any group")
    assert account(live, "ville@example.org") is None
    failed = audit(live, "login.failed")
    assert [(r.actor_id, r.detail) for r in failed] == [(None, {"reason": "unmapped", "via": "sso"})]
    # in the person's language
    _, landed = sso_sign_in(live, "ville", lang="fi")
    assert sso_data(landed)["notice"].startswith("Tunnuksesi tunnistuspalvelussa ei kuulu")
    # an unknown code in the address gets the general words, never the code itself
    page = browser().get(live.url + "/console/sso?error=<b>x</b>")
    assert sso_data(page)["notice"] == "Single sign-on did not succeed. Try again."


@pytest.mark.parametrize("backend", BOTH)  # the most writes of the module: both dialects (migration 0024 too)
def test_each_sign_in_resyncs_roles_and_an_unmapped_account_is_disabled(sso, provider):
    live = sso
    live.call(D.create, live.rt, actor_id=None, name="Jäsenyys")
    add_staff(live, "root@example.org", ["admin"])  # another administrator, so admin can be taken away
    provider.user("aino", groups=["chat-admins", "membership-team"], amr=["pwd", "mfa"])
    first, _ = sso_sign_in(live, "aino")
    mine = me(live, first).json()["account"]
    assert mine["roles"] == ["admin", "agent"] and memberships(live, mine["id"]) == {"Jäsenyys"}
    assert api(live, first, "GET", "/api/v1/accounts").status_code == 200  # the provider's mfa counts

    provider.user("aino", groups=["chat-agents"], amr=["pwd", "mfa"])  # left the admins and the team
    second, _ = sso_sign_in(live, "aino")
    assert me(live, second).json()["account"]["roles"] == ["agent"]
    assert memberships(live, mine["id"]) == set()
    r = api(live, first, "GET", "/api/v1/accounts")  # the earlier session lost the role at once
    assert r.status_code == 403 and error_code(r) == "forbidden"
    synced = audit(live, "account.update")[-1]
    assert synced.target_id == str(mine["id"]) and synced.detail == {"roles": ["agent"], "sso": True}

    provider.user("aino", groups=["students"])  # the provider no longer maps her
    _, landed = sso_sign_in(live, "aino")
    assert landed.url.params["error"] == "sso_unmapped"
    assert account(live, "aino@example.org").disabled_at is not None
    assert me(live, second).status_code == 401  # her sessions ended with it
    disabled = audit(live, "account.disable")[-1]
    assert disabled.actor_id is None and disabled.detail["sso"] is True

    provider.user("aino", groups=["chat-agents"])  # mapped again: enabled again
    third, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console" and me(live, third).json()["account"]["disabled"] is False
    assert audit(live, "account.enable")[-1].detail == {"sso": True}


def test_an_account_an_administrator_disabled_stays_disabled(sso, provider):
    live = sso
    add_staff(live, "root@example.org", ["admin"])
    provider.user("aino", groups=["chat-agents"])
    sso_sign_in(live, "aino")
    from jutella.accounts import actions
    live.call(actions.disable_by_email, live.rt, "aino@example.org")
    _, landed = sso_sign_in(live, "aino")
    assert landed.url.params["error"] == "account_disabled"
    assert sso_data(landed)["notice"] == "This account is disabled."


def test_the_id_token_and_the_state_are_checked(sso, provider):
    live = sso
    provider.user("aino", groups=["chat-agents"])
    for mode in ("foreign_key", "aud", "nonce", "iss", "expired"):
        provider.tamper(mode)
        _, landed = sso_sign_in(live, "aino")
        assert landed.url.params.get("error") == "sso_failed", mode
    assert account(live, "aino@example.org") is None
    assert [r.detail["reason"] for r in audit(live, "login.failed")] == ["sso_invalid"] * 5
    provider.tamper("rotate")  # a new key, not yet in jutella's copy of the keys: fetched again
    c, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console" and me(live, c).status_code == 200

    # the provider's answer belongs to the browser that started the sign-in, once
    c = browser()
    form = c.get(live.url + "/console/sso/start")
    answer = c.post(str(form.url), data={"username": "aino"}, follow_redirects=False)
    callback = answer.headers["location"]
    assert callback.startswith(live.url + CALLBACK_PATH)
    other = browser().get(callback)  # another browser, without the cookie
    assert other.url.params["error"] == "sso_expired"
    assert c.get(callback).url.path == "/console"  # this one: signed in
    again = c.get(callback)  # the same answer twice
    assert again.url.params["error"] == "sso_expired"
    # cancelled at the provider
    form = c.get(live.url + "/console/sso/start")
    assert c.post(str(form.url), data={"deny": "1"}).url.params["error"] == "sso_denied"


@pytest.mark.parametrize("sso_only", [True])
def test_sso_only_mode_keeps_one_emergency_administrator(sso, provider):
    live = sso
    add_staff(live, "root@example.org", ["admin"])
    add_staff(live, "local@example.org", ["agent"])
    c = live.client()
    r = c.post("/api/v1/public/staff/login", json={"email": "local@example.org", "password": PASSWORD})
    assert r.status_code == 403 and error_code(r) == "sso_only"
    assert r.json()["error"]["message"] == "Sign-in with a password is turned off here. Use single sign-on."
    wrong = c.post("/api/v1/public/staff/login", json={"email": "local@example.org", "password": "wrong one"})
    assert error_code(wrong) == "login_invalid"  # a wrong password says no more than before
    r = c.post("/api/v1/public/staff/login", json={"email": "root@example.org", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["account"]["email"] == "root@example.org"
    assert audit(live, "login.failed")[0].detail == {"reason": "sso_only"}
    page = c.get("/console")
    assert sso_data(page) == {"enabled": True, "sso_only": True}
    provider.user("aino", groups=["chat-agents"])
    signed, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console" and me(live, signed).status_code == 200


def test_the_admin_role_needs_a_second_factor(sso, provider, clock):
    live = sso
    provider.user("aino", groups=["chat-admins"], amr=["pwd"])
    c, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console"
    body = me(live, c).json()
    assert body["require_totp"] is True and body["totp_for_roles"] is True
    r = api(live, c, "GET", "/api/v1/accounts")
    assert r.status_code == 403 and error_code(r) == "totp_enrollment_required"
    login = audit(live, "login")[-1]
    assert login.detail == {"second_factor": False, "via": "sso"}
    # two-factor sign-in turned on in that session opens the rest
    secret = api(live, c, "POST", "/api/v1/me/totp/begin").json()["secret"]
    totp = pyotp.TOTP(secret)
    assert api(live, c, "POST", "/api/v1/me/totp/confirm", json={"code": totp.at(clock.now())}).status_code == 200
    assert api(live, c, "GET", "/api/v1/accounts").status_code == 200

    # next time: the provider's answer, then jutella's own code
    clock.advance(seconds=30)
    c2, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console/sso" and sso_data(landed)["step"] == "totp"
    assert me(live, c2).status_code == 401  # no session before the code
    r = c2.post(live.url + "/api/v1/public/staff/sso/totp", json={"code": "000000" if totp.at(clock.now()) != "000000"
                                                                  else "111111"})
    assert r.status_code == 401 and error_code(r) == "totp_invalid"
    r = c2.post(live.url + "/api/v1/public/staff/sso/totp", json={"code": totp.at(clock.now())})
    assert r.status_code == 200 and r.json()["totp_for_roles"] is False
    assert api(live, c2, "GET", "/api/v1/accounts").status_code == 200
    assert audit(live, "login")[-1].detail == {"second_factor": True, "via": "sso"}
    r = c2.post(live.url + "/api/v1/public/staff/sso/totp", json={"code": totp.at(clock.now())})
    assert error_code(r) == "sso_expired"  # the step is used up

    # the provider saying it used a second factor is enough
    provider.user("aino", groups=["chat-admins"], amr=["pwd", "otp"])
    c3, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console" and api(live, c3, "GET", "/api/v1/accounts").status_code == 200
    assert audit(live, "login")[-1].detail == {"second_factor": True, "via": "sso"}


def test_a_local_account_is_tied_to_its_identity_only_by_a_verified_email(sso, provider):
    live = sso
    local_id = add_staff(live, "aino@example.org", ["agent"])
    provider.user("aino", groups=["chat-agents"], email_verified=False)
    _, landed = sso_sign_in(live, "aino")
    assert landed.url.params["error"] == "sso_email"
    assert sso_data(landed)["notice"].startswith("An account with your email address exists")
    provider.user("aino", groups=["chat-agents"], email_verified=True)
    c, landed = sso_sign_in(live, "aino")
    assert landed.url.path == "/console"
    mine = me(live, c).json()["account"]
    assert mine["id"] == local_id and mine["sso"] is True and mine["password"] is True
    assert [r.target_id for r in audit(live, "sso.link")] == [str(local_id)]
    assert [r.detail["reason"] for r in audit(live, "login.failed")] == ["unverified"]
