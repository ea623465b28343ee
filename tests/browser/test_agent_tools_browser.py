"""Agent tools in Chromium (docs/agent-tools.md): a canned response inserted
with "/", an internal note the visitor's widget never shows but the access
copy has, a label applied and filtered by, and the shortcuts. SQLite only:
the storage paths are covered on both databases by tests/integration/test_agent_tools.py."""

from __future__ import annotations

import re

import pytest

from tests.chat_clients import agent, visitor
from tests.helpers import add_staff, eventually, sign_in
from .test_console_chat_browser import console_page, expect, item, start_chat

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


def no_serious_axe_violations(page):
    import json

    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    bad = [x for x in results.response["violations"] if x["impact"] in ("serious", "critical")]
    assert bad == [], json.dumps(bad, indent=1)[:4000]


def widget(page):
    return page.frame_locator("iframe[data-jutella=frame]")


def test_canned_response_with_slash_and_a_note_the_visitor_never_sees(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "admin@example.org", ["admin"])
    add_staff(live, "dpo@example.org", ["privacy"])
    admin = sign_in(live, "admin@example.org")
    assert admin.post("/api/v1/canned", json={"shortcut": "hei", "language": "fi", "shared": True,
                                              "body": "Hei {visitor_name}! Olen {agent_name}, miten voin auttaa?"}
                      ).status_code == 201
    aino_http = sign_in(live, "aino@example.org")
    assert aino_http.post("/api/v1/canned", json={"shortcut": "hello", "language": "en",
                                                  "body": "Hello! I am {agent_name}."}).status_code == 201

    ctx = browser_context_factory(viewport={"width": 1400, "height": 900})
    page, problems = console_page(live, ctx)  # an agent online: the widget offers the chat

    # the visitor, in Finnish, on the demo page
    vctx = browser_context_factory(locale="fi-FI", extra_http_headers={"Accept-Language": "fi-FI,fi;q=0.9"})
    vpage = vctx.new_page()
    vpage.goto(live.url + "/demo")
    vpage.get_by_test_id("launcher").click()
    w = widget(vpage)
    w.get_by_test_id("chat-input").fill("Hei, kysyisin vuokrasta")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1)

    waiting = page.locator("[data-testid=conversation][data-state=waiting]").first
    expect(waiting).to_be_visible(timeout=15_000)
    conv = int(waiting.get_attribute("data-id"))
    waiting.click()
    page.get_by_test_id("accept").click()
    expect(page.get_by_test_id("conversation-state")).to_have_class(re.compile("state-active"))

    # "/" opens the completion; "/he" narrows it; the conversation's language comes first
    box = page.get_by_test_id("console-input")
    box.press_sequentially("/he", delay=40)
    suggestions = page.get_by_test_id("canned-suggestions")
    expect(suggestions).to_be_visible()
    options = page.get_by_test_id("canned-option")
    expect(options).to_have_count(2)
    expect(options.first).to_have_attribute("data-shortcut", "hei")
    box.press("ArrowDown")
    box.press("ArrowUp")
    box.press("Enter")  # inserts; does not send
    expect(suggestions).to_be_hidden()
    expect(box).to_have_value("Hei! Olen Aino, miten voin auttaa?")  # no name known: left out neatly
    box.press("Enter")
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_text(
        [re.compile(re.escape("Hei! Olen Aino, miten voin auttaa?"))], timeout=15_000)
    box.press_sequentially("/zz", delay=30)
    expect(suggestions).to_contain_text("No canned response starts like that.")
    box.press("Escape")
    expect(suggestions).to_be_hidden()
    box.fill("")

    # an internal note: shown to staff apart from the messages, never in the widget
    messages_before = page.get_by_test_id("message").count()
    page.get_by_test_id("note-toggle").click()
    expect(page.get_by_test_id("note-toggle")).to_have_attribute("aria-pressed", "true")
    box.fill("SALAINEN: opiskelijanumero 7654321, vuokrarästit")
    box.press("Enter")
    note = page.get_by_test_id("note")
    expect(note).to_have_count(1, timeout=15_000)
    expect(note).to_contain_text("Internal note")
    expect(note).to_contain_text("SALAINEN")
    assert page.get_by_test_id("message").count() == messages_before
    box.press_sequentially("/h", delay=30)  # axe with a note, the note box and the completion open
    expect(page.get_by_test_id("canned-option")).to_have_count(2)
    no_serious_axe_violations(page)
    box.press("Escape")
    box.fill("")
    page.get_by_test_id("note-toggle").click()
    box.fill("Tarkistan asian.")
    box.press("Enter")
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_count(2, timeout=15_000)
    expect(w.locator("body")).not_to_contain_text("SALAINEN")
    # a reload (the widget resumes from the server): still no note
    vpage.reload()
    vpage.wait_for_timeout(500)
    if not widget(vpage).get_by_test_id("chat-input").is_visible():
        vpage.get_by_test_id("launcher").click()
    w = widget(vpage)
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_count(2, timeout=15_000)
    expect(w.locator("body")).not_to_contain_text("SALAINEN")
    expect(w.locator("body")).not_to_contain_text("7654321")

    # the access copy has it, as an internal note
    dpo = sign_in(live, "dpo@example.org")
    copy = dpo.post("/api/v1/privacy/export", json={"conversations": [conv], "offline_messages": [],
                                                    "emails": []}).json()
    notes = [m for m in copy["conversations"][0]["messages"] if m["internal_note"]]
    assert [m["text"] for m in notes] == ["SALAINEN: opiskelijanumero 7654321, vuokrarästit"]
    problems.check()


def test_label_filter_and_keyboard_shortcuts(live, browser_context_factory):
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "admin@example.org", ["admin"])
    admin = sign_in(live, "admin@example.org")
    rent = admin.post("/api/v1/labels", json={"name": "Vuokra", "color": "red"}).json()["id"]
    admin.post("/api/v1/labels", json={"name": "Opinnot", "color": "blue"})
    housing = admin.post("/api/v1/departments", json={"name": "Asuminen"}).json()["id"]
    assert admin.put(f"/api/v1/departments/{housing}/members", json={"account_ids": [aino_id]}).status_code == 200
    v1, first = start_chat(live, "Ensimmäinen: vuokra")
    # the second chat in Aino's department: she is online, the only department online, so it goes
    # there (a visitor may name only a department the widget offers, and with one online it offers none)
    online, _ = agent(live, sign_in(live, "aino@example.org"))
    eventually(lambda: aino_id in live.rt.presence.online_agents())
    v2, _ = visitor(live)
    v2.message("Toinen: opinnot")
    second = v2.until(lambda f: f["type"] == "ack")["conversation"]

    ctx = browser_context_factory(viewport={"width": 1400, "height": 900})
    page, problems = console_page(live, ctx)
    expect(page.locator("[data-testid=conversation][data-state=waiting]")).to_have_count(2, timeout=15_000)

    # ? shows the shortcuts; Escape closes them
    page.locator("body").press("?")
    help_ = page.get_by_test_id("shortcut-help")
    expect(help_).to_be_visible()
    expect(help_).to_contain_text("Open the next waiting conversation")
    page.keyboard.press("Escape")
    expect(help_).to_be_hidden()

    # j opens the one waiting longest, a accepts it
    page.locator("body").press("j")
    expect(page.locator(f".thread[data-conversation='{first}']")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"#/conversations/{first}$"))
    page.keyboard.press("a")
    expect(item(page, first)).to_have_attribute("data-state", "active", timeout=15_000)
    # the focus stays out of the reply box, so the next shortcut is not typed to the visitor: r goes there
    expect(page.get_by_test_id("console-input")).not_to_be_focused()
    page.keyboard.press("r")
    expect(page.get_by_test_id("console-input")).to_be_focused()
    expect(page.get_by_test_id("console-input")).to_have_value("")
    page.keyboard.type("t")  # there, a key is text, not a shortcut
    expect(page.get_by_test_id("console-input")).to_have_value("t")
    page.get_by_test_id("console-input").fill("")
    page.keyboard.press("Escape")  # leaves the reply box for the log
    expect(page.locator(".thread-log")).to_be_focused()
    # t asks for the transfer dialog (built elsewhere) with a DOM event
    page.evaluate("() => { window.__transfer = null; document.addEventListener('jutella:transfer',"
                  " (e) => { window.__transfer = e.detail.conversation; }); }")
    page.keyboard.press("t")
    assert page.evaluate("() => window.__transfer") == first
    # / goes to the search without typing into it; keys typed in a field are text
    page.keyboard.press("/")
    expect(page.get_by_test_id("chat-search")).to_be_focused()
    expect(page.get_by_test_id("chat-search")).to_have_value("")
    page.get_by_test_id("chat-search").press_sequentially("ja")
    expect(page.get_by_test_id("chat-search")).to_have_value("ja")
    expect(page.get_by_test_id("shortcut-help")).to_be_hidden()
    page.get_by_test_id("chat-search").fill("")

    # a label on the conversation: a chip in the header and in the list
    page.get_by_test_id("label-add").select_option(label="Vuokra")
    expect(page.locator(".thread-header [data-testid=label-chip]")).to_have_text(["Vuokra×"])
    expect(item(page, first).get_by_test_id("label-chip")).to_have_text("Vuokra", timeout=15_000)

    # filter the list by it, then by state as well
    page.locator(".chat-filters summary").click()
    page.get_by_test_id("filter-label").select_option(str(rent))
    results = page.get_by_test_id("filter-result")
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-id", str(first))
    expect(item(page, second)).to_be_visible()  # the waiting queue stays in view above the results
    expect(item(page, first)).to_be_hidden()  # the rest of the live list steps aside
    page.get_by_test_id("filter-state").select_option("closed")
    expect(results).to_have_count(0)
    expect(page.get_by_test_id("filter-results").locator("xpath=..")).to_contain_text("No conversation matches")
    page.get_by_test_id("filter-state").select_option("")
    expect(results).to_have_count(1)
    # the history search honours the filter too
    page.get_by_test_id("chat-search").fill("opinnot")
    page.get_by_test_id("chat-search-submit").click()
    expect(page.locator(".chat-search-status")).to_contain_text("No messages match")  # "opinnot" is not labelled
    expect(page.get_by_test_id("search-result")).to_have_count(0)
    page.get_by_test_id("filter-clear").click()
    expect(page.get_by_test_id("search-result")).to_have_count(1)
    # the department: a badge on its list item, and a filter for the list and the search
    expect(item(page, second).get_by_test_id("department-badge")).to_have_text("Asuminen")
    expect(item(page, first).get_by_test_id("department-badge")).to_have_count(0)
    page.get_by_test_id("filter-department").select_option(label="Asuminen")
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-id", str(second))
    expect(results.first.get_by_test_id("department-badge")).to_have_text("Asuminen")
    expect(page.get_by_test_id("search-result")).to_have_count(1)  # "opinnot" is in Asuminen
    page.get_by_test_id("chat-search").fill("vuokra")
    page.get_by_test_id("chat-search-submit").click()
    expect(page.locator(".chat-search-status")).to_contain_text("No messages match")  # "vuokra" is not
    page.get_by_test_id("filter-clear").click()
    expect(page.get_by_test_id("search-result")).to_have_count(1)
    page.get_by_test_id("notify-prefs").locator("summary").click()
    expect(page.get_by_test_id("pref-title")).to_be_checked()
    no_serious_axe_violations(page)  # labels, filters and the alerts panel shown
    # the unread count in the title is the agent's choice, remembered for the account
    expect(page).to_have_title(re.compile(r"^\(1\) "))  # the second visitor's message, still waiting
    page.get_by_test_id("pref-title").uncheck()
    expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))
    page.reload()
    expect(page.locator(".chat-layout")).to_have_attribute("data-connection", "open")
    expect(page.locator("[data-testid=conversation]")).to_have_count(2)
    expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))
    assert page.evaluate("() => Object.keys(localStorage).some((k) => k.startsWith('jutella-notify:'))")

    # the agent's own canned responses are kept on their page
    page.get_by_role("link", name="Canned responses").click()
    page.get_by_test_id("canned-shortcut").fill("kiitos")
    page.get_by_test_id("canned-body").fill("Kiitos {visitor_name}!")
    page.get_by_test_id("canned-save").click()
    expect(page.locator("[data-testid=canned-row][data-shortcut=kiitos]")).to_contain_text("Kiitos {visitor_name}!")
    problems.allow(r"status of 409 .* @ \S+/api/v1/canned$")  # the refusal below, shown beside the form
    page.get_by_test_id("canned-shortcut").fill("kiitos")
    page.get_by_test_id("canned-body").fill("Uudestaan")
    page.get_by_test_id("canned-save").click()
    expect(page.get_by_role("alert")).to_contain_text("There is already a response /kiitos")
    expect(page.get_by_test_id("label-list")).to_contain_text("Vuokra")
    no_serious_axe_violations(page)
    problems.check()
    v1.close()
    v2.close()
