"""Walks the application's whole route table: every /api/ route outside
/api/v1/public/ declares its roles at the one boundary (``web.auth.Staff``),
refuses an anonymous caller with 401 and a signed-in caller without the role
with 403."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from jutella.accounts.roles import ROLES
from jutella.web.auth import Staff

from tests.helpers import add_staff, sign_in


@pytest.fixture
def backend():
    return "sqlite"  # the route table does not depend on the database


def all_routes(routes):
    """Flattened route table (newer FastAPI keeps included routers as nodes;
    each app mounts the process's one table, app.py ``routes``)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
        elif isinstance(route, Mount):
            yield from all_routes(route.routes)
        else:
            yield route


def guarded_routes(app):
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/api/") \
                and not route.path.startswith("/api/v1/public/"):
            guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Staff)]
            for method in sorted(route.methods):
                yield route, method, guards


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_private_api_route_declares_a_staff_guard(live):
    routes = list(guarded_routes(live.server.config.app))
    assert len(routes) >= 15
    missing = [f"{m} {r.path}" for r, m, guards in routes if len(guards) != 1]
    assert missing == []


def test_anonymous_callers_get_401_everywhere(live):
    c = live.client()
    for route, method, _ in guarded_routes(live.server.config.app):
        r = c.request(method, concrete(route.path), json={})
        assert r.status_code == 401, f"{method} {route.path} answered {r.status_code}"


def test_callers_without_the_role_get_403(live):
    clients = {}
    for role in ROLES:
        add_staff(live, f"{role}@example.org", [role])
        clients[role] = sign_in(live, f"{role}@example.org")
    checked = 0
    for route, method, (guard,) in guarded_routes(live.server.config.app):
        if not guard.roles:
            continue
        for role in ROLES:
            if role in guard.roles:
                continue
            r = clients[role].request(method, concrete(route.path), json={})
            assert r.status_code == 403, f"{role} got {r.status_code} for {method} {route.path}"
            checked += 1
    assert checked >= 10


def test_non_api_pages_that_show_personal_data_do_not_exist_outside_the_api(live):
    # the console shell itself carries no data: it is the same page for everyone
    anon = live.client().get("/console")
    assert anon.status_code == 200 and "@" not in anon.text


def test_every_private_api_route_needs_the_csrf_token_reads_included(live):
    """Issue 15: the session cookie is SameSite=Lax, so a page on another site
    can navigate a signed-in browser to any GET. Every guarded route, reads
    included, refuses a signed-in caller holding every role but not the
    session's CSRF token (403 ``csrf``), and one the browser marks as sent by
    another site even with the token. ``GET /me`` (it hands the token out)
    takes the console's ``X-Requested-With`` instead; the printable
    transcript a same-origin navigation (tests/integration/test_hardening.py)."""
    add_staff(live, "all@example.org", list(ROLES))
    signed = sign_in(live, "all@example.org")
    token = signed.headers["X-CSRF-Token"]
    bare = live.client(cookies=dict(signed.cookies))
    checked = 0
    for route, method, _ in guarded_routes(live.server.config.app):
        path = concrete(route.path)
        r = bare.request(method, path, json={})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "csrf"), f"{method} {route.path}"
        r = bare.request(method, path, json={}, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "csrf"), f"cross-site {method} {route.path}"
        checked += method == "GET"
    assert checked >= 15
    # the one read without the token: only from the console's own script
    me = bare.get("/api/v1/me", headers={"X-Requested-With": "jutella-console"})
    assert me.status_code == 200 and me.json()["csrf_token"] == token
    assert me.headers["cache-control"] == "no-store"
    assert bare.get("/api/v1/me", headers={"X-Requested-With": "jutella-console",
                                           "Sec-Fetch-Site": "cross-site"}).status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/no-such-route", "/api/v1/conversations/%0A/notes"])
def test_a_path_no_route_takes_is_refused_in_the_documented_shape(live, path):
    """Every app mounts the process's one route table (app.py ``routes``); a
    path the mount cannot take (a line break) is answered by the app itself,
    in the same shape as one the table has no route for."""
    r = live.client().post(path, json={})
    assert r.status_code == 404 and r.json()["error"] == {"code": "http_404", "message": "Not found."}, r.text
