"""Departments in real browsers (docs/departments.md): two agents in two
departments, a visitor who picks one in the widget, the chat reaching only
that department, and a transfer to the other agent that the visitor sees in
Finnish (and whose note they never see)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from jutella.chat import departments as D

from tests.helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


def console_sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/console")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("presence")).to_have_attribute("data-state", "online", timeout=15_000)


def test_visitor_picks_a_department_and_is_transferred(live, browser_context_factory):
    rt = live.rt
    aino = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    bertta = add_staff(live, "bertta@example.org", ["agent"], name="Bertta")
    member = live.call(D.create, rt, actor_id=None, name="Jäsenyys")
    tech = live.call(D.create, rt, actor_id=None, name="Tekniikka")
    live.call(D.set_members, rt, actor_id=None, department_id=member.id, account_ids=[aino])
    live.call(D.set_members, rt, actor_id=None, department_id=tech.id, account_ids=[bertta])
    dialogs: list[str] = []

    a = browser_context_factory().new_page()
    b = browser_context_factory().new_page()
    for page in (a, b):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    console_sign_in(a, live.url, "aino@example.org")
    console_sign_in(b, live.url, "bertta@example.org")

    visitor = browser_context_factory().new_page()
    visitor.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    visitor.goto(live.url + "/demo?lang=fi")
    visitor.get_by_test_id("launcher").click()
    w = visitor.frame_locator("iframe[data-jutella=frame]")
    picker = w.get_by_test_id("department-picker")
    expect(picker).to_be_visible(timeout=15_000)
    expect(picker).to_contain_text("Kenen kanssa haluat keskustella?")
    expect(w.get_by_test_id("department-option")).to_have_text(["Jäsenyys", "Tekniikka"])
    w.get_by_test_id("department-option").filter(has_text="Tekniikka").click()
    expect(w.get_by_test_id("department-option").filter(has_text="Tekniikka")).to_have_attribute(
        "aria-pressed", "true")
    w.get_by_test_id("chat-input").fill("Wifi ei toimi kirjastossa")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1)
    expect(picker).to_be_hidden()

    # only Tekniikka's agent sees it
    item = b.locator("[data-testid=conversation][data-state=waiting]")
    expect(item).to_have_count(1, timeout=15_000)
    a.wait_for_timeout(500)
    expect(a.locator("[data-testid=conversation]")).to_have_count(0)

    # Bertta takes it and hands it to Aino with a note
    item.first.click()
    b.get_by_test_id("accept").click()
    expect(w.locator("[data-testid=message][data-author=system]").last).to_have_text(
        re.compile("Bertta liittyi keskusteluun"), timeout=15_000)
    b.get_by_test_id("transfer-button").click()
    expect(b.get_by_test_id("transfer-dialog")).to_be_visible()
    target = b.get_by_test_id("transfer-target")
    expect(target.locator(f"option[value='agent:{aino}']")).to_have_count(1, timeout=15_000)
    expect(target.locator(f"option[value='agent:{aino}']")).to_contain_text("Aino")
    target.select_option(f"agent:{aino}")
    b.get_by_test_id("transfer-note").fill("Kysyy myös jäsenmaksusta")
    b.get_by_test_id("transfer-submit").click()
    expect(b.get_by_test_id("transfer-dialog")).to_be_hidden(timeout=15_000)

    # the visitor sees who joined, in Finnish; never the note
    expect(w.locator("[data-testid=message][data-author=system]").last).to_have_text(
        re.compile("Aino liittyi keskusteluun"), timeout=15_000)
    # Aino has it now, with the note in its history
    mine = a.locator("[data-testid=conversation][data-state=active]")
    expect(mine).to_have_count(1, timeout=15_000)
    mine.first.click()
    # the transfer note is an internal note: drawn as one, with its label, never as a message
    note = a.get_by_test_id("note").filter(has_text="Kysyy myös jäsenmaksusta")
    expect(note).to_have_count(1, timeout=15_000)
    expect(a.locator("[data-testid=message]").filter(has_text="Kysyy myös jäsenmaksusta")).to_have_count(0)
    a.get_by_test_id("console-input").fill("Hei, Aino tässä")
    a.get_by_test_id("console-send").click()
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_text([re.compile("Hei, Aino tässä")],
                                                                                timeout=15_000)
    expect(w.locator("[data-testid=message]").filter(has_text="jäsenmaksusta")).to_have_count(0)
    assert dialogs == []


def test_admin_adds_a_department_sets_members_and_sees_the_load(live, browser_context_factory):
    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    aino = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    dialogs: list[str] = []
    page = browser_context_factory().new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.goto(live.url + "/console")
    page.get_by_test_id("login-email").fill("ilona@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("nav a[data-view=departments]").click()
    page.get_by_test_id("department-name").fill("Opintoasiat <b>")
    page.get_by_test_id("department-create-submit").click()
    item = page.get_by_test_id("department")
    expect(item).to_have_count(1, timeout=15_000)
    expect(item.locator("h3")).to_have_text("Opintoasiat <b>")  # text, never markup
    item.get_by_label("Aino").check()
    item.get_by_role("button", name="Save").click()
    load = page.get_by_test_id("agent-load")
    expect(load).to_have_count(1)
    expect(load).to_contain_text("Opintoasiat <b>", timeout=15_000)
    expect(load).to_contain_text("0 / 5")
    assert [d["members"] for d in live.call(D.list_departments, live.rt)] == [[aino]]
    page.get_by_test_id("department").get_by_role("button", name="Delete").click()
    expect(page.get_by_test_id("department")).to_have_count(0, timeout=15_000)
    assert len(dialogs) == 1 and "Opintoasiat <b>" in dialogs[0]
