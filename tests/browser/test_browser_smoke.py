import pytest

pytestmark = pytest.mark.browser


def test_console_page_loads_in_chromium_with_no_csp_violation(live, page):
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(live.url + "/console")
    page.wait_for_selector("[data-testid=login-email]")
    assert violations == []
