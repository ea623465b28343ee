"""One decision of who may come in (accounts/guard.py), asked by the HTTP
routes' guard and by the console's socket: for each caller, the route and
the socket refuse (or admit) exactly as ``authorize_staff`` says."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jutella.accounts import actions as accounts
from jutella.accounts.actions import SESSION_COOKIE
from jutella.accounts.errors import AccountError
from jutella.accounts.guard import authorize_staff

from tests.helpers import add_staff, error_code, sign_in

# the socket's close for each refusal of the guard (docs/protocol.md)
SOCKET_CLOSE = {"not_signed_in": 4401, "forbidden": 4403, "totp_enrollment_required": 4403}


def _token(client) -> str | None:
    return client.cookies.get(SESSION_COOKIE) if client is not None else None


def _socket_answer(live, token: str | None):
    """The console socket's answer to a session token: "welcome" or the close code."""
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"} if token else {}
    with connect(live.ws_url + "/ws/agent", origin=live.url, additional_headers=headers, open_timeout=5) as ws:
        try:
            ws.send(json.dumps({"type": "hello", "subscriptions": {}}))
            while True:
                frame = json.loads(ws.recv(timeout=5))
                if frame["type"] == "welcome":
                    return "welcome"
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code


def _guard_answer(live, token: str | None):
    try:
        live.call(authorize_staff, live.rt, token, roles=("agent",))
    except AccountError as exc:
        return exc.status, exc.code
    return 200, None


def test_the_routes_and_the_socket_refuse_the_same_callers(live):
    admin_id = add_staff(live, "admin@example.org", ["admin"])
    add_staff(live, "aino@example.org", ["agent"])
    disabled_id = add_staff(live, "dora@example.org", ["agent"])
    callers = {
        "anonymous": None,
        "an unknown session": "not-a-session",
        "an agent": sign_in(live, "aino@example.org"),
        "an admin without the agent role": sign_in(live, "admin@example.org"),
        "a disabled account": sign_in(live, "dora@example.org"),
    }
    live.call(accounts.set_disabled, live.rt, actor_id=admin_id, account_id=disabled_id, disabled=True)
    expected = {"anonymous": (401, "not_signed_in"), "an unknown session": (401, "not_signed_in"),
                "an agent": (200, None), "an admin without the agent role": (403, "forbidden"),
                "a disabled account": (401, "not_signed_in")}
    _check(live, callers, expected)

    # an administrator requires two-factor sign-in: the agent, not enrolled, is stopped on both ways in
    live.call(accounts.set_require_totp, live.rt, actor_id=admin_id, value=True)
    expected["an agent"] = (403, "totp_enrollment_required")
    _check(live, callers, expected)


def _check(live, callers, expected):
    http = live.client()
    for who, caller in callers.items():
        # a caller: no session, a made-up session token, or a signed-in client (with its CSRF token)
        token = caller if caller is None or isinstance(caller, str) else _token(caller)
        status, code = _guard_answer(live, token)
        assert (status, code) == expected[who], who
        http.cookies.clear()
        http.headers.pop("X-CSRF-Token", None)
        if token:
            http.cookies.set(SESSION_COOKIE, token)
        if caller is not None and not isinstance(caller, str):
            http.headers["X-CSRF-Token"] = caller.headers["X-CSRF-Token"]
        r = http.get("/api/v1/conversations")
        assert r.status_code == status, who
        if code:
            assert error_code(r) == code, who
        assert _socket_answer(live, token) == (SOCKET_CLOSE[code] if code else "welcome"), who


@pytest.mark.parametrize("method,needs", [("GET", False), ("POST", True)])
def test_a_state_change_needs_the_sessions_csrf_token(live, method, needs):
    # (a route's read needs the token too since issue 15: test_route_roles.py; the
    # socket asks the guard without one, its handshake's Origin being checked instead)
    add_staff(live, "aino@example.org", ["agent"])
    client = sign_in(live, "aino@example.org")
    token = _token(client)
    csrf = client.headers["X-CSRF-Token"]
    account, _ = live.call(authorize_staff, live.rt, token, roles=("agent",), csrf_sent=csrf, needs_csrf=needs)
    assert account.email == "aino@example.org"
    if needs:
        with pytest.raises(AccountError) as refused:
            live.call(authorize_staff, live.rt, token, roles=("agent",), csrf_sent="forged", needs_csrf=True)
        assert (refused.value.status, refused.value.code) == (403, "csrf")
        del client.headers["X-CSRF-Token"]
        r = client.post("/api/v1/me/logout")
        assert r.status_code == 403 and error_code(r) == "csrf"
