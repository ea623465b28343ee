"""The sites that may embed the widget (docs/sites.md).

Two sources, merged by one function, :func:`allowed_origins`: the
``JUTELLA_ALLOWED_ORIGINS`` setting (read-only, as deployed) and the ``site``
rows an admin adds and removes in the console's Embed page. The server's own
origin is always allowed. Every origin check reads it: the widget's socket
(realtime/connection.py ``origin_allowed``), the widget frame's
``frame-ancestors`` (web/security.py) and the frame's list of pages it may talk
to (web/widget.py ``frame_config``).

The merged set is cached per process for :data:`CACHE_SECONDS`, and dropped at
once in the process that changed it; so every worker agrees within about a
second, with no message that could be lost. Reading it when the cache is cold
is one small query; concurrent readers share it.

A later issue adds per-site profiles to the ``site`` row.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from jutella.accounts import audit
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.store.models import Site

from .errors import ChatError

CACHE_SECONDS = 1.0
CACHE_KEY = "site_origins"
LAST_KEY = "site_origins_last"
MAX_NAME = 100
log = logging.getLogger("jutella.sites")
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)$")


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, http or https, nothing else (no
    path, query, fragment or user); the default port is dropped."""
    text = (value or "").strip()
    bad = ChatError("origin_invalid", "Enter a site address like https://www.example.org (scheme, host and "
                                      "an optional port; no path).", 400)
    if not text or len(text) > 300 or any(c.isspace() for c in text):
        raise bad
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise bad from None
    host = (parts.hostname or "").lower()
    if (parts.scheme.lower() not in ("http", "https") or not host or parts.username is not None
            or parts.password is not None or parts.path not in ("", "/") or parts.query or parts.fragment
            or "#" in text or "?" in text):
        raise bad
    if ":" in host:
        host = f"[{host}]"
    try:
        host = host if host.startswith("[") else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise bad from None
    if not _HOST.match(host):
        raise bad
    scheme = parts.scheme.lower()
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class SiteEntry:
    origin: str
    name: str | None
    id: int | None  # None: from JUTELLA_ALLOWED_ORIGINS (read-only)


async def _stored(rt: Runtime) -> list[Site]:
    async with rt.db.reader() as s:
        return list((await s.execute(select(Site).order_by(Site.origin))).scalars())


async def _load(rt: Runtime) -> frozenset[str]:
    rows = await _stored(rt)
    return frozenset({rt.settings.public_origin, *rt.settings.allowed_origins, *(r.origin for r in rows)})


async def allowed_origins(rt: Runtime) -> frozenset[str]:
    """The one rule: the origins that may embed the widget (the server's own,
    the setting's, the stored sites'), at most :data:`CACHE_SECONDS` old."""
    entry = rt.caches.get(CACHE_KEY)
    now = time.monotonic()
    if entry is not None:
        at, value = entry
        if isinstance(value, frozenset) and now - at < CACHE_SECONDS:
            return value
        if isinstance(value, asyncio.Future):  # another reader is loading it: share the one query
            return await asyncio.shield(value)
    future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
    last = rt.caches.get(LAST_KEY)
    rt.caches[CACHE_KEY] = (now, future)
    try:
        origins = await _load(rt)
        rt.caches[LAST_KEY] = (now, origins)
    except Exception as exc:  # the database is away: the last set read (or the setting's), asked again in a second
        log.warning("allowed sites not read (%s); using the last known ones", storage_fault(exc) or exc)
        origins = last[1] if last is not None and isinstance(last[1], frozenset) else frozenset(
            {rt.settings.public_origin, *rt.settings.allowed_origins})
    if rt.caches.get(CACHE_KEY, (0, None))[1] is future:
        rt.caches[CACHE_KEY] = (time.monotonic(), origins)
    future.set_result(origins)
    return origins


def forget(rt: Runtime) -> None:
    """Drop this process's cached set (after a change made here)."""
    rt.caches.pop(CACHE_KEY, None)


def ordered(rt: Runtime, origins: frozenset[str]) -> list[str]:
    """The server's own origin first, then the rest sorted (a stable order for
    the frame's config and its ETag)."""
    own = rt.settings.public_origin
    return [own, *sorted(o for o in origins if o != own)]


async def list_sites(rt: Runtime) -> list[SiteEntry]:
    """The setting's origins (read-only) and the stored sites, for the Embed page."""
    stored = await _stored(rt)
    from_env = [SiteEntry(o, None, None) for o in rt.settings.allowed_origins
                if o not in {r.origin for r in stored}]
    return from_env + [SiteEntry(r.origin, r.name, r.id) for r in stored]


async def add_site(rt: Runtime, *, actor_id: int, origin: str, name: str | None = None) -> Site:
    origin = normalise_origin(origin)
    name = (name or "").strip() or None
    if name is not None and (len(name) > MAX_NAME or any(ord(c) < 32 for c in name)):
        raise ChatError("name_invalid", "The name is too long (at most {limit} characters).", 400, limit=MAX_NAME)
    if origin == rt.settings.public_origin or origin in rt.settings.allowed_origins:
        raise ChatError("site_exists", "This site is already allowed.", 409)
    now = rt.clock.now()
    try:
        async with rt.db.transaction() as s:
            if (await s.execute(select(Site.id).where(Site.origin == origin))).scalar_one_or_none() is not None:
                raise ChatError("site_exists", "This site is already allowed.", 409)
            site = Site(origin=origin, name=name, created_at=now)
            s.add(site)
            await s.flush()
            await audit.record(s, now, actor_id=actor_id, action="site.add", target_type="site", target_id=site.id,
                               detail={"origin": origin})
    except IntegrityError:  # added at the same moment by someone else
        raise ChatError("site_exists", "This site is already allowed.", 409) from None
    forget(rt)
    return site


async def remove_site(rt: Runtime, *, actor_id: int, site_id: int) -> None:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        site = await s.get(Site, site_id)
        if site is None:
            raise ChatError("not_found", "No such site.", 404)
        await s.execute(delete(Site).where(Site.id == site_id))
        await audit.record(s, now, actor_id=actor_id, action="site.remove", target_type="site", target_id=site_id,
                           detail={"origin": site.origin})
    forget(rt)


def snippet(rt: Runtime) -> str:
    """The tag a site pastes into its pages (docs/widget.md)."""
    return f'<script src="{rt.settings.effective_public_url}/widget.js" async></script>'
