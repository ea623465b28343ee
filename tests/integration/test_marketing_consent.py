"""Marketing contacts only with consent (issue 16 item 4): ``contacts.csv``
lists only people who ticked the email form's consent box under the current
wording, with the wording's version and the time stored; objection and
erasure take them out; the feature is off by default, and then the form has
no box and the export lists nobody. (The box unticked by default:
tests/browser/test_marketing_consent_browser.py.)"""

from __future__ import annotations

import csv
import io
import re

import orjson
import pytest
from sqlalchemy import select

from jutella.privacy import subjects
from jutella.store.models import OfflineMessage

from tests.conftest import BOTH
from tests.helpers import add_staff, sign_in

ON = {"register": {"marketing": {"enabled": True, "consent_version": "v3",
                                 "consent_en": "Send me news of events (TEST WORDING)."}}}


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def form(live, email: str, consent: str | None = None) -> int:
    body = {"name": email.split("@")[0].title(), "email": email, "message": "Hei"}
    if consent is not None:
        body["marketing_consent"] = consent
    assert live.client().post("/api/v1/public/offline-messages", json=body).status_code == 201

    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(OfflineMessage).where(OfflineMessage.email == email))).scalar_one()
    m = live.call(q)
    return m.id, m.marketing_consent_version, m.marketing_consent_at


def contacts(http) -> list[dict[str, str]]:
    r = http.get("/api/v1/offline-messages/contacts.csv")
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.text)))


def frame_config(live) -> dict:
    page = live.client().get("/widget/frame").text
    return orjson.loads(re.search(r'id="jutella-config">(.*?)</script>', page, re.S).group(1))


@pytest.mark.parametrize("settings_overrides", [ON])
def test_contacts_lists_only_those_who_consented_and_objection_or_erasure_removes_them(live, clock):
    assert frame_config(live)["marketing"] == {
        "version": "v3", "text": {"fi": live.rt.settings.notice.marketing.consent_fi,
                                  "en": "Send me news of events (TEST WORDING).",
                                  "sv": live.rt.settings.notice.marketing.consent_sv}}
    add_staff(live, "admin@example.org", ["admin"])
    add_staff(live, "chair@example.org", ["privacy"])
    admin, chair = sign_in(live, "admin@example.org"), sign_in(live, "chair@example.org")
    _, version, at = form(live, "unticked@example.fi")  # the box left as it was: no consent
    assert version is None and at is None
    _, version, at = form(live, "stale@example.fi", consent="v2")  # ticked under an older wording
    assert version is None and at is None
    ticked_id, version, at = form(live, "ticked@example.fi", consent="v3")
    assert version == "v3" and at == clock.now()
    erased_id, _, _ = form(live, "erased@example.fi", consent="v3")

    rows = contacts(admin)
    assert [r["email"] for r in rows] == ["erased@example.fi", "ticked@example.fi"]
    ticked = rows[1]
    assert ticked["consent_version"] == "v3" and ticked["consented_at"] == at.isoformat()

    # the access copy shows the consent as stored
    copy = chair.post("/api/v1/privacy/export", json={"offline_messages": [ticked_id]}).json()
    assert copy["offline_messages"][0]["marketing_consent"] == {"version": "v3", "at": at.isoformat()}
    html = chair.post("/api/v1/privacy/export", params={"format": "html"},
                      json={"offline_messages": [ticked_id]}).text
    assert "Consent to marketing email (wording version)" in html and "(v3)" in html

    assert chair.post("/api/v1/privacy/flags", json={"kind": "objection", "email": "ticked@example.fi"}
                      ).status_code == 200
    live.call(subjects.erase, live.rt, subjects.Selection(offline_messages={erased_id}), actor_id=None)
    assert contacts(admin) == []


# a setting's default and a form that ignores the box; the contacts query is tested on both above
@pytest.mark.parametrize("backend", ["sqlite"])
def test_marketing_is_off_by_default_no_box_no_consent_no_contacts(live):
    assert live.rt.settings.notice.marketing.enabled is False
    assert frame_config(live)["marketing"] is None  # the widget draws no consent box
    add_staff(live, "admin@example.org", ["admin"])
    _, version, at = form(live, "ticked@example.fi", consent="1")  # even if a client sends it
    assert version is None and at is None
    assert contacts(sign_in(live, "admin@example.org")) == []
