"""Signed webhooks (docs/webhooks.md): the hooks admins manage, the durable
queue of deliveries and its sender.

- A hook is a URL, a secret jutella makes, the events it gets, and which
  personal fields (``name``, ``email``, ``text``) its payloads may carry.
  Without ticks a payload has ids, site, department and times only. A hook
  with ticks is a recipient in the privacy notice and the record of
  processing (:func:`recipients`).
- An event becomes one ``webhook_delivery`` row per subscribed hook in the
  transaction of the change it tells of (:func:`core_emit`, called by the
  chat's actions on their own connection), so it commits with the change or
  not at all; nothing is lost in a crash. The body is fixed at that moment;
  every attempt sends the same bytes with the same ``X-Jutella-Delivery``.
- :class:`WebhookWorker` (started next to the mail outbox) claims due rows
  like the outbox does, signs (``X-Jutella-Signature: sha256=HMAC(secret,
  timestamp + "." + body)``) and POSTs them; a 2xx delivers, anything else
  is retried with exponential back-off (10 s doubling to an hour) until 24 h
  after the event, then the row is ``failed``. A crash mid-request leaves
  the claim to go stale and the row is sent again: at least once, the
  receiver dedupes by the delivery id.
- Server-side request forgery: :func:`check_url` resolves the host and
  refuses non-public addresses and plain http unless
  ``JUTELLA_WEBHOOK_ALLOW_PRIVATE``; asked when a hook is saved and before
  every attempt, and the request then goes to the very address that was
  checked (so a DNS answer that changes in between cannot move it). No
  redirects, no proxies from the environment, a timeout, and no more of the
  answer kept than a short snippet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jutella import outbound
from jutella.accounts import audit
from jutella.accounts.errors import AccountError
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.store.models import Department, WebHook, WebhookDelivery

log = logging.getLogger("jutella.webhooks")

EVENTS = ("conversation.created", "conversation.closed", "offline_message.created", "rating.created")
PERSONAL_FIELDS = ("name", "email", "text")
STATES = ("queued", "delivered", "failed")
RETRY_FOR = timedelta(hours=24)
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 3600
CLAIM_STALE = timedelta(minutes=5)
POLL_SECONDS = 1.0
KEEP_LOG = timedelta(days=30)  # delivered and failed rows, then pruned
SNIPPET = 120  # characters of a receiver's answer kept in last_error
MAX_HOOKS = 50

HOOK = WebHook.__table__
DELIVERY = WebhookDelivery.__table__
DEPARTMENT = Department.__table__


# -- signing -----------------------------------------------------------------------
def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=HEX``: HMAC-SHA256 with the hook's secret of the timestamp, a ``.``, and the raw body."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# -- the URL rule ----------------------------------------------------------------------
class Refused(Exception):
    """The URL may not be called (scheme, address); its message is for admins."""


def address_allowed(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    """Public unicast only, unless private ones are allowed: not private,
    loopback, link-local, multicast, reserved, unspecified or shared
    (100.64/10); an IPv4-mapped IPv6 address counts as its IPv4 address."""
    if allow_private:
        return True
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not (addr.is_multicast or addr.is_reserved or addr.is_loopback or addr.is_link_local
                                   or addr.is_private or addr.is_unspecified)


def parse_url(url: str, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable hook URL, or :class:`Refused`."""
    text = (url or "").strip()
    if not text or len(text) > 2000 or any(c.isspace() or ord(c) < 32 for c in text):
        raise Refused("Enter the receiver's address, like https://example.org/hooks/jutella.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise Refused("Enter the receiver's address, like https://example.org/hooks/jutella.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise Refused("Enter the receiver's address, like https://example.org/hooks/jutella.")
    if parts.username is not None or parts.password is not None:
        raise Refused("A user name or password in the address is not allowed; the signature authenticates.")
    if scheme == "http" and not allow_private:
        raise Refused("Use an https address: plain http is allowed only when JUTELLA_WEBHOOK_ALLOW_PRIVATE is on.")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused("The receiver's host name does not resolve.") from None
    out = []
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise Refused("The receiver's host name does not resolve.")
    return out


async def check_url(url: str, allow_private: bool) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """THE rule for where a hook may point, asked when saving and before each
    attempt: (the URL, the address to connect to). Every address the host
    resolves to must be allowed (an attacker's name with one public and one
    private address is refused)."""
    _, host, port = parse_url(url, allow_private)
    addresses = await resolve(host, port)
    for addr in addresses:
        if not address_allowed(addr, allow_private):
            raise Refused("The receiver's address is private, loopback, link-local, multicast or reserved; "
                          "jutella does not call such addresses unless JUTELLA_WEBHOOK_ALLOW_PRIVATE is on.")
    return url.strip(), addresses[0]


# -- hooks: the admin's actions ----------------------------------------------------------
@dataclass
class HookIn:
    name: str
    url: str
    events: list[str]
    personal: list[str]
    enabled: bool = True


def _hook_error(code: str, message: str, field: str | None = None) -> AccountError:
    err = AccountError(code, message, 400)
    if field:
        err.field = field  # type: ignore[attr-defined]
    return err


async def _validated(rt: Runtime, data: HookIn) -> HookIn:
    name = " ".join((data.name or "").split())
    if not name or len(name) > 100:
        raise _hook_error("name_invalid", "Give the hook a name (at most 100 characters).", "name")
    events = sorted(set(data.events or ()))
    if not events or any(e not in EVENTS for e in events):
        raise _hook_error("events_invalid", "Choose at least one event.", "events")
    personal = [f for f in PERSONAL_FIELDS if f in set(data.personal or ())]
    if set(data.personal or ()) - set(PERSONAL_FIELDS):
        raise _hook_error("personal_invalid", "Unknown personal field.", "personal")
    try:
        url, _ = await check_url(data.url, rt.settings.webhook_allow_private)
    except Refused as exc:
        raise _hook_error("url_refused", str(exc), "url") from None
    return HookIn(name=name, url=url, events=events, personal=personal, enabled=bool(data.enabled))


def hook_out(h: WebHook, *, with_secret: bool = False) -> dict[str, Any]:
    out = {"id": h.id, "name": h.name, "url": h.url, "events": list(h.events), "personal": list(h.personal),
           "enabled": h.enabled, "created_at": h.created_at.isoformat(), "updated_at": h.updated_at.isoformat(),
           "secret_hint": "…" + h.secret[-4:]}
    if with_secret:  # only in the answer that made it (a new hook, a new secret)
        out["secret"] = h.secret
    return out


def _audit_detail(h: HookIn) -> dict[str, Any]:
    # no secret, no URL path or query (they may hold a receiver's own token): the host only
    return {"host": urlsplit(h.url).hostname, "events": h.events, "personal": h.personal, "enabled": h.enabled}


async def create_hook(rt: Runtime, *, actor_id: int, data: HookIn) -> dict[str, Any]:
    """A new hook with a new secret, answered once here (later lists show its last characters only)."""
    data = await _validated(rt, data)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        count = len((await s.execute(select(WebHook.id))).all())
        if count >= MAX_HOOKS:
            raise AccountError("too_many", "At most {count} hooks.", 409, count=MAX_HOOKS)
        h = WebHook(name=data.name, url=data.url, secret=new_secret(), events=data.events, personal=data.personal,
                    enabled=data.enabled, created_at=now, updated_at=now)
        s.add(h)
        await s.flush()
        await audit.record(s, now, actor_id=actor_id, action="webhook.create", target_type="webhook",
                           target_id=h.id, detail=_audit_detail(data))
    return hook_out(h, with_secret=True)


async def update_hook(rt: Runtime, *, actor_id: int, hook_id: int, data: HookIn,
                      new_secret_wanted: bool = False) -> dict[str, Any]:
    data = await _validated(rt, data)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        h = await s.get(WebHook, hook_id, with_for_update=True)
        if h is None:
            raise AccountError("not_found", "No such hook.", 404)
        h.name, h.url, h.events, h.personal, h.enabled, h.updated_at = (
            data.name, data.url, data.events, data.personal, data.enabled, now)
        if new_secret_wanted:
            h.secret = new_secret()
        await audit.record(s, now, actor_id=actor_id, action="webhook.update", target_type="webhook",
                           target_id=h.id, detail={**_audit_detail(data), "new_secret": new_secret_wanted})
    return hook_out(h, with_secret=new_secret_wanted)


async def delete_hook(rt: Runtime, *, actor_id: int, hook_id: int) -> None:
    """The hook goes, and with it its queue and log."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        h = await s.get(WebHook, hook_id, with_for_update=True)
        if h is None:
            raise AccountError("not_found", "No such hook.", 404)
        await s.execute(delete(WebhookDelivery).where(WebhookDelivery.hook_id == hook_id))
        await s.delete(h)
        await audit.record(s, now, actor_id=actor_id, action="webhook.delete", target_type="webhook",
                           target_id=hook_id)


async def list_hooks(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.db.reader() as s:
        hooks = (await s.execute(select(WebHook).order_by(WebHook.id))).scalars().all()
    return [hook_out(h) for h in hooks]


async def deliveries(rt: Runtime, *, hook_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log: state, attempts, the last answer, the next attempt; no body, no secret."""
    q = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(min(max(limit, 1), 500))
    if hook_id is not None:
        q = q.where(WebhookDelivery.hook_id == hook_id)
    async with rt.db.reader() as s:
        rows = (await s.execute(q)).scalars().all()
    return [{"id": d.id, "delivery_id": d.delivery_id, "hook_id": d.hook_id, "event": d.event, "state": d.state,
             "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
             "created_at": d.created_at.isoformat(),
             "next_attempt_at": d.next_attempt_at.isoformat() if d.state == "queued" else None,
             "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None} for d in rows]


async def redeliver(rt: Runtime, *, actor_id: int, delivery_row: int) -> None:
    """A person sends a delivery again (failed, or delivered and lost at the
    receiver): the same delivery id and body, 24 h of retries from now."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        d = await s.get(WebhookDelivery, delivery_row, with_for_update=True)
        if d is None:
            raise AccountError("not_found", "No such delivery.", 404)
        if d.state == "queued":
            raise AccountError("conflict", "This delivery is still being tried.", 409)
        d.state, d.attempts, d.next_attempt_at, d.expires_at = "queued", 0, now, now + RETRY_FOR
        d.claim_token = d.claimed_at = None
        await audit.record(s, now, actor_id=actor_id, action="webhook.redeliver", target_type="webhook_delivery",
                           target_id=d.id, detail={"hook": d.hook_id})
    if rt.webhooks is not None:
        rt.webhooks.kick()


async def recipients(rt: Runtime) -> list[dict[str, Any]]:
    """The hooks that carry personal fields, for the notice and the record of
    processing: their name, host and which fields."""
    async with rt.db.reader() as s:
        hooks = (await s.execute(select(WebHook).where(WebHook.enabled.is_(True)).order_by(WebHook.id))).scalars()
        return [{"name": h.name, "host": urlsplit(h.url).hostname or "", "personal": list(h.personal)}
                for h in hooks if h.personal]


# -- emitting: inside the change's own transaction ---------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def core_emit(conn: Connection, now: datetime, event: str, data: dict[str, Any], personal: dict[str, Any], *,
              conversation_id: int | None = None, offline_message_id: int | None = None,
              withhold_personal: bool = False) -> int:
    """Queue ``event`` for every enabled hook that takes it: one row each,
    on the caller's connection (its transaction). ``data``: what every hook
    gets (ids, site, department, times); ``personal``: name/email/text, of
    which each hook gets the ones it ticked, none when ``withhold_personal``
    (the person's processing is restricted). Returns how many rows."""
    hooks = conn.execute(select(HOOK.c.id, HOOK.c.events, HOOK.c.personal).where(HOOK.c.enabled.is_(True))).all()
    rows = []
    department_id = data.get("department_id")
    if department_id is not None and "department" not in data and any(event in (h.events or ()) for h in hooks):
        data = {**data, "department": conn.execute(select(DEPARTMENT.c.name).where(
            DEPARTMENT.c.id == department_id)).scalar_one_or_none()}
    for h in hooks:
        if event not in (h.events or ()):
            continue
        delivery_id = str(uuid.uuid4())
        fields = {} if withhold_personal else {k: personal[k] for k in (h.personal or ()) if k in personal}
        body = json.dumps({"id": delivery_id, "event": event, "occurred_at": now.isoformat(),
                           "data": {**data, **fields}}, ensure_ascii=False, separators=(",", ":"), default=str)
        rows.append(dict(delivery_id=delivery_id, hook_id=h.id, event=event, body=body, state="queued", attempts=0,
                         next_attempt_at=now, expires_at=now + RETRY_FOR, created_at=now,
                         conversation_id=conversation_id, offline_message_id=offline_message_id))
    if rows:
        conn.execute(insert(DELIVERY), rows)
    return len(rows)


async def emit(s: AsyncSession, now: datetime, event: str, data: dict[str, Any], personal: dict[str, Any],
               **kw: Any) -> int:
    """:func:`core_emit` inside an ORM transaction (the same connection)."""
    return await s.run_sync(lambda sync: core_emit(sync.connection(), now, event, data, personal, **kw))


def conversation_data(conv: Any) -> dict[str, Any]:
    """What every hook gets of a conversation: ids, site, department, times."""
    return {"conversation_id": conv.id, "site_id": getattr(conv, "site_id", None),
            "department_id": getattr(conv, "department_id", None), "state": conv.state,
            "created_at": _iso(conv.created_at), "accepted_at": _iso(getattr(conv, "accepted_at", None)),
            "closed_at": _iso(getattr(conv, "closed_at", None)), "closed_by": getattr(conv, "closed_by", None)}


def kick(rt: Runtime) -> None:
    """After the commit: wake this process's sender (the others poll)."""
    if rt.webhooks is not None:
        rt.webhooks.kick()


# -- delivering ---------------------------------------------------------------------------
def _pinned(url: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, str, str]:
    """(URL to the checked address, Host header, TLS server name)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{addr}]" if addr.version == 6 else str(addr)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


async def post(rt: Runtime, url: str, secret: str, event: str, delivery_id: str, body: str) -> tuple[int, str]:
    """One attempt: check the URL again, connect to the checked address, POST
    the signed body. (status, a short snippet of the answer); a refused
    address or a network error raises."""
    _, addr = await check_url(url, rt.settings.webhook_allow_private)
    target, host_header, server_name = _pinned(url, addr)
    raw = body.encode()
    timestamp = str(int(rt.clock.now().timestamp()))
    headers = {"Host": host_header, "Content-Type": "application/json", "User-Agent": "jutella-webhooks",
               "X-Jutella-Event": event, "X-Jutella-Delivery": delivery_id, "X-Jutella-Timestamp": timestamp,
               "X-Jutella-Signature": signature(secret, timestamp, raw)}
    timeout = rt.settings.webhook_timeout_seconds
    async with await outbound.client(timeout) as client:
        async with asyncio.timeout(timeout):
            async with client.stream("POST", target, content=raw, headers=headers,
                                     extensions={"sni_hostname": server_name}) as response:
                snippet = b""
                async for chunk in response.aiter_bytes():
                    snippet += chunk
                    if len(snippet) >= SNIPPET:
                        break
    text = snippet[:SNIPPET].decode("utf-8", "replace")
    return response.status_code, " ".join(text.split())


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0)))


class WebhookWorker:
    """Sends due deliveries, one at a time, in this process; several
    processes share the queue through the claim (as the mail outbox does)."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._rounds = 0

    def kick(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                # once per cluster: only the housekeeper sends (store/leader.py, docs/housekeeping.md);
                # the claim on each row keeps a takeover mid-send from sending it twice at once
                if self.rt.is_housekeeper():
                    while self.rt.is_housekeeper() and await self.send_due():
                        pass
                    self._rounds += 1
                    if self._rounds % 3600 == 1:
                        await self.prune()
            except Exception as exc:
                if storage_fault(exc) is not None:
                    log.warning("webhook round skipped: %s", storage_fault(exc))
                else:
                    log.exception("webhook round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def prune(self) -> int:
        """Delivered and failed rows older than :data:`KEEP_LOG` leave the log."""
        cutoff = self.rt.clock.now() - KEEP_LOG
        async with self.rt.db.transaction() as s:
            return (await s.execute(delete(WebhookDelivery).where(
                WebhookDelivery.state.in_(("delivered", "failed")), WebhookDelivery.created_at < cutoff))).rowcount

    async def send_due(self) -> bool:
        """Claim and attempt one due delivery. False when there was none."""
        rt = self.rt
        now = rt.clock.now()
        free = (WebhookDelivery.claim_token.is_(None)) | (WebhookDelivery.claimed_at < now - CLAIM_STALE)
        async with rt.db.reader() as s:
            row_id = (await s.execute(select(WebhookDelivery.id).where(
                WebhookDelivery.state == "queued", WebhookDelivery.next_attempt_at <= now, free)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(1))).scalar_one_or_none()
        if row_id is None:
            return False
        token = secrets.token_hex(16)
        async with rt.db.transaction() as s:
            claimed = (await s.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == row_id, WebhookDelivery.state == "queued", free).values(
                claim_token=token, claimed_at=now, attempts=WebhookDelivery.attempts + 1))).rowcount
            row = await s.get(WebhookDelivery, row_id) if claimed else None
            hook = await s.get(WebHook, row.hook_id) if row is not None else None
        if row is None:
            return True  # another worker took it
        status: int | None = None
        error: str | None = None
        if hook is None or not hook.enabled:
            error = "the hook is turned off"
        else:
            try:
                status, snippet = await post(rt, hook.url, hook.secret, row.event, row.delivery_id, row.body)
                if not 200 <= status < 300:
                    error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "") + (
                        f": {snippet}" if snippet else "")
            except Refused as exc:
                error = str(exc)
            except (httpx.HTTPError, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
        done = rt.clock.now()
        if error is None:
            values: dict[str, Any] = dict(state="delivered", delivered_at=done, last_error=None)
        else:
            next_at = done + backoff(row.attempts)
            values = dict(state="queued", next_attempt_at=next_at) if next_at <= row.expires_at else \
                dict(state="failed", next_attempt_at=done)
            values["last_error"] = error[:300]
            log.warning("webhook delivery %s to hook %s not delivered (%s): %s", row.delivery_id, row.hook_id,
                        values["state"], error[:200])
        async with rt.db.transaction() as s:
            await s.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == row.id, WebhookDelivery.claim_token == token).values(
                claim_token=None, claimed_at=None, last_status=status, **values))
        return True
