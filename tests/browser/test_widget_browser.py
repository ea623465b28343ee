"""The widget in Chromium: the loader on a host page of another origin, the
chat frame, consent first, languages, keyboard, phones, accessibility, and the
protocol client against a scripted /ws/visitor (Playwright's WebSocket
routing), plus, when the real endpoint exists, a visitor-to-agent round trip.

Host pages come from another origin (see HostSite), one in
JUTELLA_ALLOWED_ORIGINS and one not.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import put_on_duty
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")


class HostSite:
    """Host pages on another origin: a small HTTP server on 127.0.0.1:PORT.

    ``origin`` (http://127.0.0.1:PORT) is another origin than jutella's but the
    same site, like www.example.org embedding chat.example.org.
    ``cross_site_origin`` (http://localhost:PORT) is another site: there the
    frame is a third party, and this Chromium blocks third-party storage.
    A real server, not request interception: Chromium's local network rules
    refuse a public page's requests to a loopback server."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                html = site.pages.get(self.path.split("?")[0].split("#")[0])
                body = (html or "not here").encode()
                self.send_response(200 if html is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.cross_site_origin = f"http://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(autouse=True)
def _template_before_browser(sqlite_template):
    """The SQLite template is migrated with asyncio.run(), which cannot run once
    the (session-wide) Playwright browser owns the main thread's event loop:
    ask for it first."""


@pytest.fixture
def settings_overrides(host) -> dict[str, Any]:
    return {"allowed_origins": [host.origin, host.cross_site_origin]}


@pytest.fixture(autouse=True)
def _someone_on_duty(request):
    """An agent counts as online on the real server, so the widget offers the
    chat: with nobody on duty it shows the email form instead of the message
    field (tests/browser/test_offline_browser.py covers that)."""
    if "live" not in request.fixturenames:
        return
    live = request.getfixturevalue("live")

    put_on_duty(live, 0, "widget-tests")


def host_html(live_url: str, *, lang: str | None = None, data_lang: str | None = None, body: str = "") -> str:
    html_lang = f' lang="{lang}"' if lang is not None else ""
    attr = f' data-lang="{data_lang}"' if data_lang else ""
    return (f"<!doctype html><html{html_lang}><head><meta charset=utf-8>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>Host page</title></head>'
            f"<body><h1>A host page</h1>{body}"
            f'<script src="{live_url}/widget.js" async{attr}></script></body></html>')


class FakeVisitorServer:
    """A scripted /ws/visitor that speaks the protocol (docs/protocol.md)."""

    def __init__(self, context, *, agents_online: bool = True, token: str = "tok-1"):
        self.frames: list[dict] = []
        self.sockets: list[Any] = []
        self.agents_online = agents_online
        self.token = token
        self.auto_ack = True
        self.conversation: dict | None = None
        self.seq = 0
        self.acked: dict[str, int] = {}
        self.unknown_tokens: set[str] = set()
        self.hold_welcome = False  # hellos wait in `held` until welcome() answers them
        self.held: list[tuple[Any, dict]] = []
        context.route_web_socket(re.compile(r".*/ws/visitor$"), self._connect)

    def _connect(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self._receive(ws, message))

    def _receive(self, ws, message) -> None:
        frame = json.loads(message)
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "hello":
            if frame.get("token") in self.unknown_tokens:
                ws.close(code=4401, reason="unknown visitor")
                return
            if self.hold_welcome:
                self.held.append((ws, frame))
                return
            self.welcome(ws, frame)
        elif kind == "message" and self.auto_ack:
            self.store(ws, frame)
        elif kind == "ping":
            self.send(ws, {"type": "pong"})

    def welcome(self, ws, hello: dict) -> None:
        self.send(ws, {"type": "welcome", "token": hello.get("token") or self.token,
                       "conversation": self.conversation, "agents_online": self.agents_online,
                       "last_seq": self.seq})

    def store(self, ws, frame) -> None:
        cid = frame["client_id"]
        if self.conversation is None:
            self.conversation = {"id": 17, "state": "waiting", "agent_name": None}
        if cid not in self.acked:
            self.seq += 1
            self.acked[cid] = self.seq
            self.send(ws, self.event(kind="message", author="visitor", body=frame["body"], client_id=cid,
                                     seq=self.seq))
        self.send(ws, {"type": "ack", "client_id": cid, "conversation": 17, "seq": self.acked[cid]})

    def event(self, *, seq: int | None = None, conversation: int = 17, **fields) -> dict:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {"type": "event", "conversation": conversation, "seq": seq, "author_name": None,
                "client_id": None, "at": "2026-11-27T10:00:00+00:00", **fields}

    @staticmethod
    def send(ws, frame: dict) -> None:
        ws.send(json.dumps(frame))

    @property
    def ws(self):
        return self.sockets[-1]

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in self.frames if f.get("type") == kind]

    def wait(self, page, predicate, timeout: float = 10.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            page.wait_for_timeout(50)
        raise AssertionError(f"timed out waiting for {what}; frames: {self.frames}")


@pytest.fixture
def ctx(browser_context_factory):
    return browser_context_factory()


def widget_frame(page):
    for _ in range(200):
        for frame in page.frames:
            if "/widget/frame" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError("the widget frame never loaded")


def probe_frame(page):
    for _ in range(200):
        for frame in page.frames:
            if "/widget/probe" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError("the storage probe never loaded")


def ready_frame(page):
    frame = widget_frame(page)
    frame.wait_for_selector("html[data-ready]", state="attached")
    return frame


def chat(page):
    return page.frame_locator("iframe[data-jutella=frame]")


def open_chat(page):
    page.get_by_test_id("launcher").click()
    expect(chat(page).get_by_test_id("chat-input")).to_be_visible()
    return chat(page)


def chat_at(server, context, url: str):
    """A new page of ``context`` at ``url``, its widget opened and its hello
    heard by ``server``: (page, frame)."""
    page = context.new_page()
    page.goto(url)
    frame = open_chat(page)
    server.wait(page, lambda: server.of_type("hello"), what="hello")
    return page, frame


def say(server, page, frame, text: str) -> None:
    """The visitor sends ``text`` (Enter) and the fake server acks it."""
    frame.get_by_test_id("chat-input").fill(text)
    frame.get_by_test_id("chat-input").press("Enter")
    server.wait(page, lambda: server.acked, what="ack")


def stored(frame) -> dict | None:
    raw = frame.evaluate("localStorage.getItem('jutella-widget')")
    return json.loads(raw) if raw else None


# -- consent first -------------------------------------------------------------------
def test_nothing_is_stored_or_connected_before_the_click(live, ctx, host):
    host.pages["/shop/cart"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r))
    page.goto(host.origin + "/shop/cart?email=someone%40example.org#token=secret")

    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_accessible_name("Open chat")
    probe = probe_frame(page)  # the storage probe comes in the background: it may read, never write
    page.wait_for_timeout(1500)

    def nothing_written(frame) -> None:
        assert ctx.cookies() == []
        for where in (page, frame):
            assert where.evaluate("localStorage.length") == 0
            assert where.evaluate("sessionStorage.length") == 0
        assert frame.evaluate("indexedDB.databases().then(d => d.length)") == 0
        assert page.evaluate("indexedDB.databases().then(d => d.length)") == 0
        assert sockets == []
        assert not [r for r in requests if "/ws/" in r.url]

    nothing_written(probe)
    # The light widget: no chat frame until the launcher is wanted (docs/widget.md, "Loading").
    to_jutella = [r for r in requests if r.url.startswith(live.url)]
    assert {r.url.split("?")[0][len(live.url):] for r in to_jutella} == {"/widget.js", "/widget/probe",
                                                                          "/static/widget/probe.js"}

    # Keyboard: the launcher is reachable with Tab; focusing it loads the frame, which still writes nothing.
    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    frame = ready_frame(page)
    page.wait_for_timeout(500)
    nothing_written(frame)
    # The host page's address reaches jutella in no URL and in no Referer.
    to_jutella = [r for r in requests if r.url.startswith(live.url)]
    assert {r.url.split("?")[0][len(live.url):] for r in to_jutella} >= {"/widget.js", "/widget/frame"}
    for r in to_jutella:
        assert "shop" not in r.url and "someone" not in r.url and "secret" not in r.url
    for r in to_jutella:
        if "/widget/frame" in r.url or "/widget/probe" in r.url:
            assert "referer" not in r.all_headers()
    assert frame.evaluate("document.referrer") == ""
    # The conversation lives in a frame the host page cannot look into.
    assert page.evaluate("document.querySelector('[data-jutella]').shadowRoot"
                         ".querySelector('iframe').contentDocument") is None

    page.keyboard.press("Enter")
    expect(chat(page).get_by_test_id("chat-input")).to_be_focused()
    deadline = time.monotonic() + 10
    while not sockets and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert sockets and sockets[0] == live.ws_url + "/ws/visitor"
    assert ctx.cookies() == []
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0  # the host page's: never


def test_a_site_that_is_not_allowed_gets_no_chat(live, ctx):
    evil = HostSite()
    evil.pages["/"] = host_html(live.url)
    page = ctx.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(evil.origin + "/")
    page.get_by_test_id("launcher").click()
    page.wait_for_timeout(1500)
    # frame-ancestors refuses the frame: no chat UI, no storage, no socket.
    assert not [f for f in page.frames if "/widget/frame" in f.url and f.evaluate("!!document.getElementById('log')")]
    assert sockets == []
    evil.close()


def test_on_another_site_the_chat_works_even_without_storage(live, ctx, host):
    """http://localhost:PORT embedding http://127.0.0.1:... is a third-party
    frame; this Chromium denies such frames localStorage (as browsers that
    block third-party cookies do). The chat still works; it just cannot be
    resumed after a reload."""
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(host.cross_site_origin + "/")
    frame = open_chat(page)
    say(server, page, frame, "hello from another site")
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Sent")
    server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino", body="hi"))
    expect(frame.locator("[data-testid=message][data-author=agent]")).to_have_text(["hi"])
    storage = widget_frame(page).evaluate("(() => { try { return localStorage.length } catch (e) { return 'denied' } })()")
    assert storage in ("denied", 1)
    assert errors == []


# -- notice, languages -----------------------------------------------------------------
def test_privacy_notice_link(live, ctx, host):
    host.pages["/"] = host_html(live.url, lang="en", data_lang="fi")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    link = frame.get_by_test_id("privacy-link")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", "/privacy?lang=fi")
    expect(link).to_have_attribute("target", "_blank")
    assert "noopener" in link.get_attribute("rel").split()
    expect(link).to_have_text("Tietosuojaseloste")
    expect(frame.locator(".notice")).to_contain_text("Viestit tallennetaan.")


@pytest.mark.parametrize(("html_lang", "data_lang", "locale", "expected"), [
    ("en", "fi", "en-GB", "fi"),       # data-lang wins
    ("sv-FI", None, "en-GB", "sv"),    # then the host page's <html lang>
    ("de", None, "fi-FI", "fi"),       # a language we lack: the browser's
    (None, None, "sv-SE", "sv"),
    (None, None, "de-DE", "en"),
])
def test_language(live, browser_context_factory, host, html_lang, data_lang, locale, expected):
    context = browser_context_factory(locale=locale)
    host.pages["/"] = host_html(live.url, lang=html_lang, data_lang=data_lang)
    page = context.new_page()
    page.goto(host.origin + "/")
    names = {"fi": "Avaa chat", "sv": "Öppna chatten", "en": "Open chat"}
    titles = {"fi": "Keskustele kanssamme", "sv": "Chatta med oss", "en": "Chat with us"}
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_have_accessible_name(names[expected])
    frame = open_chat(page)
    expect(frame.get_by_test_id("chat-input")).to_be_focused()  # also when the frame was not there yet
    expect(frame.locator("h1")).to_have_text(titles[expected])
    expect(frame.locator("html")).to_have_attribute("lang", expected)
    expect(frame.get_by_test_id("privacy-link")).to_have_attribute("href", f"/privacy?lang={expected}")
    expect(launcher).to_have_accessible_name({"fi": "Sulje chat", "sv": "Stäng chatten", "en": "Close chat"}[expected])


# -- the protocol client against a scripted server ---------------------------------------
def test_hello_message_ack_and_agent_reply(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/from"] = f'<!doctype html><html lang="en"><body><a href="/to?x=1#y">next</a></body></html>'
    host.pages["/to"] = host_html(live.url, lang="sv")
    page = ctx.new_page()
    page.goto(host.origin + "/from?q=private")
    page.click("text=next")
    frame = open_chat(page)
    hello = server.wait(page, lambda: server.of_type("hello"), what="hello")[0]
    assert hello == {"type": "hello", "token": None, "last_seq": 0, "lang": "sv",
                     "page": host.origin + "/to", "referrer": host.origin + "/from"}
    # The token is stored after the click, in the frame only.
    server.wait(page, lambda: (stored(widget_frame(page)) or {}).get("token") == "tok-1", what="stored token")
    assert page.evaluate("localStorage.length") == 0

    # Enter sends; the message shows at once as being sent, and as sent on ack.
    server.auto_ack = False
    chat_input = frame.get_by_test_id("chat-input")
    chat_input.fill("Hej, jag har en fråga")
    chat_input.press("Enter")
    mine = frame.locator("[data-testid=message][data-author=visitor]")
    expect(mine).to_have_count(1)
    expect(mine).to_have_text("Hej, jag har en fråga")
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Skickar…")
    expect(chat_input).to_have_value("")
    sent = server.wait(page, lambda: server.of_type("message"), what="message")[0]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", sent["client_id"])
    assert sent["body"] == "Hej, jag har en fråga"
    assert [f for f in server.frames if f["type"] == "typing"][-1] == {"type": "typing", "active": False}
    pending = stored(widget_frame(page))["pending"]
    assert pending == [{"client_id": sent["client_id"], "body": sent["body"]}]
    server.store(server.ws, sent)
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Skickat")
    expect(mine).to_have_count(1)  # the echoed event is the same message, not a second one
    server.wait(page, lambda: stored(widget_frame(page))["pending"] == [], what="pending cleared")

    # Shift+Enter is a new line, not a send.
    chat_input.press_sequentially("rad ett")
    chat_input.press("Shift+Enter")
    chat_input.press_sequentially("rad två")
    expect(chat_input).to_have_value("rad ett\nrad två")
    assert len(server.of_type("message")) == 1
    typing = server.of_type("typing")
    assert typing[-1] == {"type": "typing", "active": True}
    chat_input.fill("")
    chat_input.dispatch_event("input")
    server.wait(page, lambda: server.of_type("typing")[-1]["active"] is False, what="typing false")

    # The agent types, then answers; a system line; duplicates and old seqs are ignored.
    typing_line = frame.get_by_test_id("typing")
    expect(typing_line).to_be_hidden()
    server.send(server.ws, {"type": "typing", "conversation": 17, "author": "agent", "active": True})
    expect(typing_line).to_be_visible()
    joined = server.event(kind="state", state="active", author="system", body="Aino gick med i chatten")
    reply = server.event(kind="message", author="agent", author_name="Aino", body="Hej! Vad gäller det?")
    for frame_ in (joined, reply, reply, joined):
        server.send(server.ws, frame_)
    agent = frame.locator("[data-testid=message][data-author=agent]")
    expect(agent).to_have_text(["Hej! Vad gäller det?"])
    expect(typing_line).to_be_hidden()
    expect(frame.locator("[data-testid=message][data-author=system]")).to_have_text(["Aino gick med i chatten"])
    expect(frame.get_by_test_id("message")).to_have_text(
        ["Hej, jag har en fråga", "Aino gick med i chatten", "Hej! Vad gäller det?"])
    # The visitor has the panel open: the widget says it has seen it.
    server.wait(page, lambda: {"type": "seen", "seq": reply["seq"]} in server.frames, what="seen")
    server.send(server.ws, {"type": "seen", "conversation": 17, "by": "agent", "seq": 1})
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Läst")


def test_unacked_messages_are_resent_after_reconnect_and_reload(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page, frame = chat_at(server, ctx, host.origin + "/")
    server.auto_ack = False
    frame.get_by_test_id("chat-input").fill("first")
    frame.get_by_test_id("chat-send").click()
    first = server.wait(page, lambda: server.of_type("message"), what="message")[0]

    # The connection drops before the ack: the widget reconnects (the first
    # retry comes within 0.5 s) and sends the same message again.
    server.ws.close(code=1011)
    server.wait(page, lambda: len(server.of_type("hello")) == 2, what="second hello")
    second_hello = server.of_type("hello")[1]
    assert second_hello["token"] == "tok-1" and second_hello["last_seq"] == 0
    server.wait(page, lambda: len(server.of_type("message")) == 2, what="resend")
    assert server.of_type("message")[1] == first
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Sending…")

    # A reload keeps the unsent message too (stored after consent): the frame
    # comes back on its own, shows it, and sends it again with the same id.
    page.reload()
    server.wait(page, lambda: len(server.of_type("hello")) == 3, what="hello after reload")
    assert server.of_type("hello")[2]["token"] == "tok-1"
    server.wait(page, lambda: len(server.of_type("message")) == 3, what="resend after reload")
    assert server.of_type("message")[2] == first
    server.store(server.ws, first)
    expect(chat(page).get_by_test_id("message")).to_have_text(["first"])
    expect(chat(page).locator(".row[data-author=visitor] .meta")).to_have_text("Sent")
    assert server.acked == {first["client_id"]: 1}


def test_a_returning_visitor_sees_the_open_chat_again(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en", body='<a href="/other">other page</a>')
    host.pages["/other"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    say(server, page, frame, "hello there")
    server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino", body="Hi!"))
    expect(frame.get_by_test_id("message")).to_have_count(2)

    # Another page of the site, panel still open: the chat is back without a click.
    page.get_by_role("link", name="other page").click()
    server.wait(page, lambda: len(server.of_type("hello")) == 2, what="hello on the next page")
    assert server.of_type("hello")[1]["token"] == "tok-1"
    assert server.of_type("hello")[1]["last_seq"] == 0
    assert server.of_type("hello")[1]["referrer"] == host.origin + "/"
    server.ws.send(json.dumps(server.event(seq=1, kind="message", author="visitor", body="hello there",
                                           client_id=server.of_type("message")[0]["client_id"])))
    server.ws.send(json.dumps(server.event(seq=2, kind="message", author="agent", author_name="Aino", body="Hi!")))
    expect(chat(page).get_by_test_id("message")).to_have_text(["hello there", "Hi!"])
    expect(page.get_by_test_id("launcher")).to_have_attribute("aria-expanded", "true")

    # Panel closed, then a reload: it stays closed but connected; a new agent
    # message shows as a count on the launcher, not as content.
    page.get_by_test_id("launcher").click()
    expect(page.locator("iframe[data-jutella=frame]")).to_be_hidden()
    server.wait(page, lambda: stored(widget_frame(page))["panel"] is False, what="the frame to know it is hidden")
    page.reload()
    server.wait(page, lambda: len(server.of_type("hello")) == 3, what="hello after reload")
    server.ws.send(json.dumps(server.event(seq=1, kind="message", author="visitor", body="hello there")))
    server.ws.send(json.dumps(server.event(seq=2, kind="message", author="agent", author_name="Aino", body="Hi!")))
    server.ws.send(json.dumps(server.event(kind="message", author="agent", author_name="Aino", body="Still there?")))
    expect(page.get_by_test_id("launcher")).to_have_accessible_name("Open chat (1 new)")
    expect(page.locator("iframe[data-jutella=frame]")).to_be_hidden()
    page.get_by_test_id("launcher").click()
    expect(chat(page).get_by_test_id("message")).to_have_text(["hello there", "Hi!", "Still there?"])


def test_an_unknown_token_starts_over_as_a_new_visitor(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    server.wait(page, lambda: (stored(widget_frame(page)) or {}).get("token") == "tok-1", what="stored token")
    # The visitor's data was erased on the server meanwhile; an unsent message waits.
    server.unknown_tokens.add("tok-1")
    server.token = "tok-2"
    server.auto_ack = False
    frame.get_by_test_id("chat-input").fill("still there?")
    frame.get_by_test_id("chat-input").press("Enter")
    server.wait(page, lambda: server.of_type("message"), what="message")
    page.reload()
    server.wait(page, lambda: [h["token"] for h in server.of_type("hello")] == [None, "tok-1", None],
                what="hello with the old token, then none")
    server.wait(page, lambda: stored(widget_frame(page))["token"] == "tok-2", what="the new token")
    server.wait(page, lambda: len(server.of_type("message")) == 2, what="the message sent again")
    assert server.of_type("message")[1]["body"] == "still there?"
    expect(chat(page).get_by_test_id("message")).to_have_text(["still there?"])


def test_end_chat_then_forget_this_browser(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    say(server, page, frame, "thanks, bye")
    end = frame.get_by_role("button", name="End chat")
    expect(end).to_be_visible()
    end.click()
    server.wait(page, lambda: server.of_type("end"), what="end")
    assert server.of_type("end") == [{"type": "end"}]
    server.send(server.ws, server.event(kind="state", state="closed", author="system", body="The visitor ended the chat."))
    expect(frame.get_by_text("The chat has ended.")).to_be_visible()
    assert stored(widget_frame(page))["token"] == "tok-1"

    sockets_before = len(server.sockets)
    frame.get_by_role("button", name="Forget this browser").click()
    expect(frame.get_by_text("This browser no longer remembers the chat.")).to_be_visible()
    expect(frame.get_by_test_id("message")).to_have_count(0)
    the_frame = widget_frame(page)
    assert the_frame.evaluate("localStorage.length") == 0
    assert the_frame.evaluate("sessionStorage.length") == 0
    page.wait_for_timeout(1200)
    assert len(server.sockets) == sockets_before  # no reconnect after forgetting
    assert the_frame.evaluate("localStorage.length") == 0

    # Reloading: a new visitor again, nothing stored, nothing connected, and
    # only the storage probe loads (nothing to resume: no chat frame).
    page.reload()
    probe = probe_frame(page)
    page.wait_for_timeout(800)
    assert len(server.sockets) == sockets_before
    assert probe.evaluate("localStorage.length") == 0
    assert not [f for f in page.frames if "/widget/frame" in f.url]


def test_message_text_is_never_html_and_links_are_safe(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page, frame = chat_at(server, ctx, host.origin + "/")
    body = ('<img src=x onerror="parent.pwned=1"> <b>bold</b> see https://example.org/a_(b). '
            "and javascript:alert(1) or http://x.test/?q=<script> and ftp://files.test/")
    server.send(server.ws, server.event(kind="message", author="agent", author_name="<i>Aino</i>", body=body))
    message = frame.get_by_test_id("message")
    expect(message).to_have_text(body)
    assert message.locator("img, b, script, i").count() == 0
    links = message.locator("a")
    expect(links).to_have_count(2)
    assert links.nth(0).get_attribute("href") == "https://example.org/a_(b)"
    assert links.nth(1).get_attribute("href") == "http://x.test/?q="
    for i in range(2):
        assert links.nth(i).get_attribute("rel") == "noopener noreferrer"
        assert links.nth(i).get_attribute("target") == "_blank"
    expect(frame.locator(".row .who")).to_have_text("<i>Aino</i>")
    assert page.evaluate("window.pwned") is None


def test_errors_and_nobody_online(live, ctx, host):
    server = FakeVisitorServer(ctx, agents_online=False)
    # a chat already going (with none, the email form stands in for the message field)
    server.conversation = {"id": 17, "state": "waiting", "agent_name": None}
    host.pages["/"] = host_html(live.url, lang="fi")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    status = frame.locator("#status")
    expect(status).to_have_text(
        "Kukaan ei ole juuri nyt paikalla, mutta voit silti kirjoittaa. Vastaamme tähän niin pian kuin voimme.")
    expect(frame.locator(".offline-offer")).to_contain_text("Voit myös jättää viestin")  # the email form, offered
    server.auto_ack = False
    frame.get_by_test_id("chat-input").fill("hei")
    frame.get_by_test_id("chat-input").press("Enter")
    sent = server.wait(page, lambda: server.of_type("message"), what="message")[0]
    # No message from the server: our own text by code, in the visitor's language.
    server.send(server.ws, {"type": "error", "code": "rate_limited", "message": "", "client_id": sent["client_id"]})
    error = frame.locator("#error")
    expect(error).to_have_text("Lähetät viestejä liian nopeasti. Odota hetki ja yritä uudelleen.")
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Ei lähetetty")
    assert stored(widget_frame(page))["pending"] == []
    # The server's (already translated) message wins.
    server.send(server.ws, {"type": "error", "code": "closed", "message": "Keskustelu on suljettu."})
    expect(error).to_have_text("Keskustelu on suljettu.")
    frame.get_by_test_id("chat-input").press_sequentially("x")
    expect(error).to_have_text("")
    server.send(server.ws, {"type": "presence", "agents_online": True})
    expect(status).to_be_hidden()
    expect(frame.locator(".offline-offer")).to_have_count(0)


# -- keyboard, phones, accessibility, motion, CSP -----------------------------------------
def test_keyboard_open_escape_and_focus(live, ctx, host):
    FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en", body='<a href="#x">a link</a>')
    page = ctx.new_page()
    page.goto(host.origin + "/")
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_be_visible()
    launcher.focus()
    page.keyboard.press("Enter")
    chat_input = chat(page).get_by_test_id("chat-input")
    expect(chat_input).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.locator("iframe[data-jutella=frame]")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Space")
    expect(chat_input).to_be_focused()
    chat(page).get_by_role("button", name="Close chat window").click()
    expect(page.locator("iframe[data-jutella=frame]")).to_be_hidden()
    expect(launcher).to_be_focused()


def test_phone_screen_is_full_screen(live, browser_context_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser_context_factory(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True)
    server = FakeVisitorServer(context)
    page = context.new_page()
    page.goto(live.url + "/demo?lang=fi")
    page.screenshot(path=str(SHOTS / "widget-360-closed.png"))
    frame = open_chat(page)
    server.wait(page, lambda: server.of_type("hello"), what="hello")
    say(server, page, frame, "Hei! Miten voin vaihtaa opiskelijanumeroni? https://jamko.fi/ohjeet")
    server.send(server.ws, server.event(kind="state", state="active", author="system", body="Aino liittyi keskusteluun"))
    server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino",
                                        body="Hei! Autan mielelläni. Mikä on opiskelijanumerosi?"))
    server.send(server.ws, {"type": "typing", "conversation": 17, "author": "agent", "active": True})
    expect(frame.get_by_test_id("typing")).to_be_visible()
    box = page.locator("iframe[data-jutella=frame]").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 360, "height": 740}
    expect(page.get_by_test_id("launcher")).to_be_hidden()  # the panel has its own close button
    assert widget_frame(page).evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(SHOTS / "widget-360-open.png"))

    desktop = browser_context_factory(viewport={"width": 1280, "height": 800})
    server2 = FakeVisitorServer(desktop)
    page2, frame2 = chat_at(server2, desktop, live.url + "/demo")
    say(server2, page2, frame2, "Hello! How do I change my student number?")
    server2.send(server2.ws, server2.event(kind="message", author="agent", author_name="Aino",
                                           body="Hi! Happy to help. See https://example.org/help"))
    expect(frame2.get_by_test_id("message")).to_have_count(2)
    box2 = page2.locator("iframe[data-jutella=frame]").bounding_box()
    assert box2["width"] == 380 and box2["height"] <= 600
    page2.screenshot(path=str(SHOTS / "widget-desktop-open.png"))


def test_a_page_change_while_the_hello_is_on_its_way_reaches_the_server(live, ctx, host):
    """The visitor panel shows the page a visitor is on (docs/widget.md): a
    single-page site that moves on (pushState) after the widget said hello
    and before the server's welcome (a reload that resumes an open chat, say)
    is told as soon as the welcome says a conversation is open, not only at
    the next reconnect. (Seen in CI: the console kept the old page.)"""
    server = FakeVisitorServer(ctx)
    server.conversation = {"id": 17, "state": "active", "agent_name": "Aino"}
    server.hold_welcome = True
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    open_chat(page)
    ws, hello = server.wait(page, lambda: server.held and server.held[0], what="hello")
    assert hello["page"] == host.origin + "/"
    page.evaluate("history.pushState({}, '', '/help/2?secret=1#x')")
    page.wait_for_timeout(300)  # the frame hears of the move (postMessage) while the welcome is held
    server.welcome(ws, hello)
    told = server.wait(page, lambda: server.of_type("page"), what="the page frame")
    assert told == [{"type": "page", "page": host.origin + "/help/2"}]


def test_the_newest_message_stays_in_view_when_the_end_card_comes_in_the_same_frame(live, browser_context_factory):
    """A reader at the newest message stays there when the end-of-chat card
    shrinks the log (docs/widget.md "Layout"), also when the log's own scroll
    event, from the scroll that showed the last message, is still pending as
    the card comes (a slow phone: both in one frame). Here both are made in
    one task, which puts them in the same frame every time."""
    context = browser_context_factory(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    server = FakeVisitorServer(context)
    page, frame = chat_at(server, context, live.url + "/demo?lang=fi")
    say(server, page, frame, "Hei!")
    for n in range(12):
        server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino",
                                            body=f"Vastaus {n + 1}: " + "pitkä rivi tekstiä " * 8))
    expect(frame.get_by_test_id("message")).to_have_count(13)
    inner = widget_frame(page)
    newest_in_view = """() => {
      const log = document.getElementById("log"), rows = log.querySelectorAll(".row");
      const r = rows[rows.length - 1].getBoundingClientRect(), b = log.getBoundingClientRect();
      return r.bottom <= b.bottom + 1 && r.top >= b.top - 1;
    }"""
    inner.wait_for_function(newest_in_view)
    inner.evaluate("""() => new Promise((done) => {
      const log = document.getElementById("log");
      log.scrollTop = log.scrollHeight - log.clientHeight - 20;  // near the bottom: a scroll event is now due
      document.getElementById("ended").hidden = false;           // and the card shrinks the log in the same frame
      requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(done)));
    })""")
    assert inner.evaluate(newest_in_view), "the newest message went out of view when the end card came"


def test_accessibility_with_axe(live, ctx, host):
    from axe_playwright_python.sync_playwright import Axe

    server = FakeVisitorServer(ctx, agents_online=False)
    server.conversation = {"id": 17, "state": "waiting", "agent_name": None}  # the email form is offered
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.goto(host.origin + "/")
    frame = open_chat(page)
    server.wait(page, lambda: server.of_type("hello"), what="hello")
    expect(frame.locator(".offline-offer")).to_be_visible()
    say(server, page, frame, "A question, see https://example.org")
    server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino", body="An answer"))
    server.send(server.ws, {"type": "typing", "conversation": 17, "author": "agent", "active": True})
    expect(frame.get_by_test_id("message")).to_have_count(2)

    axe = Axe()
    results = axe.run(widget_frame(page))
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], json.dumps(bad, indent=1)[:4000]
    results = axe.run(page, options={"iframes": False, "resultTypes": ["violations"]})
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], json.dumps(bad, indent=1)[:4000]

    # The ended card too.
    frame.get_by_role("button", name="End chat").click()
    expect(frame.get_by_role("button", name="Forget this browser")).to_be_visible()
    results = axe.run(widget_frame(page))
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], json.dumps(bad, indent=1)[:4000]


def test_reduced_motion_is_respected(live, browser_context_factory):
    context = browser_context_factory(reduced_motion="reduce")
    server = FakeVisitorServer(context)
    server.conversation = {"id": 17, "state": "waiting", "agent_name": None}
    page, frame = chat_at(server, context, live.url + "/demo")
    server.send(server.ws, {"type": "typing", "conversation": 17, "author": "agent", "active": True})
    dot = frame.locator(".dots span").first
    expect(dot).to_be_visible()
    assert dot.evaluate("e => getComputedStyle(e).animationName") == "none"
    launcher = page.get_by_test_id("launcher")
    assert launcher.evaluate("e => getComputedStyle(e).transitionDuration") in ("0s", "0s, 0s")


def test_demo_pages_have_no_csp_violations_and_pass_the_referrer(live, ctx):
    server = FakeVisitorServer(ctx)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(live.url + "/demo?lang=en")
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_be_visible()
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"  # its stylesheet loaded
    page.get_by_role("link", name="Page 2").click()
    page.wait_for_url("**/demo/2?lang=en")
    open_chat(page)
    hello = server.wait(page, lambda: server.of_type("hello"), what="hello")[0]
    assert hello["page"] == live.url + "/demo/2"
    assert hello["referrer"] == live.url + "/demo"
    assert hello["lang"] == "en"
    assert problems == []


def test_the_host_page_learns_nothing_of_the_conversation(live, ctx, host):
    server = FakeVisitorServer(ctx)
    host.pages["/"] = host_html(live.url, lang="en")
    page = ctx.new_page()
    page.add_init_script("window.seen = []; addEventListener('message', e => window.seen.push(JSON.stringify(e.data)));")
    page.goto(host.origin + "/")
    frame = open_chat(page)
    say(server, page, frame, "my student number is 1234567")
    page.get_by_test_id("launcher").click()
    server.wait(page, lambda: stored(widget_frame(page))["panel"] is False, what="the frame to know it is hidden")
    server.send(server.ws, server.event(kind="message", author="agent", author_name="Aino", body="thanks, 1234567 found"))
    expect(page.get_by_test_id("launcher")).to_have_accessible_name("Open chat (1 new)")
    seen = page.evaluate("window.seen")
    assert seen and not [m for m in seen if "1234567" in m or "Aino" in m or "tok-1" in m]


# -- the protocol client's timing rules, with fake timers ------------------------------------
CLIENT_HARNESS = """
async () => {
  const m = await import('/static/widget/client.js');
  const out = {};
  out.backoff = [0, 1, 2, 3, 5, 6, 10, 60].map(a => m.backoff(a, () => 1));
  out.jitterZero = m.backoff(4, () => 0);
  out.jitterHalf = m.backoff(3, () => 0.5);

  let now = 0;
  const timers = [];
  const sockets = [];
  class FakeWS {
    constructor(url) { this.url = url; this.at = now; this.sent = []; this.readyState = 0; sockets.push(this); }
    send(s) { this.sent.push(JSON.parse(s)); }
    close() { this.readyState = 3; }
    open() { this.readyState = 1; this.onopen(); }
    frame(f) { this.onmessage({ data: JSON.stringify(f) }); }
  }
  const setTimer = (fn, ms) => { timers.push({ at: now + ms, fn }); return timers.length - 1; };
  const clearTimer = (id) => { if (timers[id]) timers[id].fn = null; };
  const advance = (ms) => {
    const end = now + ms;
    for (;;) {
      const due = timers.map((t, i) => [t, i]).filter(([t]) => t.fn && t.at <= end).sort((a, b) => a[0].at - b[0].at)[0];
      if (!due) break;
      now = due[0].at; const fn = due[0].fn; due[0].fn = null; fn();
    }
    now = end;
  };
  const events = [];
  const c = new m.Client({ url: 'ws://x/ws/visitor', hello: { lang: 'en', page: '', referrer: '' },
    WebSocketImpl: FakeWS, now: () => now, random: () => 1, setTimer, clearTimer,
    emit: (k, f) => events.push(k) });
  c.start();
  const ws = sockets[0];
  ws.open();
  ws.frame({ type: 'welcome', token: 't', conversation: null, agents_online: true, last_seq: 0 });
  // typing: one true per 2.5 s at most, one false
  c.typing(true); advance(1000); c.typing(true); advance(1600); c.typing(true); c.typing(false); c.typing(false);
  out.typing = ws.sent.filter(f => f.type === 'typing').map(f => f.active);
  // heartbeats (checked every 5 s): a ping once nothing has been heard or
  // sent for 20 s, dead after 60 s of hearing nothing
  ws.frame({ type: 'presence', agents_online: true });   // t = 2.6 s
  ws.sent.length = 0;
  advance(17000);                                         // t = 19.6 s
  out.pingsBefore20 = ws.sent.filter(f => f.type === 'ping').length;
  advance(6000);                                          // t = 25.6 s (tick at 25)
  out.pingsAfter25 = ws.sent.filter(f => f.type === 'ping').length;
  ws.frame({ type: 'ping' });                             // heard at 25.6 s
  out.pong = ws.sent.some(f => f.type === 'pong');
  advance(59000);                                         // t = 84.6 s
  out.socketsBeforeDead = sockets.length;
  out.pingsWhileSilent = ws.sent.filter(f => f.type === 'ping').length;
  advance(6000);                                          // tick at 90 s: dead
  out.deadClosed = ws.readyState === 3;
  // then a reconnect after the backoff delay (random() = 1: the whole 0.5 s)
  out.socketsAfterRetry = sockets.length;
  out.retryAt = sockets[1] && sockets[1].at;
  sockets[1].open();
  out.secondHello = sockets[1].sent[0];
  // events: once, in order
  sockets[1].frame({ type: 'welcome', token: 't', conversation: { id: 5, state: 'active', agent_name: null }, agents_online: true, last_seq: 2 });
  const shown = [];
  c.emit = (k, f) => { if (k === 'event') shown.push(f.seq); };
  for (const s of [1, 2, 2, 1, 3, 5, 4, 6]) sockets[1].frame({ type: 'event', conversation: 5, seq: s, kind: 'message', author: 'agent', body: 'x' });
  out.shown = shown;
  return out;
}
"""


def test_client_backoff_heartbeat_typing_and_ordering(live, ctx):
    page = ctx.new_page()
    page.goto(live.url + "/widget/frame")  # the frame on its own: a page with our modules and CSP
    out = page.evaluate(CLIENT_HARNESS)
    assert out["backoff"] == [500, 1000, 2000, 4000, 16000, 30000, 30000, 30000]
    assert out["jitterZero"] == 0 and out["jitterHalf"] == 2000
    assert out["typing"] == [True, True, False]
    assert out["pingsBefore20"] == 0 and out["pingsAfter25"] == 1
    assert out["pong"] is True
    assert out["socketsBeforeDead"] == 1 and out["deadClosed"] is True
    assert out["pingsWhileSilent"] == 3  # at 25, 50 and 70 s
    assert out["socketsAfterRetry"] == 2 and out["retryAt"] == 90500
    assert out["secondHello"] == {"type": "hello", "token": "t", "last_seq": 0, "lang": "en", "page": "", "referrer": ""}
    assert out["shown"] == [1, 2, 3, 5, 6]


def test_the_frame_opened_on_its_own_asks_before_anything(live, ctx):
    page = ctx.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(live.url + "/widget/frame")
    page.wait_for_selector("html[data-ready]", state="attached")
    expect(page.get_by_text("Nothing is stored in this browser until you start a chat.")).to_be_visible()
    expect(page.get_by_test_id("chat-input")).to_be_hidden()
    page.wait_for_timeout(500)
    assert sockets == [] and page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Start a new chat").click()
    expect(page.get_by_test_id("chat-input")).to_be_focused()
    deadline = time.monotonic() + 5
    while not sockets and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert sockets == [live.ws_url + "/ws/visitor"]


# -- with the real /ws/visitor and /ws/agent ---------------------------------------------------
def test_end_to_end_with_an_agent(live, ctx, host):
    from sqlalchemy import select
    from websockets.sync.client import connect

    from jutella.store.models import Conversation
    from tests.helpers import add_staff, sign_in

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    staff = sign_in(live, "aino@example.org")
    cookie = "; ".join(f"{k}={v}" for k, v in staff.cookies.items())
    agent = connect(live.ws_url + "/ws/agent", additional_headers={"Cookie": cookie, "Origin": live.url},
                    open_timeout=10)
    agent.send(json.dumps({"type": "hello", "subscriptions": {}}))
    agent.send(json.dumps({"type": "presence", "state": "online"}))
    page = ctx.new_page()

    def agent_gets(until, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = json.loads(agent.recv(timeout=0.1))
            except TimeoutError:
                page.wait_for_timeout(20)  # let the browser side run
                continue
            if frame.get("type") == "ping":
                agent.send(json.dumps({"type": "pong"}))
            if until(frame):
                return frame
        raise AssertionError("the agent never got it")

    host.pages["/start"] = '<!doctype html><html lang="en"><body><a href="/help?from=ad">help</a></body></html>'
    host.pages["/help"] = host_html(live.url, lang="en")
    page.goto(host.origin + "/start?utm_source=x")
    page.get_by_role("link", name="help").click()
    frame = open_chat(page)
    expect(frame.locator("#status")).to_be_hidden()  # Aino is online
    frame.get_by_test_id("chat-input").fill("Hello from the widget")
    frame.get_by_test_id("chat-input").press("Enter")
    expect(frame.locator(".row[data-author=visitor] .meta")).to_have_text("Sent")

    summary = agent_gets(lambda f: f.get("type") == "conversation")
    conversation = summary["conversation"]["id"]
    agent.send(json.dumps({"type": "subscribe", "conversation": conversation, "last_seq": 0}))
    agent_gets(lambda f: f.get("type") == "event" and f.get("body") == "Hello from the widget")
    agent.send(json.dumps({"type": "accept", "conversation": conversation}))
    agent.send(json.dumps({"type": "typing", "conversation": conversation, "active": True}))
    expect(frame.get_by_test_id("typing")).to_be_visible()
    agent.send(json.dumps({"type": "message", "conversation": conversation, "client_id": "agent-1",
                           "body": "Hello from Aino"}))
    agent_gets(lambda f: f.get("type") == "ack" and f.get("client_id") == "agent-1")
    expect(frame.locator("[data-testid=message][data-author=agent]")).to_have_text(["Hello from Aino"])
    expect(frame.get_by_test_id("typing")).to_be_hidden()
    expect(frame.locator("[data-testid=message][data-author=system]")).to_have_count(1)  # "Aino joined"
    # The widget tells the agent it has seen the reply.
    agent_gets(lambda f: f.get("type") == "seen" and f.get("by") == "visitor")

    # What the server holds about the visit: what the widget sent, no query strings.
    async def stored_conversation():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(Conversation).where(Conversation.id == conversation))).scalar_one()
    conv = live.call(stored_conversation)
    assert conv.page_url == host.origin + "/help"
    assert conv.referrer == host.origin + "/start"
    assert conv.language == "en"

    # A reload: the open chat and its history come back without a click.
    page.reload()
    expect(chat(page).get_by_test_id("message")).to_have_count(3)
    expect(chat(page).locator("[data-testid=message][data-author=agent]")).to_have_text(["Hello from Aino"])
    frame = chat(page)

    # The visitor ends the chat; the agent sees it closed; then "forget".
    frame.get_by_role("button", name="End chat").click()
    agent_gets(lambda f: f.get("type") == "event" and f.get("state") == "closed")
    expect(frame.get_by_role("button", name="Forget this browser")).to_be_visible()
    expect(frame.locator("[data-testid=message][data-author=system]").last).to_have_text("You ended the chat.")
    frame.get_by_role("button", name="Forget this browser").click()
    assert widget_frame(page).evaluate("localStorage.length") == 0
    agent.close()
