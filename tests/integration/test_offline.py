"""The email form and answering it by email, with a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, update

from jutella.store.models import AuditEntry, MailOutbox, OfflineMessage

from tests.chat_clients import visitor
from tests.conftest import TOPOLOGIES, run_async
from tests.helpers import PASSWORD, add_staff, error_code, eventually, http_client, outbox_idle, run_cli, sign_in


@pytest.fixture(params=TOPOLOGIES)
def backend(request):
    """Runs on all three topologies (one process on SQLite, on PostgreSQL, two servers on PostgreSQL + Redis)."""
    return request.param


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example",
            "smtp_reply_to": "toimisto@jamko.example"}


FORM = {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Milloin toimisto on auki?",
        "lang": "fi", "page": "https://jamko.example/yhteystiedot", "referrer": "https://search.example/",
        "browser_key": "browser-a"}


def count(live, model) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(model))).scalar_one()
    return live.call(q)


def test_form_then_reply_by_email_arrives_exactly_once(live, smtp):
    smtp.start()
    anon = live.client(headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                                              "Gecko/20100101 Firefox/128.0"})
    assert anon.post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    inbox = http.get("/api/v1/offline-messages").json()
    assert [(m["name"], m["state"]) for m in inbox] == [("Maija Meikäläinen", "new")]
    mid = inbox[0]["id"]
    detail = http.get(f"/api/v1/offline-messages/{mid}").json()
    assert (detail["browser"], detail["os"], detail["referrer"]) == ("Firefox", "Windows",
                                                                    "https://search.example/")
    r = http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Hei Maija,\n\nolemme auki 9-15."})
    assert r.status_code == 201
    mails = smtp.wait_for(1)
    assert outbox_idle(live)  # nothing more to send
    assert len(smtp.messages) == 1
    rcpt, msg = mails[0]
    assert rcpt == ["maija@example.fi"]
    assert msg["To"] == "Maija Meikäläinen <maija@example.fi>"
    assert msg["Reply-To"] == "toimisto@jamko.example"
    assert msg["Subject"].startswith("Re:") or msg["Subject"].startswith("Vs:")
    text = msg.get_body(("plain",)).get_content()
    assert "olemme auki 9-15." in text and "> Milloin toimisto on auki?" in text
    html = msg.get_body(("html",)).get_content()
    assert "olemme auki 9-15." in html and "Milloin toimisto on auki?" in html
    detail = http.get(f"/api/v1/offline-messages/{mid}").json()
    assert detail["state"] == "answered"
    assert [(x["body"], x["delivery"]) for x in detail["replies"]] == [("Hei Maija,\n\nolemme auki 9-15.", "sent")]

    async def views():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "offline_message.view"))).scalar_one()
    assert live.call(views) == 3
    assert http.post(f"/api/v1/offline-messages/{mid}/close").json()["state"] == "closed"


@pytest.mark.parametrize("backend", ["sqlite"])  # how the mail's HTML renders text: the topology does not show
def test_markup_in_the_visitors_message_is_escaped_in_the_html_part(live, smtp):
    smtp.start()
    form = {**FORM, "message": "<script>alert(1)</script> & <b>bold</b>"}
    assert live.client().post("/api/v1/public/offline-messages", json=form).status_code == 201
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "<img src=x onerror=alert(1)>"})
    _, msg = smtp.wait_for(1)[0]
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_smtp_down_means_queued_then_delivered_once_when_it_returns(live, smtp, clock):
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    live.client().post("/api/v1/public/offline-messages", json=FORM)
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Vastaus"})
    for _ in range(100):
        reply = http.get(f"/api/v1/offline-messages/{mid}").json()["replies"][0]
        if reply["error"]:
            break
        time.sleep(0.05)
    assert reply["delivery"] == "queued" and "connect" in reply["error"].lower()
    smtp.start()
    clock.advance(minutes=5)  # past the backoff
    assert len(smtp.wait_for(1)) == 1
    clock.advance(hours=2)
    assert outbox_idle(live)  # the workers poll again: nothing more is sent
    assert len(smtp.messages) == 1
    http = sign_in(live, "aino@example.org")  # two hours later the session has idled out
    assert http.get(f"/api/v1/offline-messages/{mid}").json()["replies"][0]["delivery"] == "sent"


@pytest.mark.parametrize("field,value,code", [
    ("email", "", "email_required"),
    ("email", "maija@", "email_invalid"),
    ("email", "maija@localhost", "email_invalid"),
    ("email", "maija example.fi", "email_invalid"),
    ("name", "", "name_required"),
    ("name", "Maija\r\nBcc: victim@example.com", "name_invalid"),
    ("message", "", "message_required"),
    ("message", "x" * 4001, "message_too_long"),
    ("website", "http://spam.example", "spam"),
])
@pytest.mark.parametrize("backend", ["sqlite"])  # validation does not depend on the database
def test_bad_form_input_is_refused_clearly_and_nothing_is_stored(live, field, value, code):
    r = live.client(headers={"Accept-Language": "en"}).post("/api/v1/public/offline-messages",
                                                            json={**FORM, field: value})
    assert r.status_code == 400
    assert error_code(r) == code
    assert r.json()["error"]["field"] == field
    assert len(r.json()["error"]["message"]) > 5
    assert count(live, OfflineMessage) == 0 and count(live, MailOutbox) == 0


# the limit is counted in memory or in Redis, never SQL: one server on PostgreSQL shows what SQLite does
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_a_flood_from_one_browser_gets_429_while_another_gets_through(live):
    c = live.client()
    for n in range(5):
        assert c.post("/api/v1/public/offline-messages", json={**FORM, "message": f"m{n}"}).status_code == 201
    r = c.post("/api/v1/public/offline-messages", json=FORM)
    assert r.status_code == 429 and "Too many messages" in r.json()["error"]["message"]
    other = live.client().post("/api/v1/public/offline-messages", json={**FORM, "browser_key": "browser-b"})
    assert other.status_code == 201
    assert count(live, OfflineMessage) == 6


def test_a_waiting_chat_turned_into_a_form_carries_the_conversation(live):
    v, w = visitor(live)
    v.message("Onko ketään paikalla?")
    v.until(lambda f: f["type"] == "ack")
    r = live.client().post("/api/v1/public/offline-messages", json={
        **FORM, "reason": "wait_timeout", "visitor_token": w["token"]})
    assert r.status_code == 201
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    m = http.get("/api/v1/offline-messages").json()[0]
    detail = http.get(f"/api/v1/offline-messages/{m['id']}").json()
    assert detail["reason"] == "wait_timeout" and detail["conversation_id"] is not None
    assert "Milloin toimisto on auki?" in detail["body"] and "Onko ketään paikalla?" in detail["body"]


def test_new_offline_messages_can_notify_an_address(live, smtp):
    live.rt.settings.offline_notify_to = "paivystys@jamko.example"
    smtp.start()
    live.client().post("/api/v1/public/offline-messages", json=FORM)
    rcpt, msg = smtp.wait_for(1)[0]
    assert rcpt == ["paivystys@jamko.example"]
    body = msg.get_content()
    assert "maija@example.fi" not in body and "Maija" not in body and "/console#/offline" in body


def due_now(database_url: str) -> None:
    """What ``clock.advance`` past the backoff does for a server in this process, for a ``jutella serve``
    whose clock the test cannot move: a queued mail's next try becomes now (its creation time)."""
    from jutella.settings import Settings
    from jutella.store.db import Database

    async def go() -> None:
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=1)
        try:
            async with db.transaction() as s:
                await s.execute(update(MailOutbox).where(MailOutbox.state == "queued")
                                .values(next_attempt_at=MailOutbox.created_at))
        finally:
            await db.dispose()
    run_async(go())


def test_kill_9_between_commit_and_send_delivers_exactly_once_after_restart(server_process, smtp, database_url):
    server = server_process(JUTELLA_SMTP_HOST="127.0.0.1", JUTELLA_SMTP_PORT=str(smtp.port),
                            JUTELLA_SMTP_FROM="chat@jamko.example").start()
    server.prepare_restart()  # the restart's process loads its modules meanwhile
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            stdin=PASSWORD, env=server.env, check=True)
    http = http_client(base_url=server.url)
    assert http.post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    # SMTP is not up: the reply commits and waits in the outbox
    assert http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Vastaus"}).status_code == 201
    server.kill9()
    # the reply's commit woke the sender, which may have found SMTP down already: its next try is then
    # 10 s on, a wait that showed nothing; past it at once (the restarted server still has to send it)
    due_now(database_url)
    smtp.start()
    server.start()
    assert len(smtp.wait_for(1)) == 1
    # marked sent: no worker sends it again (a send must first move it from queued to sending)
    eventually(lambda: http.get(f"/api/v1/offline-messages/{mid}").json()["replies"][0]["delivery"] == "sent")
    assert len(smtp.messages) == 1
