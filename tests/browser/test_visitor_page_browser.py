"""The visitor panel follows the visitor's page (issue 17): a visitor on
/demo opens the chat, an agent accepts, the visitor moves on (a single-page
site's pushState, then an ordinary link to another page, where the light
loader's probe brings the chat back) and the console's visitor panel shows
each new address live, without a reload, stripped to scheme, host and path."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_e2e_browser import console_sign_in, widget
from tests.helpers import add_staff

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-light")


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_the_visitor_panel_follows_the_visitors_page(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    desk = browser_context_factory(viewport={"width": 1280, "height": 800})
    agent = desk.new_page()
    console_sign_in(agent, live.url, "aino@example.org")
    expect(agent.get_by_test_id("presence")).to_have_attribute("data-state", "online")

    visitor = browser_context_factory(viewport={"width": 1280, "height": 800}).new_page()
    visitor.goto(live.url + "/demo?lang=en&email=liisa%40example.fi#session=abc")
    visitor.get_by_test_id("launcher").click()
    w = widget(visitor)
    w.get_by_test_id("chat-input").fill("Where do I find the opening hours?")
    w.get_by_test_id("chat-send").click()
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text("Sent")

    agent.locator("[data-testid=conversation][data-state=waiting]").first.click()
    agent.get_by_test_id("accept").click()
    info = agent.get_by_test_id("visitor-info")
    current = info.get_by_test_id("visitor-current-page")
    expect(current).to_have_text(live.url + "/demo")
    expect(info.get_by_test_id("visitor-page")).to_have_text(live.url + "/demo")
    agent.evaluate("window.__sameDocument = true")

    # a single-page site moves on with pushState: query string and fragment stay behind
    visitor.evaluate("history.pushState({}, '', '/demo/2?email=liisa%40example.fi&sid=s3cret#top')")
    expect(current).to_have_text(live.url + "/demo/2")
    expect(info.get_by_test_id("visitor-page")).to_have_text(live.url + "/demo")  # where it was opened
    assert "s3cret" not in info.inner_text() and "liisa" not in info.inner_text()

    # an ordinary link to another page: the chat follows (the probe finds it), the panel too
    visitor.goto(live.url + "/demo/2?lang=en&ref=mail#x")
    visitor.get_by_role("link", name="Page 1").click()
    visitor.wait_for_url(f"{live.url}/demo?lang=en")
    expect(current).to_have_text(live.url + "/demo")
    visitor.evaluate("history.pushState({}, '', '/demo/2')")
    expect(current).to_have_text(live.url + "/demo/2")
    assert agent.evaluate("window.__sameDocument") is True  # live, no reload

    SHOTS.mkdir(parents=True, exist_ok=True)
    agent.screenshot(path=str(SHOTS / "visitor-panel-1280x800.png"))
    agent.set_viewport_size({"width": 390, "height": 844})
    info.scroll_into_view_if_needed()
    agent.screenshot(path=str(SHOTS / "visitor-panel-390x844.png"))

    # in Finnish, after the reload the language change makes: the stored current page
    agent.set_viewport_size({"width": 1280, "height": 800})
    agent.get_by_label("Language").select_option("fi")
    expect(info).to_contain_text("Nykyinen sivu")
    expect(info).to_contain_text("Chat avattiin sivulla")
    expect(current).to_have_text(live.url + "/demo/2")
    agent.screenshot(path=str(SHOTS / "visitor-panel-fi-1280x800.png"))
