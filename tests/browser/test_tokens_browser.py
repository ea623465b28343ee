"""The API tokens page in a real browser (issue 19 item 1, docs/api.md): an
administrator makes a token with a scope and an expiry, sees it once with a
copy button, the token works on the API, is gone from the page once
dismissed and after a reload, and revoking it stops it at once. With
``JUTELLA_TEST_SHOTS_DIR`` set it also saves screenshots (1280x800 and
390x844, English and Finnish)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser

REPORT = "/api/v1/reports/daily?from=2026-01-01&to=2026-01-07"


def open_tokens(page, base: str) -> None:
    page.goto(base + "/console")
    page.get_by_test_id("login-email").fill("boss@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("nav a[href='#/tokens']").click()
    expect(page.get_by_test_id("token-form")).to_be_visible()


def make(page, name: str, scope: str) -> str:
    page.get_by_test_id("token-name").fill(name)
    page.locator(f"[data-testid=token-scope][data-scope='{scope}']").check()
    page.get_by_test_id("token-expiry").select_option("30")
    page.get_by_test_id("token-create").click()
    secret = page.get_by_test_id("token-secret")
    expect(secret).to_have_text(re.compile(r"^jut_[\w-]{43}$"))
    return secret.text_content()


def test_an_admin_makes_a_token_sees_it_once_and_revokes_it(live, browser_context_factory):
    add_staff(live, "boss@example.org", ["admin"], name="Boss")
    page = browser_context_factory(viewport={"width": 1280, "height": 800}).new_page()
    open_tokens(page, live.url)
    expect(page.get_by_test_id("tokens-empty")).to_be_visible()
    # an admin without the agent role cannot give a token the agent's reads
    expect(page.locator("[data-testid=token-scope][data-scope='conversations:read']")).to_be_disabled()

    token = make(page, "Kuukausiraportti", "reports:read")
    expect(page.get_by_test_id("token-copy")).to_be_visible()
    row = page.get_by_test_id("token-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-state", "active")
    expect(row).to_contain_text("reports:read")
    expect(row).not_to_contain_text(token[4:12])  # the list never shows the token

    api = live.client()
    assert api.get(REPORT, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    page.get_by_test_id("token-done").click()
    expect(page.get_by_test_id("token-secret")).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("token-row")).to_have_count(1)
    assert token not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("token-revoke").click()
    expect(page.get_by_test_id("token-row")).to_have_attribute("data-state", "revoked")
    expect(page.get_by_test_id("token-revoke")).to_have_count(0)
    r = api.get(REPORT, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"

    shots = os.environ.get("JUTELLA_TEST_SHOTS_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for lang, locale in (("en", "en-GB"), ("fi", "fi-FI")):
            for w, h in ((1280, 800), (390, 844)):
                context = browser_context_factory(viewport={"width": w, "height": h}, locale=locale)
                context.add_cookies([{"name": "jutella_lang", "value": lang, "url": live.url}])
                p = context.new_page()
                open_tokens(p, live.url)
                make(p, f"Helpdesk {lang} {w}", "reports:read")
                p.screenshot(path=f"{shots}/tokens-{lang}-{w}x{h}.png", full_page=True)
