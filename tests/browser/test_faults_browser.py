"""A fault of what jutella stands on as the visitor sees it in the widget:
SQLite locked by another process (the rest of the faults, and the fixtures
used here, are in tests/integration/test_faults.py; docs/faults.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.store.models import ChatEvent
from jutella.i18n import gettext

from tests.helpers import add_staff, sign_in
from tests.integration.test_faults import BUSY_FI, assert_consistent, sqlite_path, write_lock  # noqa: F401 (a fixture)


# -- what a visitor sees ------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("settings_overrides", [{"sqlite_busy_timeout_ms": 300}])
def test_the_widget_shows_a_locked_database_and_works_again_after(live, browser_context_factory, write_lock):
    from playwright.sync_api import expect

    from tests.chat_clients import agent

    add_staff(live, "aino@example.org", ["agent"])
    a, _ = agent(live, sign_in(live, "aino@example.org"))  # someone online: the widget offers the chat
    page = browser_context_factory(locale="fi-FI").new_page()
    page.goto(live.url + "/demo")
    page.get_by_test_id("launcher").click()
    w = page.frame_locator("iframe[data-jutella=frame]")
    w.get_by_test_id("chat-input").fill("Ensimmäinen")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1, timeout=15_000)
    expect(w.locator(".row[data-status=sent]")).to_have_count(1, timeout=15_000)

    lock = write_lock(sqlite_path(live))
    w.get_by_test_id("chat-input").fill("Lukittuna")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("#error")).to_have_text(BUSY_FI, timeout=15_000)
    failed = w.locator(".row[data-status=failed]")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("Lukittuna")
    expect(failed).to_contain_text(gettext("fi", "Not sent"))

    lock.release()
    w.get_by_test_id("chat-input").fill("Lukittuna")  # the visitor sends it again
    w.get_by_test_id("chat-send").click()
    expect(w.locator(".row[data-status=sent][data-seq='2']")).to_contain_text("Lukittuna", timeout=15_000)
    assert_consistent(live)

    async def bodies():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(ChatEvent.body).where(ChatEvent.kind == "message")
                                    .order_by(ChatEvent.seq))).scalars().all()
    assert live.call(bodies) == ["Ensimmäinen", "Lukittuna"]
    a.close()
