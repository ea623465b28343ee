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

Each site may have a profile (the ``site_profile`` table): the widget's
colour, launcher, texts per language, the departments offered and a logo.
The default profile is used by the setting's origins and by sites without
their own; :func:`profiles` (cached like the origins) is what the widget
reads, :func:`site_of` the one rule for which site a page belongs to.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import hashlib
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from jutella.accounts import audit
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.store.models import Department, Site, SiteProfile

from . import attachments, filework, presence
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
    """Drop this process's cached set and profiles (after a change made here)."""
    rt.caches.pop(CACHE_KEY, None)
    rt.caches.pop(PROFILES_KEY, None)


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
    name = valid_name(name)
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


async def rename_site(rt: Runtime, *, actor_id: int, site_id: int, name: str | None) -> None:
    name = valid_name(name)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        site = await s.get(Site, site_id)
        if site is None:
            raise ChatError("not_found", "No such site.", 404)
        if site.name != name:
            site.name = name
            await audit.record(s, now, actor_id=actor_id, action="site.rename", target_type="site",
                               target_id=site_id, detail={"origin": site.origin})
    forget(rt)


def valid_name(name: str | None) -> str | None:
    name = (name or "").strip() or None
    if name is not None and (len(name) > MAX_NAME or any(ord(c) < 32 for c in name)):
        raise ChatError("name_invalid", "The name is too long (at most {limit} characters).", 400, limit=MAX_NAME)
    return name


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


# -- profiles (docs/sites.md "Profiles") --------------------------------------------------------
PROFILES_KEY = "site_profiles"
DEFAULT_KEY = "default"
TEXT_KINDS = ("launcher", "header", "greeting", "offline")
TEXT_LANGS = ("fi", "en", "sv")
TEXT_LIMITS = {"launcher": 40, "header": 60, "greeting": 300, "offline": 300}
POSITIONS = ("right", "left")
WHEN_CLOSED = ("form", "hide")  # outside the hours: the offline form (the built-in) or no launcher
HIDDEN_KEY = "site_hidden"
HIDDEN_SECONDS = 2.0
BUILTIN_COLOUR = "#1f5fbf"  # frame.css --accent, launcher.css
TEXT_CONTRAST = 4.5  # WCAG 2.x AA, 1.4.3: text on the colour (white or black, whichever passes)
PANEL_CONTRAST = 3.0  # WCAG 2.x AA, 1.4.11: the colour's buttons and bubbles against the white panel
LOGO_BYTES = 1024 * 1024
LOGO_SIDE = 256
_COLOUR = re.compile(r"^#?([0-9a-f]{6}|[0-9a-f]{3})$")


def profile_key(site_id: int | None) -> str:
    return DEFAULT_KEY if site_id is None else f"site:{site_id}"


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def normalise_colour(value: str | None) -> str | None:
    """``#rrggbb`` in lower case (``#rgb`` widened), or None for the default."""
    text = (value or "").strip().lower()
    if not text:
        return None
    m = _COLOUR.match(text)
    if m is None:
        raise ChatError("colour_invalid", "Enter the colour as #RRGGBB, like #0b6e4f.", 400)
    hexes = m.group(1)
    return "#" + (hexes if len(hexes) == 6 else "".join(c * 2 for c in hexes))


def text_colour(colour: str) -> str:
    """The text colour the widget puts on ``colour``: white if it meets
    :data:`TEXT_CONTRAST`, else black."""
    return "#ffffff" if contrast(colour, "#ffffff") >= TEXT_CONTRAST else "#000000"


def check_colour(colour: str) -> None:
    """The one rule for a profile's colour (WCAG AA): white or black text on
    it at 4.5:1 (the widget uses whichever passes), and the colour itself at
    3:1 against the chat's white panel, where it draws the visitor's bubbles
    and the buttons. (Some text colour always passes the first on its own;
    the second refuses the light colours.)"""
    on = text_colour(colour)
    text_ratio = contrast(colour, on)
    panel_ratio = contrast(colour, "#ffffff")
    if text_ratio < TEXT_CONTRAST or panel_ratio < PANEL_CONTRAST:
        raise ChatError("colour_contrast",
                        "The colour {colour} is too light: against the chat's white background its contrast is "
                        "{ratio}:1, and at least 3:1 is needed (WCAG AA); text on it needs 4.5:1. Choose a darker "
                        "shade.", 400, colour=colour, ratio=f"{int(panel_ratio * 100) / 100:.2f}")


def _shade(colour: str, factor: float) -> str:
    return "#" + "".join(f"{round(int(colour[i:i + 2], 16) * factor):02x}" for i in (1, 3, 5))


def _clean_texts(value: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if value is None:
        return out
    if not isinstance(value, dict):
        raise ChatError("texts_invalid", "The texts could not be read.", 400)
    for kind, per_lang in value.items():
        if kind not in TEXT_KINDS or not isinstance(per_lang, dict):
            raise ChatError("texts_invalid", "The texts could not be read.", 400)
        for lang, text in per_lang.items():
            if lang not in TEXT_LANGS or not isinstance(text, (str, type(None))):
                raise ChatError("texts_invalid", "The texts could not be read.", 400)
            text = " ".join((text or "").split()) if kind != "greeting" and kind != "offline" else (text or "").strip()
            if not text:
                continue
            if len(text) > TEXT_LIMITS[kind] or any(ord(c) < 32 and c != "\n" for c in text):
                raise ChatError("text_too_long", "A text is too long (at most {limit} characters).", 400,
                                limit=TEXT_LIMITS[kind])
            out.setdefault(kind, {})[lang] = text
    return out


@dataclass(frozen=True)
class Profiles:
    """What the widget reads, per process for :data:`CACHE_SECONDS`: the
    stored sites' ids by origin, and each profile resolved for the widget
    (``widget_profile``), by origin, with the default's under ``""``."""
    site_ids: dict[str, int]
    widget: dict[str, dict[str, Any]]


def _resolved(own: SiteProfile | None, default: SiteProfile | None) -> dict[str, Any]:
    """A profile as the widget applies it: each empty field taken from the
    default profile, and the default's from the built-in look (absent)."""
    rows = [r for r in (own, default) if r is not None]
    colour = next((r.colour for r in rows if r.colour), None)
    position = next((r.position for r in rows if r.position), None)
    when_closed = next((r.when_closed for r in rows if r.when_closed), None)
    texts: dict[str, dict[str, str]] = {}
    for kind in TEXT_KINDS:
        for lang in TEXT_LANGS:
            text = next(((r.texts or {}).get(kind, {}).get(lang) for r in rows
                         if (r.texts or {}).get(kind, {}).get(lang)), None)
            if text:
                texts.setdefault(kind, {})[lang] = text
    departments = next((list(r.departments) for r in rows if r.departments), [])
    logo = next((r for r in rows if r.logo_hash), None)
    out: dict[str, Any] = {}
    if colour:
        fg = text_colour(colour)
        out["colour"] = {"bg": colour, "fg": fg, "hover": _shade(colour, 0.85) if fg == "#ffffff" else colour,
                         # the colour as text on white only where it reads (4.5:1); else the built-in's
                         "text": colour if fg == "#ffffff" else BUILTIN_COLOUR}
    if position == "left":
        out["position"] = "left"
    if when_closed == "hide":
        out["when_closed"] = "hide"
    if texts:
        out["texts"] = texts
    if departments:
        out["departments"] = departments
    if logo is not None:
        out["logo"] = f"/widget/logo/{logo.key}?v={logo.logo_hash[:16]}"
    return out


async def _load_profiles(rt: Runtime) -> Profiles:
    async with rt.db.reader() as s:
        stored = list((await s.execute(select(Site.id, Site.origin))).all())
        rows = {r.key: r for r in (await s.execute(select(SiteProfile))).scalars()}
    default = rows.get(DEFAULT_KEY)
    widget = {"": _resolved(None, default)}
    for site_id, origin in stored:
        own = rows.get(profile_key(site_id))
        if own is not None:
            widget[origin] = _resolved(own, default)
    return Profiles({origin: site_id for site_id, origin in stored}, widget)


async def profiles(rt: Runtime) -> Profiles:
    """The stored sites and their profiles, at most :data:`CACHE_SECONDS` old
    (as :func:`allowed_origins`; a database outage keeps the last read)."""
    entry = rt.caches.get(PROFILES_KEY)
    now = time.monotonic()
    if entry is not None:
        at, value = entry
        if isinstance(value, Profiles) and now - at < CACHE_SECONDS:
            return value
        if isinstance(value, asyncio.Future):
            return await asyncio.shield(value)
    future: asyncio.Future[Profiles] = asyncio.get_running_loop().create_future()
    rt.caches[PROFILES_KEY] = (now, future)
    try:
        value = await _load_profiles(rt)
        rt.caches[PROFILES_KEY + "_last"] = (now, value)
    except Exception as exc:
        log.warning("site profiles not read (%s); using the last known ones", storage_fault(exc) or exc)
        last = rt.caches.get(PROFILES_KEY + "_last")
        value = last[1] if last is not None else Profiles({}, {"": {}})
    if rt.caches.get(PROFILES_KEY, (0, None))[1] is future:
        rt.caches[PROFILES_KEY] = (time.monotonic(), value)
    future.set_result(value)
    return value


def origin_of(url: str | None) -> str | None:
    """The origin of a stored page address (chat/metadata.py ``clean_url``'s shape)."""
    if not url:
        return None
    try:
        return normalise_origin(url.split("/", 3)[0] + "//" + url.split("/", 3)[2]) if url.count("/") >= 2 else None
    except (ChatError, IndexError):
        return None


async def site_of(rt: Runtime, page_url: str | None) -> int | None:
    """The one rule for which site a conversation or offline message came
    from: the stored site whose origin the page is on; None for the server's
    own pages and the setting's origins (the default profile)."""
    origin = origin_of(page_url)
    if origin is None:
        return None
    return (await profiles(rt)).site_ids.get(origin)


async def departments_offered(rt: Runtime, page_url: str | None) -> frozenset[int]:
    """The departments a page's widget offers (its site's profile, else the
    default's); empty: all. A visitor's choice outside them is refused as
    one the widget does not offer."""
    p = await profiles(rt)
    origin = origin_of(page_url)
    chosen = p.widget.get(origin) if origin in p.site_ids and origin in p.widget else p.widget.get("", {})
    return frozenset((chosen or {}).get("departments", ()))


async def hidden_now(rt: Runtime, p: Profiles) -> frozenset[str]:
    """The origins (``""``: the default profile's) whose profile hides the
    launcher when closed and whose queues are all closed now (presence.py
    ``closed_among``, the rule of the widget's ``closed``). Asked by every
    /widget.js, so kept for :data:`HIDDEN_SECONDS`; no query at all while
    no profile asks for it."""
    offers = {o: frozenset(w.get("departments", ())) for o, w in p.widget.items() if w.get("when_closed") == "hide"}
    if not offers:
        return frozenset()
    key = tuple(sorted((o, tuple(sorted(d))) for o, d in offers.items()))
    entry = rt.caches.get(HIDDEN_KEY)
    now, wall = time.monotonic(), rt.clock.now()  # the register's clock too: a test's fake clock jumps
    if (entry is not None and entry[2] == key and now - entry[0] < HIDDEN_SECONDS
            and abs((wall - entry[1]).total_seconds()) < HIDDEN_SECONDS):
        return entry[3]
    try:
        value = await presence.closed_among(rt, offers)
    except Exception as exc:  # the database is away: show the launcher (the frame says what it can)
        log.warning("opening hours not read for the loader (%s)", storage_fault(exc) or exc)
        value = frozenset()
    rt.caches[HIDDEN_KEY] = (now, wall, key, value)
    return value


# -- editing (admins, the console's Embed page) --------------------------------------------------
async def _site_or_404(s, site_id: int | None) -> Site | None:
    if site_id is None:
        return None
    site = await s.get(Site, site_id)
    if site is None:
        raise ChatError("not_found", "No such site.", 404)
    return site


async def _profile_row(s, site_id: int | None, now) -> SiteProfile:
    key = profile_key(site_id)
    row = await s.get(SiteProfile, key)
    if row is None:
        row = SiteProfile(key=key, site_id=site_id, colour=None, position=None, when_closed=None, texts={}, departments=[],
                          logo=None, logo_hash=None, updated_at=now)
        s.add(row)
    return row


def profile_out(row: SiteProfile | None) -> dict[str, Any]:
    """A profile's own fields, for the console (empty: falls back)."""
    if row is None:
        return {"colour": None, "text_colour": None, "position": None, "when_closed": None, "texts": {},
                "departments": [], "logo": None}
    return {"colour": row.colour, "text_colour": text_colour(row.colour) if row.colour else None,
            "position": row.position, "when_closed": row.when_closed, "texts": row.texts or {},
            "departments": list(row.departments or []),
            "logo": f"/widget/logo/{row.key}?v={row.logo_hash[:16]}" if row.logo_hash else None}


async def stored_profiles(rt: Runtime) -> dict[str, dict[str, Any]]:
    """Every stored profile's own fields by key (the console's Embed page)."""
    async with rt.db.reader() as s:
        return {r.key: profile_out(r) for r in (await s.execute(select(SiteProfile))).scalars()}


async def set_profile(rt: Runtime, *, actor_id: int, site_id: int | None, colour: str | None,
                      position: str | None, texts: Any, departments: list[int] | None,
                      when_closed: str | None = None) -> dict[str, Any]:
    """Change a site's profile (``site_id`` None: the default). A colour
    whose text would not read is refused (:func:`check_colour`)."""
    colour = normalise_colour(colour)
    if colour is not None:
        check_colour(colour)
    if position not in (None, "", *POSITIONS):
        raise ChatError("position_invalid", "Choose bottom right or bottom left.", 400)
    if when_closed not in (None, "", *WHEN_CLOSED):
        raise ChatError("when_closed_invalid", "Choose the offline form or no launcher.", 400)
    clean_texts = _clean_texts(texts)
    wanted = sorted({int(d) for d in departments or []})
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        site = await _site_or_404(s, site_id)
        if wanted:
            known = set((await s.execute(select(Department.id).where(Department.id.in_(wanted)))).scalars())
            if known != set(wanted):
                raise ChatError("department_unknown", "No such department.", 400)
        row = await _profile_row(s, site_id, now)
        before = profile_out(row)
        row.colour, row.position, row.when_closed = colour, position or None, when_closed or None
        row.texts, row.departments, row.updated_at = clean_texts, wanted, now
        after = profile_out(row)
        changed = sorted({"position": "launcher"}.get(k, k) for k in ("colour", "position", "when_closed",
                                                                         "texts", "departments")
                         if before[k] != after[k])
        if changed:
            await audit.record(s, now, actor_id=actor_id, action="site.profile", target_type="site",
                               target_id=site_id, detail={"origin": site.origin if site else None,
                                                          "fields": changed, "colour": colour})
    forget(rt)
    return after


async def set_logo(rt: Runtime, *, actor_id: int, site_id: int | None, data: bytes | None) -> dict[str, Any]:
    """Store a profile's logo (``data`` None: remove it). The picture is
    checked on the event loop (size, type, pixels from its header) and
    decoded, shrunk and encoded again as PNG in the upload pool's worker
    processes (chat/filework.py ``logo``; 503 when the pool is full)."""
    stored = None
    if data is not None:
        content_type = attachments.check(data, LOGO_BYTES)
        if content_type not in filework.IMAGE_FORMATS:
            raise ChatError("unsupported_type", "The logo must be a PNG, JPEG or WebP image.", 415)
        try:
            stored = await rt.cpu.uploads.run(filework.logo, data, content_type, attachments.MAX_PIXELS, LOGO_SIDE)
        except filework.Refused as exc:
            raise attachments.refusal(exc.code) from None
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        site = await _site_or_404(s, site_id)
        row = await _profile_row(s, site_id, now)
        row.logo = stored
        row.logo_hash = hashlib.sha256(stored).hexdigest() if stored is not None else None
        row.updated_at = now
        await audit.record(s, now, actor_id=actor_id, action="site.logo" if stored else "site.logo_remove",
                           target_type="site", target_id=site_id, detail={"origin": site.origin if site else None})
        out = profile_out(row)
    forget(rt)
    return out


async def logo(rt: Runtime, key: str) -> tuple[bytes, str] | None:
    """A profile's logo and its hash (public: the widget shows it)."""
    async with rt.db.reader() as s:
        row = (await s.execute(select(SiteProfile.logo, SiteProfile.logo_hash)
                               .where(SiteProfile.key == key))).first()
    if row is None or row[0] is None:
        return None
    return bytes(row[0]), row[1]
