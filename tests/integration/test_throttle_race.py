"""Throttles that cannot be raced and are shared (docs/security.md).

Each attempt is counted before its password or code is checked, in the step
that decides whether it may be checked at all: of 40 guesses sent at once,
at most the limit get an answer about the secret ("wrong password"), the
rest "throttled". With Redis, every worker counts into the same limit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pyotp
import pytest

from tests.chat_clients import visitor
from tests.helpers import PASSWORD, add_staff, error_code, run_cli, sign_in
from tests.conftest import run_async

LOGIN = "/api/v1/public/staff/login"


@pytest.fixture
def settings_overrides():
    # 80 connections open at once from one address: past the slow-client cap on
    # connections still waiting for their headers (50), which would refuse some
    # before any throttle sees them; here the throttles are what is tested
    return {"max_conversations_per_client": 5, "max_waiting_connections_per_address": 200}


def at_once(url: str, requests: list[tuple[str, dict]], *, cookies=None, headers=None) -> Counter:
    """Send every (path, json) POST at the same time, each on its own
    connection, and count the answers by error code ("ok" for a 2xx)."""

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=60, cookies=cookies, headers=headers,
                                     limits=httpx.Limits(max_connections=len(requests))) as c:
            return await asyncio.gather(*(c.post(path, json=body) for path, body in requests))

    answers = run_async(go())
    return Counter("ok" if r.is_success else error_code(r) for r in answers)


def test_40_parallel_wrong_passwords_for_one_account_check_at_most_10(live):
    add_staff(live, "aino@example.org", ["agent"])
    seen = at_once(live.url, [(LOGIN, {"email": "aino@example.org", "password": f"guess {i}"}) for i in range(40)])
    assert seen["login_invalid"] <= 10 and seen["throttled"] >= 30, seen
    assert sum(seen.values()) == 40
    # the right password is refused too now: the budget is spent
    r = live.client().post(LOGIN, json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 429 and error_code(r) == "throttled"


def test_80_parallel_wrong_passwords_from_one_address_check_at_most_50(live):
    seen = at_once(live.url, [(LOGIN, {"email": f"user{i}@example.org", "password": "guess"}) for i in range(80)])
    assert seen["login_invalid"] <= 50 and seen["throttled"] >= 30, seen


def test_40_parallel_totp_guesses_check_at_most_10(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    totp = pyotp.TOTP(c.post("/api/v1/me/totp/begin").json()["secret"])
    assert c.post("/api/v1/me/totp/confirm", json={"code": totp.at(clock.now())}).status_code == 200
    clock.advance(seconds=30)
    valid = {totp.at(clock.now() + timedelta(seconds=30 * drift)) for drift in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(100) if f"{n:06d}" not in valid)
    seen = at_once(live.url, [(LOGIN, {"email": "aino@example.org", "password": PASSWORD, "totp": wrong})] * 40)
    assert seen["totp_invalid"] <= 10 and seen["throttled"] >= 30, seen


def test_password_confirmation_is_throttled_and_spends_the_sign_in_budget(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    new = "a brand new passphrase 42"
    seen = at_once(live.url, [("/api/v1/me/password", {"current": f"guess {i}", "new": new}) for i in range(40)],
                   cookies=dict(c.cookies), headers=dict(c.headers))
    assert seen["password_wrong"] <= 10 and seen["throttled"] >= 30, seen
    # turning two-factor off with a password guess is refused the same way
    r = c.post("/api/v1/me/totp/disable", json={"password": "one more guess"})
    assert r.status_code == 429 and error_code(r) == "throttled"
    # and so is signing in: a stolen session cannot guess more than a stranger
    r = live.client().post(LOGIN, json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 429 and error_code(r) == "throttled"


def test_totp_disable_counts_wrong_passwords(live):
    add_staff(live, "aino@example.org", ["agent"])
    c = sign_in(live, "aino@example.org")
    answers = [c.post("/api/v1/me/totp/disable", json={"password": f"guess {i}"}) for i in range(11)]
    assert [error_code(r) for r in answers] == ["password_wrong"] * 10 + ["throttled"]
    assert answers[-1].headers["Retry-After"].isdigit()


def test_new_conversations_without_a_token_are_limited_per_address(live):
    """A client that drops its visitor token each time is still one address
    (limit 5 here, 30 an hour by default); another address is not touched."""
    started, refused = 0, []
    for n in range(8):
        v, _ = visitor(live)  # no token: a new visitor every time
        v.message(f"chat {n}")
        frame = v.until(lambda f: f["type"] in ("ack", "error"))
        if frame["type"] == "ack":
            started += 1
        else:
            refused.append(frame)
        v.close()
    assert started == 5 and len(refused) == 3
    assert all(f["code"] == "rate_limited" and "Too many new chats" in f["message"] for f in refused)
    other, _ = visitor(live, source="127.0.0.2")
    other.message("hello from elsewhere")
    assert other.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"


# -- shared between workers -----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["pg+redis"])
def test_two_servers_count_into_one_limit(live, backend):
    """Two servers (each its own runtime, as two workers or hosts) on one
    Redis: five wrong passwords at each make ten, and both refuse the next."""
    assert live.peer is not None
    add_staff(live, "aino@example.org", ["agent"])
    for side in (live, live.peer, live, live.peer, live, live.peer, live, live.peer, live, live.peer):
        r = side.client().post(LOGIN, json={"email": "aino@example.org", "password": "guess"})
        assert error_code(r) == "login_invalid"
    for side in (live, live.peer):
        r = side.client().post(LOGIN, json={"email": "aino@example.org", "password": PASSWORD})
        assert r.status_code == 429 and error_code(r) == "throttled"


@pytest.mark.parametrize("backend", ["pg+redis"])
def test_two_workers_enforce_one_limit_under_a_race(server_process, backend):
    """`jutella serve --workers 2` on PostgreSQL + Redis: 40 wrong passwords
    at once, spread over both workers, check at most 10 between them."""
    server = server_process(workers=2).start()
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            stdin=PASSWORD, env=server.env, check=True)
    seen = at_once(server.url, [(LOGIN, {"email": "aino@example.org", "password": f"guess {i}"})
                                for i in range(40)])
    assert seen["login_invalid"] <= 10 and seen["throttled"] >= 30, seen
    r = httpx.post(server.url + LOGIN, json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 429


@pytest.mark.parametrize("backend", ["pg+redis"])
@pytest.mark.parametrize("settings_overrides", [{"max_connections_per_client": 4}])
def test_two_servers_share_one_cap_on_a_clients_open_widget_sockets(live, backend):
    """Two servers (as two workers or hosts) on one Redis with
    JUTELLA_MAX_CONNECTIONS_PER_CLIENT=4: four widget sockets open on the
    first, and the second refuses this client's next ones (counting alone it
    would have let four more in); one closed on the first frees a place on
    the second."""
    from websockets.exceptions import InvalidStatus

    from tests.chat_clients import WsClient, _connect
    from tests.helpers import eventually

    assert live.peer is not None

    def widget(server):
        c = WsClient(_connect(server.ws_url + "/ws/visitor", origin=server.url, headers={}, source=None))
        c.send(type="hello", token=None, last_seq=0, lang="en", page="https://site.example/", referrer="")
        c.until(lambda f: f["type"] == "welcome")
        return c

    held = [widget(live) for _ in range(4)]
    for server in (live.peer, live.peer, live):
        with pytest.raises(InvalidStatus) as denied:
            widget(server)
        assert denied.value.response.status_code == 429
    held.pop().close()

    def one_more_on_the_peer():
        try:
            held.append(widget(live.peer))
            return True
        except InvalidStatus:
            return False
    eventually(one_more_on_the_peer, 10, interval=0.2)
    for c in held:
        c.close()
