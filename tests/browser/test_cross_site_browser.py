"""Issue 15 in Chromium: a page on another site navigates a signed-in agent's
browser to a conversation's API address, the way the security test did. The
browser sends the SameSite=Lax session cookie with such a navigation, and
jutella answers 403 and writes no audit row; the console itself (its fetches
carry the CSRF token) and its "Print transcript" link (a same-origin
navigation to a staff GET) still work."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from jutella.store.models import AuditEntry

from tests.browser.test_attachments_browser import console_sign_in
from tests.chat_clients import visitor
from tests.helpers import add_staff

pytestmark = pytest.mark.browser

ATTACKER = "http://attacker.example"


@pytest.fixture
def backend():
    return "sqlite"


def _views(live) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.action == "conversation.view"))).scalar_one()
    return live.call(q)


def test_a_page_on_another_site_cannot_make_the_agents_browser_read_a_conversation(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    v, _ = visitor(live)
    v.message("Salainen asia: henkilötunnukseni")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]

    ctx = browser_context_factory()
    console = ctx.new_page()
    problems: list[str] = []
    console.on("pageerror", lambda exc: problems.append(str(exc)))
    console_sign_in(console, live.url, "aino@example.org")

    # the console opens the conversation (its fetches carry the token): shown, audited once
    console.locator("[data-testid=conversation]").first.click(timeout=15_000)
    expect(console.locator("[data-testid=message][data-author=visitor]")).to_contain_text(
        ["Salainen asia"], timeout=15_000)
    assert _views(live) == 1

    # another site's page, in the same browser, sends it to the conversation's API address
    target = f"{live.url}/api/v1/conversations/{conv}"
    ctx.route(f"{ATTACKER}/**", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body=f'<!doctype html><title>win a prize</title><a id="go" href="{target}">prize</a>'))
    lure = ctx.new_page()
    lure.goto(f"{ATTACKER}/prize")
    with lure.expect_navigation() as navigation:
        lure.click("#go")
    response = navigation.value
    assert response is not None and response.status == 403
    assert "Salainen" not in lure.content() and '"csrf"' in lure.content()
    # and the transcript's address the same way
    lure.goto(f"{ATTACKER}/prize")
    lure.evaluate(f"document.getElementById('go').href = '{target}/transcript'")
    with lure.expect_navigation() as navigation:
        lure.click("#go")
    assert navigation.value is not None and navigation.value.status == 403
    assert _views(live) == 1  # nothing was read, nothing audited

    # the console's own "Print transcript" link (a same-origin navigation to a staff GET) still opens
    with ctx.expect_page() as opened:
        console.get_by_test_id("console-transcript-print").click()
    printed = opened.value
    printed.wait_for_load_state()
    expect(printed.locator("body")).to_contain_text("Salainen asia", timeout=15_000)
    assert _views(live) == 2
    assert problems == []
    v.close()
