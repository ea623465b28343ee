"""Email texts: a plain-text part and a simple HTML part, in the visitor's
language. The HTML part is rendered by Jinja2 with autoescaping, so a
visitor's or agent's text is never markup; its http(s) URLs become links
(``linkify``, escaped first). The text part is left as it is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, select_autoescape

from jutella.i18n import gettext, local_time
from jutella.settings import Settings
from jutella.templating import linkify

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_env.filters["linkify"] = linkify  # http(s) URLs become links, after escaping (templating.py)


def quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def reply_mail(*, lang: str, org: str, agent_name: str, reply: str, original: str,
               original_at: datetime, settings: Settings) -> tuple[str, str, str]:
    """(subject, text, html) of an answer to an offline message; the time it
    quotes is in the register's time zone."""
    when = format_datetime(local_time(original_at, settings), "medium",
                           locale={"fi": "fi_FI", "sv": "sv_FI"}.get(lang, "en_GB"))
    subject = gettext(lang, "Re: your message to {org}", org=org)
    wrote = gettext(lang, "On {date} you wrote:", date=when)
    signature = f"{agent_name}\n{org}"
    text = f"{reply.strip()}\n\n-- \n{signature}\n\n{wrote}\n{quote(original.strip())}\n"
    html = _env.get_template("reply.html").render(
        lang=lang, subject=subject, reply=reply.strip(), agent_name=agent_name, org=org, wrote=wrote,
        original=original.strip())
    return subject, text, html


def notification_mail(*, lang: str, console_url: str, count: int = 1) -> tuple[str, str]:
    """(subject, text) telling staff a message is waiting. It carries no
    personal data: the message itself is read in the console."""
    subject = gettext(lang, "New message through the chat's email form")
    text = gettext(lang, "A visitor left a message through the chat's email form. Read and answer it in the "
                         "console: {url}", url=console_url) + "\n"
    return subject, text
