"""The one rule for guesses at a secret (a password at sign-in or when it is
confirmed, a second-factor code): the attempt is counted *before* it is
checked, in one atomic step with the limit (accounts/throttle.py
``reserve``), and given back only when it turns out right. So parallel
guesses cannot all be checked before any of them is counted, and with
Redis every worker counts into the same limit.

The budget is per account (its email, HMAC'd) and per client address: a
wrong password typed at sign-in, at ``/me/password`` or to turn two-factor
off spends the same one. When the shared counters are out of reach the
attempt is refused (503), not checked uncounted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from jutella.runtime import Runtime

from .errors import AccountError
from .throttle import Limit, ThrottleUnavailable

CLIENT_FAILURE_LIMIT = 50  # per client address (many staff may share one NAT)


@dataclass
class Attempt:
    failed: bool = False  # set by the caller when the secret was wrong: the attempt stays counted


def window(rt: Runtime) -> float:
    return rt.settings.login_window_minutes * 60.0


def limits(rt: Runtime, email: str, client: str) -> tuple[Limit, Limit]:
    throttle, w = rt.throttle, window(rt)
    return (Limit(throttle.key("login-account", email.strip().casefold()), w, rt.settings.login_max_failures),
            Limit(throttle.key("login-client", client), w, CLIENT_FAILURE_LIMIT))


@asynccontextmanager
async def guess(rt: Runtime, *, email: str, client: str,
                message: str = "Too many failed sign-ins. Try again in {minutes} minutes.") -> AsyncIterator[Attempt]:
    """Reserve one attempt for ``email`` from ``client`` or refuse (429 with
    the minutes to wait; 503 when the counters cannot be reached). Inside the
    block the caller checks the secret and sets ``attempt.failed`` when it
    was wrong; otherwise (right, or the check never happened) the attempt is
    given back on the way out."""
    try:
        reservation = await rt.throttle.reserve(*limits(rt, email, client), strict=True)
    except ThrottleUnavailable:
        raise AccountError("throttle_unavailable", "Signing in is not possible for a moment. Try again in a minute.",
                           503) from None
    if not reservation:
        raise AccountError("throttled", message, 429, minutes=max(1, round(reservation.retry_after / 60)))
    attempt = Attempt()
    try:
        yield attempt
    finally:
        if not attempt.failed:
            await rt.throttle.release(reservation)
