"""Small helpers the tests share."""

from __future__ import annotations

import httpx

from jutella.accounts import actions

PASSWORD = "correct horse battery staple"


def add_staff(live, email: str, roles: list[str], *, name: str | None = None, password: str = PASSWORD) -> int:
    created = live.call(actions.create_account, live.rt, actor_id=None, email=email,
                        name=name or email.split("@")[0].title(), roles=roles, password=password)
    return created.account.id


def sign_in(live, email: str, password: str = PASSWORD, totp: str | None = None) -> httpx.Client:
    """A client holding a staff session; its CSRF token is sent on every request."""
    client = live.client()
    r = client.post("/api/v1/public/staff/login", json={"email": email, "password": password, "totp": totp})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def eventually(check, timeout: float = 15, interval: float = 0.02):
    """Poll ``check()`` until it returns something truthy and return that; fail
    with its last value after ``timeout`` s. For waiting on a state that no
    event announces, instead of sleeping for a guessed time."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not within {timeout} s: {check!r} gave {value!r}"
            return value
        time.sleep(interval)


def outbox_idle(live) -> bool:
    """One pass of each server's mail worker (the same call its loop makes)
    right now: True when none found a mail due, i.e. nothing more will be
    sent until the clock moves on. Deterministic where sleeping through a
    poll interval only guessed."""
    sides = {id(side): side for side in (live, getattr(live, "agent_side", live))}.values()
    return not any(side.call(side.rt.outbox.send_due) for side in sides)
