"""The register's view in the staff console (#/register), in real Chromium
against a live server on SQLite and PostgreSQL: finding a real data subject
(a chat, an offline form, an emailed reply; tests/integration/test_privacy.py's
scenario), the access copies as downloads, redaction, erasure behind a typed
word, the request log's deadlines, and who sees the view at all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from jutella.i18n import catalog

from tests.helpers import PASSWORD, add_staff, sign_in
from tests.integration.test_privacy import EMAIL, NAME, STUDENT_NO, audit_count, scenario

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


class Watch:
    """What must never happen on the page: a dialog (an injected alert()), a
    script error, a Content-Security-Policy violation, an unexpected failed load."""

    def __init__(self) -> None:
        # the console asks who is signed in before anyone is (401); browsers ask for a favicon
        self.allowed = [re.compile(r"status of 401 .*/api/v1/me$"), re.compile(r"status of 404 .*/favicon\.ico$")]
        self.dialogs: list[str] = []
        self.problems: list[str] = []

    def attach(self, page: Page) -> Page:
        def dialog(d) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        def console(message) -> None:
            text = f"{message.text} @ {message.location.get('url', '')}"
            if "Content Security Policy" in message.text or (
                    message.type == "error" and not any(p.search(text) for p in self.allowed)):
                self.problems.append(text)

        page.on("dialog", dialog)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("console", console)
        return page

    def check(self) -> None:
        assert self.dialogs == []
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture
def watch():
    w = Watch()
    yield w
    w.check()


@pytest.fixture
def open_page(browser_context_factory, watch):
    def make(**kwargs) -> Page:
        kwargs.setdefault("viewport", {"width": 1280, "height": 900})
        return watch.attach(browser_context_factory(accept_downloads=True, **kwargs).new_page())
    return make


def sign_in_page(page: Page, live, email: str) -> None:
    page.goto(live.url + "/console")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()


def nav(page: Page, label: str):
    return page.locator("nav.sidenav").get_by_role("link", name=label, exact=True)


def shot(page: Page, name: str, backend: str) -> None:
    """The whole page; on a narrow screen also the first screenful, readable as it is."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"privacy-{name}-{backend}.png"), full_page=True)
    if page.viewport_size["width"] < 500:
        page.screenshot(path=str(SHOTS / f"privacy-{name}-top-{backend}.png"))


def find(page: Page, query: str) -> None:
    page.get_by_test_id("pv-query").fill(query)
    page.get_by_test_id("pv-find").click()


def result(page: Page, kind: str):
    return page.get_by_test_id("pv-result").and_(page.locator(f"[data-kind='{kind}']"))


def download(page: Page, testid: str, folder: Path) -> Path:
    """Click a download button; the file saved under the name the server gave it."""
    with page.expect_download() as info:
        page.get_by_test_id(testid).click()
    name = info.value.suggested_filename
    assert re.fullmatch(r"access-copy-\d{8}\.(json|html)", name), name
    target = folder / name
    info.value.save_as(target)
    return target


def select_in_textarea(area, part: str) -> None:
    """Select `part` in a read-only textarea as a person would with the mouse."""
    area.evaluate("""(el, part) => {
        const at = el.value.indexOf(part);
        el.focus();
        el.setSelectionRange(at, at + part.length);
        el.dispatchEvent(new Event("select"));
    }""", part)


# -- the person's whole way through the register --------------------------------------------------
def test_find_copy_redact_and_erase(live, smtp, open_page, browser_context_factory, backend, tmp_path):
    conv, mid, chair = scenario(live, smtp)
    page = open_page()
    sign_in_page(page, live, "chair@example.org")
    nav(page, "Register").click()
    expect(page.get_by_role("heading", name="Register", exact=True)).to_be_visible()

    # Find by email: the chat, the offline message and the email, the match highlighted.
    find(page, EMAIL)
    for kind in ("conversation", "offline_message", "email"):
        found = result(page, kind)
        expect(found).to_have_count(1)
        expect(found.locator("mark").first).to_have_text(EMAIL)
        expect(found.get_by_test_id("pv-select")).to_be_checked()
    expect(result(page, "conversation")).to_have_attribute("data-id", str(conv))
    expect(result(page, "offline_message")).to_have_attribute("data-id", str(mid))
    expect(page.get_by_test_id("pv-objection-email")).to_have_value(EMAIL)
    expect(page.get_by_test_id("pv-selected")).to_contain_text("chat conversations 1, offline messages 1, emails sent 1")
    shot(page, "find-1280", backend)
    page.set_viewport_size({"width": 360, "height": 780})
    shot(page, "find-360", backend)
    page.set_viewport_size({"width": 1280, "height": 900})

    # The access copy as JSON: everything the selection holds.
    copy = json.loads(download(page, "pv-copy-json", tmp_path).read_text(encoding="utf-8"))
    assert copy["schema"] == "jutella.subject-copy/1"
    assert [c["id"] for c in copy["conversations"]] == [conv]
    texts = [m["text"] for m in copy["conversations"][0]["messages"]]
    assert any(EMAIL in t and STUDENT_NO in t and HOSTILE in t for t in texts)
    assert [m["id"] for m in copy["offline_messages"]] == [mid]
    assert copy["offline_messages"][0]["name"] == NAME
    assert [e["to"] for e in copy["emails"]] == [EMAIL]
    expect(page.get_by_test_id("pv-actions").get_by_role("status")).to_contain_text("Downloaded access-copy-")

    # The printable copy, in Finnish: the markup is escaped and stays text when opened.
    page.get_by_test_id("pv-copy-lang").select_option("fi")
    html_path = download(page, "pv-copy-html", tmp_path)
    html = html_path.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert 'lang="fi"' in html
    printed_watch = Watch()
    printed_watch.allowed.append(re.compile(r"ERR_FILE_NOT_FOUND @ file:///static/"))  # the copy's stylesheet link
    printed = printed_watch.attach(browser_context_factory().new_page())
    printed.goto(html_path.resolve().as_uri())
    expect(printed.get_by_text(HOSTILE, exact=False).first).to_be_visible()
    assert printed.locator("img[src=x]").count() == 0
    printed.close()
    printed_watch.check()

    # Rectify the offline message's name.
    offline = result(page, "offline_message")
    offline.get_by_test_id("pv-open").click()
    name = offline.get_by_test_id("pv-offline-name")
    expect(name).to_have_value(NAME)
    name.fill("Liisa Korhonen")
    name.locator("xpath=ancestor::form").get_by_role("button", name="Save").click()
    expect(offline.get_by_role("status").filter(has_text="Liisa Korhonen")).to_be_visible()
    expect(name).to_have_value("Liisa Korhonen")

    # Redact the student number in the chat message.
    chat = result(page, "conversation")
    chat.get_by_test_id("pv-open").click()
    expect(chat.get_by_test_id("pv-chat-message").filter(has_text=STUDENT_NO)).to_have_count(1)
    message = chat.get_by_test_id("pv-chat-message").first  # the visitor's first message
    expect(message).to_contain_text(STUDENT_NO)
    expect(message).to_contain_text(HOSTILE)  # the markup in the message is text, not an element
    assert page.locator(".pv-view img").count() == 0
    message.get_by_test_id("pv-correct").click()
    area = message.get_by_test_id("pv-span-text")
    expect(area).to_have_attribute("readonly", "")
    select_in_textarea(area, STUDENT_NO)
    expect(message.get_by_test_id("pv-picked")).to_have_text(f"Selected: “{STUDENT_NO}”")
    shot(page, "redact-1280", backend)
    message.get_by_test_id("pv-redact").click()
    corrected = message.get_by_test_id("pv-new-value")
    expect(corrected).to_contain_text("opiskelijanumeroni [removed].")
    expect(corrected).not_to_contain_text(STUDENT_NO)
    expect(area).not_to_have_value(re.compile(STUDENT_NO))
    expect(message.locator(".pv-text")).not_to_contain_text(STUDENT_NO)
    # the search's snippet held the old text: it is replaced by a note
    expect(chat.get_by_test_id("pv-stale")).to_be_visible()
    expect(chat.locator(".pv-matches")).not_to_contain_text(STUDENT_NO)

    assert audit_count(live, "subject.view") == 2  # opening the form and the chat is audited
    assert audit_count(live, "subject.rectify") == 2

    # A new copy no longer holds the student number, and carries the corrected name.
    copy = json.loads(download(page, "pv-copy-json", tmp_path).read_text(encoding="utf-8"))
    assert STUDENT_NO not in json.dumps(copy)
    assert copy["offline_messages"][0]["name"] == "Liisa Korhonen"
    assert chair.get("/api/v1/privacy/subjects", params={"q": STUDENT_NO}).json() == []

    # Erasure needs the typed word before the final button works.
    page.get_by_test_id("pv-erase").click()
    panel = page.get_by_test_id("pv-erase-panel")
    expect(panel.get_by_role("heading", name="Erase the selected records?")).to_be_focused()
    counts = panel.get_by_test_id("pv-erase-counts")
    expect(counts).to_contain_text("Chat conversations, with all their messages: 1")
    expect(counts).to_contain_text("Offline messages, with their replies and the emails about them: 1")
    expect(counts).to_contain_text("Emails sent: 1")
    final = panel.get_by_test_id("pv-erase-confirm")
    expect(final).to_be_disabled()
    panel.get_by_label("To confirm, type ERASE").fill("erase it")
    expect(final).to_be_disabled()
    panel.get_by_label("To confirm, type ERASE").fill("ERASE")
    expect(final).to_be_enabled()
    shot(page, "erase-1280", backend)
    page.set_viewport_size({"width": 360, "height": 780})
    shot(page, "erase-360", backend)
    page.set_viewport_size({"width": 1280, "height": 900})
    final.click()
    erased = page.get_by_test_id("pv-erased-counts")
    expect(erased.locator("[data-count=conversations]")).to_have_text("1")
    expect(erased.locator("[data-count=offline_messages]")).to_have_text("1")
    expect(erased.locator("[data-count=emails]")).to_have_text("1")
    ids = page.get_by_test_id("pv-erased-ids")
    ids.locator("summary").click()
    expect(ids.locator("[data-ids=conversations]")).to_have_text(f"Chat conversations: {conv}")
    expect(page.get_by_test_id("pv-result")).to_have_count(0)
    shot(page, "erased-1280", backend)

    # Nothing is found any more, in the console or through the API.
    find(page, EMAIL)
    expect(page.get_by_test_id("pv-summary")).to_have_text(f"Nothing found for “{EMAIL}”.")
    expect(page.get_by_test_id("pv-result")).to_have_count(0)
    assert chair.get("/api/v1/privacy/subjects", params={"q": EMAIL}).json() == []
    assert chair.get("/api/v1/privacy/subjects", params={"q": "Liisa"}).json() == []


def test_related_records_are_marked_and_unchecked_and_flags_show(live, smtp, open_page, backend):
    """Found by the name: the offline form (and the mail to that name) match
    directly; another form from the same address, signed differently, is
    related and starts unchecked. Restriction and objection show on the records."""
    conv, mid, chair = scenario(live, smtp)
    r = live.client().post("/api/v1/public/offline-messages", json={
        "name": "L. V.", "email": EMAIL.upper(), "message": "Toinen kysymys", "lang": "fi"})
    assert r.status_code == 201
    page = open_page()
    sign_in_page(page, live, "chair@example.org")
    page.goto(live.url + "/console#/register")
    find(page, NAME.upper())
    direct = result(page, "offline_message").and_(page.locator(f"[data-id='{mid}']"))
    expect(direct).to_have_attribute("data-related", "false")
    expect(direct.locator("mark")).to_have_text(NAME)
    expect(direct.get_by_test_id("pv-select")).to_be_checked()
    other = result(page, "offline_message").and_(page.locator("[data-related=true]"))
    expect(other).to_have_count(1)
    expect(other.get_by_test_id("pv-related")).to_have_text("Same email")
    expect(other.get_by_test_id("pv-select")).not_to_be_checked()
    expect(other).to_contain_text(re.compile(f"Found through the same email address: {re.escape(EMAIL)}", re.I))
    expect(other.locator("mark")).to_have_count(0)
    expect(result(page, "email").get_by_test_id("pv-select")).to_be_checked()
    expect(page.get_by_test_id("pv-summary")).to_contain_text("Records found: 3 (2 matching the search, 1 related).")
    expect(page.get_by_test_id("pv-selected")).to_contain_text("chat conversations 0, offline messages 1, emails sent 1")
    expect(page.get_by_test_id("pv-objection-email")).to_have_value(EMAIL)
    other.get_by_test_id("pv-select").check()
    expect(page.get_by_test_id("pv-selected")).to_contain_text("offline messages 2, emails sent 1")
    shot(page, "related-1280", backend)

    # By the student number: the chat, a direct match.
    find(page, STUDENT_NO)
    chat = result(page, "conversation")
    expect(chat).to_have_attribute("data-related", "false")
    expect(chat.locator("mark")).to_have_text(STUDENT_NO)
    expect(chat.get_by_test_id("pv-select")).to_be_checked()

    # Restrict the chat: the record says so, and agents no longer see it.
    page.get_by_test_id("pv-restrict").click()
    expect(page.get_by_test_id("pv-actions").get_by_role("status")).to_have_text(
        "Processing of the selected records is restricted.")
    expect(chat.get_by_test_id("pv-flag-restricted")).to_be_visible()
    expect(page.get_by_test_id("pv-flags")).to_contain_text("Restriction of processing: yes")
    agent = sign_in(live, "aino@example.org")
    assert agent.get("/api/v1/conversations").json() == []
    page.get_by_test_id("pv-lift").click()
    expect(page.get_by_test_id("pv-flags")).to_contain_text("Restriction of processing: no")
    assert [c["id"] for c in agent.get("/api/v1/conversations").json()] == [conv]

    # The objection, by the email the page suggests.
    find(page, EMAIL)
    expect(page.get_by_test_id("pv-objection-email")).to_have_value(EMAIL)
    page.get_by_test_id("pv-object").click()
    expect(page.get_by_test_id("pv-actions").get_by_role("status")).to_contain_text(
        f"The objection to direct marketing is recorded for {EMAIL}.")
    offline = result(page, "offline_message").and_(page.locator(f"[data-id='{mid}']"))
    expect(offline.get_by_test_id("pv-flag-objection")).to_be_visible()
    assert agent.get("/api/v1/offline-messages").json()[0]["objection"] is True
    # a fresh search knows nothing yet; opening the form reads the flags
    find(page, EMAIL)
    expect(offline.get_by_test_id("pv-flag-objection")).to_have_count(0)
    offline.get_by_test_id("pv-open").click()
    expect(offline.get_by_test_id("pv-flag-objection")).to_be_visible()
    expect(page.get_by_test_id("pv-flags")).to_contain_text("Objection to direct marketing: yes")
    shot(page, "flags-1280", backend)


def test_the_finnish_erase_step_asks_for_poista(live, smtp, open_page, backend):
    smtp.start()
    add_staff(live, "chair@example.org", ["privacy"], name="Puheenjohtaja")
    r = live.client().post("/api/v1/public/offline-messages", json={
        "name": "Matti Meikäläinen", "email": "matti@example.fi", "message": f"Hei {HOSTILE}", "lang": "fi"})
    assert r.status_code == 201
    fi = catalog("fi")
    page = open_page(locale="fi-FI")
    sign_in_page(page, live, "chair@example.org")
    nav(page, "Rekisteri").click()
    expect(page.get_by_role("heading", name="Rekisteri", exact=True)).to_be_visible()
    find(page, "matti@example")
    found = result(page, "offline_message")
    expect(found.locator("mark")).to_have_text("matti@example")
    page.get_by_test_id("pv-erase").click()
    panel = page.get_by_test_id("pv-erase-panel")
    word = panel.get_by_label("Vahvista kirjoittamalla POISTA")
    final = panel.get_by_test_id("pv-erase-confirm")
    word.fill("ERASE")
    expect(final).to_be_disabled()
    word.fill("POISTA")
    expect(final).to_be_enabled()
    expect(final).to_have_text(fi["Erase for good"])
    page.set_viewport_size({"width": 360, "height": 780})
    shot(page, "erase-fi-360", backend)
    page.set_viewport_size({"width": 1280, "height": 900})
    panel.get_by_test_id("pv-erase-cancel").click()
    expect(page.get_by_test_id("pv-erase-panel")).to_have_count(0)
    expect(found).to_be_visible()  # nothing was erased


# -- the request log ------------------------------------------------------------------------------
def test_request_log_flags_a_request_near_its_deadline(live, clock, open_page, backend):
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    page = open_page()
    sign_in_page(page, live, "chair@example.org")
    page.goto(live.url + "/console#/register/requests")
    expect(page.get_by_test_id("pv-tab-requests")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("No requests in the log.")).to_be_visible()
    page.get_by_label("Kind of request").select_option("access")
    page.get_by_label("How identity was verified").fill(f"in person, ID card {HOSTILE}")
    page.get_by_test_id("pv-request-add").click()
    row = page.get_by_test_id("pv-request-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-urgency", "ok")
    expect(row.get_by_test_id("pv-urgency")).to_have_count(0)
    expect(row).to_contain_text(f"in person, ID card {HOSTILE}")
    expect(row).to_contain_text("Access to data")

    # 25 days later the session is long gone: sign in again.
    clock.advance(days=25)
    later = open_page()
    sign_in_page(later, live, "chair@example.org")
    later.goto(live.url + "/console#/register/requests")
    row = later.get_by_test_id("pv-request-row")
    expect(row).to_have_attribute("data-urgency", "near")
    expect(row.get_by_test_id("pv-urgency")).to_have_text("Deadline near")
    expect(later.get_by_test_id("pv-request-summary")).to_have_text("Open requests: 1. Near or past the deadline: 1.")
    shot(later, "requests-1280", backend)
    later.set_viewport_size({"width": 360, "height": 780})
    shot(later, "requests-360", backend)
    later.set_viewport_size({"width": 1280, "height": 900})

    # Ten days more and it is overdue.
    clock.advance(days=10)
    overdue = open_page()
    sign_in_page(overdue, live, "chair@example.org")
    overdue.goto(live.url + "/console#/register/requests")
    row = overdue.get_by_test_id("pv-request-row")
    expect(row).to_have_attribute("data-urgency", "overdue")
    expect(row.get_by_test_id("pv-urgency")).to_have_text("Overdue")
    row.get_by_test_id("pv-request-done").click()
    expect(row).to_have_attribute("data-urgency", "closed")
    expect(row.get_by_test_id("pv-urgency")).to_have_count(0)
    expect(row).to_contain_text("Done")

    expect(overdue.get_by_test_id("pv-request-summary")).to_have_text("Open requests: 0. Near or past the deadline: 0.")
    later = overdue

    # The record of processing, read-only.
    later.get_by_test_id("pv-tab-record").click()
    record = later.get_by_test_id("pv-record")
    expect(record.locator("dt").first).to_have_text("Controller")
    expect(record.locator("dd[data-key=retention_days]")).to_contain_text("365")
    expect(record.locator("input, textarea, button")).to_have_count(0)
    shot(later, "record-1280", backend)
    later.set_viewport_size({"width": 360, "height": 780})
    shot(later, "record-360", backend)


# -- who sees it ---------------------------------------------------------------------------------------
def test_staff_without_the_privacy_role_do_not_see_the_register(live, open_page):
    add_staff(live, "aino@example.org", ["agent", "admin"], name="Aino")
    page = open_page()
    sign_in_page(page, live, "aino@example.org")
    expect(nav(page, "Audit log")).to_be_visible()
    expect(nav(page, "Register")).to_have_count(0)
    page.goto(live.url + "/console#/register")
    expect(page.get_by_test_id("not-allowed")).to_be_visible()
    expect(page.get_by_test_id("pv-query")).to_have_count(0)
