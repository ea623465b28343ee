"""Agent awareness in the console (issue 17; docs/console-chat.md, "Alerts"),
in Chromium against one real server: a transfer alerts its receiver like a new
chat (chime, desktop notification, a highlight until opened) and takes Close
away from the agent who passed it on; the navigation's unread badges count up
and clear, live; a search or a filter keeps the waiting queue in view; the
Close button asks first; `a` then `r` leaves the reply box empty and focused;
canned responses work in the offline reply box.

One flow, one server: the visitors are protocol clients (tests/chat_clients.py)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import add_staff, sign_in
from .test_console_chat_browser import console_page, expect, item, start_chat

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


# The receiver's browser has granted notifications; this records each `new
# Notification` (and still makes the real one), counts the chime's notes, and
# lets the test say whether the tab is hidden.
RECORD_ALERTS = """
(() => {
  window.__notes = [];
  window.__tones = 0;
  window.__hidden = false;
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options = {}) {
      window.__notes.push({ title, body: options.body || "" });
      super(title, options);
    }
  };
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return window.__hidden; } });
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) { window.__tones += 1; return start.apply(this, args); };
})();
"""


def hide(page, hidden: bool) -> None:
    page.evaluate("(h) => { window.__hidden = h; document.dispatchEvent(new Event('visibilitychange')); }", hidden)


def nav_badge(page, view: str):
    return page.locator(f"nav [data-testid=nav-badge][data-view={view}]")


def test_transfer_alert_badges_queue_close_keys_and_offline_canned(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    bertta = add_staff(live, "bertta@example.org", ["agent"], name="Bertta")
    assert sign_in(live, "bertta@example.org").post("/api/v1/canned", json={
        "shortcut": "kiitos", "language": "fi",
        "body": "Hei {visitor_name}! Kiitos viestistäsi. Terveisin {agent_name}"}).status_code == 201

    a_page, a_problems = console_page(live, browser_context_factory(viewport={"width": 1280, "height": 800}))
    b_ctx = browser_context_factory(viewport={"width": 1280, "height": 800}, permissions=["notifications"])
    b_ctx.add_init_script(RECORD_ALERTS)
    b, b_problems = console_page(live, b_ctx, email="bertta@example.org")
    dialogs: list[str] = []
    b.remove_listener("dialog", b_problems._dialog)  # this test answers Bertta's questions itself
    answers: list[bool] = []

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if answers.pop(0) else dialog.dismiss()

    b.on("dialog", answer)

    # -- the Conversations badge counts unread visitor messages in the queue, live
    conversations = nav_badge(b, "conversations")
    expect(conversations).to_be_hidden()
    v, conv = start_chat(live, "Hei, kysyisin laskusta")
    expect(conversations).to_have_attribute("data-count", "1")
    expect(conversations).to_be_visible()
    v.message("Onko ketään paikalla?")
    expect(conversations).to_have_attribute("data-count", "2")
    expect(conversations).to_contain_text("2 unread")

    # Aino takes it: no longer in Bertta's queue, so no longer in her count
    item(a_page, conv).click()
    a_page.get_by_test_id("accept").click()
    expect(a_page.locator(".thread")).to_have_attribute("data-state", "active")
    expect(conversations).to_be_hidden()

    # -- Aino transfers it to Bertta, whose tab is in the background
    hide(b, True)
    a_page.get_by_test_id("transfer-button").click()
    expect(a_page.locator(f"[data-testid=transfer-target] option[value='agent:{bertta}']")).to_have_count(1)
    a_page.get_by_test_id("transfer-target").select_option(f"agent:{bertta}")
    a_page.get_by_test_id("transfer-submit").click()
    b.wait_for_function("() => window.__notes.length === 1")
    note = b.evaluate("() => window.__notes[0]")
    assert note["title"] == "A conversation was transferred to you" and str(conv) in note["body"]
    assert "laskusta" not in note["body"]  # never what the visitor wrote
    b.wait_for_function("() => window.__tones >= 2")  # the chime, as for a new chat
    moved = item(b, conv)
    expect(moved).to_have_attribute("data-transferred", "true")
    expect(moved).to_have_class(re.compile(r"\bis-transferred\b"))
    expect(moved.get_by_test_id("transfer-mark")).to_have_text("Transferred to you by Aino")
    expect(b.locator(".conv-section-mine [data-testid=conversation]")).to_have_count(1)

    # the former agent lost the chat: no Close, no Transfer, the composer says who has it
    expect(a_page.locator(".thread-agent")).to_have_text("Bertta is handling this conversation.")
    expect(a_page.get_by_test_id("close-conversation")).to_be_hidden()
    expect(a_page.get_by_test_id("transfer-button")).to_be_hidden()

    # a message in the chat now Bertta's counts up; opening it clears badge and highlight
    v.message("Kiitos, odotan")
    expect(conversations).to_have_attribute("data-count", "1")
    hide(b, False)
    moved.click()
    expect(b.locator(".thread")).to_have_attribute("data-state", "active")
    expect(moved).not_to_have_attribute("data-transferred", "true")
    expect(conversations).to_be_hidden()

    # -- closing by the button asks first, as the `c` key does: No keeps it open
    answers.extend([False, True])
    b.get_by_test_id("close-conversation").click()
    expect(b.locator(".thread")).to_have_attribute("data-state", "active")
    b.get_by_test_id("close-conversation").click()
    expect(b.locator(".thread")).to_have_attribute("data-state", "closed")
    assert dialogs == ["Close this conversation?", "Close this conversation?"]

    # -- `j` opens the next waiting chat, `a` accepts it, `r` goes to an empty reply box
    v2, conv2 = start_chat(live, "Toinen kysymys")
    expect(item(b, conv2)).to_have_attribute("data-state", "waiting")
    b.locator("body").focus()
    b.keyboard.press("j")
    expect(b).to_have_url(re.compile(rf"#/conversations/{conv2}$"))
    expect(b.locator(".thread-title")).to_be_focused()
    b.keyboard.press("a")
    expect(b.locator(".thread")).to_have_attribute("data-state", "active")
    b.keyboard.press("r")
    reply = b.get_by_test_id("console-input")
    expect(reply).to_be_focused()
    expect(reply).to_have_value("")

    # -- a search and a filter keep the waiting queue in view above their results
    v3, conv3 = start_chat(live, "Kolmas, jonossa")
    queued = b.locator(f".conv-section-waiting [data-testid=conversation][data-id='{conv3}']")
    expect(queued).to_be_visible()
    b.get_by_test_id("chat-search").fill("kysymys")
    b.get_by_test_id("chat-search-submit").click()
    expect(b.get_by_test_id("search-result")).to_have_count(1)
    expect(queued).to_be_visible()
    expect(b.locator(".conv-section-mine")).to_be_hidden()  # the rest of the list steps aside
    b.get_by_role("button", name="Clear", exact=True).click()
    expect(b.locator(".conv-section-mine")).to_be_visible()
    b.locator(".chat-filters summary").click()
    b.get_by_test_id("filter-state").select_option("closed")
    expect(b.get_by_test_id("filter-result")).to_have_count(1)
    expect(queued).to_be_visible()
    b.get_by_test_id("filter-clear").click()

    # -- the Offline messages badge: a new message counts until this agent opens it
    offline = nav_badge(b, "offline")
    expect(offline).to_be_hidden()
    assert live.client().post("/api/v1/public/offline-messages", json={
        "name": "Maija", "email": "maija@example.fi", "message": "Milloin toimisto on auki?", "lang": "fi",
        "browser_key": "aware-1"}).status_code == 201
    expect(offline).to_have_attribute("data-count", "1")
    expect(offline).to_be_visible()
    b.locator("nav a[data-view=offline]").click()
    expect(b.get_by_test_id("offline-unread")).to_have_count(1)
    b.get_by_test_id("offline-item").click()
    expect(offline).to_be_hidden()
    expect(b.get_by_test_id("offline-unread")).to_have_count(0)

    # -- canned responses in the offline reply box: "/" and the same completion as the chat's
    box = b.get_by_test_id("offline-reply-input")
    box.click()
    box.press_sequentially("/kii")
    expect(b.get_by_test_id("canned-option")).to_have_count(1)
    box.press("Enter")
    expect(box).to_have_value("Hei Maija! Kiitos viestistäsi. Terveisin Bertta")
    expect(b.get_by_test_id("canned-suggestions")).to_be_hidden()

    a_problems.check()
    b_problems.check()
    for client in (v, v2, v3):
        client.close()
