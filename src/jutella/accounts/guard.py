"""Who may come in: the one decision behind every staff route's guard
(web/auth.py ``Staff``) and the console's socket (realtime/agent.py
``agent_ws``), so that HTTP and the socket cannot drift apart.

A caller comes in from no other site (the browser's Fetch Metadata, checked
before the session is even looked up), with a live session
(``actions.authenticate``: idle and absolute timeouts, disabled accounts),
the session's CSRF token on every HTTP request, reads included, unless the
route's guard says the request proved otherwise that it comes from the
console itself (web/auth.py: ``GET /me``, which hands the token out, and the
printable transcript the console opens as a page), any of the roles asked
for (none: any staff member), and two-factor sign-in enrolled when an
administrator requires it of everyone (or, for a session single sign-on
opened without the second factor the account's roles need, before any
route but the account's own: accounts/oidc.py). A refused CSRF check writes nothing:
not even the session's last-seen time, let alone an audit row. The socket's
handshake needs no token: its Origin is checked (realtime/agent.py).

The other way in is an API token (``Authorization: Bearer``), for the
``/api/v1/`` routes whose guard names a scope: :func:`authorize_token`. It
needs no CSRF token and no Fetch Metadata (a browser cannot attach the
header to another site's request without a CORS pre-flight jutella never
grants), and opens nothing else: the socket reads only the cookie, and a
route without a scope refuses every token (accounts/apitokens.py ``use``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from jutella.runtime import Runtime
from jutella.store.models import StaffAccount, StaffSession

from . import actions, apitokens, audit
from .errors import AccountError

# The refusals, in the order they are checked; HTTP answers with the status,
# the socket closes with its own codes (4401 for the first, 4403 for the rest).
NOT_SIGNED_IN = "not_signed_in"
CSRF = "csrf"
FORBIDDEN = "forbidden"
TOTP_REQUIRED = "totp_enrollment_required"


async def authorize_staff(rt: Runtime, session_token: str | None, *, roles: Iterable[str] = (),
                          csrf_sent: str | None = None, needs_csrf: bool = False,
                          allow_unenrolled: bool = False, cross_site: bool = False,
                          ) -> tuple[StaffAccount, StaffSession]:
    """The account and session of a staff member allowed in, or an
    AccountError saying why not (401 ``not_signed_in``, 403 ``csrf``,
    ``forbidden``, ``totp_enrollment_required``). ``cross_site``: the browser
    said another site made the request (refused before anything is read)."""
    if cross_site:
        raise AccountError(CSRF, "This request came from another site. Open the console directly.", 403)
    found = await actions.authenticate(rt, session_token, touch=False)
    if found is None:
        raise AccountError(NOT_SIGNED_IN, "Sign in first.", 401)
    account, session = found
    if needs_csrf and not secrets.compare_digest((csrf_sent or "").encode(), session.csrf_token.encode()):
        raise AccountError(CSRF, "The request did not carry this session's CSRF token. Reload the page.", 403)
    await actions.keep_alive(rt, session)
    wanted = set(roles)
    if wanted and not wanted & set(account.role_names):
        raise AccountError(FORBIDDEN, "Your account does not have the role needed for this.", 403)
    if not allow_unenrolled and not account.totp_enabled and await actions.require_totp_for_all(rt):
        raise AccountError(TOTP_REQUIRED, "Turn on two-factor sign-in before you continue.", 403)
    if session.needs_totp and not account.totp_enabled and (wanted or not allow_unenrolled):
        # single sign-on without the second factor the admin and privacy roles need
        # (accounts/oidc.py): the account's own routes only, until two-factor sign-in is on
        raise AccountError(TOTP_REQUIRED, "Turn on two-factor sign-in before you continue.", 403)
    return account, session


async def authorize_token(rt: Runtime, token: str, *, scope: str | None, roles: Iterable[str] = (),
                          route: str) -> apitokens.Bearer:
    """The token allowed in (accounts/apitokens.py ``use``: 401 unknown,
    revoked, expired or a disabled creator; 403 without the route's scope or
    role; every use audited), after which every audit row this request
    writes names the token."""
    bearer = await apitokens.use(rt, token, scope=scope, roles=tuple(roles), route=route)
    audit.ACTING_TOKEN.set(bearer.token_id)
    return bearer
