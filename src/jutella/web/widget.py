"""The widget: the loader a site embeds (/widget.js), the chat frame it opens
(/widget/frame), and the demo host page (/demo).

The loader is ``static/widget/loader.js`` with two things filled in here: the
version of the widget's static files (so the launcher's stylesheet URL changes
when they do) and the few translated strings the launcher needs. Everything
else about the language happens in the frame, which gets all of the widget's
catalogs in its JSON block: the host page tells the frame its language by
postMessage, never in a URL. How the pieces fit: ``docs/widget.md``.

None of these responses sets a cookie.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from jutella.i18n import LANGUAGES, catalog

from .auth import runtime
from .errors import request_language
from .pages import TEMPLATES

router = APIRouter(include_in_schema=False)

WIDGET_DIR = Path(__file__).parent / "static" / "widget"
LOADER = WIDGET_DIR / "loader.js"
LOADER_MSGIDS = ("Open chat", "Close chat", "Open chat ({n} new)", "Chat window")
VERSION_MARK = '"__JUTELLA_VERSION__"'
STRINGS_MARK = "{/*__JUTELLA_STRINGS__*/}"

# The loader must pick up a new version soon; ETag makes the re-check cheap.
LOADER_CACHE = "public, max-age=300"
FRAME_CACHE = "no-cache"


def _fingerprint() -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the widget's files: cheap to read on every
    request, and it changes whenever a file does (a deploy, an edit)."""
    out = []
    for path in sorted(WIDGET_DIR.rglob("*")):
        if path.is_file():
            st = path.stat()
            out.append((str(path.relative_to(WIDGET_DIR)), st.st_size, st.st_mtime_ns))
    return tuple(out)


@lru_cache(maxsize=8)
def _version(fingerprint: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _size, _mtime in fingerprint:
        digest.update(name.encode() + b"\0" + (WIDGET_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def widget_version() -> str:
    return _version(_fingerprint())


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


@lru_cache(maxsize=8)
def _loader(version: str) -> tuple[bytes, str]:
    strings = {lang: {k: v for k, v in catalog(lang, "widget").items() if k in LOADER_MSGIDS}
               for lang in LANGUAGES if lang != "en"}
    source = LOADER.read_text(encoding="utf-8")
    if VERSION_MARK not in source or STRINGS_MARK not in source:
        raise RuntimeError("loader.js lost its placeholders")
    text = source.replace(VERSION_MARK, orjson.dumps(version).decode())
    text = text.replace(STRINGS_MARK, _js_json(strings))
    body = text.encode()
    return body, _etag(body)


def _js_json(value: object) -> str:
    # Catalog text inside a script: keep it from ever closing a tag or a comment.
    return orjson.dumps(value).decode().replace("<", "\\u003c").replace("*/", "*\\u002f")


def _cached(request: Request, body: bytes, etag: str, media_type: str, cache: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=media_type)
    return Response(body, media_type=media_type, headers=headers)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
async def loader(request: Request) -> Response:
    body, etag = _loader(widget_version())
    return _cached(request, body, etag, "text/javascript; charset=utf-8", LOADER_CACHE)


@lru_cache(maxsize=None)
def widget_sources() -> str:
    """The widget's scripts and frame template, to tell which msgids it uses."""
    parts = [path.read_text(encoding="utf-8") for path in sorted(WIDGET_DIR.glob("*.js"))]
    parts.append((Path(__file__).parent / "templates" / "widget_frame.html").read_text(encoding="utf-8"))
    return "\n".join(parts)


@lru_cache(maxsize=None)
def frame_strings(lang: str) -> dict[str, str]:
    """The translations the frame carries: all of widget.po, and of the feature
    catalogs (attachments.po, departments.po, hours.po, which also hold console and
    server strings) only the msgids the widget's own sources mention. Every
    byte here is on the wire of every opened widget (budget: 30 KiB)."""
    sources = widget_sources()
    strings = dict(catalog(lang, "widget"))
    for domain in ("attachments", "departments", "hours"):
        strings.update({k: v for k, v in catalog(lang, domain).items()
                        if f'"{k}"' in sources or f"'{k}'" in sources or f"`{k}`" in sources
                        or f">{k}<" in sources})
    return strings


def frame_config(request: Request) -> dict[str, object]:
    settings = runtime(request).settings
    origins = [settings.public_origin, *[o for o in settings.allowed_origins if o != settings.public_origin]]
    return {
        "origins": origins,
        "strings": {lang: frame_strings(lang) for lang in LANGUAGES if lang != "en"},
        # how long a waiting chat may wait before the email form is offered
        "offline_wait_seconds": settings.offline_wait_seconds,
        # the email form's marketing consent box (unticked), only when the feature is on (docs/privacy.md)
        "marketing": _marketing(settings.notice.marketing),
    }


def _marketing(m) -> dict[str, object] | None:
    if not m.enabled:
        return None
    return {"version": m.consent_version, "text": {"fi": m.consent_fi, "en": m.consent_en, "sv": m.consent_sv}}


@router.api_route("/widget/frame", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def frame(request: Request) -> Response:
    version = widget_version()
    html = TEMPLATES.get_template("widget_frame.html").render(v=version, config=frame_config(request))
    body = html.encode()
    return _cached(request, body, _etag(body), "text/html; charset=utf-8", FRAME_CACHE)


@router.api_route("/demo", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/demo/{number:int}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def demo(request: Request, number: int = 1, lang: str | None = None) -> HTMLResponse:
    """A plain page with the widget embedded: two of them, so that the second
    one's referrer is the first (``/demo`` and ``/demo/2``)."""
    number = 2 if number == 2 else 1
    lang = lang if lang in LANGUAGES else request_language(request)
    settings = runtime(request).settings
    return TEMPLATES.TemplateResponse(request, "demo.html", {
        "lang": lang, "number": number, "public_url": settings.effective_public_url,
        "v": widget_version(), "languages": LANGUAGES,
    }, headers={"Cache-Control": "no-cache"})
