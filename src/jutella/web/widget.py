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
import re
from functools import lru_cache
from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from jutella.chat import sites
from jutella.i18n import CONTEXT_SEP, LANGUAGES, catalog

from .auth import runtime
from .errors import request_language
from .pages import TEMPLATES

router = APIRouter(include_in_schema=False)

WIDGET_DIR = Path(__file__).parent / "static" / "widget"
LOADER = WIDGET_DIR / "loader.js"
LAUNCHER_CSS = WIDGET_DIR / "launcher.css"
LOADER_MSGIDS = ("Open chat", "Close chat", "Open chat ({n} new)", "Chat window")
VERSION_MARK = '"__JUTELLA_VERSION__"'
STRINGS_MARK = "{/*__JUTELLA_STRINGS__*/}"
CSS_MARK = '"__JUTELLA_CSS__"'
SITES_MARK = "{/*__JUTELLA_SITES__*/}"

FRAME_ENTRY = "frame.js"
MODULES_MARK = "{/*__JUTELLA_MODULES__*/}"
# frame.js's own list of the modules it needs at once: `[...].map(load)`
FRAME_IMPORTS = re.compile(r'\[((?:"\w+",? ?)+)\]\.map\(load\)')
EXPORT = re.compile(r"^export (?=(?:async function\*?|function\*?|class|const|let) +([A-Za-z_$][\w$]*))", re.M)

# The loader must pick up a new version soon; ETag makes the re-check cheap.
LOADER_CACHE = "public, max-age=300"
FRAME_CACHE = "no-cache"
# The probe's address carries the version (?v=), so a browser may keep it.
PROBE_CACHE = "public, max-age=86400"


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


def launchers(profiles: sites.Profiles, hidden: frozenset[str] = frozenset()) -> str:
    """The launcher's look per site, for the loader: only what differs from
    the built-in, a few bytes a site (``origin: [bg, fg, "l" | "", {lang:
    label}, 1 if hidden now]``; the default profile's under ""). ``hidden``:
    the origins whose profile hides the launcher while closed and that are
    closed now (chat/sites.py ``hidden_now``). The frame gets the rest."""
    plain: list[object] = ["", "", "", {}]
    rows: dict[str, list[object]] = {}
    for origin, p in profiles.widget.items():
        colour = p.get("colour")
        labels = p.get("texts", {}).get("launcher", {})
        row: list[object] = [colour["bg"], colour["fg"]] if colour else ["", ""]
        row += [p.get("position") == "left" and "l" or "", labels]
        if origin in hidden:
            row.append(1)
        rows[origin] = row
    default = rows.get("", plain)
    out = {"": default} if default != plain else {}
    # a site's row only where it differs from the default's (which the loader falls back to)
    out.update({o: r for o, r in rows.items() if o and r != default})
    return _js_json(out)


@lru_cache(maxsize=8)
def _loader(version: str, launch: str = "{}") -> tuple[bytes, str]:
    strings = {lang: {k: v for k, v in catalog(lang, "widget").items() if k in LOADER_MSGIDS}
               for lang in LANGUAGES if lang != "en"}
    source = _without_comments(LOADER.read_text(encoding="utf-8"))
    if VERSION_MARK not in source or STRINGS_MARK not in source or CSS_MARK not in source or SITES_MARK not in source:
        raise RuntimeError("loader.js lost its placeholders")
    css = " ".join(re.sub(r"/\*.*?\*/", "", LAUNCHER_CSS.read_text(encoding="utf-8"), flags=re.S).split())
    text = source.replace(VERSION_MARK, orjson.dumps(version).decode())
    text = text.replace(STRINGS_MARK, _js_json(strings)).replace(CSS_MARK, _js_json(css))
    text = text.replace(SITES_MARK, launch)
    body = text.encode()
    return body, _etag(body)


def _without_comments(source: str) -> str:
    """The loader is on the wire of every page view of every site (budget:
    5 KiB, docs/widget.md), and the frame's modules on every opened widget (30
    KiB): an opening comment block, whole-line ``//`` comments and indentation
    stay in the source file. Nothing inside a line
    is touched, so strings and regular expressions are safe."""
    if source.startswith("/*"):
        source = source[source.index("*/") + 2:]
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


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


ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _css_without_comments(source: str) -> str:
    lines = (line.strip() for line in re.sub(r"/\*.*?\*/", "", source, flags=re.S).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


@lru_cache(maxsize=64)
def _asset(name: str, version: str) -> tuple[bytes, str]:
    """A widget script or style sheet as it goes on the wire: the source files
    keep their comments for the next engineer, the visitor does not download
    them (about a fifth of the opened widget's bytes; budget 30 KiB). frame.js
    carries the modules it needs at once (frame_modules)."""
    path = WIDGET_DIR / name
    text = path.read_text(encoding="utf-8")
    if name == FRAME_ENTRY:
        text = _bundled(text)
    body = (_without_comments(text) if path.suffix == ".js" else _css_without_comments(text)).encode()
    return body, _etag(body)


def frame_modules(frame_source: str | None = None) -> tuple[str, ...]:
    """The modules frame.js imports at once, by its own list (one list, in
    frame.js: ``[...].map(load)``)."""
    source = (WIDGET_DIR / FRAME_ENTRY).read_text(encoding="utf-8") if frame_source is None else frame_source
    found = FRAME_IMPORTS.search(source)
    if not found:
        raise RuntimeError("frame.js lost its list of modules")
    return tuple(re.findall(r'"(\w+)"', found.group(1)))


def _bundled(frame_source: str) -> str:
    """frame.js with the modules it needs at once filled in at its BUNDLED
    object: one response instead of eight on every opened widget (each of
    them about 300 bytes of headers, and one gzip stream compresses better
    than seven; docs/performance.md). No build step and no parser: these
    modules import nothing and export only named top-level declarations
    (``export function|class|const|let NAME``); each becomes a function
    scope that returns its exports, so their names never meet. Anything else
    (an import, another form of export) is refused here, loudly, rather than
    served broken."""
    if MODULES_MARK not in frame_source:
        raise RuntimeError("frame.js lost its BUNDLED placeholder")
    parts = []
    for name in frame_modules(frame_source):
        source = _without_comments((WIDGET_DIR / f"{name}.js").read_text(encoding="utf-8"))
        exports = EXPORT.findall(source)
        body = EXPORT.sub("", source)
        if re.search(r"^(?:export\b|import[\s{*\"'])", body, re.M) or not exports:
            raise RuntimeError(f"{name}.js cannot be bundled into frame.js (imports, or exports other than "
                               "named declarations)")
        parts.append(f'"{name}": (() => {{\n{body}return {{ {", ".join(exports)} }};\n}})(),\n')
    return frame_source.replace(MODULES_MARK, "{\n" + "".join(parts) + "}")


@router.api_route("/static/widget/{name}", methods=["GET", "HEAD"])
async def asset(request: Request, name: str) -> Response:
    """The widget's own files (ahead of the /static mount, which serves the
    rest). ``name`` is one path segment: nothing outside the widget folder."""
    path = WIDGET_DIR / name
    if path.parent != WIDGET_DIR or not path.is_file():
        return Response(status_code=404)
    if path.suffix not in ASSET_TYPES:
        return FileResponse(path)
    body, etag = _asset(name, widget_version())
    return _cached(request, body, etag, ASSET_TYPES[path.suffix], FRAME_CACHE)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
async def loader(request: Request) -> Response:
    rt = runtime(request)
    p = await sites.profiles(rt)
    body, etag = _loader(widget_version(), launchers(p, await sites.hidden_now(rt, p)))
    return _cached(request, body, etag, "text/javascript; charset=utf-8", LOADER_CACHE)


@router.api_route("/widget/logo/{key}", methods=["GET", "HEAD"])
async def logo(request: Request, key: str) -> Response:
    """A site profile's logo (chat/sites.py; re-encoded PNG). Its address
    carries the picture's hash (?v=), so a browser may keep it."""
    found = await sites.logo(runtime(request), key[:24])
    if found is None:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    data, digest = found
    return _cached(request, data, f'"{digest[:20]}"', "image/png", PROBE_CACHE)


@lru_cache(maxsize=None)
def widget_sources() -> str:
    """The widget's scripts and frame template, to tell which msgids it uses."""
    parts = [path.read_text(encoding="utf-8") for path in sorted(WIDGET_DIR.glob("*.js"))]
    parts.append((Path(__file__).parent / "templates" / "widget_frame.html").read_text(encoding="utf-8"))
    return "\n".join(parts)


# The feature catalogues the frame takes its strings from, besides widget.po (the one list:
# tests/integration/test_widget.py reads it too).
FRAME_DOMAINS = ("attachments", "departments", "layout", "waiting", "onboard", "hours", "prechat")


@lru_cache(maxsize=None)
def frame_strings(lang: str) -> dict[str, str]:
    """The translations the frame carries: all of widget.po, and of the feature
    catalogs (FRAME_DOMAINS: attachments.po and departments.po also hold console and
    server strings) only the msgids the widget's own sources mention. Every
    byte here is on the wire of every opened widget (budget: 30 KiB)."""
    sources = widget_sources()
    strings = dict(catalog(lang, "widget"))
    for domain in FRAME_DOMAINS:
        strings.update({k: v for k, v in catalog(lang, domain).items() if _mentioned(k, sources)})
    return strings


def _mentioned(key: str, sources: str) -> bool:
    msgid = key.rsplit(CONTEXT_SEP, 1)[-1]  # a msgctxt entry: the script names its msgid
    return f'"{msgid}"' in sources or f"'{msgid}'" in sources or f"`{msgid}`" in sources or f">{msgid}<" in sources


async def frame_config(request: Request) -> dict[str, object]:
    rt = runtime(request)
    settings = rt.settings
    # the pages the frame may talk to: the one rule of chat/sites.py (setting + sites added in the console)
    origins = sites.ordered(rt, await sites.allowed_origins(rt))
    return {
        "origins": origins,
        # each site's profile resolved (chat/sites.py), the default's under "": the frame applies its host's
        "sites": {o: p for o, p in (await sites.profiles(rt)).widget.items() if p},
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
    html = TEMPLATES.get_template("widget_frame.html").render(v=version, config=await frame_config(request))
    body = html.encode()
    return _cached(request, body, _etag(body), "text/html; charset=utf-8", FRAME_CACHE)


@lru_cache(maxsize=8)
def _probe(version: str) -> tuple[bytes, str]:
    body = (f'<!doctype html><meta charset="utf-8"><title>jutella</title>'
            f'<script src="/static/widget/probe.js?v={version}"></script>').encode()
    return body, _etag(body)


@router.api_route("/widget/probe", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def probe(request: Request) -> Response:
    """The storage probe the loader loads instead of the chat frame (under
    1 KiB with probe.js): does this browser have a chat going? Framable by
    the allowed sites only, like the frame (web/security.py)."""
    body, etag = _probe(widget_version())
    return _cached(request, body, etag, "text/html; charset=utf-8", PROBE_CACHE)


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
