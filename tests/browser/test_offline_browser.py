"""The email form for when nobody is on duty, end to end in Chromium: the
widget's form on /demo, the console's inbox, and the replies by email through a
real SMTP server (aiosmtpd). On all three topologies; with two servers
(pg+redis) the visitor is on one and the console on the other."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from jutella.store.models import MailOutbox, OfflineMessage

from tests.chat_clients import agent
from tests.conftest import BROWSER_TOPOLOGIES
from tests.helpers import PASSWORD, add_staff, outbox_idle, sign_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(params=BROWSER_TOPOLOGIES)
def backend(request):
    return request.param


@pytest.fixture
def settings_overrides(smtp, request):
    values = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}
    if "waited_too_long" in request.node.name:
        values["offline_wait_seconds"] = 10  # the least the setting allows
    return values


# -- the browser ------------------------------------------------------------------------
@pytest.fixture
def offline_browser(live, browser):
    """The worker's one Chromium (tests/browser/conftest.py), asked for after
    the database and the server. (It used to be a Chromium of this test's own
    whenever no earlier test of the worker had started the shared one: 3-4 s
    of CPU for each test that came first. Nothing in these tests needs the main
    thread's event loop: the templates and databases are made with run_async.)"""
    return browser


@pytest.fixture
def browser_context_factory(offline_browser):
    contexts = []

    def make(**kwargs):
        kwargs.setdefault("locale", "en-GB")
        ctx = offline_browser.new_context(**kwargs)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


def expect(locator):
    from playwright.sync_api import expect as _expect

    return _expect(locator)


class Problems:
    """What must never happen: dialogs, script errors, CSP reports."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.allowed = [re.compile(r"status of 401 .*"), re.compile(r"status of 404 .*")]
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text)
                if m.type == "error" or "Content Security Policy" in m.text else None)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def check(self):
        assert self.dialogs == []
        assert [e for e in self.errors if not any(p.search(e) for p in self.allowed)] == []


# -- helpers ---------------------------------------------------------------------------------
def open_widget(live, context, path="/demo?lang=en"):
    page = context.new_page()
    problems = Problems(page)
    page.goto(live.url + path)
    page.get_by_test_id("launcher").click()
    return page, page.frame_locator("iframe[data-jutella=frame]"), problems


def frame_of(page):
    for _ in range(200):
        for frame in page.frames:
            if "/widget/frame" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError("no widget frame")


def fill_form(w, name="Maija Meikäläinen", email="maija@example.fi", message="Milloin toimisto on auki?"):
    w.get_by_test_id("offline-name").fill(name)
    w.get_by_test_id("offline-email").fill(email)
    w.get_by_test_id("offline-message").fill(message)


def console_page(side, context, email="aino@example.org", path="#/offline"):
    page = context.new_page()
    problems = Problems(page)
    page.goto(side.url + "/console" + path)
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("presence")).to_be_visible()
    expect(page.get_by_test_id("offline-messages")).to_be_visible()
    return page, problems


def stored(live) -> list[dict]:
    async def q():
        async with live.rt.db.reader() as s:
            rows = (await s.execute(select(OfflineMessage).order_by(OfflineMessage.id))).scalars().all()
            return [{"name": m.name, "email": m.email, "body": m.body, "reason": m.reason, "page": m.page_url,
                     "conversation": m.conversation_id, "visitor": m.visitor_id} for m in rows]
    return live.call(q)


def stored_count(live) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(OfflineMessage))).scalar_one()
    return live.call(q)


def axe_problems(where) -> list:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(where)
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def wait_until(page, predicate, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def online_agent(live, email="aino@example.org"):
    """An agent on duty through the Python protocol client (on the other
    server when there are two); returns (http, socket) once the visitor's
    server knows someone is online."""
    add_staff(live, email, ["agent"], name="Aino")
    http = sign_in(live, email)
    sock, _ = agent(live, http)
    sock.send(type="presence", state="online")
    deadline = time.monotonic() + 10
    while not live.rt.presence.any_online() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.rt.presence.any_online()
    return http, sock


def chat_a_little(page, w, text):
    box = w.get_by_test_id("chat-input")
    expect(box).to_be_visible()
    box.fill(text)
    box.press("Enter")
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text(re.compile("Sent|Seen"))


# -- 1. nobody online: the form, the inbox, the reply by email -------------------------------------
def test_nobody_online_the_form_then_a_reply_by_email(live, smtp, clock, browser_context_factory):
    smtp.start()
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    phone = browser_context_factory(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                    has_touch=True, user_agent=FIREFOX_WINDOWS)
    page, w, problems = open_widget(live, phone)

    form = w.get_by_test_id("offline-form")
    expect(form).to_be_visible()
    expect(w.get_by_test_id("chat-input")).to_be_hidden()  # the form stands in for the composer
    expect(w.get_by_test_id("offline-name")).to_be_focused()
    expect(form).to_contain_text("Nobody is available right now. Leave a message and we will answer by email.")
    expect(w.get_by_test_id("offline-email")).to_have_attribute("type", "email")
    expect(w.get_by_test_id("offline-email")).to_have_attribute("autocomplete", "email")
    privacy = form.get_by_test_id("privacy-link")  # the storage notice and its link, in the form
    expect(privacy).to_be_visible()
    expect(privacy).to_have_attribute("href", "/privacy?lang=en")
    expect(form).to_contain_text("Your name, email address and message are stored so that we can answer you.")
    honeypot = w.locator("input[name=website]")
    expect(honeypot).to_have_attribute("tabindex", "-1")
    expect(honeypot).to_have_attribute("autocomplete", "off")
    assert honeypot.evaluate("e => e.closest('[aria-hidden=true]') !== null")
    assert honeypot.evaluate("e => e.getBoundingClientRect().right <= 0")  # off-screen

    fill_form(w, message="Milloin toimisto on auki?\nJa onko se auki lauantaina?")
    expect(w.locator(".counter")).to_have_text("53 / 4000 characters")
    frame = frame_of(page)
    assert frame.evaluate("document.documentElement.scrollWidth") <= 360
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "offline-form-360.png"))
    w.get_by_test_id("offline-submit").click()
    sent = w.get_by_test_id("offline-sent")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text("We will answer by email to maija@example.fi.")
    expect(sent).to_be_focused()
    page.screenshot(path=str(SHOTS / "offline-sent-360.png"))
    [row] = stored(live)
    assert (row["name"], row["email"], row["reason"]) == ("Maija Meikäläinen", "maija@example.fi", "no_agent")
    assert row["body"] == "Milloin toimisto on auki?\nJa onko se auki lauantaina?"
    assert row["page"] == live.url + "/demo"  # no query string
    key = json.loads(frame.evaluate("localStorage.getItem('jutella-widget')"))["bk"]
    assert re.fullmatch(r"[0-9a-f-]{32,36}", key)
    # the confirmation is no dead end (issue 17): close the panel, or write another message
    sent.get_by_test_id("offline-close").click()
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
    launcher.click()
    expect(sent).to_be_visible()
    sent.get_by_test_id("offline-another").click()
    expect(form).to_be_visible()
    expect(w.get_by_test_id("offline-name")).to_be_focused()
    expect(w.get_by_test_id("offline-message")).to_have_value("")

    # the agent signs in (on the other server when there are two) and answers
    desk = browser_context_factory(viewport={"width": 1280, "height": 860})
    console, console_problems = console_page(live.agent_side, desk)
    item = console.get_by_test_id("offline-item")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-state", "new")
    expect(item).to_contain_text("Maija Meikäläinen")
    expect(console.get_by_test_id("offline-new-count")).to_have_text("1 new")
    item.click()
    expect(console).to_have_url(re.compile(r"#/offline/\d+$"))
    expect(console.get_by_test_id("offline-browser")).to_have_text(re.compile(r"^Firefox 128"))
    expect(console.get_by_test_id("offline-os")).to_have_text(re.compile(r"^Windows"))
    expect(console.get_by_test_id("offline-page")).to_have_text(live.url + "/demo")
    expect(console.get_by_test_id("offline-reason")).to_have_text("Nobody was online")
    expect(console.get_by_test_id("offline-body")).to_have_text("Milloin toimisto on auki?\nJa onko se auki lauantaina?")
    expect(console.get_by_test_id("offline-assignee")).to_contain_text("Not assigned")

    console.get_by_test_id("offline-reply-input").fill("Hei Maija,\n\ntoimisto on auki arkisin 9–15.")
    console.get_by_test_id("offline-reply-send").click()
    delivery = console.get_by_test_id("offline-delivery")
    expect(delivery).to_have_attribute("data-delivery", "sent", timeout=15_000)
    expect(delivery).to_contain_text("Sent")
    expect(console.get_by_test_id("offline-reply-input")).to_have_value("")
    expect(item).to_have_attribute("data-state", "answered")
    expect(console.get_by_test_id("offline-assignee")).to_contain_text("Assigned to you")  # who answered
    expect(console.get_by_test_id("offline-new-count")).to_be_hidden()
    mails = smtp.wait_for(1)
    assert outbox_idle(live)  # and nothing more is to be sent
    assert len(smtp.messages) == 1
    rcpt, msg = mails[0]
    assert rcpt == ["maija@example.fi"]
    text = msg.get_body(("plain",)).get_content()
    assert "toimisto on auki arkisin 9–15." in text
    assert "> Milloin toimisto on auki?" in text and "> Ja onko se auki lauantaina?" in text

    # assignment, close and reopen
    console.get_by_test_id("offline-unassign").click()
    expect(console.get_by_test_id("offline-assignee")).to_contain_text("Not assigned")
    console.get_by_test_id("offline-assign-me").click()
    expect(console.get_by_test_id("offline-assignee")).to_contain_text("Assigned to you")
    console.get_by_test_id("offline-close").click()
    expect(item).to_have_attribute("data-state", "closed")
    expect(console.get_by_test_id("offline-reply-input")).to_be_disabled()
    console.get_by_test_id("offline-reopen").click()
    expect(item).to_have_attribute("data-state", "answered")
    expect(console.get_by_test_id("offline-reply-input")).to_be_enabled()
    # two more arrive while the inbox is open: live, new ones first
    for name, text in (("Matti Virtanen", "Saanko kuitin sähköpostiin?"),
                       ("Liisa Korhonen", "Is the office open on Saturdays?")):
        clock.advance(minutes=7)
        assert live.client().post("/api/v1/public/offline-messages", json={
            "name": name, "email": "someone@example.fi", "message": text, "lang": "en",
            "page": "https://jamko.example/yhteystiedot", "browser_key": name}).status_code == 201
    expect(item).to_have_count(3)
    expect(item.first).to_contain_text("Liisa Korhonen")
    expect(item.first).to_have_attribute("data-state", "new")
    expect(item.last).to_have_attribute("data-state", "answered")
    expect(console.get_by_test_id("offline-new-count")).to_have_text("2 new")
    console.evaluate("window.scrollTo(0, 0)")
    console.screenshot(path=str(SHOTS / "offline-inbox-1280.png"))
    assert axe_problems(console) == []
    problems.check()
    console_problems.check()


# -- 2. SMTP is down while replying ----------------------------------------------------------------
def test_smtp_down_the_reply_shows_queued_then_sent(live, smtp, clock, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    form = {"name": "Maija", "email": "maija@example.fi", "message": "Onko toimisto auki?", "lang": "fi",
            "page": "https://jamko.example/yhteystiedot", "browser_key": "b-1"}
    assert live.client().post("/api/v1/public/offline-messages", json=form).status_code == 201
    desk = browser_context_factory(viewport={"width": 1280, "height": 860})
    console, problems = console_page(live.agent_side, desk)
    console.get_by_test_id("offline-item").click()
    console.get_by_test_id("offline-reply-input").fill("On, 9–15.")
    console.get_by_test_id("offline-reply-send").click()
    delivery = console.get_by_test_id("offline-delivery")
    expect(delivery).to_have_attribute("data-delivery", "queued")
    expect(delivery).to_contain_text("Queued for sending")
    expect(delivery).to_contain_text("Will try again", timeout=15_000)  # the failed attempt, live
    assert outbox_idle(live)  # the next attempt waits for its backoff
    assert smtp.messages == []

    smtp.start()
    clock.advance(minutes=5)  # past the backoff
    expect(delivery).to_have_attribute("data-delivery", "sent", timeout=15_000)  # live, no reload
    assert len(smtp.wait_for(1)) == 1
    assert outbox_idle(live)  # nothing more is to be sent
    assert len(smtp.messages) == 1
    assert smtp.messages[0][0] == ["maija@example.fi"]
    problems.check()


def test_a_failed_mail_can_be_sent_again(live, smtp, browser_context_factory):
    smtp.start()
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    form = {"name": "Maija", "email": "maija@example.fi", "message": "Hei", "lang": "en", "browser_key": "b-1"}
    assert live.client().post("/api/v1/public/offline-messages", json=form).status_code == 201
    desk = browser_context_factory(viewport={"width": 1280, "height": 860})
    console, problems = console_page(live.agent_side, desk)
    console.get_by_test_id("offline-item").click()
    console.get_by_test_id("offline-reply-input").fill("Hello!")
    console.get_by_test_id("offline-reply-send").click()
    expect(console.get_by_test_id("offline-delivery")).to_have_attribute("data-delivery", "sent", timeout=15_000)
    smtp.wait_for(1)

    async def fail_it():  # as if the server had refused it for good
        async with live.rt.db.transaction() as s:
            await s.execute(update(MailOutbox).values(state="failed", last_error="550 mailbox unavailable"))
    live.call(fail_it)
    console.reload()
    delivery = console.get_by_test_id("offline-delivery")
    expect(delivery).to_have_attribute("data-delivery", "failed")
    expect(delivery).to_contain_text("Not delivered (550 mailbox unavailable)")
    console.get_by_test_id("offline-retry").click()
    expect(delivery).to_have_attribute("data-delivery", "sent", timeout=15_000)
    assert len(smtp.wait_for(2)) == 2
    expect(console.get_by_test_id("offline-retry")).to_have_count(0)
    problems.check()


def test_a_mail_the_server_refuses_shows_refused_live_and_can_be_sent_again(live, smtp, browser_context_factory):
    """A real 550 at RCPT (issue 16, item 9): the reply's badge turns to
    "Refused by the mail server" with the server's reason as the socket
    tells it, never "Sent"."""
    smtp.refused.add("maija@example.fi")
    smtp.start()
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    form = {"name": "Maija", "email": "maija@example.fi", "message": "Hei", "lang": "en", "browser_key": "b-1"}
    assert live.client().post("/api/v1/public/offline-messages", json=form).status_code == 201
    desk = browser_context_factory(viewport={"width": 1280, "height": 860})
    console, problems = console_page(live.agent_side, desk)
    console.get_by_test_id("offline-item").click()
    console.get_by_test_id("offline-reply-input").fill("Hello!")
    console.get_by_test_id("offline-reply-send").click()
    delivery = console.get_by_test_id("offline-delivery")
    expect(delivery).to_have_attribute("data-delivery", "refused", timeout=15_000)
    expect(delivery).to_contain_text("Refused by the mail server (550 5.1.1 mailbox unavailable)")
    assert smtp.messages == []
    smtp.refused.clear()
    console.get_by_test_id("offline-retry").click()
    expect(delivery).to_have_attribute("data-delivery", "sent", timeout=15_000)
    assert len(smtp.wait_for(1)) == 1
    problems.check()

# -- 3. from a chat: waited too long, or the last agent left ----------------------------------------
def test_a_chat_that_waited_too_long_offers_the_form(live, smtp, browser_context_factory):
    http, sock = online_agent(live)
    page, w, problems = open_widget(live, browser_context_factory())
    started = time.monotonic()
    chat_a_little(page, w, "Hei, laskussani on virhe.")
    expect(w.get_by_test_id("offline-form")).to_have_count(0)
    offer = w.locator(".offline-offer")
    expect(offer).to_contain_text("Nobody has answered yet. Leave a message and we will answer by email.",
                                  timeout=30_000)
    assert time.monotonic() - started >= 9  # offline_wait_seconds = 10
    expect(w.get_by_test_id("chat-input")).to_be_visible()  # offered, not forced
    offer.get_by_role("button", name="Leave a message").click()
    form = w.get_by_test_id("offline-form")
    expect(form).to_be_visible()
    expect(w.get_by_test_id("offline-name")).to_be_focused()
    expect(form).to_contain_text("The conversation so far is attached to your message.")
    fill_form(w, message="Laskun numero on 1234.")
    w.get_by_test_id("offline-submit").click()
    expect(w.get_by_test_id("offline-sent")).to_contain_text("maija@example.fi")
    expect(w.get_by_role("heading", name="The chat has ended.")).to_be_visible()  # not left waiting in the queue

    inbox = http.get("/api/v1/offline-messages").json()
    assert len(inbox) == 1 and inbox[0]["reason"] == "wait_timeout"
    detail = http.get(f"/api/v1/offline-messages/{inbox[0]['id']}").json()
    assert detail["body"].startswith("Laskun numero on 1234.")
    assert "Hei, laskussani on virhe." in detail["body"]  # the earlier conversation's text
    assert detail["conversation_id"] is not None and detail["visitor"]
    problems.check()
    sock.close()


# What the widget does when it is told that agents came or went is the page's; that the news crosses from
# the agent's server to the visitor's (pg+redis) is shown frame by frame by tests/integration/test_chat_ws.py
# test_the_widget_learns_whether_anyone_is_online (all three topologies): SQLite only here.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_last_agent_leaving_offers_the_form(live, smtp, browser_context_factory):
    http, sock = online_agent(live)
    page, w, problems = open_widget(live, browser_context_factory(locale="fi-FI"), path="/demo?lang=fi")
    chat_a_little_fi = w.get_by_test_id("chat-input")
    chat_a_little_fi.fill("Tarvitsen apua kurssi-ilmoittautumisessa.")
    chat_a_little_fi.press("Enter")
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text(re.compile("Lähetetty|Nähty"))
    expect(w.locator(".offline-offer")).to_have_count(0)

    sock.send(type="presence", state="away")  # the last agent goes
    offer = w.locator(".offline-offer")
    expect(offer).to_contain_text("Voit myös jättää viestin, niin vastaamme sähköpostitse.")
    expect(w.get_by_test_id("chat-input")).to_be_visible()
    offer.get_by_role("button", name="Jätä viesti").click()
    form = w.get_by_test_id("offline-form")
    expect(form).to_contain_text("Tähänastinen keskustelu liitetään viestiisi.")
    # "Back to the chat" keeps what was typed
    w.get_by_test_id("offline-name").fill("Matti")
    form.get_by_role("button", name="Takaisin keskusteluun").click()
    expect(form).to_be_hidden()
    offer.get_by_role("button", name="Jätä viesti").click()
    expect(w.get_by_test_id("offline-name")).to_have_value("Matti")
    fill_form(w, name="Matti Virtanen", email="matti@example.fi", message="Ottakaa yhteyttä sähköpostitse.")
    w.get_by_test_id("offline-submit").click()
    expect(w.get_by_test_id("offline-sent")).to_contain_text("Vastaamme sähköpostitse osoitteeseen matti@example.fi.")

    inbox = http.get("/api/v1/offline-messages").json()
    assert [m["reason"] for m in inbox] == ["agents_left"]
    detail = http.get(f"/api/v1/offline-messages/{inbox[0]['id']}").json()
    assert "Ottakaa yhteyttä sähköpostitse." in detail["body"]
    assert "Tarvitsen apua kurssi-ilmoittautumisessa." in detail["body"]
    assert detail["conversation_id"] is not None and detail["language"] == "fi"
    problems.check()
    sock.close()


# What the widget does when it is told that agents came or went is the page's; that the news crosses from
# the agent's server to the visitor's (pg+redis) is shown frame by frame by tests/integration/test_chat_ws.py
# test_the_widget_learns_whether_anyone_is_online (all three topologies): SQLite only here.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_agent_coming_online_is_offered_not_forced(live, smtp, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    page, w, problems = open_widget(live, browser_context_factory())
    expect(w.get_by_test_id("offline-form")).to_be_visible()
    w.get_by_test_id("offline-name").fill("Maija")
    http = sign_in(live, "aino@example.org")
    sock, _ = agent(live, http)
    sock.send(type="presence", state="online")
    form = w.get_by_test_id("offline-form")
    expect(form).to_contain_text("Customer service is available now.")
    expect(form).to_be_visible()  # still there, with what was typed
    expect(w.get_by_test_id("offline-name")).to_have_value("Maija")
    form.get_by_role("button", name="Chat instead").click()
    expect(form).to_be_hidden()
    expect(w.get_by_test_id("chat-input")).to_be_focused()
    problems.check()
    sock.close()


# -- 4. bad input -------------------------------------------------------------------------------------
def field_error(w, name):
    """The field's error message, found the way a screen reader finds it."""
    box = w.get_by_test_id(f"offline-{name}")
    expect(box).to_have_attribute("aria-invalid", "true")
    ids = box.get_attribute("aria-describedby").split()
    errors = [w.locator(f"#{i}") for i in ids if i.endswith("-error")]
    assert len(errors) == 1
    return errors[0]


@pytest.mark.parametrize("backend", ["sqlite"])  # the form's validation: no fan-out, no dialect
def test_bad_input_is_explained_beside_the_field_and_nothing_is_stored(live, smtp, browser_context_factory):
    ctx = browser_context_factory()
    page, w, problems = open_widget(live, ctx)
    problems.allow(r"status of (400|429)")
    name, email, message = (w.get_by_test_id(f"offline-{f}") for f in ("name", "email", "message"))
    submit = w.get_by_test_id("offline-submit")
    expect(w.get_by_test_id("offline-form")).to_be_visible()

    # a missing name
    email.fill("maija@example.fi")
    message.fill("Hei!")
    submit.click()
    expect(field_error(w, "name")).to_have_text("Enter your name.")
    expect(name).to_be_focused()
    expect(email).to_have_value("maija@example.fi")
    expect(message).to_have_value("Hei!")
    name.fill("Maija")
    expect(name).not_to_have_attribute("aria-invalid", "true")  # typing clears it

    # a malformed email
    email.fill("maija@example")
    submit.click()
    expect(field_error(w, "email")).to_have_text("Enter a valid email address, like name@example.fi.")
    expect(email).to_have_value("maija@example")
    expect(name).to_have_value("Maija")
    assert axe_problems(frame_of(page)) == []
    email.fill("maija@example.fi")

    # 4,001 characters
    message.fill("x" * 4001)
    expect(w.locator(".counter")).to_have_text("4001 / 4000 characters")
    assert w.locator(".counter").evaluate("e => e.classList.contains('over')")
    submit.click()
    expect(field_error(w, "message")).to_have_text("The message is too long (at most 4,000 characters).")
    expect(message).to_have_value("x" * 4001)

    # a line break in the name: a single-line input drops it as soon as a
    # script sets it (so it never reaches the server from the field), ...
    message.fill("Hei!")
    frame = frame_of(page)
    assert frame.evaluate("(() => { const i = document.querySelector('[data-testid=offline-name]');"
                          " i.value = 'Maija\\nMeikäläinen'; return i.value })()") == "MaijaMeikäläinen"
    # ... another control character stays, and the widget refuses it ...
    frame.evaluate("document.querySelector('[data-testid=offline-name]').value = 'Maija\\tMeikäläinen'")
    submit.click()
    expect(field_error(w, "name")).to_have_text("The name cannot contain line breaks or control characters.")
    # ... and a request that carries a line break anyway gets the server's word, beside the field
    name.fill("Maija Meikäläinen")

    def inject(route):
        body = json.loads(route.request.post_data)
        body["name"] = "Maija\nBcc: everyone@example.org"
        route.continue_(post_data=json.dumps(body))
    ctx.route("**/api/v1/public/offline-messages", inject)
    submit.click()
    expect(field_error(w, "name")).to_have_text("The name cannot contain line breaks or control characters.")
    expect(name).to_have_value("Maija Meikäläinen")
    ctx.unroute("**/api/v1/public/offline-messages")

    # the server's messages come in the widget's language
    fi = browser_context_factory(locale="fi-FI")
    fi_page, fi_w, fi_problems = open_widget(live, fi, path="/demo?lang=fi")
    fi_problems.allow(r"status of 400")
    fi.route("**/api/v1/public/offline-messages", inject)
    fill_form(fi_w)
    fi_w.get_by_test_id("offline-submit").click()
    expect(field_error(fi_w, "name")).to_have_text("Nimessä ei voi olla rivinvaihtoja eikä ohjausmerkkejä.")
    fi_problems.check()

    # the honeypot, filled in by a robot, is refused
    frame.evaluate("document.querySelector('input[name=website]').value = 'http://spam.example'")
    submit.click()
    expect(w.locator("#off-error")).to_have_text("This message could not be sent.")
    expect(name).to_have_value("Maija Meikäläinen")
    assert stored_count(live) == 0

    # a flood from one browser: the fifth stored message is the last (the first four by script)
    frame.evaluate("document.querySelector('input[name=website]').value = ''")
    key = json.loads(frame.evaluate("localStorage.getItem('jutella-widget')"))["bk"]
    for i in range(4):
        status = frame.evaluate("""(key) => fetch('/api/v1/public/offline-messages', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'Maija', email:
            'maija@example.fi', message: 'flood', browser_key: key})}).then(r => r.status)""", key)
        assert status == 201, i
    submit.click()
    expect(w.get_by_test_id("offline-sent")).to_be_visible()
    assert stored_count(live) == 5
    page.reload()
    page.get_by_test_id("launcher").click()
    fill_form(w, message="Vielä yksi.")
    submit.click()
    refusal = w.locator("#off-error")
    expect(refusal).to_have_text(re.compile(r"^Too many messages from this browser\. Try again in \d+ minutes\.$"))
    assert refusal.evaluate("e => e.compareDocumentPosition(document.querySelector('[data-testid=offline-submit]'))"
                            " & Node.DOCUMENT_POSITION_FOLLOWING")  # above the button
    expect(w.get_by_test_id("offline-message")).to_have_value("Vielä yksi.")
    assert stored_count(live) == 5
    assert axe_problems(frame_of(page)) == []

    # ... while another browser still gets through
    other_page, other, other_problems = open_widget(live, browser_context_factory())
    fill_form(other, name="Matti", email="matti@example.fi", message="Hei vaan.")
    other.get_by_test_id("offline-submit").click()
    expect(other.get_by_test_id("offline-sent")).to_be_visible()
    assert stored_count(live) == 6
    problems.check()
    other_problems.check()


# -- 5. hostile text ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])  # how the inbox renders text: no fan-out, no dialect
def test_hostile_text_stays_text_in_the_inbox(live, smtp, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    desk = browser_context_factory(viewport={"width": 1280, "height": 860})
    console, console_problems = console_page(live.agent_side, desk)
    console.get_by_test_id("presence").select_option("away")  # the console is open, nobody on duty
    deadline = time.monotonic() + 10
    while live.rt.presence.any_online() and time.monotonic() < deadline:
        time.sleep(0.05)
    expect(console.get_by_test_id("offline-item")).to_have_count(0)

    page, w, problems = open_widget(live, browser_context_factory())
    fill_form(w, name=HOSTILE, email="maija@example.fi", message=f"{HOSTILE}\n<script>alert(2)</script>")
    w.get_by_test_id("offline-submit").click()
    expect(w.get_by_test_id("offline-sent")).to_be_visible()

    item = console.get_by_test_id("offline-item")
    expect(item).to_have_count(1)  # live, without a reload
    expect(item).to_have_attribute("data-state", "new")
    expect(item.locator(".offline-name")).to_have_text(HOSTILE)
    item.click()
    expect(console.locator(".offline-title")).to_have_text(HOSTILE)
    expect(console.get_by_test_id("offline-body")).to_have_text(f"{HOSTILE}\n<script>alert(2)</script>")
    assert console.locator(".offline-view img, .offline-view script").count() == 0
    console.wait_for_timeout(500)
    console_problems.check()
    problems.check()
