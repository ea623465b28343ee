"""Issue 3's scenario with two real browsers: a visitor on /demo and an agent
in /console, driven only through the contract's data-testid hooks, on all
three topologies (in pg+redis the console is on the other server)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import BROWSER_TOPOLOGIES
from tests.helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser

FIREFOX_UA = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(params=BROWSER_TOPOLOGIES)
def backend(request):
    return request.param


def console_sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/console")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("presence")).to_be_visible()


def widget(page):
    return page.frame_locator("iframe[data-jutella=frame]")


def test_visitor_on_demo_and_agent_in_console(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    dialogs: list[str] = []

    agent_ctx = browser_context_factory()
    agent = agent_ctx.new_page()
    agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    console_sign_in(agent, live.agent_side.url, "aino@example.org")
    expect(agent.get_by_test_id("presence")).to_have_attribute("data-state", "online")

    visitor_ctx = browser_context_factory(user_agent=FIREFOX_UA)
    visitor = visitor_ctx.new_page()
    visitor.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ws_opened: list[str] = []
    visitor.on("websocket", lambda ws: ws_opened.append(ws.url))
    # arrive on the demo page from another page, so there is a referrer
    visitor.goto(live.url + "/demo/2")
    visitor.get_by_role("link", name="Page 1").click()
    visitor.wait_for_url(re.compile(r"/demo(\?|$)"))
    visitor.wait_for_timeout(300)
    # consent first: nothing stored, no socket, before the launcher is clicked
    assert visitor_ctx.cookies() == []
    assert visitor.evaluate("localStorage.length + sessionStorage.length") == 0
    assert ws_opened == []

    visitor.get_by_test_id("launcher").click()
    w = widget(visitor)
    expect(w.get_by_test_id("privacy-link")).to_be_visible()
    w.get_by_test_id("chat-input").fill("Hei! <img src=x onerror=alert(1)> Tarvitsen apua.")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1)

    # the agent sees it arrive, takes it, sees the visitor's details
    item = agent.locator("[data-testid=conversation][data-state=waiting]").first
    expect(item).to_be_visible(timeout=15_000)
    item.click()
    agent.get_by_test_id("accept").click()
    expect(agent.locator("[data-testid=conversation][data-state=active]").first).to_be_visible()
    thread = agent.locator("[data-testid=message][data-author=visitor]")
    expect(thread.first).to_have_text(re.compile(re.escape("Hei! <img src=x onerror=alert(1)> Tarvitsen apua.")))
    info = agent.get_by_test_id("visitor-info")
    expect(info).to_contain_text("Firefox")
    expect(info).to_contain_text("128")
    expect(info).to_contain_text("Ubuntu")  # ua-parser names the distribution
    expect(info).to_contain_text("/demo/2")  # the referrer
    expect(w.locator("[data-testid=message][data-author=system]").first).to_contain_text("Aino")

    # typing shows on both sides
    agent.get_by_test_id("console-input").press_sequentially("Hetki", delay=30)
    expect(w.get_by_test_id("typing")).to_be_visible()
    agent.get_by_test_id("console-send").click()
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_text([re.compile("Hetki")])
    w.get_by_test_id("chat-input").press_sequentially("Kiitos", delay=30)
    expect(agent.get_by_test_id("typing")).to_be_visible()
    w.get_by_test_id("chat-send").click()
    expect(agent.locator("[data-testid=message][data-author=visitor]")).to_have_count(2)

    # after a reload the visitor sees the conversation again
    visitor.reload()
    visitor.wait_for_timeout(500)
    if not widget(visitor).get_by_test_id("chat-input").is_visible():
        visitor.get_by_test_id("launcher").click()
    w = widget(visitor)
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(2)
    expect(w.locator("[data-testid=message][data-author=agent]")).to_have_count(1)

    # the markup stayed text everywhere
    assert agent.locator("[data-testid=message] img").count() == 0
    assert dialogs == []


# What axe judges is the page's markup, the same whichever servers it talks to: SQLite only (the
# flow above proves the two-server shape).
@pytest.mark.parametrize("backend", ["sqlite"])
def test_axe_finds_no_serious_violation_in_the_console_chat(live, browser_context_factory):
    from axe_playwright_python.sync_playwright import Axe

    from tests.chat_clients import visitor

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    v, _ = visitor(live)
    v.message("Hei")
    v.until(lambda f: f["type"] == "ack")
    page = browser_context_factory().new_page()
    console_sign_in(page, live.agent_side.url, "aino@example.org")
    page.locator("[data-testid=conversation]").first.click()
    expect(page.get_by_test_id("visitor-info")).to_be_visible()
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert bad == [], [(v["id"], v["help"]) for v in bad]
