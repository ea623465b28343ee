"""True delivery states (issue 16, item 9): a mail the SMTP server refused is
shown as refused, in the access copy (JSON and HTML) and in the console's
views, never as "sent". A real SMTP server (aiosmtpd) refuses one mailbox with
550 at RCPT."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.chat import actions as chat
from jutella.store.models import MailOutbox

from tests.helpers import add_staff, eventually, outbox_idle, sign_in
from .test_attachments import H, new_visitor_with_chat

REFUSED = "gone.student@example.fi"
ACCEPTED = "liisa.ok@example.fi"


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


def states(live) -> dict[str, str]:
    async def q():
        async with live.rt.db.reader() as s:
            return dict((await s.execute(select(MailOutbox.to_addr, MailOutbox.state))).all())
    return live.call(q)


def test_a_refused_mail_is_shown_refused_in_the_access_copy_and_the_console(live, smtp):
    smtp.refused.add(REFUSED)
    smtp.start()
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    http = live.client()
    # a transcript to a mailbox the server refuses, and one it accepts
    token, conv = new_visitor_with_chat(live, "Hei, lähettäkää tallenne")
    # a transcript is mailed only for a chat staff took part in (no mail relay)
    live.call(chat.post_agent_message, live.rt, agent_id=aino_id, conversation_id=conv, client_id="a1",
              body="Hei! Tässä tallenne.")
    for address in (REFUSED, ACCEPTED):
        assert http.post("/api/v1/public/transcript/email", headers={H: token},
                         json={"email": address}).status_code == 202
    # an offline message whose emailed reply the server refuses
    assert http.post("/api/v1/public/offline-messages", json={
        "name": "Liisa", "email": REFUSED, "message": "Saanko kuitin?", "lang": "fi"}).status_code == 201
    mid = aino.get("/api/v1/offline-messages").json()[0]["id"]
    assert aino.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Kuitti tulee."}).status_code < 300
    eventually(lambda: outbox_idle(live) and set(states(live).values()) <= {"sent", "refused"}, 15)
    assert states(live) == {REFUSED: "refused", ACCEPTED: "sent"}
    assert [rcpt for rcpt, _ in smtp.messages] == [[ACCEPTED]]

    # the access copy: the true state of each mail
    matches = chair.get("/api/v1/privacy/subjects", params={"q": REFUSED}).json()
    sel = {"conversations": [conv], "offline_messages": [mid],
           "emails": sorted({m["id"] for m in matches if m["kind"] == "email"})}
    copy = chair.post("/api/v1/privacy/export", json=sel).json()
    assert {(t["to"], t["state"]) for t in copy["conversations"][0]["transcript_emails"]} == {
        (REFUSED, "refused"), (ACCEPTED, "sent")}
    assert [r["email_state"] for r in copy["offline_messages"][0]["replies"]] == ["refused"]
    assert {e["state"] for e in copy["emails"]} == {"refused"} and len(copy["emails"]) == 2
    html = chair.post("/api/v1/privacy/export", params={"format": "html", "lang": "en"}, json=sel).text
    assert f"{REFUSED} (" in html
    assert html.count('data-state="refused"') == 4  # the transcript, the reply, and the two mails listed
    assert "refused by the receiving server, not delivered" in html
    fi = chair.post("/api/v1/privacy/export", params={"format": "html", "lang": "fi"}, json=sel).text
    assert "vastaanottava palvelin hylkäsi" in fi

    # the console: the offline message's reply, and the register's views of the chat and the form
    detail = aino.get(f"/api/v1/offline-messages/{mid}").json()
    assert [(r["delivery"], r["error"][:3]) for r in detail["replies"]] == [("refused", "550")]
    record = chair.get(f"/api/v1/privacy/conversations/{conv}").json()
    assert {(m["to"], m["delivery"]) for m in record["transcript_emails"]} == {
        (REFUSED, "refused"), (ACCEPTED, "sent")}
    form = chair.get(f"/api/v1/privacy/offline-messages/{mid}").json()
    assert [r["delivery"] for r in form["replies"]] == ["refused"]

    # a person may decide to send a refused mail again (say, after the mailbox is back)
    smtp.refused.clear()
    refused_reply = detail["replies"][0]["outbox_id"]
    assert aino.post(f"/api/v1/outbox/{refused_reply}/retry").status_code == 200
    eventually(lambda: outbox_idle(live) and aino.get(f"/api/v1/offline-messages/{mid}").json()
               ["replies"][0]["delivery"] == "sent", 15)


def test_a_connection_cut_after_the_data_leaves_the_mail_uncertain_not_resent(live, smtp):
    """The server took the data but the connection dropped before its answer:
    the mail may have arrived, so it is "uncertain" at once and not sent again
    by itself (before, it went back to the queue and was sent twice)."""
    smtp.cut_after_data = True
    smtp.start()
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    aino = sign_in(live, "aino@example.org")
    assert live.client().post("/api/v1/public/offline-messages", json={
        "name": "Liisa", "email": ACCEPTED, "message": "Saanko kuitin?", "lang": "fi"}).status_code == 201
    mid = aino.get("/api/v1/offline-messages").json()[0]["id"]
    assert aino.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Kuitti tulee."}).status_code < 300
    eventually(lambda: outbox_idle(live) and states(live) == {ACCEPTED: "uncertain"}, 15)
    assert outbox_idle(live)  # nothing due: it is not resent without a person
    assert len(smtp.messages) == 1
    reply = aino.get(f"/api/v1/offline-messages/{mid}").json()["replies"][0]
    assert reply["delivery"] == "uncertain" and "may have been delivered" in reply["error"]
