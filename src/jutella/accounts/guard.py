"""Who may come in: the one decision behind every staff route's guard
(web/auth.py ``Staff``) and the console's socket (realtime/agent.py
``agent_ws``), so that HTTP and the socket cannot drift apart.

A caller comes in with a live session (``actions.authenticate``: idle and
absolute timeouts, disabled accounts), the session's CSRF token when the
request changes state (HTTP only: a socket's handshake changes nothing),
any of the roles asked for (none: any staff member), and two-factor sign-in
enrolled when an administrator requires it of everyone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from jutella.runtime import Runtime
from jutella.store.models import StaffAccount, StaffSession

from . import actions
from .errors import AccountError

# The refusals, in the order they are checked; HTTP answers with the status,
# the socket closes with its own codes (4401 for the first, 4403 for the rest).
NOT_SIGNED_IN = "not_signed_in"
CSRF = "csrf"
FORBIDDEN = "forbidden"
TOTP_REQUIRED = "totp_enrollment_required"


async def authorize_staff(rt: Runtime, session_token: str | None, *, roles: Iterable[str] = (),
                          csrf_sent: str | None = None, needs_csrf: bool = False,
                          allow_unenrolled: bool = False) -> tuple[StaffAccount, StaffSession]:
    """The account and session of a staff member allowed in, or an
    AccountError saying why not (401 ``not_signed_in``, 403 ``csrf``,
    ``forbidden``, ``totp_enrollment_required``)."""
    found = await actions.authenticate(rt, session_token)
    if found is None:
        raise AccountError(NOT_SIGNED_IN, "Sign in first.", 401)
    account, session = found
    if needs_csrf and not secrets.compare_digest((csrf_sent or "").encode(), session.csrf_token.encode()):
        raise AccountError(CSRF, "The request did not carry this session's CSRF token. Reload the page.", 403)
    wanted = set(roles)
    if wanted and not wanted & set(account.role_names):
        raise AccountError(FORBIDDEN, "Your account does not have the role needed for this.", 403)
    if not allow_unenrolled and not account.totp_enabled and await actions.require_totp_for_all(rt):
        raise AccountError(TOTP_REQUIRED, "Turn on two-factor sign-in before you continue.", 403)
    return account, session
