"""API tokens (docs/api.md, issue 19): ``Authorization: Bearer`` opens only the
/api/v1/ routes of the token's scopes, answers 401 for unknown, revoked and
expired tokens, audits every use, needs no CSRF token (cookies still do), and
opens no console page, no socket and no route without a scope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jutella.accounts import actions as accounts
from jutella.accounts import apitokens
from jutella.accounts.scopes import SCOPES
from jutella.accounts.tokens import hash_token
from jutella.store.models import ApiToken, AuditEntry

from tests.helpers import add_staff, error_code, run_cli, sign_in
from tests.integration.test_route_roles import concrete, guarded_routes

REPORT = "/api/v1/reports/daily?from=2026-01-01&to=2026-01-07"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(admin_client, name: str, scopes: list[str], expires_days: int | None = None) -> tuple[str, int]:
    r = admin_client.post("/api/v1/tokens", json={"name": name, "scopes": scopes, "expires_days": expires_days})
    assert r.status_code == 201, r.text
    return r.json()["token"], r.json()["made"]["id"]


def audit_rows(live, action: str | None = None) -> list[AuditEntry]:
    async def q():
        async with live.rt.db.reader() as s:
            stmt = select(AuditEntry).order_by(AuditEntry.seq)
            if action:
                stmt = stmt.where(AuditEntry.action == action)
            return list((await s.execute(stmt)).scalars())
    return live.call(q)


@pytest.fixture
def admin(live):
    add_staff(live, "admin@example.org", ["admin", "agent"], name="Anna Admin")
    return sign_in(live, "admin@example.org")


def test_a_token_opens_only_the_routes_of_its_scopes(live, admin):
    reports_only, _ = make_token(admin, "Dashboard", ["reports:read"])
    c = live.client()
    r = c.get(REPORT, headers=bearer(reports_only))
    assert r.status_code == 200 and len(r.json()["days"]) == 7
    r = c.get("/api/v1/conversations", headers=bearer(reports_only))
    assert r.status_code == 403 and error_code(r) == "token_scope"
    assert "scope" in r.json()["error"]["message"]

    # a token holding every scope still opens no route whose guard names none
    everything, _ = make_token(admin, "Everything", list(SCOPES))
    opened, refused = [], []
    for route, method, (guard,) in guarded_routes(live.server.config.app):
        r = c.request(method, concrete(route.path), headers=bearer(everything), json={})
        if guard.scope is None:
            assert r.status_code == 403 and error_code(r) == "token_scope", f"{method} {route.path}: {r.text}"
            refused.append(route.path)
        else:
            assert r.status_code not in (401, 403), f"{method} {route.path}: {r.status_code} {r.text}"
            opened.append(route.path)
    assert {"/api/v1/conversations", "/api/v1/search", "/api/v1/offline-messages", "/api/v1/reports/daily"} \
        <= set(opened)
    assert {"/api/v1/me", "/api/v1/privacy/erase", "/api/v1/tokens", "/api/v1/accounts"} <= set(refused)


def test_unknown_revoked_and_expired_tokens_get_401_and_revocation_is_immediate(live, admin, clock):
    c = live.client()
    for made_up in ("jut_" + "A" * 43, "not-a-token", "jut_"):
        r = c.get(REPORT, headers=bearer(made_up))
        assert r.status_code == 401 and error_code(r) == "token_invalid", made_up

    token, token_id = make_token(admin, "Soon revoked", ["reports:read"])
    assert c.get(REPORT, headers=bearer(token)).status_code == 200
    assert admin.post(f"/api/v1/tokens/{token_id}/revoke").status_code == 200
    r = c.get(REPORT, headers=bearer(token))  # the very next request
    assert r.status_code == 401 and error_code(r) == "token_revoked"

    week, _ = make_token(admin, "A week", ["reports:read"], expires_days=7)
    assert c.get(REPORT, headers=bearer(week)).status_code == 200
    clock.advance(days=7, seconds=1)
    r = c.get(REPORT, headers=bearer(week))
    assert r.status_code == 401 and error_code(r) == "token_expired"
    listed = {t["name"]: t["state"] for t in sign_in(live, "admin@example.org").get("/api/v1/tokens").json()["tokens"]}
    assert listed == {"Soon revoked": "revoked", "A week": "expired"}


def test_a_token_acts_within_its_makers_roles(live, admin):
    add_staff(live, "aino@example.org", ["agent"])
    aino = sign_in(live, "aino@example.org")
    # an agent cannot give a token the admin's reports, nor make tokens at all (the page is the admin's)
    assert aino.post("/api/v1/tokens", json={"name": "x", "scopes": ["reports:read"]}).status_code == 403
    admin_only_id = add_staff(live, "olli@example.org", ["admin"])
    olli = sign_in(live, "olli@example.org")
    r = olli.post("/api/v1/tokens", json={"name": "Chats", "scopes": ["conversations:read"]})
    assert r.status_code == 403 and error_code(r) == "token_scope_not_yours"
    r = olli.post("/api/v1/tokens", json={"name": "Nothing", "scopes": ["everything:write"]})
    assert r.status_code == 400 and error_code(r) == "token_scope_invalid"

    token, _ = make_token(olli, "Olli's reports", ["reports:read"])
    c = live.client()
    assert c.get(REPORT, headers=bearer(token)).status_code == 200
    # the maker disabled: the token stops at once; enabled again, it works again
    live.call(accounts.set_disabled, live.rt, actor_id=None, account_id=admin_only_id, disabled=True)
    r = c.get(REPORT, headers=bearer(token))
    assert r.status_code == 401 and error_code(r) == "token_inactive"
    live.call(accounts.set_disabled, live.rt, actor_id=None, account_id=admin_only_id, disabled=False)
    assert c.get(REPORT, headers=bearer(token)).status_code == 200
    # the maker loses the role the scope needs: refused with 403
    live.call(accounts.update_account, live.rt, actor_id=None, account_id=admin_only_id, roles=["agent"])
    r = c.get(REPORT, headers=bearer(token))
    assert r.status_code == 403 and error_code(r) == "forbidden"


def test_every_use_is_audited_and_names_the_token(live, admin):
    token, token_id = make_token(admin, "Audited", ["conversations:read", "reports:read"])
    c = live.client()
    assert c.get("/api/v1/search", params={"q": "hello"}, headers=bearer(token)).status_code == 200
    assert c.get(REPORT, headers=bearer(token)).status_code == 200
    assert c.get("/api/v1/offline-messages", headers=bearer(token)).status_code == 403
    used = audit_rows(live, "token.use")
    assert [(r.target_type, r.target_id, r.detail["route"]) for r in used] == [
        ("api_token", str(token_id), "GET /api/v1/search"), ("api_token", str(token_id), "GET /api/v1/reports/daily")]
    refused = audit_rows(live, "token.refused")
    assert [(r.target_id, r.detail["reason"]) for r in refused] == [(str(token_id), "token_scope")]
    # what the request itself wrote names the token too
    search = audit_rows(live, "conversation.search")[-1]
    assert search.detail["token"] == token_id
    # no row ever holds the token itself
    assert not any(token in json.dumps(r.detail) for r in audit_rows(live))
    listed = admin.get("/api/v1/tokens").json()["tokens"][0]
    assert listed["last_used_at"] is not None and "token" not in listed


def test_bearer_needs_no_csrf_token_while_cookies_still_do(live, admin):
    token, _ = make_token(admin, "No CSRF", ["reports:read"])
    cookie_only = sign_in(live, "admin@example.org")
    del cookie_only.headers["X-CSRF-Token"]
    r = cookie_only.get(REPORT)
    assert r.status_code == 403 and error_code(r) == "csrf"
    r = cookie_only.post("/api/v1/tokens", json={"name": "x", "scopes": ["reports:read"]})
    assert r.status_code == 403 and error_code(r) == "csrf"
    # the token alone, or the token beside a cookie without CSRF: the token decides, no CSRF asked
    assert live.client().get(REPORT, headers=bearer(token)).status_code == 200
    assert cookie_only.get(REPORT, headers=bearer(token)).status_code == 200
    # a state change with a token and no CSRF header is refused for want of a scope, not of CSRF
    r = cookie_only.post("/api/v1/tokens", json={"name": "x", "scopes": ["reports:read"]}, headers=bearer(token))
    assert r.status_code == 403 and error_code(r) == "token_scope"


def test_a_token_opens_no_console_page_and_no_socket(live, admin):
    token, _ = make_token(admin, "Everything", list(SCOPES))
    c = live.client()
    r = c.get("/api/v1/me", headers={**bearer(token), "X-Requested-With": "jutella"})
    assert r.status_code == 403 and error_code(r) == "token_scope"
    r = c.get("/api/v1/conversations/1/transcript", headers={**bearer(token), "Sec-Fetch-Site": "same-origin",
                                                              "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 403
    # the console's socket reads only the session cookie: a bearer header is nobody
    with connect(live.ws_url + "/ws/agent", origin=live.url, additional_headers=bearer(token), open_timeout=5) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.send(json.dumps({"type": "hello", "subscriptions": {}}))
            while True:
                assert json.loads(ws.recv(timeout=5))["type"] != "welcome"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_the_command_line_prints_a_token_once_and_keeps_only_its_hash(live, settings):
    env = {"JUTELLA_DATABASE_URL": settings.database_url, "JUTELLA_DATA_DIR": str(settings.data_dir)}
    # the command as the operator types it: a process of its own, its exit status, its two streams
    r = subprocess.run([sys.executable, "-m", "jutella.cli", "token", "create", "Helpdesk", "--scope", "reports:read",
                        "--scope", "offline:read", "--expires", "30"], capture_output=True, text=True, timeout=120,
                       env={**{k: v for k, v in os.environ.items() if not k.startswith("JUTELLA_")}, **env})
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("jut_") and len(token) == 47 and "\n" not in token
    assert "shown only this once" in r.stderr and token not in r.stderr

    c = live.client()
    assert c.get(REPORT, headers=bearer(token)).status_code == 200
    assert c.get("/api/v1/offline-messages", headers=bearer(token)).status_code == 200
    r = c.get("/api/v1/conversations", headers=bearer(token))
    assert r.status_code == 403 and error_code(r) == "token_scope"

    listing = run_cli("token", "list", env=env)
    assert listing.returncode == 0 and "Helpdesk" in listing.stdout and "(operator)" in listing.stdout
    assert token not in listing.stdout and token[4:20] not in listing.stdout

    # the database holds the hash, never the token: every byte of every file jutella keeps
    async def stored():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(ApiToken.token_hash))).scalars().all()
    assert live.call(stored) == [hash_token(token)]
    live.call(live.rt.db.checkpoint)
    files = [p for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    assert any(p.name.endswith(".sqlite3") for p in files)
    for path in files:
        data = path.read_bytes()
        assert token.encode() not in data and token[4:].encode() not in data, path

    r = run_cli("token", "revoke", "Helpdesk", env=env)
    assert r.returncode == 0 and "revoked" in r.stdout
    r = c.get(REPORT, headers=bearer(token))
    assert r.status_code == 401 and error_code(r) == "token_revoked"
    r = run_cli("token", "create", "Bad", "--scope", "everything", env=env)
    assert r.returncode == 2
    r = run_cli("token", "revoke", "Nobody", env=env)
    assert r.returncode == 1 and r.stderr.strip() == "jutella: No such token."


def test_a_token_sees_what_its_maker_sees_but_never_restricted_people(live):
    from tests.integration.test_access import SEES_CONVERSATION, seed

    w = seed(live)  # departments A and B; a privacy+agent member of A; two restricted people
    privacy = sign_in(live, "privacy@example.org")

    def made_by(name: str, account: int | None) -> str:  # the action itself: the console's page is the admins'
        return live.call(apitokens.create, live.rt, actor_id=account, name=name, scopes=["conversations:read"]).token

    token = made_by("Privacy's reader", w.accounts["privacy"])
    c = live.client()

    def seen(client, headers=None) -> set[str]:
        r = client.get("/api/v1/conversations", headers=headers or {})
        assert r.status_code == 200, r.text
        ids = {row["id"] for row in r.json()}
        return {kind for kind, cid in w.conversations.items() if cid in ids}

    assert seen(privacy) == SEES_CONVERSATION["privacy"]  # the maker in the console sees restricted people
    assert seen(c, bearer(token)) == SEES_CONVERSATION["privacy"] - {"restricted_visitor", "restricted_email"}
    r = c.get(f"/api/v1/conversations/{w.conversations['restricted_visitor']}", headers=bearer(token))
    assert r.status_code == 404
    # an agent's token: the agent's departments only
    assert seen(c, bearer(made_by("A's reader", w.accounts["agent_a"]))) == SEES_CONVERSATION["agent_a"]
    # the operator's token (command line): every department, as an administrator, still no restricted people
    assert seen(c, bearer(made_by("Operator", None))) == SEES_CONVERSATION["admin"]
    assert not any(r.actor_id == 0 for r in audit_rows(live))  # the operator's token acts with no account
