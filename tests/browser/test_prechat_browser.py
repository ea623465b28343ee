"""The pre-chat form in real browsers (issue 18 item 3, docs/prechat.md): an
admin sets up the default form on the Embed page (in Finnish), a visitor on a
site meets it before the chat, is told in Finnish what is missing or wrong,
answers, and the chat reaches the console under the name they gave (list and
conversation header, never as HTML), with their email and topic beside it and
in the topic's department. A topic whose department has nobody on duty is
not offered (the department picker's rule). Screenshots at 1280x800 and 390x844 go to
/tmp/shots-prechat/."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from jutella.chat import departments as D

from tests.browser.test_offline_browser import axe_problems, frame_of
from tests.helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("JUTELLA_SHOTS", "/tmp/shots-prechat")
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
HOSTILE = "<b>Liisa</b> Virtanen"


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


def shot(page, name: str) -> None:
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)


def test_the_forms_answers_reach_the_console_under_the_given_name(live, browser_context_factory):
    ilona = add_staff(live, "ilona@example.org", ["admin", "agent"], name="Ilona")
    member = live.call(D.create, live.rt, actor_id=None, name="Jäsenyys")
    live.call(D.set_members, live.rt, actor_id=None, department_id=member.id, account_ids=[ilona])
    housing = live.call(D.create, live.rt, actor_id=None, name="Asunnot")  # nobody of it on duty
    dialogs: list[str] = []

    # -- the admin sets the default form up on the Embed page, in Finnish -----------------------
    admin = browser_context_factory(locale="fi-FI", viewport=SIZES["desktop"]).new_page()
    admin.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    admin.goto(live.url + "/console", timeout=30_000)
    admin.get_by_test_id("login-email").fill("ilona@example.org")
    admin.get_by_test_id("login-password").fill(PASSWORD)
    admin.get_by_test_id("login-submit").click()
    expect(admin.get_by_test_id("presence")).to_have_attribute("data-state", "online", timeout=15_000)
    admin.goto(live.url + "/console#/embed")
    section = admin.get_by_test_id("prechat-settings")
    expect(section).to_contain_text("Esilomake")
    expect(section.get_by_test_id("prechat-status")).to_contain_text("Ei oletuslomaketta")
    section.get_by_test_id("prechat-mode-topic").select_option("required")
    section.get_by_test_id("prechat-mode-name").select_option("required")
    section.get_by_test_id("prechat-mode-email").select_option("optional")
    section.get_by_test_id("prechat-topic-add").click()
    topic = section.get_by_test_id("prechat-topic").first
    topic.get_by_test_id("prechat-topic-fi").fill("Jäsenmaksut")
    topic.get_by_test_id("prechat-topic-en").fill("Membership fees")
    topic.get_by_test_id("prechat-topic-department").select_option(str(member.id))
    section.get_by_test_id("prechat-topic-add").click()
    closed = section.get_by_test_id("prechat-topic").nth(1)
    closed.get_by_test_id("prechat-topic-fi").fill("Asuntojono")
    closed.get_by_test_id("prechat-topic-en").fill("Housing queue")
    closed.get_by_test_id("prechat-topic-department").select_option(str(housing.id))
    section.get_by_test_id("prechat-save").click()
    expect(section.get_by_test_id("prechat-status")).to_contain_text("Oletuslomake", timeout=15_000)
    assert axe_problems(admin) == []  # the Embed page with the form's editor (issue 18: axe on the new views)
    section.scroll_into_view_if_needed()
    shot(admin, "console-embed-prechat-fi-1280x800")
    admin.set_viewport_size(SIZES["phone"])
    section.scroll_into_view_if_needed()
    shot(admin, "console-embed-prechat-fi-390x844")
    admin.set_viewport_size(SIZES["desktop"])
    admin.goto(live.url + "/console#/conversations")

    # -- the visitor meets the form before the chat, and its messages in Finnish -------------
    for size, viewport in SIZES.items():
        visitor = browser_context_factory(locale="fi-FI", viewport=viewport).new_page()
        visitor.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        visitor.goto(live.url + "/demo?lang=fi", timeout=30_000)
        visitor.get_by_test_id("launcher").click()
        w = visitor.frame_locator("iframe[data-jutella=frame]")
        form = w.get_by_test_id("prechat-form")
        expect(form).to_be_visible(timeout=15_000)
        expect(w.get_by_test_id("chat-input")).to_be_hidden()
        expect(w.get_by_test_id("prechat-topic").locator("option")).to_have_text(["Valitse aihe", "Jäsenmaksut"])
        w.get_by_test_id("prechat-email").fill("liisa@")
        w.get_by_test_id("prechat-submit").click()
        expect(form).to_contain_text("Valitse aihe.")
        expect(form).to_contain_text("Anna nimesi.")
        expect(form).to_contain_text("Anna kelvollinen sähköpostiosoite")
        expect(w.get_by_test_id("prechat-topic")).to_be_focused()
        expect(w.get_by_test_id("prechat-name")).to_have_attribute("aria-invalid", "true")
        if size == "desktop":
            assert axe_problems(frame_of(visitor)) == []  # the form with its errors
        shot(visitor, f"widget-prechat-errors-fi-{viewport['width']}x{viewport['height']}")
        if size == "phone":
            visitor.close()
            continue
        w.get_by_test_id("prechat-topic").select_option(label="Jäsenmaksut")
        w.get_by_test_id("prechat-name").fill(HOSTILE)
        w.get_by_test_id("prechat-email").fill("liisa.virtanen@example.fi")
        w.get_by_test_id("prechat-submit").click()
        expect(form).to_be_hidden()
        expect(w.get_by_test_id("chat-input")).to_be_focused()
        w.get_by_test_id("chat-input").fill("Milloin jäsenmaksu pitää maksaa?")
        w.get_by_test_id("chat-send").click()
        expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1)
        expect(w.get_by_test_id("prechat-form")).to_have_count(0)
        shot(visitor, "widget-prechat-sent-fi-1280x800")

    # -- the console names the visitor by the given name, as text -----------------------------
    item = admin.locator("[data-testid=conversation][data-state=waiting]")
    expect(item).to_have_count(1, timeout=15_000)
    expect(item.locator(".conv-visitor")).to_have_text(HOSTILE)
    expect(item).not_to_contain_text("v-")
    item.first.click()
    expect(admin.locator(".thread h2, .thread-heading, h2").filter(has_text=HOSTILE).first).to_be_visible()
    info = admin.get_by_test_id("visitor-info")
    expect(info.get_by_test_id("visitor-email")).to_have_text("liisa.virtanen@example.fi")
    expect(info.get_by_test_id("visitor-topic")).to_have_text("Jäsenmaksut")
    assert admin.locator("b", has_text="Liisa").count() == 0  # never HTML
    shot(admin, "console-chat-prechat-fi-1280x800")
    admin.set_viewport_size(SIZES["phone"])
    shot(admin, "console-chat-prechat-fi-390x844")
    # the topic routed the chat to its department
    row = live.call(_conversation, live)
    assert row == (HOSTILE, "Jäsenmaksut", member.id)
    assert dialogs == []


async def _conversation(live):
    from sqlalchemy import select

    from jutella.store.models import Conversation

    async with live.rt.db.reader() as s:
        c = (await s.execute(select(Conversation))).scalar_one()
        return (c.prechat_name, c.prechat_topic, c.department_id)
