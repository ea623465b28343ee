"""The pseudo-locale test (issue 17, docs/i18n.md): every string of the
catalogues is served to the console and the widget as "⟦Ŝîgñ îñ⟧" (the
catalogue's Finnish replaced, on the fly, by the msgid wrapped and
accented), then Chromium walks every console view and every widget state and
fails on any visible text, placeholder or accessible name that is not
pseudo-localised: a string that bypassed the catalogue (hard-coded, built
from a code, missing from fi/sv). Allowed bare: user data, numbers, dates,
email addresses, the product name and the languages' own names.

One live server, one browser context per side, the views in one walk."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from playwright.sync_api import Page, expect

from jutella import i18n
from jutella.accounts.scopes import SCOPES
from jutella.chat import actions as chat

from tests.helpers import PASSWORD, add_staff, put_on_duty, sign_in
from tests.integration.test_privacy import EMAIL, NAME, SECRET_TEXT, STUDENT_NO, scenario

pytestmark = pytest.mark.browser

ACCENTED = str.maketrans("aceinosuyzACEINOSUYZ", "áçéîñöšûýžÁÇÉÎÑÖŠÛÝŽ")
PLACEHOLDER = re.compile(r"(\{\w+\})")
SHOTS = Path("/tmp/shots-i18n")


def pseudo(text: str) -> str:
    """'Sign in {name}' -> '⟦Šîgñ îñ {name}⟧': placeholders kept, the rest accented, all wrapped."""
    return "⟦" + "".join(p if PLACEHOLDER.fullmatch(p) else p.translate(ACCENTED)
                         for p in PLACEHOLDER.split(text)) + "⟧"


@pytest.fixture
def pseudo_finnish(tmp_path: Path) -> Iterator[None]:
    """The server's Finnish catalogues replaced by pseudo ones (every domain, every msgctxt) while
    the test runs: i18n.LOCALE_DIR points at them and the caches made from the real ones are cleared."""
    real = i18n.LOCALE_DIR
    for source in sorted((real / "fi" / "LC_MESSAGES").glob("*.po")):
        with source.open("rb") as fh:
            po = read_po(fh, locale="fi")
        out = Catalog(locale="fi", domain=source.stem)
        for m in po:
            if m.id and isinstance(m.id, str):
                out.add(m.id, pseudo(m.id), context=m.context)
        target = tmp_path / "fi" / "LC_MESSAGES" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            write_po(fh, out)

    widget = importlib.import_module("jutella.web.widget")  # (jutella.web's "widget" is a route function)

    def clear() -> None:
        for cached in (i18n.catalog, widget.frame_strings, widget._loader):
            cached.cache_clear()

    i18n.LOCALE_DIR = tmp_path
    clear()
    try:
        yield
    finally:
        i18n.LOCALE_DIR = real
        clear()


# What may stand bare on a page: no letters at all (numbers, ids, times, punctuation); a date
# or time as Finnish Chromium writes it; an email address; an address or path; names of things.
BARE = [re.compile(p) for p in (
    r"[\W\d_]*",
    r"[\d.:/ –-]*(klo)?[\d.:/ –-]*",
    r"[\w.+-]+@[\w.-]+",
    r"(https?://|/)\S*",
    r"v-[\w-]+",  # a visitor's public id
    r"\w+ \d{1,2}\. \w+ 20\d\d( klo [\d.]+)?",  # a long Finnish date (a title), written by Intl
)]
FIXED = {"jutella", "Suomi", "English", "Svenska", "JSON", "HTML", "CSV", "PDF", "TOTP", "CSRF"}

SCAN = """(root) => {
  const out = [];
  const seen = (el) => el && (el.closest("select") ? el.closest("select").checkVisibility()
                                                     : el.checkVisibility({ visibilityProperty: true }));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest("script, style, template, noscript, [aria-hidden=true]")) continue;
    if (seen(el)) out.push(text);
  }
  for (const el of root.querySelectorAll("[placeholder], [aria-label], [title]")) {
    if (!seen(el) || el.closest("[aria-hidden=true]")) continue;
    for (const name of ["placeholder", "aria-label", "title"]) {
      const value = (el.getAttribute(name) || "").trim();
      if (value) out.push(`${name}=${value}`);
    }
  }
  return out;
}"""


class Walk:
    """Collects, view by view, what a page shows that the catalogue did not make."""

    def __init__(self, data: list[str]) -> None:
        self.data = [d for d in data if d]
        self.bare: dict[str, set[str]] = {}

    def allowed(self, text: str) -> bool:
        text = text.split("=", 1)[1] if re.match(r"^(placeholder|aria-label|title)=", text) else text
        if self.is_data(text):
            return True
        # what the catalogue made goes (innermost first: a translated text filled into another)
        while True:
            shorter = re.sub(r"⟦[^⟦⟧]*⟧", "·", text)
            if shorter == text:
                break
            text = shorter
        # a translated text cut in two by an element (its data in a <strong>): each half bracketed once
        text = re.sub(r"⟦[^⟧]*$", "·", re.sub(r"^[^⟦]*⟧", "·", text))
        # what is left: data, joined by the console's separators, or a snippet cut short with "…"
        parts = [p.strip(" …,;:()") for p in re.split(r"\s*·\s*|…|, ", text)]
        return all(not p or p in FIXED or any(b.fullmatch(p) for b in BARE) or self.is_data(p) for p in parts)

    def is_data(self, text: str) -> bool:
        """A piece of user data: one whole, or (a snippet, a highlighted part) 6 characters or more of one."""
        return text in self.data or (len(text) >= 6 and any(text in d for d in self.data))

    def check(self, where: str, scope) -> None:
        """``scope``: a page or frame (its body), or a locator (its shadow root, or its parent)."""
        if hasattr(scope, "evaluate_all"):
            found = scope.evaluate(f"(el) => ({SCAN})(el.getRootNode() instanceof ShadowRoot ? el.getRootNode()"
                                   " : el.parentElement)")
        else:
            found = scope.evaluate(f"() => ({SCAN})(document.body)")
        bad = {t for t in found if not self.allowed(t)}
        if bad:
            self.bare.setdefault(where, set()).update(bad)

    def assert_clean(self) -> None:
        listing = "\n".join(f"{where}: {sorted(texts)}" for where, texts in self.bare.items())
        assert not self.bare, "text that bypassed the catalogue:\n" + listing


def nav(page: Page, view: str):
    return page.locator(f"nav.sidenav a[href='#/{view}']")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"pseudo-{name}.png"), full_page=True)


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


def test_every_console_view_is_pseudo_localised(live, smtp, pseudo_finnish, browser_context_factory):
    conv, mid, chair = scenario(live, smtp)
    boss_id = add_staff(live, "boss@example.org", ["admin", "agent", "privacy"], name="Boss Person")
    boss = sign_in(live, "boss@example.org")
    assert boss.post("/api/v1/canned", json={"shortcut": "kuitti", "language": "fi",
                                             "body": "Kuitti lähtee postissa."}).status_code == 201
    assert boss.post("/api/v1/departments", json={"name": "Jäsenpalvelu"}).status_code == 201
    assert chair.post("/api/v1/privacy/requests", json={"kind": "access",
                                                       "verified_how": "Kysytty puhelimessa"}).status_code < 300
    assert boss.post("/api/v1/tokens", json={"name": "Raporttinäkymä", "scopes": ["reports:read"]}).status_code == 201
    settings = live.rt.settings
    register = settings.notice.model_dump()
    data = [EMAIL, NAME, STUDENT_NO, SECRET_TEXT, "Kiitos, tarkistan asian.", "Saisinko kuitin jäsenmaksusta?",
            "Kuitti tulee postissa.", "Kuitti lähtee postissa.", "kuitti", "Jäsenpalvelu", "Kysytty puhelimessa",
            "Aino", "Chair", "Boss Person", "Chrome 124", "HeadlessChrome", "Linux", "Sähköpostini on", "<img src=x onerror=alert(1)>",
            f"Hei, sähköpostini on {EMAIL} ja opiskelijanumeroni {STUDENT_NO}. {SECRET_TEXT}. "
            "<img src=x onerror=alert(1)>", *_strings(register),
            f'<script src="{live.url}/widget.js" async></script>',  # the embed snippet is code, not words
            "Raporttinäkymä", *SCOPES]  # scope names are the API's codes (jutella token create --scope)
    walk = Walk(data)

    context = browser_context_factory(locale="fi-FI", viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "jutella_lang", "value": "fi", "url": live.url}])
    page = context.new_page()
    page.goto(live.url + "/console")
    expect(page.get_by_test_id("login-email")).to_be_visible()
    walk.check("sign-in", page)
    page.get_by_test_id("login-email").fill("boss@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()

    # conversations: the list, then the chat open with its panels
    nav(page, "conversations").click()
    item = page.get_by_test_id("conversation").first
    expect(item).to_be_visible()
    walk.check("conversations", page)
    item.click()
    expect(page.get_by_test_id("message").first).to_be_visible()
    walk.check("conversation", page)
    page.get_by_test_id("transfer-button").click()
    expect(page.get_by_test_id("transfer-dialog")).to_be_visible()
    walk.check("conversation: transfer", page)
    shot(page, "conversation")

    nav(page, "offline").click()
    expect(page.get_by_test_id("offline-item").first).to_be_visible()
    walk.check("offline messages", page)
    page.get_by_test_id("offline-item").first.click()
    expect(page.get_by_test_id("offline-body")).to_be_visible()
    walk.check("offline message", page)

    # every view the navigation offers is walked: a new view without an entry here fails
    listed = set(page.locator("nav.sidenav a").evaluate_all("els => els.map(a => a.getAttribute('href').slice(2))"))
    walked = {"conversations", "offline", "canned", "accounts", "departments", "embed", "reports", "tokens", "webhooks",
              "audit",
              "account", "register"}
    assert listed <= walked, f"console views this test does not walk: {sorted(listed - walked)}"
    for view, ready in (("canned", "canned-table"), ("accounts", "accounts-table"),
                        ("departments", "department"), ("embed", "embed-snippet"), ("reports", "report-chart"),
                        ("tokens", "token-row"),
                        ("webhooks", "webhook-form"),
                        ("audit", "audit-table"),
                        ("account", "totp-begin")):
        nav(page, view).click()
        expect(page.get_by_test_id(ready).first).to_be_visible()
        walk.check(view, page)
        shot(page, view)

    # the register: a search with its results and actions, the requests, the record of processing
    nav(page, "register").click()
    page.get_by_test_id("pv-query").fill(EMAIL)
    page.get_by_test_id("pv-find").click()
    expect(page.get_by_test_id("pv-result").first).to_be_visible()
    walk.check("register: search", page)
    for opener in page.get_by_test_id("pv-open").all():  # each record in full, where it is rectified
        opener.click()
    expect(page.get_by_test_id("pv-chat-message").first).to_be_visible()
    expect(page.get_by_test_id("pv-offline-body").first).to_be_visible()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    walk.check("register: records in full", page)
    shot(page, "register-find")
    for tab, ready in (("requests", "pv-request-table"), ("record", "pv-record")):
        page.goto(f"{live.url}/console#/register/{tab}")
        expect(page.get_by_test_id(ready).first).to_be_visible()
        expect(page.locator("[aria-busy=true]")).to_have_count(0)
        walk.check(f"register: {tab}", page)
        shot(page, f"register-{tab}")
    # the erase step and its receipt (the counts per kind)
    page.goto(f"{live.url}/console#/register")
    page.get_by_test_id("pv-query").fill(EMAIL)
    page.get_by_test_id("pv-find").click()
    expect(page.get_by_test_id("pv-result").first).to_be_visible()
    page.get_by_test_id("pv-erase").click()
    walk.check("register: erase", page)
    page.get_by_test_id("pv-erase-word").fill(pseudo("ERASE"))
    page.get_by_test_id("pv-erase-confirm").click()
    expect(page.get_by_test_id("pv-erased-counts")).to_be_visible()
    page.locator("[data-testid=pv-erased-ids] summary").click()
    walk.check("register: erased", page)
    shot(page, "register-erased")
    walk.assert_clean()
    del boss_id


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if value is not None else []


def widget(page: Page):
    return page.frame_locator("iframe[data-jutella=frame]")


def frame_of(page: Page):
    for _ in range(200):
        for frame in page.frames:
            if "/widget/frame" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError("the widget frame never loaded")


def test_every_widget_state_is_pseudo_localised(live, smtp, pseudo_finnish, browser_context_factory):
    """The launcher; the chat: ready, a message sent and waiting, the agent's answer, ended with its
    rating card, rated; with nobody on duty: the email form, and its thanks."""
    smtp.start()
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    walk = Walk(["Aino", "Hei, tarvitsen apua.", "Autan mielelläni.", "Matti Meikäläinen", "matti@example.fi",
                 "Milloin toimisto on auki?", "Hyvää palvelua"])

    # nobody on duty: the email form, then its thanks (a phone-sized screen)
    other = browser_context_factory(locale="fi-FI", viewport={"width": 390, "height": 844}).new_page()
    other.goto(live.url + "/demo?lang=fi")
    other.get_by_test_id("launcher").click()
    w = widget(other)
    expect(w.get_by_test_id("offline-form")).to_be_visible()
    frame = frame_of(other)
    walk.check("widget: email form", frame)
    w.get_by_test_id("offline-name").fill("Matti Meikäläinen")
    w.get_by_test_id("offline-email").fill("matti@example.fi")
    w.get_by_test_id("offline-message").fill("Milloin toimisto on auki?")
    w.get_by_test_id("offline-submit").click()
    expect(w.get_by_test_id("offline-sent")).to_be_visible()
    walk.check("widget: email form sent", frame)
    other.screenshot(path=str(SHOTS / "pseudo-widget-offline-sent.png"))

    put_on_duty(live, aino_id, "pseudo-test")
    context = browser_context_factory(locale="fi-FI", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(live.url + "/demo?lang=fi")
    launcher = page.get_by_test_id("launcher")
    expect(launcher).to_be_visible()
    walk.check("launcher", launcher)
    launcher.click()
    w = widget(page)
    expect(w.get_by_test_id("chat-input")).to_be_visible()
    frame = frame_of(page)
    walk.check("widget: ready", frame)
    w.get_by_test_id("chat-input").fill("Hei, tarvitsen apua.")
    w.get_by_test_id("chat-input").press("Enter")
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text(re.compile(pseudo("Sent")))  # stored
    walk.check("widget: waiting", frame)

    async def newest() -> int:
        from sqlalchemy import func, select

        from jutella.store.models import Conversation
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.max(Conversation.id)))).scalar_one()
    conv = live.call(newest)
    live.call(chat.accept, live.rt, agent_id=aino_id, conversation_id=conv)
    live.call(chat.post_agent_message, live.rt, agent_id=aino_id, conversation_id=conv, client_id="p1",
              body="Autan mielelläni.")
    expect(w.get_by_text("Autan mielelläni.")).to_be_visible()
    walk.check("widget: answered", frame)
    live.call(chat.close, live.rt, conversation_id=conv, by="agent", agent_id=aino_id)
    expect(w.get_by_test_id("rating")).to_be_visible()
    walk.check("widget: ended", frame)
    w.get_by_test_id("rating-star").nth(4).click()
    w.get_by_test_id("rating-submit").click()
    expect(w.get_by_test_id("rating-thanks")).to_be_visible()
    walk.check("widget: rated", frame)
    page.screenshot(path=str(SHOTS / "pseudo-widget-ended.png"))

    walk.assert_clean()
