"""Live revocation in the console (issue 14, item 2): a conversation restricted
while an agent has it open leaves the list and the open view, on one server
and on two workers with the change crossing Redis. The socket side is proved
in tests/integration/test_revocation.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.test_console_chat_browser import console_page, expect, item
from tests.helpers import add_staff, sign_in
from tests.integration.test_revocation import WITHIN, started_chat


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_the_console_drops_a_conversation_restricted_while_it_is_open(live, browser_context_factory):
    """The open view says the conversation is no longer available and the
    list no longer has it; the messages shown are gone from the page."""
    shots = Path("/tmp/shots")
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    chair = sign_in(live, "chair@example.org")
    v, conv = started_chat(live, "Opiskelijanumeroni on 1234567")
    v2, other = started_chat(live, "Toinen kysymys")
    ctx = browser_context_factory(viewport={"width": 1280, "height": 800})
    page, problems = console_page(live.agent_side, ctx, path=f"#/conversations/{conv}")
    expect(page.locator("[data-testid=message][data-author=visitor]")).to_contain_text("Opiskelijanumeroni on 1234567")
    expect(item(page, conv)).to_be_visible()

    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "conversations": [conv]})
    assert r.status_code == 200, r.text
    gone = page.get_by_test_id("thread-gone")
    expect(gone).to_have_text(re.compile("This conversation is no longer available to you."), timeout=WITHIN * 1000)
    expect(item(page, conv)).to_have_count(0)
    expect(item(page, other)).to_be_visible()  # the rest of the list stays
    expect(page.get_by_text("1234567")).to_have_count(0)
    v.message("Ja puhelinnumeroni on 040 123 4567")
    v.until(lambda f: f["type"] == "ack")
    v3, third = started_chat(live, "Kolmas")  # published after the message: once it shows, the message was handled
    expect(item(page, third)).to_contain_text("Kolmas")  # the list's refresh came after it, too
    expect(page.get_by_text("040 123 4567")).to_have_count(0)
    expect(item(page, conv)).to_have_count(0)

    shots.mkdir(parents=True, exist_ok=True)
    suffix = "" if live.peer is None else "-2workers"
    page.screenshot(path=str(shots / f"revoked-1280{suffix}.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    expect(gone).to_be_visible()
    page.screenshot(path=str(shots / f"revoked-390{suffix}.png"))
    page.get_by_role("button", name="← All conversations").click()
    expect(item(page, other)).to_be_visible()
    page.screenshot(path=str(shots / f"revoked-list-390{suffix}.png"))
    problems.check()
    for client in (v, v2, v3):
        client.close()
