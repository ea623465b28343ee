"""Translations with Babel: English is the source language; Finnish and
Swedish come from ``locale/<lang>/LC_MESSAGES/messages.po``, read with Babel's
PO reader at start (no compile step). The same catalogs serve server-rendered
text, API error messages, mails and, as JSON, the console's and widget's scripts.
Below every subsystem, so mail, chat and the sockets translate without
importing the web layer.

Where one English word has two meanings ("To" a person, "To" a date) the
entry has a ``msgctxt`` and is looked up with :func:`pgettext`; in the merged
catalogue (and the JSON the scripts get) such an entry is keyed
``"context\x04msgid"``, as GNU gettext keys it. docs/i18n.md."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.messages.pofile import read_po

if TYPE_CHECKING:
    from jutella.settings import Settings

LANGUAGES = ("fi", "en", "sv")
DEFAULT = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CONTEXT_SEP = "\x04"  # between a msgctxt and its msgid in a catalogue key


def catalog_key(msgid: str, context: str | None = None) -> str:
    """The key of an entry in :func:`catalog`: the msgid, or ``context\x04msgid``."""
    return f"{context}{CONTEXT_SEP}{msgid}" if context else msgid


@lru_cache(maxsize=None)
def catalog(lang: str, domain: str | None = None) -> dict[str, str]:
    """msgid -> translation for ``lang``: one domain (``messages`` for the
    console and server, ``widget`` for the widget), or all of them merged.
    An entry with a msgctxt is keyed ``context\x04msgid`` (:func:`catalog_key`)."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    paths = [folder / f"{domain}.po"] if domain else sorted(folder.glob("*.po"))
    out: dict[str, str] = {}
    for path in paths:
        if not path.exists():
            continue
        with path.open("rb") as fh:
            po = read_po(fh, locale=lang)
        out.update({catalog_key(m.id, m.context): m.string for m in po
                    if m.id and m.string and not m.fuzzy and isinstance(m.id, str)})
    return out


def gettext(lang: str, message: str, **params: object) -> str:
    text = catalog(lang).get(message, message) if lang != DEFAULT else message
    return text.format(**params) if params else text


def pgettext(lang: str, context: str, message: str, **params: object) -> str:
    """``message`` in the sense ``context`` names (a msgctxt in the .po files)."""
    text = catalog(lang).get(catalog_key(message, context), message) if lang != DEFAULT else message
    return text.format(**params) if params else text


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    if preferred in LANGUAGES:
        return preferred  # type: ignore[return-value]
    wanted: list[str] = []
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            wanted.append(tag)
    found = negotiate_locale(wanted, list(LANGUAGES), sep="_") if wanted else None
    if found is None:
        for tag in wanted:  # fi_FI, sv_FI and the like
            base = tag.split("_")[0].lower()
            if base in LANGUAGES:
                return base
        return DEFAULT
    return found.split("_")[0]


def language_name(lang: str) -> str:
    return Locale.parse(lang).get_display_name(lang).capitalize()


# -- times in the register's time zone ----------------------------------------------------------
@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(dt: datetime | str, settings: Settings) -> datetime:
    """``dt`` (a datetime or an ISO 8601 string, stored in UTC; naive means
    UTC) in the register's time zone, ``JUTELLA_TIME_ZONE`` (default
    Europe/Helsinki). The one place every time people read (transcripts,
    mails, the access copy) is turned local; the console's scripts show
    times in the browser's own zone."""
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(_zone(settings.time_zone))


def local_minutes(dt: datetime | str, settings: Settings) -> str:
    """``2026-12-07 14:00``: :func:`local_time` to the minute, as documents show it."""
    return local_time(dt, settings).strftime("%Y-%m-%d %H:%M")
