"""The Webhooks view in a real browser (issue 19 item 2, docs/webhooks.md): an
administrator adds a hook from the navigation, sees its secret once, a
private address is refused beside the field, a chat is delivered to a real
receiver with a signature that verifies, and the delivery log shows it. With
``JUTELLA_TEST_SHOTS_DIR`` set it also saves screenshots (1280x800 and
390x844, English and Finnish)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import PASSWORD, add_staff, eventually
from tests.integration.test_webhooks import Receiver, allow_private, start_chat, verify

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


def open_webhooks(page, base: str) -> None:
    page.goto(base + "/console", timeout=60_000)
    page.get_by_test_id("login-email").fill("boss@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("nav a[href='#/webhooks']").click()


def test_an_admin_adds_a_hook_sees_its_secret_once_and_its_deliveries(live, browser_context_factory):
    receiver = Receiver()
    try:
        add_staff(live, "boss@example.org", ["admin"], name="Boss")
        page = browser_context_factory(viewport={"width": 1280, "height": 800}).new_page()
        open_webhooks(page, live.url)
        expect(page.get_by_test_id("webhooks-none")).to_be_visible()

        # a private address is refused beside the field while the setting is off
        page.get_by_test_id("webhook-name").fill("Helpdesk <b>x</b>")
        page.get_by_test_id("webhook-url").fill(receiver.url)
        page.locator("[data-testid=webhook-event][data-event='conversation.created']").check()
        page.get_by_test_id("webhook-save").click()
        expect(page.get_by_test_id("webhook-error")).to_contain_text("JUTELLA_WEBHOOK_ALLOW_PRIVATE")
        expect(page.get_by_test_id("webhook-url")).to_have_attribute("aria-invalid", "true")

        allow_private(live)
        page.locator("[data-testid=webhook-personal][data-field=text]").check()
        page.get_by_test_id("webhook-save").click()
        secret_el = page.get_by_test_id("webhook-secret")
        expect(secret_el).to_be_visible()
        secret = secret_el.text_content()
        assert secret.startswith("whsec_")
        row = page.get_by_test_id("webhook")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Helpdesk <b>x</b>")  # a name is text, never markup
        expect(page.get_by_test_id("webhook-personal-list")).to_have_text("Message text")
        expect(row).not_to_contain_text(secret)  # later, only its last characters

        start_chat(live, "Hei")
        eventually(lambda: len(receiver.requests) == 1)
        headers, body = receiver.requests[0]
        assert verify(secret, headers, body)
        page.get_by_test_id("webhook-log-refresh").click()
        delivery = page.get_by_test_id("webhook-delivery")
        expect(delivery).to_have_attribute("data-state", "delivered")
        expect(delivery).to_contain_text("HTTP 200")
        expect(delivery).to_contain_text(headers["x-jutella-delivery"])

        from axe_playwright_python.sync_playwright import Axe
        violations = Axe().run(page).response["violations"]
        assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []

        shots = os.environ.get("JUTELLA_TEST_SHOTS_DIR")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            for lang, locale in (("en", "en-GB"), ("fi", "fi-FI")):
                for w, h in ((1280, 800), (390, 844)):
                    p = browser_context_factory(viewport={"width": w, "height": h}, locale=locale).new_page()
                    open_webhooks(p, live.url)
                    expect(p.get_by_test_id("webhook-delivery")).to_have_count(1)
                    p.screenshot(path=f"{shots}/webhooks-{lang}-{w}x{h}.png", full_page=True)
    finally:
        receiver.close()
