"""Times in the register's time zone (issue 17): a chat at 12:00 UTC on a
December day reads 14:00 in Helsinki, in the transcript page, the transcript
mail, an emailed reply's quote and the access copy, and none of them says UTC.
``JUTELLA_TIME_ZONE`` (default Europe/Helsinki) names the zone; the one helper
is ``jutella.i18n.local_time``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jutella.chat import actions as chat
from jutella.clock import FakeClock
from jutella.settings import SettingsError, load_settings

from tests.helpers import add_staff, outbox_idle, sign_in
from .test_attachments import H, new_visitor_with_chat

NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 14:00 in Helsinki (EET, UTC+2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON_UTC)


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


def body_text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def body_html(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def test_a_noon_utc_chat_reads_14_00_in_helsinki_everywhere(live, smtp):
    smtp.start()
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    http = live.client()
    token, conv = new_visitor_with_chat(live, "Hei, mihin aikaan olette auki?")
    live.call(chat.post_agent_message, live.rt, agent_id=aino_id, conversation_id=conv, client_id="a1",
              body="Kahdeksasta neljään.")

    # the printable transcript, as the visitor saves it
    page = http.get("/api/v1/public/transcript", headers={H: token}, params={"lang": "fi"}).text
    assert "2026-12-07 14:00" in page and ">14:00<" in page
    assert "12:00" not in page and "UTC" not in page
    assert "Europe/Helsinki" in page

    # the transcript by mail (text and HTML) and an emailed reply quoting the visitor's time
    assert http.post("/api/v1/public/transcript/email", headers={H: token},
                     json={"email": "liisa@example.fi", "lang": "en"}).status_code == 202
    assert http.post("/api/v1/public/offline-messages", json={
        "name": "Liisa", "email": "liisa@example.fi", "message": "Saanko kuitin?", "lang": "fi"}).status_code == 201
    mid = aino.get("/api/v1/offline-messages").json()[0]["id"]
    assert aino.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Kuitti tulee."}).status_code < 300
    outbox_idle(live)
    mails = {msg["Subject"]: msg for _, msg in smtp.wait_for(2)}
    transcript = next(m for s, m in mails.items() if "transcript" in s)
    reply = next(m for s, m in mails.items() if s.startswith("Re:") or s.startswith("Vs:") or "viestiisi" in s)
    text = body_text(transcript)
    assert "Started 2026-12-07 14:00" in text and "14:00  You: Hei" in text
    assert "UTC" not in text and "Times are in the time zone Europe/Helsinki." in text
    assert ">14:00<" in body_html(transcript) and "UTC" not in body_html(transcript)
    assert "14.00" in body_text(reply) and "12.00" not in body_text(reply)

    # the access copy (HTML) the privacy contact hands over
    sel = {"conversations": [conv], "offline_messages": [mid], "emails": []}
    copy = chair.post("/api/v1/privacy/export", params={"format": "html", "lang": "fi"}, json=sel).text
    assert "2026-12-07 14:00" in copy and "UTC" not in copy and "12:00" not in copy


def test_the_time_zone_setting_is_checked():
    assert load_settings().time_zone == "Europe/Helsinki"
    assert load_settings(time_zone="Europe/Stockholm").time_zone == "Europe/Stockholm"
    with pytest.raises(SettingsError, match="JUTELLA_TIME_ZONE"):
        load_settings(time_zone="Helsinki/Mars")
