"""Staff sign-in, sessions and accounts through the real HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select

from jutella.accounts import actions
from jutella.store.models import AuditEntry, StaffAccount, StaffSession

from tests.helpers import PASSWORD, add_staff, error_code, sign_in
from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param


def audit_actions(live) -> list[str]:
    async def q():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry.action).order_by(AuditEntry.seq))).scalars())
    return live.call(q)


def login(client, email, password=PASSWORD, totp=None):
    return client.post("/api/v1/public/staff/login", json={"email": email, "password": password, "totp": totp})


def test_set_up_link_creates_the_first_admin_once(live):
    link = live.call(actions.ensure_setup_link, live.rt)
    token = link.split("#token=")[1]
    c = live.client()
    assert c.post("/api/v1/public/staff/setup/check", json={"token": token}).status_code == 200
    r = c.post("/api/v1/public/staff/setup", json={"token": token, "email": "Chair@Example.ORG", "name": "Chair",
                                                    "password": "short"})
    assert r.status_code == 400 and error_code(r) == "password_too_short"
    assert "at least 12" in r.json()["error"]["message"]
    r = c.post("/api/v1/public/staff/setup", json={"token": token, "email": "chair@example.org", "name": "Chair",
                                                    "password": "password1234"})
    assert error_code(r) == "password_common"
    assert live.call(actions.count_accounts, live.rt) == 0  # nothing half-written
    r = c.post("/api/v1/public/staff/setup", json={"token": token, "email": "chair@example.org", "name": "Chair",
                                                    "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["account"]["roles"]) == ["admin", "agent", "privacy"]
    again = c.post("/api/v1/public/staff/setup", json={"token": token, "email": "x@example.org", "name": "X",
                                                        "password": PASSWORD})
    assert again.status_code == 410 and "already been used" in again.json()["error"]["message"]
    assert live.call(actions.count_accounts, live.rt) == 1
    assert live.call(actions.ensure_setup_link, live.rt) is None  # no more set-up links once an admin exists
    assert login(c, "chair@example.org").status_code == 200


def test_set_up_link_expires(live, clock):
    token = live.call(actions.ensure_setup_link, live.rt).split("#token=")[1]
    clock.advance(hours=25)
    r = live.client().post("/api/v1/public/staff/setup", json={"token": token, "email": "a@example.org",
                                                                "name": "A", "password": PASSWORD})
    assert r.status_code == 410 and error_code(r) == "link_expired"


def test_wrong_password_gives_a_clear_error_and_an_audit_row(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = live.client(headers={"Accept-Language": "fi"})
    r = login(c, "aino@example.org", "not the password at all")
    assert r.status_code == 401
    assert error_code(r) == "login_invalid"
    assert r.json()["error"]["message"] == "Väärä sähköpostiosoite tai salasana."
    assert "jutella_session" not in r.cookies
    assert audit_actions(live)[-1] == "login.failed"
    # unknown accounts get the same answer
    r = login(live.client(), "nobody@example.org", "not the password at all")
    assert r.status_code == 401 and error_code(r) == "login_invalid"


def test_eleventh_failure_is_throttled_and_other_accounts_are_not(live):
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "eero@example.org", ["agent"])
    c = live.client()
    for _ in range(10):
        assert login(c, "aino@example.org", "wrong password here").status_code == 401
    r = login(c, "aino@example.org", PASSWORD)  # even the right password waits out the window
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) > 0
    assert login(c, "eero@example.org").status_code == 200  # successful logins elsewhere are not slowed


def test_throttle_window_passes(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    c = live.client()
    for _ in range(10):
        login(c, "aino@example.org", "wrong password here")
    assert login(c, "aino@example.org").status_code == 429
    clock.advance(minutes=16)
    assert login(c, "aino@example.org").status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP only: the dialect does not show
def test_session_cookie_flags_and_new_token_at_each_login(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = live.client()
    r1 = login(c, "aino@example.org")
    cookie = r1.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    t1 = r1.cookies["jutella_session"]
    t2 = login(c, "aino@example.org").cookies["jutella_session"]
    assert t1 != t2 and len(t1) >= 22  # 128+ bits, url-safe


def test_idle_and_absolute_timeouts(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    clock.advance(minutes=29)
    assert c.get("/api/v1/me").status_code == 200  # activity keeps it alive
    clock.advance(minutes=29)
    assert c.get("/api/v1/me").status_code == 200
    clock.advance(minutes=31)
    r = c.get("/api/v1/me")
    assert r.status_code == 401 and error_code(r) == "not_signed_in"

    c = sign_in(live, "aino@example.org")
    for _ in range(12 * 3):  # busy all day, never idle 30 minutes
        clock.advance(minutes=20)
        r = c.get("/api/v1/me")
        if r.status_code != 200:
            break
    assert r.status_code == 401
    # it ended at the 12-hour mark, not before
    assert 11.5 * 60 <= (_ + 1) * 20 <= 12 * 60 + 20


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP only: the dialect does not show
def test_logout_ends_the_session(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    assert c.post("/api/v1/me/logout").status_code == 200
    assert c.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP only: the dialect does not show
def test_csrf_token_is_required_for_state_changes(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    token = c.headers.pop("X-CSRF-Token")
    r = c.post("/api/v1/me/logout")
    assert r.status_code == 403 and error_code(r) == "csrf"
    r = c.post("/api/v1/me/logout", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and error_code(r) == "csrf"
    # the refused requests changed nothing (GET /me without the token: the console's X-Requested-With)
    assert c.get("/api/v1/me", headers={"X-Requested-With": "jutella-console"}).status_code == 200
    assert c.post("/api/v1/me/logout", headers={"X-CSRF-Token": token}).status_code == 200


def test_password_change_ends_the_other_sessions(live):
    add_staff(live, "aino@example.org", ["agent"])
    phone = sign_in(live, "aino@example.org")
    laptop = sign_in(live, "aino@example.org")
    r = laptop.post("/api/v1/me/password", json={"current": PASSWORD, "new": "a brand new passphrase"})
    assert r.status_code == 200, r.text
    assert phone.get("/api/v1/me").status_code == 401
    assert laptop.get("/api/v1/me").status_code == 200
    assert login(live.client(), "aino@example.org").status_code == 401
    assert login(live.client(), "aino@example.org", "a brand new passphrase").status_code == 200


def test_disabling_an_account_ends_its_sessions_at_once(live):
    add_staff(live, "admin@example.org", ["admin"])
    agent_id = add_staff(live, "aino@example.org", ["agent"])
    admin = sign_in(live, "admin@example.org")
    agent = sign_in(live, "aino@example.org")
    assert agent.get("/api/v1/me").status_code == 200
    r = admin.post(f"/api/v1/accounts/{agent_id}/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert agent.get("/api/v1/me").status_code == 401

    async def sessions():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(StaffSession)
                                    .where(StaffSession.account_id == agent_id))).scalar_one()
    assert live.call(sessions) == 0
    r = login(live.client(), "aino@example.org")
    assert r.status_code == 403 and error_code(r) == "account_disabled"


def test_admin_invites_an_agent_who_sets_their_own_password(live):
    add_staff(live, "admin@example.org", ["admin"])
    admin = sign_in(live, "admin@example.org")
    r = admin.post("/api/v1/accounts", json={"email": "eero@example.org", "name": "Eero", "roles": ["agent"]})
    assert r.status_code == 201, r.text
    link = r.json()["invitation_link"]
    assert link.startswith(live.url + "/console/invite#token=")
    token = link.split("#token=")[1]
    anon = live.client()
    info = anon.post("/api/v1/public/staff/invitation/check", json={"token": token}).json()
    assert info["email"] == "eero@example.org"
    assert anon.post("/api/v1/public/staff/invitation", json={"token": token, "password": "qwertyuiop123"}
                     ).json()["error"]["code"] == "password_common"
    assert anon.post("/api/v1/public/staff/invitation", json={"token": token, "password": PASSWORD}).status_code == 200
    assert anon.post("/api/v1/public/staff/invitation", json={"token": token, "password": PASSWORD}
                     ).status_code == 410
    assert login(anon, "eero@example.org").status_code == 200
    # an unknown role is refused with a clear message and nothing is created
    r = admin.post("/api/v1/accounts", json={"email": "x@example.org", "name": "X", "roles": ["superuser"]})
    assert r.status_code == 400 and "unknown role 'superuser'" in r.json()["error"]["message"]
    emails = [a["email"] for a in admin.get("/api/v1/accounts").json()]
    assert emails == ["admin@example.org", "eero@example.org"]
    # roles change
    eero = [a for a in admin.get("/api/v1/accounts").json() if a["email"] == "eero@example.org"][0]
    r = admin.patch(f"/api/v1/accounts/{eero['id']}", json={"roles": ["agent", "privacy"]})
    assert r.json()["roles"] == ["agent", "privacy"]


def test_the_last_admin_cannot_be_removed(live):
    admin_id = add_staff(live, "admin@example.org", ["admin"])
    admin = sign_in(live, "admin@example.org")
    r = admin.patch(f"/api/v1/accounts/{admin_id}", json={"roles": ["agent"]})
    assert r.status_code == 409 and error_code(r) == "last_admin"


def test_two_factor_enrolment_and_sign_in(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    begun = c.post("/api/v1/me/totp/begin").json()
    assert begun["qr_svg_data_uri"].startswith("data:image/svg+xml")
    totp = pyotp.TOTP(begun["secret"])
    assert c.post("/api/v1/me/totp/confirm", json={"code": "000000" if totp.at(clock.now()) != "000000" else "111111"}
                  ).status_code == 400
    codes = c.post("/api/v1/me/totp/confirm", json={"code": totp.at(clock.now())}).json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    anon = live.client()
    r = login(anon, "aino@example.org")
    assert r.status_code == 401 and error_code(r) == "totp_required"
    r = login(anon, "aino@example.org", totp=totp.at(clock.now()))  # same step as enrolment: a replay
    assert r.status_code == 401 and error_code(r) == "totp_invalid"
    clock.advance(seconds=30)
    assert login(anon, "aino@example.org", totp=totp.at(clock.now())).status_code == 200
    assert login(live.client(), "aino@example.org", totp=codes[0]).status_code == 200
    assert login(live.client(), "aino@example.org", totp=codes[0]).status_code == 401  # used up


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP only: the dialect does not show
def test_admin_can_require_two_factor_for_everyone(live):
    add_staff(live, "admin@example.org", ["admin"])
    add_staff(live, "aino@example.org", ["agent"])
    admin = sign_in(live, "admin@example.org")
    assert admin.put("/api/v1/settings/security", json={"require_totp": True}).status_code == 200
    agent = sign_in(live, "aino@example.org")
    r = agent.get("/api/v1/accounts")
    assert r.status_code == 403
    assert agent.get("/api/v1/me").json()["require_totp"] is True  # may still reach enrolment
    assert agent.post("/api/v1/me/totp/begin").status_code == 200


def test_staff_names_and_emails_are_stored_as_given_and_validated(live):
    add_staff(live, "admin@example.org", ["admin"])
    admin = sign_in(live, "admin@example.org")
    for bad in ["not-an-email", "a@b", "a b@example.org", "line\nbreak@example.org"]:
        r = admin.post("/api/v1/accounts", json={"email": bad, "name": "X", "roles": ["agent"]})
        assert r.status_code == 400 and error_code(r) == "email_invalid", bad
    r = admin.post("/api/v1/accounts", json={"email": "x@example.org", "name": "<b>X</b>", "roles": ["agent"]})
    assert r.json()["account"]["name"] == "<b>X</b>"

    async def count():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(StaffAccount))).scalar_one()
    assert live.call(count) == 2
