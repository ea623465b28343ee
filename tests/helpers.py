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
