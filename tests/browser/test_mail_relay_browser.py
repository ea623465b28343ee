"""The widget tells the visitor why a transcript mail is refused, in the
server's words (docs/security.md "No mail relay"; the HTTP side:
tests/integration/test_mail_relay.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from jutella.chat import actions as chat
from jutella.store.models import Conversation, StaffAccount

from tests.browser.test_offline_browser import online_agent
from tests.helpers import eventually

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings_overrides():
    return {"transcript_email_per_client_hour": 1}


def latest_conversation(live) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.max(Conversation.id)))).scalar_one()
    return live.call(q)


def test_the_widget_shows_why_a_transcript_mail_is_refused(live, browser_context_factory):
    _http, _sock = online_agent(live)  # on duty: the widget offers the chat, not the email form

    async def aino():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(StaffAccount.id))).scalar_one()
    agent = live.call(aino)
    problems: list[str] = []

    def open_chat(text: str):
        """A fresh visitor (a browser of its own, the same client address) with a chat."""
        before = latest_conversation(live) or 0
        page = browser_context_factory().new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(live.url + "/demo?lang=en")
        page.get_by_test_id("launcher").click()
        w = page.frame_locator("iframe[data-jutella=frame]")
        w.get_by_test_id("chat-input").fill(text)
        w.get_by_test_id("chat-send").click()
        expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1, timeout=15_000)
        # the widget shows the message at once; the conversation exists once the server stored it
        eventually(lambda: (latest_conversation(live) or 0) > before, 15)
        return w, latest_conversation(live)

    def ask(w, address: str) -> None:
        w.get_by_test_id("transcript-email").click()
        w.get_by_test_id("transcript-email-input").fill(address)
        w.get_by_test_id("transcript-email-send").click()

    # closed before staff said anything: the email is refused, and the visitor is told why
    w, conv = open_chat("Log in at https://jamko-login.example/verify")
    live.call(chat.close, live.rt, conversation_id=conv, by="agent", agent_id=agent)
    expect(w.get_by_test_id("transcript-email")).to_be_visible(timeout=15_000)
    ask(w, "victim@example.com")
    expect(w.get_by_test_id("transcript-status")).to_have_text(
        "A transcript can be emailed only after our staff have answered in the chat. "
        "You can save it as a file instead.", timeout=15_000)

    # a chat staff answered: one mail goes; the next from this address is refused with the reason
    w, conv = open_chat("Toinen kysymys")
    live.call(chat.post_agent_message, live.rt, agent_id=agent, conversation_id=conv, client_id="a1",
              body="Hei! Autan mielelläni.")
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_count(1, timeout=15_000)
    live.call(chat.close, live.rt, conversation_id=conv, by="agent", agent_id=agent)
    expect(w.get_by_test_id("transcript-email")).to_be_visible(timeout=15_000)
    ask(w, "liisa@example.fi")
    expect(w.get_by_test_id("transcript-status")).to_contain_text("is on its way to liisa@example.fi",
                                                                  timeout=15_000)
    ask(w, "liisa@example.fi")
    expect(w.get_by_test_id("transcript-status")).to_contain_text(
        "Too many transcript emails from this network.", timeout=15_000)
    assert problems == []
