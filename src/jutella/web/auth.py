"""Who is asking: the one boundary where every staff route declares the role it
needs, and where CSRF is checked for cookie-authenticated requests.

``Depends(Staff("admin"))`` on a route means: a signed-in, enabled staff
member holding *any* of the named roles (no names: any staff member), whose
request carries the session's CSRF token (reads too: the session cookie is
SameSite=Lax, so a page on another site can navigate a signed-in browser to
any GET, and some GETs are audited views), and who has enrolled two-factor
sign-in when an administrator requires it. Requests the browser marks as made
by another site (``Sec-Fetch-Site``) are refused before the session is read.

Two reads are reached without the token, each proving another way that the
console itself asks (a page on another site can do neither):
``Staff(bootstrap=True)`` (``GET /me``, which hands the token out) accepts the
console's ``X-Requested-With`` header, which a cross-site navigation cannot
send and a cross-site script cannot send without a CORS pre-flight that
jutella never grants; ``Staff(page=True)`` (the printable transcript, a link
the console opens in a new tab) accepts a navigation the browser says came
from this origin or from the person (an address typed or bookmarked).

``Staff(scope=...)`` opens a route to API tokens as well (docs/api.md): a
request with ``Authorization: Bearer`` is decided by the token alone
(accounts/guard.py ``authorize_token``), never by a cookie it also carries,
and needs no CSRF token. The scope's roles come from accounts/scopes.py, the
one table of what each scope carries. A route without a scope refuses every
token with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from jutella import clientaddr
from jutella.accounts import actions
from jutella.accounts.guard import authorize_staff, authorize_token
from jutella.accounts.roles import ROLES
from jutella.accounts.scopes import SCOPES, roles_for
from jutella.runtime import Runtime
from jutella.store.models import StaffAccount, StaffSession


COOKIE = actions.SESSION_COOKIE
CSRF_HEADER = "x-csrf-token"
CONSOLE_HEADER = "x-requested-with"  # sent by the console's fetches (static/console/api.js)
SAFE_METHODS = frozenset({"GET", "HEAD"})


def cross_site(request: Request) -> bool:
    """The browser says a page of another site (or a sibling subdomain) made
    this request (Fetch Metadata; browsers without it send nothing, and the
    CSRF token still stops them)."""
    return request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site")


def same_origin_navigation(request: Request) -> bool:
    """A top-level navigation that this origin's page started ("same-origin":
    the console's link) or the person did ("none": the address typed, a
    bookmark, a reload); never one another site's page made."""
    return (request.headers.get("sec-fetch-site") in ("same-origin", "none")
            and request.headers.get("sec-fetch-mode") == "navigate")


def bearer_token(request: Request) -> str | None:
    """The API token of an ``Authorization: Bearer`` header (any other
    scheme, or none: None; the request is then a cookie's)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


# Where each request carries its application's Runtime (set by app.py's
# outermost middleware): the route table is shared by every app of a process,
# so ``request.app`` is the table's app, not the one the request came in by.
RUNTIME_KEY = "jutella.runtime"


def runtime(request: Request) -> Runtime:
    return request.scope[RUNTIME_KEY]


@dataclass
class StaffContext:
    """Who is asking: a signed-in member of staff (``session``), or an API
    token (``token_id``; ``session`` None) acting as ``account`` with only
    ``roles`` (accounts/apitokens.py)."""

    account: StaffAccount
    session: StaffSession
    token_id: int | None = None
    token_roles: frozenset[str] | None = None

    @property
    def id(self) -> int:
        return self.account.id

    @property
    def roles(self) -> frozenset[str]:
        return self.token_roles if self.token_roles is not None else frozenset(self.account.role_names)

    def has(self, role: str) -> bool:
        return role in self.roles


class Staff:
    """A route dependency naming the roles allowed (any of them)."""

    def __init__(self, *roles: str, allow_unenrolled: bool = False, bootstrap: bool = False, page: bool = False,
                 scope: str | None = None):
        if scope is not None:
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}")
            if roles:
                raise ValueError("a scoped guard takes its roles from accounts/scopes.py")
            roles = roles_for(scope)
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}")
        self.roles = roles
        self.allow_unenrolled = allow_unenrolled
        self.bootstrap = bootstrap
        self.page = page
        self.scope = scope

    def _needs_token(self, request: Request) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        if self.bootstrap and request.headers.get(CONSOLE_HEADER):
            return False
        return not (self.page and same_origin_navigation(request))

    async def __call__(self, request: Request) -> StaffContext:
        bearer = bearer_token(request)
        if bearer is not None:
            route = request.scope.get("route")
            found = await authorize_token(runtime(request), bearer, scope=self.scope, roles=self.roles,
                                          route=f"{request.method} {getattr(route, 'path', request.url.path)}")
            return StaffContext(found.account, None, token_id=found.token_id,  # type: ignore[arg-type]
                                token_roles=found.roles)
        # the decision is accounts/guard.py's, shared with the console's socket
        account, session = await authorize_staff(
            runtime(request), request.cookies.get(COOKIE), roles=self.roles,
            csrf_sent=request.headers.get(CSRF_HEADER, ""), needs_csrf=self._needs_token(request),
            allow_unenrolled=self.allow_unenrolled, cross_site=cross_site(request))
        return StaffContext(account, session)


def set_session_cookie(response: Response, rt: Runtime, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", secure=rt.settings.secure_cookies, path="/",
        max_age=rt.settings.session_absolute_hours * 3600,
    )


def clear_session_cookie(response: Response, rt: Runtime) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=rt.settings.secure_cookies)


def client_address(request: Request) -> str:
    """The client's address by jutella/clientaddr.py's one rule (the peer, or
    what a trusted proxy says in X-Forwarded-For): every per-client limit's
    key, used only as a throttle key (HMAC'd) and never stored or logged."""
    return clientaddr.client_address(request.client.host if request.client else None,
                                     request.headers.getlist("x-forwarded-for"),
                                     runtime(request).settings.trusted_proxies)
