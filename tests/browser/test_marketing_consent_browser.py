"""The email form's marketing consent box in Chromium (issue 16 item 4): shown
only when ``[register.marketing]`` is on, with the configured wording, never
ticked beforehand; left as it is, the message is stored without consent;
ticked, with the wording's version. (The export and the default-off side:
tests/integration/test_marketing_consent.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from jutella.store.models import OfflineMessage

from tests.browser.test_offline_browser import (browser_context_factory, expect, fill_form,  # noqa: F401
                                                offline_browser, open_widget)

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")

WORDING = "Send me news of events by email (TEST WORDING)."


@pytest.fixture
def settings_overrides():
    return {"register": {"marketing": {"enabled": True, "consent_version": "v3", "consent_en": WORDING}}}


def consents(live) -> dict[str, str | None]:
    async def q():
        async with live.rt.db.reader() as s:
            return dict((await s.execute(select(OfflineMessage.email, OfflineMessage.marketing_consent_version)
                                         )).all())
    return live.call(q)


def test_the_consent_box_is_unticked_by_default_and_only_a_tick_stores_consent(live, browser_context_factory):
    for email, tick in (("left@example.fi", False), ("ticked@example.fi", True)):
        page, w, problems = open_widget(live, browser_context_factory())
        form = w.get_by_test_id("offline-form")
        expect(form).to_be_visible()
        box = w.get_by_test_id("offline-consent")
        expect(box).to_be_visible()
        expect(box).not_to_be_checked()  # unticked by default
        expect(w.get_by_label(f"{WORDING} (optional)")).to_have_attribute("type", "checkbox")  # its wording
        fill_form(w, email=email)
        if tick:
            box.check()
            for width, height in ((390, 844), (1280, 800)):  # looked at: the box below the message
                page.set_viewport_size({"width": width, "height": height})
                SHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SHOTS / f"offline-consent-{width}.png"))
        w.get_by_test_id("offline-submit").click()
        expect(w.get_by_test_id("offline-sent")).to_be_visible()
        problems.check()
        page.close()
    assert consents(live) == {"left@example.fi": None, "ticked@example.fi": "v3"}
