"""The HTML templates (``web/templates``) in one Jinja2 environment. The web
layer serves pages from it (as Starlette's ``Jinja2Templates``); the
subsystems render documents with it (a chat transcript, the access copy)
without importing the web layer. Autoescaping is on for ``.html``, so every
value stays text unless it is marked safe."""

from __future__ import annotations

from pathlib import Path

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATE_DIR = Path(__file__).resolve().parent / "web" / "templates"


def json_data(value: object) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and
    ``&`` escaped so no string can close the element."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # JSON with <, > and & escaped; no string can end the element  # nosec B704


# the options Starlette's Jinja2Templates(directory=...) uses
ENV = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape())
ENV.filters["json_data"] = json_data


def render(name: str, **context: object) -> str:
    return ENV.get_template(name).render(**context)
