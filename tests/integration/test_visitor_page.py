"""The visitor's current page (issue 17): the widget reports it while a chat
is open (``{"type": "page"}``, and the hello of every page load); the server
stores it cleaned by the one rule (clean_url), at most once a second per
connection with the newest winning, and pushes it to the consoles that
follow the conversation. On SQLite and PostgreSQL (an UPDATE with the
restriction rule inside it). Also: the favicon."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.store.models import Conversation

from tests.chat_clients import agent, visitor
from tests.conftest import BOTH
from tests.helpers import add_staff, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def current_page(live, conversation: int) -> str | None:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(Conversation.current_page).where(Conversation.id == conversation))).scalar()
    return live.call(q)


def test_page_reports_are_cleaned_coalesced_and_reach_the_console(live):
    v, welcome = visitor(live, page="https://site.example/start?email=liisa%40example.fi#x")
    v.message("Hei")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert current_page(live, conv) == "https://site.example/start"  # where it was opened, to begin with

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    a, _ = agent(live, http, subscriptions={conv: 0})
    a.send(type="ping")
    a.until(lambda f: f["type"] == "pong")

    # a single-page site moving five times in a moment: the first at once, then
    # (within the second) only the newest
    v.send(type="page", page="https://user:pw@site.example/a?sid=1#top")
    a.until(lambda f: f["type"] == "page")
    for path in ("b", "c", "d", "e?token=xyz"):
        v.send(type="page", page=f"https://user:pw@site.example/{path}")
    v.send(type="ping")
    assert v.until(lambda f: f["type"] in ("pong", "error"))["type"] == "pong"
    a.until(lambda f: f["type"] == "page" and f["page"] == "https://site.example/e", timeout=10)
    pages = [f for f in a.frames if f["type"] == "page"]
    assert pages == [{"type": "page", "conversation": conv, "page": "https://site.example/a"},
                     {"type": "page", "conversation": conv, "page": "https://site.example/e"}]
    assert current_page(live, conv) == "https://site.example/e"
    info = http.get(f"/api/v1/conversations/{conv}").json()["visitor_info"]
    assert (info["current_page"], info["page_url"]) == ("https://site.example/e", "https://site.example/start")

    # the next page load of a returning visitor says it in its hello
    v2, _ = visitor(live, token=welcome["token"], page="https://site.example/f?q=liisa")
    a.until(lambda f: f["type"] == "page" and f["page"] == "https://site.example/f")
    assert current_page(live, conv) == "https://site.example/f"
    # what is not an http(s) address with a host is not stored, and is not an error
    v2.send(type="page", page="javascript:alert(1)")
    v2.send(type="ping")
    assert v2.until(lambda f: f["type"] in ("pong", "error"))["type"] == "pong"

    # an ended chat is not followed any more
    v2.send(type="end")
    a.until(lambda f: f["type"] == "event" and f.get("state") == "closed")
    v3, _ = visitor(live, token=welcome["token"], page="https://site.example/after-the-chat")
    v3.send(type="page", page="https://site.example/later")
    v3.send(type="ping")
    v3.until(lambda f: f["type"] == "pong")
    a.send(type="ping")
    a.until(lambda f: f["type"] == "pong")
    assert [f["page"] for f in a.frames if f["type"] == "page"][-1] == "https://site.example/f"
    assert current_page(live, conv) == "https://site.example/f"

    # a visitor with no chat: nothing to store
    lone, _ = visitor(live)
    lone.send(type="page", page="https://site.example/elsewhere")
    lone.send(type="ping")
    assert lone.until(lambda f: f["type"] in ("pong", "error"))["type"] == "pong"
    for c in (v, v2, v3, lone, a):
        c.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # a static file: the dialect does not show
def test_the_favicon_is_served(live):
    r = live.client().get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert len(r.content) < 4096
