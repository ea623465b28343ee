"""Waiting feedback in the widget, end to end in Chromium (docs/widget.md,
"Waiting feedback"): two visitors wait, each sees their place in the queue
and the typical wait from last week's chats; the first is taken and the
second moves up without a reload; after the wait setting the email form is
offered in the queue status; taking the chat removes it. With two servers
(pg+redis) the visitors are on one and the agent on the other."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from jutella.store.models import Conversation, Visitor

from tests.browser.test_offline_browser import (  # noqa: F401  (fixtures)
    browser_context_factory,
    expect,
    offline_browser,
    online_agent,
    open_widget,
)
from tests.conftest import BROWSER_TOPOLOGIES

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-waiting")


@pytest.fixture(params=BROWSER_TOPOLOGIES)
def backend(request):
    return request.param


@pytest.fixture
def settings_overrides():
    return {"offline_wait_seconds": 10}  # the least the setting allows; the browser's clock runs it out


def last_weeks_chats(live, waits_s: list[int]) -> None:
    """Chats accepted yesterday after waiting the given seconds (what a week of work leaves)."""
    now = live.rt.clock.now()

    async def seed():
        async with live.rt.db.transaction() as s:
            for i, wait in enumerate(waits_s):
                visitor = (await s.execute(insert(Visitor).values(
                    public_id=f"v-old{i}", token_hash=f"old-{i}", created_at=now, last_seen_at=now)
                    .returning(Visitor.id))).scalar_one()
                taken = now - timedelta(days=1)
                await s.execute(insert(Conversation).values(
                    visitor_id=visitor, state="closed", created_at=taken - timedelta(seconds=wait), accepted_at=taken,
                    closed_at=taken, last_activity_at=taken, last_seq=0, agent_seen_seq=0, visitor_seen_seq=0))

    live.call(seed)


def waiting(live) -> list[int]:
    async def q():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(Conversation.id).where(Conversation.state == "waiting")
                                         .order_by(Conversation.id))).scalars())
    return live.call(q)


def write(w, text: str) -> None:
    w.get_by_test_id("chat-input").fill(text)
    w.get_by_test_id("chat-input").press("Enter")
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text(re.compile("Sent|Seen"))


def test_two_visitors_wait_see_their_places_move_and_are_offered_the_form(live, browser_context_factory):
    last_weeks_chats(live, [120, 150, 180, 200, 240])  # the median: 180 s
    http, sock = online_agent(live)

    first_page, first, first_problems = open_widget(live, browser_context_factory())
    write(first, "Hei, minulla on kysymys laskusta.")
    status = first.get_by_test_id("queue-status")
    expect(status).to_contain_text("An agent will be with you shortly.")
    expect(status).to_contain_text("You are number 1 in the queue.")
    expect(status).to_contain_text("Usually answered within about 3 minutes.")

    ctx = browser_context_factory(viewport={"width": 390, "height": 844})
    ctx.clock.install()  # the browser's own clock, so the wait setting runs out without waiting it out
    second_page, second, second_problems = open_widget(live, ctx)
    write(second, "Hello, I cannot sign in.")
    status2 = second.get_by_test_id("queue-status")
    expect(status2).to_contain_text("You are number 2 in the queue.")
    expect(status2).to_contain_text("Usually answered within about 3 minutes.")
    expect(status2.get_by_role("button", name="Leave a message")).to_have_count(0)  # not yet

    ahead, behind = waiting(live)
    sock.send(type="accept", conversation=ahead)
    expect(status).to_be_hidden()  # taken: no more queue
    expect(first.locator(".row[data-author=system]").last).to_contain_text("joined")
    expect(status2).to_contain_text("You are number 1 in the queue.")  # moved up, no reload

    ctx.clock.fast_forward(11_000)  # past offline_wait_seconds
    offer = status2.get_by_role("button", name="Leave a message")
    expect(offer).to_be_visible()
    expect(status2).to_contain_text("Nobody has answered yet. Leave a message and we will answer by email.")
    expect(status2).to_contain_text("You are number 1 in the queue.")  # still waiting, still in the queue
    expect(second.get_by_test_id("chat-input")).to_be_visible()  # offered, not forced
    SHOTS.mkdir(parents=True, exist_ok=True)
    second_page.screenshot(path=str(SHOTS / f"waiting-offer-390x844-en-{live.rt.settings.database_url[:6]}.png"))

    sock.send(type="accept", conversation=behind)
    expect(status2).to_be_hidden()
    expect(second.get_by_test_id("offline-form")).to_have_count(0)
    first_problems.check()
    second_problems.check()
    sock.close()
    http.close()
