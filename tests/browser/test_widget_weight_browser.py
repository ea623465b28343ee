"""The light widget (issue 17 item 7), measured in Chromium: what a host page
loads from jutella before the chat is opened (at most 5 KiB on the wire: the
loader, the launcher's stylesheet and the storage probe; no chat frame), what
opening adds (at most 30 KiB in all), and how soon the frame is ready after
the click, measured in the page. The numbers are printed (run with -s) and
recorded in docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import put_on_duty
from playwright.sync_api import expect

from tests.browser.test_widget_browser import HostSite, host_html

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-light")
BEFORE_BUDGET = 5 * 1024
OPENED_BUDGET = 30 * 1024
READY_BOUND_MS = 1500  # generous: the behaviour, not the machine (measured: docs/performance.md)

# In the host page: when the launcher was clicked and when the frame said it is ready.
CLOCK = """
window.__jt = {};
document.addEventListener("pointerover", (e) => { window.__jt.pointer ??= e.timeStamp; }, true);
document.addEventListener("click", (e) => { window.__jt.click ??= e.timeStamp; }, true);
addEventListener("message", (e) => {
  if (e.data && e.data.jutella === 1 && e.data.type === "ready") window.__jt.ready ??= performance.now();
});
"""


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(autouse=True)
def _template_before_browser(sqlite_template):
    """Migrate the SQLite template before Playwright owns the event loop."""


@pytest.fixture
def host():
    site = HostSite()
    yield site
    site.close()


@pytest.fixture
def settings_overrides(host) -> dict[str, Any]:
    return {"allowed_origins": [host.origin]}


class Wire:
    """What came from jutella, per response, as Chromium counted it: the body
    as it travelled (gzip-encoded where the server compressed it) and the
    response headers. The budgets are on the bodies, as the issue's figures
    were (29 KB a page view, 30 KiB opened); the headers are printed too."""

    def __init__(self, page, origin: str):
        self.rows: list[tuple[str, int, int]] = []
        self.origin = origin
        page.on("requestfinished", self.finished)

    def finished(self, request) -> None:
        if not request.url.startswith(self.origin):
            return
        sizes = request.sizes()
        self.rows.append((request.url[len(self.origin):], sizes["responseBodySize"], sizes["responseHeadersSize"]))

    def total(self) -> int:
        return sum(n for _, n, _ in self.rows)

    def headers(self) -> int:
        return sum(n for _, _, n in self.rows)

    def paths(self) -> set[str]:
        return {path.split("?")[0] for path, _, _ in self.rows}


def test_a_first_visit_loads_under_5_kib_and_the_chat_opens_fast(live, browser_context_factory, host):
    put_on_duty(live, 0, "weight-test")
    host.pages["/shop/item"] = host_html(live.url, lang="en", body="<p>Products, prices, opening hours.</p>")
    SHOTS.mkdir(parents=True, exist_ok=True)

    for width, height in ((1280, 800), (390, 844)):
        ctx = browser_context_factory(viewport={"width": width, "height": height})
        page = ctx.new_page()
        page.add_init_script(CLOCK)
        wire = Wire(page, live.url)
        with page.expect_request_finished(lambda r: "/static/widget/probe.js" in r.url):
            page.goto(host.origin + "/shop/item")
        expect(page.get_by_test_id("launcher")).to_be_visible()
        page.wait_for_load_state("networkidle")

        before = wire.total()
        print(f"\n{width}x{height} before opening: {before} B of bodies from jutella "
              f"(+{wire.headers()} B of headers): {wire.rows}")
        assert wire.paths() == {"/widget.js", "/widget/probe", "/static/widget/probe.js"}  # no frame, no modules
        assert before <= BEFORE_BUDGET, wire.rows
        assert ctx.cookies() == []
        page.screenshot(path=str(SHOTS / f"host-before-{width}x{height}.png"))

        page.get_by_test_id("launcher").click()
        chat = page.frame_locator("iframe[data-jutella=frame]")
        expect(chat.get_by_test_id("chat-input")).to_be_focused()
        page.wait_for_load_state("networkidle")
        t = page.evaluate("window.__jt")
        ready_ms = t["ready"] - t["click"]
        print(f"{width}x{height} frame ready {ready_ms:.0f} ms after the click "
              f"({t['ready'] - t['pointer']:.0f} ms after the pointer came over the launcher)")
        after = wire.total()
        print(f"{width}x{height} opened: {after} B of bodies from jutella (+{wire.headers()} B of headers) "
              f"in {len(wire.rows)} responses")
        assert "/widget/frame" in wire.paths()
        assert after <= OPENED_BUDGET, wire.rows
        assert 0 <= ready_ms <= READY_BOUND_MS
        page.screenshot(path=str(SHOTS / f"host-opened-{width}x{height}.png"))
        ctx.close()
