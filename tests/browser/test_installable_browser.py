"""The console can be pinned as an app (issue 17, item 8): a web app manifest,
and a service worker that keeps the static shell only, never personal data."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser

CACHED_URLS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) urls.push(request.url);
  }
  return urls;
}"""


def test_the_console_installs_keeps_only_its_shell_and_opens_offline(live, browser_context_factory):
    add_staff(live, "aino@example.org", roles=["agent"], name="Aino")
    ctx = browser_context_factory()
    page = ctx.new_page()
    page.goto(live.url + "/console")

    # The manifest the page names describes an installable app with an icon jutella serves.
    href = page.locator("link[rel=manifest]").get_attribute("href")
    manifest = page.request.get(live.url + href)
    assert manifest.ok
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    app = json.loads(manifest.text())
    assert app["start_url"] == "/console" and app["scope"] == "/console" and app["display"] == "standalone"
    assert app["name"] and app["icons"]
    for icon in app["icons"]:
        assert page.request.get(live.url + icon["src"]).ok, icon

    # The service worker controls the console.
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert urlsplit(scope).path == "/console"
    page.reload()  # now under the worker's control
    assert page.evaluate("() => navigator.serviceWorker.controller !== null")

    # Signed in, personal data passes through the page; none of it is kept.
    page.get_by_test_id("login-email").fill("aino@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()
    page.evaluate("() => fetch('/api/v1/me').then(r => r.json())")
    page.goto(live.url + "/console?from=bookmark")
    expect(page.get_by_test_id("logout")).to_be_visible()
    cached = [urlsplit(u) for u in page.evaluate(CACHED_URLS)]
    assert cached, "the shell was not cached"
    for url in cached:
        assert (url.path == "/console" and not url.query) or url.path.startswith("/static/console/"), url.geturl()
    assert any(u.path == "/static/console/app.js" for u in cached)

    # Without a network the pinned console still opens (to its sign-in page, saying it cannot reach the server).
    ctx.set_offline(True)
    page.goto(live.url + "/console")
    expect(page.get_by_test_id("login-email")).to_be_visible()
    ctx.set_offline(False)
