"""How much mail an anonymous visitor can make jutella send or store: one rule
in one place, so jutella is nobody's mail relay (docs/security.md "No mail
relay").

Two things a visitor without an account can set off:

* the widget's email form (``offline_form``): a stored message, and possibly
  a notification to the organisation;
* an emailed transcript (``transcript_email``): a mail from the
  organisation's sender to any address typed. chat/attachments.py allows it
  only for a conversation in which staff took part; here it is counted.

Each is counted per client address an hour first (``*_per_client_hour``),
and only what a client address may send is then counted against the cap for
everybody together (``*_global_hour``). So a handful of addresses cannot fill
the global cap: it takes ``global / per_client`` addresses (300 / 6 = 50 for
the form, 100 / 3 = 34 for transcripts, by default). When a global cap is
reached, the first refusal writes one log line (no address, no personal
data) and ``/healthz`` says ``degraded`` while it lasts (:func:`capped`).

Counting is reserve-then-check (``n = hit(); if n > limit: refuse``): a
refused attempt counts too, so a client that keeps trying stays refused, and
racing requests cannot all slip under the limit. Keys are the throttle's
HMACs of the address, never stored or logged.
"""

from __future__ import annotations

import logging
import math

from jutella.accounts.errors import AccountError
from jutella.runtime import Runtime

log = logging.getLogger("jutella.mail")
HOUR = 3600
BROWSER = (5, 600)  # the form, per browser (the widget's random key): 5 in 10 minutes
OFFLINE, TRANSCRIPT = "offline_form", "transcript_email"


class MailLimited(AccountError):
    """429 with ``minutes`` (the web layer turns it into Retry-After)."""

    def __init__(self, code: str, message: str, minutes: int):
        super().__init__(code, message, 429, minutes=minutes)


def _global_limit(rt: Runtime, kind: str) -> int:
    s = rt.settings
    return s.offline_global_hour if kind == OFFLINE else s.transcript_email_global_hour


def _global_key(rt: Runtime, kind: str) -> str:
    return rt.throttle.key(f"{kind}-global-hour", "-")


async def _over(rt: Runtime, key: str, limit: int, window: float) -> int | None:
    """Reserve one for ``key``: None when within ``limit``, else the whole
    minutes until one frees."""
    if await rt.throttle.hit(key, window) <= limit:
        return None
    return max(1, math.ceil(await rt.throttle.retry_after(key, window) / 60))


async def _global(rt: Runtime, kind: str) -> int | None:
    limit = _global_limit(rt, kind)
    key = _global_key(rt, kind)
    n = await rt.throttle.hit(key, HOUR)
    if n <= limit:
        return None
    if n == limit + 1:  # the first refusal: the operator hears of it once
        log.warning("%s: the global cap of %d an hour is reached; new ones are refused until it frees "
                    "(/healthz says degraded meanwhile)", kind, limit)
    return max(1, math.ceil(await rt.throttle.retry_after(key, HOUR) / 60))


async def reserve_offline(rt: Runtime, *, client: str, browser: str | None) -> None:
    """One message through the email form, or MailLimited."""
    t = rt.throttle
    if browser:
        minutes = await _over(rt, t.key("offline-browser", browser), *BROWSER)
        if minutes:
            raise MailLimited("rate_limited", "Too many messages from this browser. Try again in {minutes} minutes.",
                              minutes)
    minutes = await _over(rt, t.key("offline-client-hour", client), rt.settings.offline_per_client_hour, HOUR)
    if minutes:
        raise MailLimited("rate_limited", "Too many messages from this network. Try again in {minutes} minutes.",
                          minutes)
    minutes = await _global(rt, OFFLINE)
    if minutes:
        raise MailLimited("busy", "We are receiving unusually many messages and cannot take yours just now. "
                                  "Try again in {minutes} minutes.", minutes)


async def reserve_transcript(rt: Runtime, *, client: str) -> None:
    """One transcript mail asked for by a visitor, or MailLimited."""
    minutes = await _over(rt, rt.throttle.key("transcript-client-hour", client),
                          rt.settings.transcript_email_per_client_hour, HOUR)
    if minutes:
        raise MailLimited("rate_limited", "Too many transcript emails from this network. Try again in {minutes} "
                                          "minutes, or save the transcript as a file.", minutes)
    minutes = await _global(rt, TRANSCRIPT)
    if minutes:
        raise MailLimited("busy", "Transcripts cannot be emailed just now. Save the transcript as a file, or try "
                                  "again in {minutes} minutes.", minutes)


async def capped(rt: Runtime) -> list[str]:
    """The kinds whose global cap has refused something within the last hour
    (for /healthz). Read only: counting nothing."""
    return [kind for kind in (OFFLINE, TRANSCRIPT)
            if await rt.throttle.count(_global_key(rt, kind), HOUR) > _global_limit(rt, kind)]
