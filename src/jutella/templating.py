"""The HTML templates (``web/templates``) in one Jinja2 environment. The web
layer serves pages from it (as Starlette's ``Jinja2Templates``); the
subsystems render documents with it (a chat transcript, the access copy)
without importing the web layer. Autoescaping is on for ``.html``, so every
value stays text unless it is marked safe."""

from __future__ import annotations

from pathlib import Path

import re

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

TEMPLATE_DIR = Path(__file__).resolve().parent / "web" / "templates"


def json_data(value: object) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and
    ``&`` escaped so no string can close the element."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # JSON with <, > and & escaped; no string can end the element  # nosec B704


#: an http(s) URL in text: up to white space or a character that cannot be in one unescaped
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def linkify(text: object) -> Markup:
    """Text with its http(s) URLs as links, for HTML mails and transcripts:
    every piece is escaped first, the URL included, and only http(s) URLs
    become ``<a>`` (no other scheme, no markup from the text). Trailing
    punctuation stays outside the link; a closing parenthesis stays inside
    when the URL opened one."""
    source = str(text)
    out: list[str] = []
    last = 0
    for m in _URL.finditer(source):
        url = m.group(0)
        while url and url[-1] in _TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if len(url) <= len("https://") or "://" not in url:
            continue
        start, end = m.start(), m.start() + len(url)
        out.append(str(escape(source[last:start])))
        safe = str(escape(url))
        out.append(f'<a href="{safe}" rel="noopener noreferrer">{safe}</a>')
        last = end
    out.append(str(escape(source[last:])))
    return Markup("".join(out))  # every piece escaped above  # nosec B704


# the options Starlette's Jinja2Templates(directory=...) uses
ENV = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape())
ENV.filters["json_data"] = json_data
ENV.filters["linkify"] = linkify


def render(name: str, **context: object) -> str:
    return ENV.get_template(name).render(**context)
