"""The widget's HTTP side: the loader, the frame page, their sizes, headers and
caching, the demo page, and the widget's translations. (The browser side is
in test_widget_browser.py.)"""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from jutella.web import widget

ROOT = Path(__file__).resolve().parents[2] / "src" / "jutella"
STATIC = ROOT / "web" / "static" / "widget"
TEMPLATE = ROOT / "web" / "templates" / "widget_frame.html"
SITE = "https://www.example.org"
KIB = 1024


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"allowed_origins": [SITE]}


def wire_size(body: bytes) -> int:
    return len(gzip.compress(body))


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def frame_assets(html: str) -> list[str]:
    """The frame page's own CSS and JS (frame.js carries the modules it needs at once)."""
    return [a.get("href") or a.get("src") for t, a in tags(html)
            if (t == "link" and a.get("rel") in ("stylesheet", "modulepreload")) or (t == "script" and a.get("src"))]


def test_the_storage_probe_is_under_1_kib_strict_and_cookie_free(live):
    """What every first page view loads besides the loader (issue 17)."""
    version = widget.widget_version()
    with live.client() as client:
        page = client.get(f"/widget/probe?v={version}", headers={"Accept-Encoding": "gzip"})
        script = client.get(f"/static/widget/probe.js?v={version}", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == script.status_code == 200
    assert f'<script src="/static/widget/probe.js?v={version}"></script>' in page.text
    assert page.num_bytes_downloaded + script.num_bytes_downloaded <= KIB
    csp = page.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; script-src 'self';") and "frame-ancestors 'self'" in csp
    assert "x-frame-options" not in page.headers
    assert "set-cookie" not in page.headers and "set-cookie" not in script.headers
    # it reads, never writes, and answers only its parent
    assert "setItem" not in script.text and "removeItem" not in script.text and "cookie" not in script.text
    assert "parent.postMessage(" in script.text and "e.origin" in script.text


# -- the loader --------------------------------------------------------------------------------
def test_loader_is_small_cached_briefly_and_cookie_free(live):
    with live.client() as client:
        r = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert wire_size(r.content) <= 5 * KIB, wire_size(r.content)
        assert r.num_bytes_downloaded <= 5 * KIB  # what really went over the wire
        assert r.headers["content-encoding"] == "gzip"
        assert "set-cookie" not in r.headers
        assert r.headers["cross-origin-resource-policy"] == "cross-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in r.headers  # a script: the page running it has its own
        assert r.headers["cache-control"] == "public, max-age=300"
        etag = r.headers["etag"]
        again = client.get("/widget.js", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert "set-cookie" not in again.headers
        assert client.get("/widget.js", headers={"If-None-Match": '"other"'}).status_code == 200
        assert client.head("/widget.js").status_code == 200

    text = r.text
    assert "__JUTELLA_" not in text
    version = re.search(r'const VERSION = "([0-9a-f]{12})";', text).group(1)
    assert version == widget.widget_version()
    strings = json.loads(re.search(r"const STRINGS = (\{.*\});", text).group(1))
    assert strings["fi"]["Open chat"] == "Avaa chat"
    assert strings["sv"]["Open chat"] == "Öppna chatten"
    assert set(strings["fi"]) == set(widget.LOADER_MSGIDS)
    # The loader reads its own origin from its <script src>, stores nothing itself,
    # and builds no HTML from strings.
    assert "document.currentScript" in text
    for forbidden in ("localStorage", "sessionStorage", "document.cookie", "indexedDB", "WebSocket",
                      "innerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in text, forbidden


# -- the frame ---------------------------------------------------------------------------------
def test_frame_page_is_framable_only_by_allowed_sites_and_has_no_inline_code(live):
    with live.client() as client:
        r = client.get("/widget/frame")
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    csp = r.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {SITE}" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "x-frame-options" not in r.headers

    html = r.text
    assert "style=" not in html and "<style" not in html
    for tag, attrs in tags(html):
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
    config = json.loads(re.search(r'<script type="application/json" id="jutella-config">(.*?)</script>',
                                  html, re.S).group(1))
    assert config["origins"] == [live.rt.settings.public_origin, SITE]
    assert config["strings"]["fi"]["Send"] == "Lähetä"
    assert config["strings"]["sv"]["Send"] == "Skicka"
    # The hooks the browser tests (and the acceptance checks) use are in the page.
    for testid in ("chat-input", "chat-send", "typing", "privacy-link"):
        assert f'data-testid="{testid}"' in html
    assert 'role="log"' in html and 'aria-live="polite"' in html


def test_opened_widget_is_at_most_30_kib_on_the_wire(live):
    with live.client() as client:
        loader = client.get("/widget.js")
        frame = client.get("/widget/frame")
        assets = frame_assets(frame.text)
        version = re.search(r'const VERSION = "(\w+)"', loader.text).group(1)
        assets.append(f"/static/widget/probe.js?v={version}")  # the storage probe came first (docs/widget.md)
        probe = client.get(f"/widget/probe?v={version}")
        sizes = {"/widget.js": wire_size(loader.content), "/widget/frame": wire_size(frame.content),
                 "/widget/probe": wire_size(probe.content)}
        for url in assets:
            r = client.get(url)
            assert r.status_code == 200, url
            assert "set-cookie" not in r.headers
            assert r.headers.get("etag"), url  # StaticFiles revalidates with ETags
            # a script or a style sheet: what it obeys, not a document's policies (web/security.py)
            assert r.headers["x-content-type-options"] == "nosniff", url
            assert r.headers["cross-origin-resource-policy"] == "same-site", url
            assert "content-security-policy" not in r.headers and "permissions-policy" not in r.headers, url
            sizes[url.split("?")[0]] = wire_size(r.content)
    total = sum(sizes.values())
    print("gzipped sizes:", sizes, "total:", total)
    assert set(sizes) == {"/widget.js", "/widget/probe", "/static/widget/probe.js", "/widget/frame",
                          "/static/widget/frame.css", "/static/widget/frame.js"}
    assert total <= 30 * KIB, sizes


def test_frame_js_brings_the_modules_it_needs_at_once_in_one_response(live):
    """Opening the widget is one request for its scripts (issue 17: each
    response's headers count too): frame.js as served carries the modules of
    its own list, and the frame page names no others."""
    assert widget.frame_modules() == ("client", "store", "i18n", "chat", "linkify", "offline", "extras")
    with live.client() as client:
        html = client.get("/widget/frame").text
        r = client.get(f"/static/widget/frame.js?v={widget.widget_version()}")
        alone = client.get(f"/static/widget/chat.js?v={widget.widget_version()}")
    assert "modulepreload" not in html
    assert [a["src"] for t, a in tags(html) if t == "script" and a.get("src")] == [
        f"/static/widget/frame.js?v={widget.widget_version()}"]
    js = r.text
    assert "__JUTELLA_MODULES__" not in js
    for name in widget.frame_modules():
        assert f'"{name}": (() => {{' in js, name
    assert "class ChatView {" in js and "class Client {" in js and "function linkify(" in js
    assert "return { ChatView };" in js and "return { validEmail, OfflineView };" in js
    assert "\nexport " not in js and not js.startswith("export ")
    # the modules are still served one by one too (the later ones are imported so)
    assert alone.status_code == 200 and "\nexport class ChatView {" in alone.text


def test_a_module_frame_js_cannot_carry_is_refused_not_served_broken(tmp_path, monkeypatch):
    for name in ("frame.js", "store.js", "i18n.js", "chat.js", "linkify.js", "offline.js", "extras.js"):
        (tmp_path / name).write_text((STATIC / name).read_text())
    monkeypatch.setattr(widget, "WIDGET_DIR", tmp_path)
    frame = (tmp_path / "frame.js").read_text()
    (tmp_path / "client.js").write_text("export class Client {}\n")
    assert 'return { Client };' in widget._bundled(frame)
    for source in ('import { x } from "./x.js";\nexport class Client {}\n', "export default class {}\n",
                   "class Client {}\nexport { Client };\n"):
        (tmp_path / "client.js").write_text(source)
        with pytest.raises(RuntimeError, match="cannot be bundled"):
            widget._bundled(frame)
    with pytest.raises(RuntimeError, match="placeholder"):
        widget._bundled(frame.replace("{/*__JUTELLA_MODULES__*/}", "{}"))


def test_the_version_covers_every_widget_file(live):
    assert re.fullmatch(r"[0-9a-f]{12}", widget.widget_version())
    names = {name for name, _, _ in widget._fingerprint()}
    assert names >= {"loader.js", "frame.js", "client.js", "chat.js", "launcher.css", "frame.css"}
    with live.client() as client:
        html = client.get("/widget/frame").text
    assert f"/static/widget/frame.js?v={widget.widget_version()}" in html
    assert f"/static/widget/frame.css?v={widget.widget_version()}" in html


# -- the demo ------------------------------------------------------------------------------------
def test_demo_pages(live):
    with live.client() as client:
        one = client.get("/demo?lang=fi")
        two = client.get("/demo/2")
    assert one.status_code == 200 and two.status_code == 200
    assert '<html lang="fi">' in one.text
    assert '<script src="/widget.js" async></script>' in one.text
    assert 'href="/demo/2?lang=fi"' in one.text
    assert "page 2" in two.text
    assert f"{live.url}/widget.js" in one.text  # the embed snippet shows the public URL
    assert "set-cookie" not in one.headers


# -- the code itself -------------------------------------------------------------------------------
def test_widget_code_never_builds_html_from_strings():
    for path in STATIC.glob("*.js"):
        text = path.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                          "new Function", "setAttribute(\"style\"", ".style."):
            assert forbidden not in text, f"{path.name}: {forbidden}"
    for path in list(STATIC.glob("*.css")):
        assert "@import" not in path.read_text() and "url(http" not in path.read_text()


def test_nothing_is_fetched_from_another_origin():
    for path in [*STATIC.glob("*"), TEMPLATE]:
        text = path.read_text()
        # The only absolute URLs are in comments, examples and the SVG namespace.
        for url in re.findall(r"https?://[^\s\"'<>)]+", text):
            assert url.startswith(("https://chat.example.org", "https://example.org", "https://www.example.org",
                                   "http://www.w3.org/2000/svg")), (path.name, url)


# -- translations ------------------------------------------------------------------------------------
def used_msgids() -> set[str]:
    ids = set(re.findall(r'data-i18n(?:-label|-placeholder)?="([^"]+)"', TEMPLATE.read_text()))
    for path in STATIC.glob("*.js"):
        text = path.read_text()
        ids |= set(re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)*)"', text))
    frame = (STATIC / "frame.js").read_text()
    ids |= set(re.findall(r'^\s+\w+: "([^"]+)",$', frame.split("const ERRORS", 1)[1].split("};", 1)[0], re.M))
    ids.add("Something went wrong. Please try again.")
    chat = (STATIC / "chat.js").read_text()
    ids |= set(re.findall(r'\w+: "([^"]+)"', re.search(r"\{ sending: .*? \}", chat).group(0)))
    ids |= set(widget.LOADER_MSGIDS)
    return ids


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_every_widget_string_is_translated(lang):
    # the frame gets widget.po, attachments.po (which also holds console and server
    # strings), departments.po (the department picker; docs/departments.md) and
    # onboard.po (a transcript mail's true state; docs/mail.md)
    domains = {}
    for domain in ("widget", *widget.FRAME_DOMAINS):
        with (ROOT / "locale" / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as fh:
            domains[domain] = {m.id: m.string for m in read_po(fh, locale=lang) if m.id and not m.fuzzy}
    translated = {**domains["widget"], **domains["attachments"]}
    extra = {k: v for d in widget.FRAME_DOMAINS if d != "attachments" for k, v in domains[d].items()}
    used = used_msgids()
    assert len(used) > 30
    missing = sorted(used - {k for k, v in {**extra, **translated}.items() if v})
    assert missing == [], missing
    unused = sorted(set(domains["widget"]) - used)
    assert unused == [], unused
    for msgid, text in translated.items():
        assert re.findall(r"\{\w+\}", msgid) == re.findall(r"\{\w+\}", text), msgid
        assert text != msgid or msgid in ("Chat",), (msgid, text)  # "Chat" is Finnish too
