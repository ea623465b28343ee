"""Walks the application's whole route table: every /api/ route outside
/api/v1/public/ declares its roles at the one boundary (``web.auth.Staff``),
refuses an anonymous caller with 401 and a signed-in caller without the role
with 403."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from jutella.accounts.roles import ROLES
from jutella.web.auth import Staff

from tests.helpers import add_staff, sign_in


@pytest.fixture
def backend():
    return "sqlite"  # the route table does not depend on the database


def all_routes(routes):
    """Flattened route table (newer FastAPI keeps included routers as nodes)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
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
