"""Single sign-on in Chromium (the rest, and the provider process, are in
tests/integration/test_oidc.py; docs/sso.md): the sign-in page's button, the
words for a person the provider's groups do not map, and a mapped person's
way through the provider's form into the console."""

from __future__ import annotations

import pytest

from tests.conftest import shots_dir
from tests.integration.test_oidc import client_id, provider, settings_overrides, sso, sso_only  # noqa: F401 (fixtures)


@pytest.mark.browser
def test_the_button_the_refusal_and_a_sign_in_into_the_console(sso, provider, page):  # noqa: F811
    from playwright.sync_api import expect

    live = sso
    provider.user("ville", groups=["students"])
    provider.user("aino", groups=["chat-agents"])
    page.goto(live.url + "/console")
    expect(page.get_by_test_id("login-sso")).to_have_text("Sign in with single sign-on")
    page.get_by_test_id("login-sso").click()
    page.get_by_test_id("idp-username").fill("ville")
    page.get_by_test_id("idp-submit").click()
    expect(page.get_by_role("alert").filter(has_text="not in any group that may use jutella")).to_be_visible()
    expect(page).to_have_url(live.url + "/console")  # the error code is not left in the address
    shots_dir().mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots_dir() / "sso-refused-en.png"))
    from axe_playwright_python.sync_playwright import Axe
    violations = Axe().run(page).response["violations"]  # the sign-in page with the button and the refusal
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]

    page.get_by_test_id("login-sso").click()
    page.get_by_test_id("idp-username").fill("aino")
    page.get_by_test_id("idp-submit").click()
    expect(page.get_by_test_id("signed-in-name")).to_have_text("Aino")
    expect(page.get_by_test_id("presence")).to_be_visible()  # the agent's console
