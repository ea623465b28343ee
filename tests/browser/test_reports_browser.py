"""The Reports view in a real browser (issue 18 item 4, docs/reports.md): an
administrator opens Reports from the navigation, picks the seeded days, and
the charts are drawn with numbers that match a hand count of the seeded
chats; the CSV download holds the same days. With ``JUTELLA_TEST_SHOTS_DIR`` set
it also saves screenshots (1280x800 and 390x844, English and Finnish)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import PASSWORD, add_staff
from tests.integration.test_reports import scenario

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


def open_reports(page, base: str) -> None:
    page.goto(base + "/console")
    page.get_by_test_id("login-email").fill("boss@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("nav a[href='#/reports']").click()
    page.get_by_test_id("report-from").fill("2026-01-13")
    page.get_by_test_id("report-to").fill("2026-01-15")
    page.locator("form.rp-filters button[type=submit]").click()


def test_reports_view_draws_the_seeded_days_and_downloads_them(live, clock, browser_context_factory, tmp_path):
    scenario(live, clock)  # 5 chats (one missed, one past midnight in Helsinki), 2 ratings, 1 offline message
    add_staff(live, "boss@example.org", ["admin"], name="Boss")
    page = browser_context_factory(viewport={"width": 1280, "height": 800}).new_page()
    open_reports(page, live.url)

    charts = page.get_by_test_id("report-chart")
    expect(charts).to_have_count(4, timeout=15_000)
    expect(page.locator("[data-testid=report-chart] svg[role=img][aria-label]")).to_have_count(4)
    # chats per day: the 14th has 3 answered and 1 missed; the 23:30 UTC chat is on the 15th
    chats = page.locator("[data-chart=chats]")
    expect(chats.locator("rect.rp-answered")).to_have_count(2)  # the 14th and the 15th
    expect(chats.locator("rect.rp-missed")).to_have_count(1)
    expect(chats.locator("tr[data-key='2026-01-14'] td")).to_have_text(["3", "1", "4"])
    expect(chats.locator("tr[data-key='2026-01-15'] td")).to_have_text(["1", "0", "1"])
    expect(chats.locator("tr[data-key='2026-01-13'] td")).to_have_text(["0", "0", "0"])
    totals = page.get_by_test_id("report-totals")
    for key, value in (("chats", "5"), ("answered", "4"), ("missed", "1"), ("offline", "1"),
                       # first answers 10 s, 20 s, 45 s, 100 s: the 2nd is <= 30 s, the 4th <= 2 min
                       ("median", "at most 30 s"), ("p90", "at most 2 min")):
        expect(totals.locator(f"[data-total={key}] dd")).to_have_text(value)
    ratings = page.locator("[data-chart=ratings]")
    expect(ratings.locator("rect.rp-rating")).to_have_count(2)
    expect(ratings.locator("tr[data-key='5'] td")).to_have_text("1")
    expect(ratings.locator("tr[data-key='4'] td")).to_have_text("1")
    expect(ratings.locator("tr[data-key='1'] td")).to_have_text("0")
    offline = page.locator("[data-chart=offline]")
    expect(offline.locator("tr[data-key='2026-01-14'] td")).to_have_text("1")
    expect(page.locator("[data-chart=first-answer] rect.rp-answered")).to_have_count(4)
    expect(page.get_by_test_id("report-agents").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("report-agents").locator("tbody tr").first).to_contain_text("Aino Agentti")

    # axe finds nothing on the view, its number tables open
    from axe_playwright_python.sync_playwright import Axe
    for summary in page.locator(".rp-numbers summary").all():
        summary.click()
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []

    with page.expect_download() as info:
        page.get_by_test_id("report-csv").click()
    path = tmp_path / "report.csv"
    info.value.save_as(path)
    lines = path.read_text().strip().splitlines()
    assert lines[1:] == ["2026-01-13,0,0,0,0,0,,,,,0,0,0,0,0",
                         "2026-01-14,4,3,1,1,7,60,120,300,>3600,0,0,0,1,1",
                         "2026-01-15,1,1,0,0,2,30,30,60,60,0,0,0,0,0"]

    shots = os.environ.get("JUTELLA_TEST_SHOTS_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for lang, locale in (("en", "en-GB"), ("fi", "fi-FI")):
            for w, h in ((1280, 800), (390, 844)):
                p = browser_context_factory(viewport={"width": w, "height": h}, locale=locale).new_page()
                open_reports(p, live.url)
                expect(p.get_by_test_id("report-chart")).to_have_count(4, timeout=15_000)
                p.screenshot(path=f"{shots}/reports-{lang}-{w}x{h}.png", full_page=True)
