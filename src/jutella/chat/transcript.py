"""Transcripts: a conversation as the visitor saw it (internal notes never
appear: the events come from ``events_since(..., for_visitor=True)``), as a
printable HTML page and as an email (text and HTML). Jinja2 autoescapes every
value, so visitor text stays text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from jutella.i18n import LANGUAGES, gettext, local_minutes
from jutella.runtime import Runtime
from jutella.settings import Settings
from jutella.store.models import Conversation
from jutella.templating import render

from .system_text import system_text

# What a transcript says around the conversation, in English (the msgids of transcript.po).
TEXTS = {
    "title": "Chat transcript", "started": "Started", "you": "You", "agent": "Customer service",
    "attachment": "Attachment", "print": "Print", "subject": "Your chat transcript",
    "intro": "Here is the transcript of the chat you asked for.",
    "times": "Times are in the time zone {zone}.",
}


def labels(lang: str) -> dict[str, str]:
    """TEXTS in ``lang`` (``{zone}`` left for :func:`times_note`)."""
    return {key: gettext(lang, text) for key, text in TEXTS.items()}


CSS = Path(__file__).resolve().parent.parent / "web" / "static" / "transcript.css"


def lines(events: list[dict[str, Any]], lang: str, settings: Settings) -> list[dict[str, str]]:
    """One line per shown event: time (in the register's time zone), who,
    text (system lines in the language)."""
    L = labels(lang)
    out = []
    for e in events:
        at = local_minutes(e["at"], settings)
        data = e.get("data") or {}
        if e["kind"] == "attachment":
            info = data.get("attachment") or {}
            who = L["you"] if e["author"] == "visitor" else (e.get("author_name") or L["agent"])
            out.append({"at": at, "who": who, "text": f"[{L['attachment']}: {info.get('name', '')}]",
                        "author": e["author"]})
        elif e["kind"] == "message":
            who = L["you"] if e["author"] == "visitor" else (e.get("author_name") or L["agent"])
            out.append({"at": at, "who": who, "text": e.get("body") or "", "author": e["author"]})
        elif e["author"] == "system" and "key" in data:
            out.append({"at": at, "who": "", "text": system_text(data["key"], "visitor", lang, data.get("name")),
                        "author": "system"})
    return out


def render_page(rt: Runtime, conv: Conversation, events: list[dict[str, Any]], lang: str, *,
                inline_css: bool) -> str:
    """A self-contained page (``inline_css``: the visitor's saved copy, opened
    from disk) or one served under the console's CSP (stylesheet and print
    button from /static)."""
    lang = lang if lang in LANGUAGES else "en"
    css = Markup(CSS.read_text(encoding="utf-8")) if inline_css else None  # our own file  # nosec B704
    return render(
        "transcript.html", L=labels(lang), lang=lang, conv=conv, lines=lines(events, lang, rt.settings), css=css,
        org=rt.settings.notice.controller.name, started=local_minutes(conv.created_at, rt.settings),
        times=times_note(lang, rt.settings))


def times_note(lang: str, settings: Settings) -> str:
    """The transcript's note on its times: the register's time zone, named."""
    return gettext(lang, TEXTS["times"], zone=settings.time_zone)


def render_mail(rt: Runtime, conv: Conversation, events: list[dict[str, Any]], lang: str) -> tuple[str, str, str]:
    lang = lang if lang in LANGUAGES else "en"
    L = labels(lang)
    shown = lines(events, lang, rt.settings)
    started = local_minutes(conv.created_at, rt.settings)
    text = "\n".join([L["intro"], "", f"{L['title']} · {L['started']} {started}", ""]
                     + [f"{x['at'][11:]}  {x['who'] + ': ' if x['who'] else ''}{x['text']}" for x in shown]
                     + ["", times_note(lang, rt.settings), rt.settings.notice.controller.name])
    html = render_page(rt, conv, events, lang, inline_css=True)
    return f"{L['subject']} – {rt.settings.notice.controller.name}", text, html
