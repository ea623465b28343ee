"""Replies by email come back into the thread (issue 19 item 3, docs/mail.md
"Replies by email"): the agent's answer goes out through a real SMTP server
(aiosmtpd), the visitor's mail program answers to its Reply-To, the site's
mail server delivers that over LMTP (smtplib.LMTP) to jutella's own LMTP
server, and the reply shows in the console's thread."""

from __future__ import annotations

import io
import smtplib
from email.message import EmailMessage

import pytest
from PIL import Image

from tests.conftest import free_port
from tests.helpers import add_staff, eventually, run_cli, sign_in

REPLY_DOMAIN = "reply.jamko.example"
FORM = {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Milloin toimisto on auki?",
        "lang": "fi", "browser_key": "browser-a"}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def lmtp_port():
    return free_port()


@pytest.fixture
def settings_overrides(smtp, lmtp_port):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example",
            "smtp_reply_to": "toimisto@jamko.example", "lmtp_listen": f"127.0.0.1:{lmtp_port}",
            "reply_domain": REPLY_DOMAIN}


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def reply_mail(to: str, sender: str, text: str, *, files=(), message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Maija Meikäläinen <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Re: your message"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(text)
    for name, data, maintype, subtype in files:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def deliver(port: int, to: str, msg: EmailMessage, sender: str = "maija@example.fi"):
    """The site's mail server delivering over LMTP: the answer for the one recipient."""
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as lmtp:
        return lmtp.send_message(msg, from_addr=sender, to_addrs=[to])


def stored(live) -> dict[str, bytes]:
    """Every file the cluster's file store holds (store/files.py), by the reply file rows that name
    them: {storage_name: bytes}, plus "<no row>" for bytes no row names."""
    from sqlalchemy import select

    from jutella.store.models import EmailReplyFile

    async def read():
        async with live.rt.db.reader() as s:
            named = set((await s.execute(select(EmailReplyFile.storage_name))).scalars())
        keys = [e.key async for e in live.rt.files.entries()]
        return {k if k in named else "<no row>": await live.rt.files.get(k) for k in keys}
    return live.call(read)


def disk_files(live) -> list:
    folder = live.rt.settings.data_dir / "attachments"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


QUOTED = ("Kiitos, tulen huomenna klo 10.\nTerveisin Maija\n\n"
          "ma 7.12.2026 klo 10.00 Aino <chat@jamko.example> kirjoitti:\n"
          "> Hei Maija,\n> olemme auki 9-15.\n")


def test_a_reply_by_email_joins_the_thread_and_goes_with_it(live, smtp, lmtp_port, database_url):
    smtp.start()
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    assert http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Hei Maija,\nolemme auki 9-15."}
                     ).status_code == 201
    _, sent = smtp.wait_for(1)[0]
    reply_to = sent["Reply-To"].addresses[0].addr_spec
    local, _, domain = reply_to.partition("@")
    assert domain == REPLY_DOMAIN and local.startswith("reply+") and len(local) == len("reply+") + 32
    assert http.get(f"/api/v1/offline-messages/{mid}").json()["state"] == "answered"

    # the visitor answers from their mail program: new text above the quoted history, and a picture
    msg = reply_mail(reply_to, "maija@example.fi", QUOTED, message_id="<r1@example.fi>",
                     files=[("kuva.png", png_bytes(), "image", "png"),
                            ("ohjelma.exe", b"MZ\x90\x00nothing", "application", "octet-stream")])
    assert deliver(lmtp_port, reply_to.upper().replace("REPLY+", "reply+", 1), msg) == {}  # case folded
    detail = eventually(lambda: (d := http.get(f"/api/v1/offline-messages/{mid}").json())["email_replies"] and d)
    assert detail["state"] == "new"  # reopened
    [got] = detail["email_replies"]
    assert got["body"] == "Kiitos, tulen huomenna klo 10.\nTerveisin Maija"
    assert got["from"] == "maija@example.fi" and got["sender_differs"] is False
    [f] = got["files"]
    assert (f["name"], f["type"]) == ("kuva.png", "image/png")
    assert [x["name"] for x in got["refused"]] == ["ohjelma.exe"]
    r = http.get(f["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")
    # the same mail delivered again is the same reply
    assert deliver(lmtp_port, reply_to, msg) == {}
    assert len(http.get(f"/api/v1/offline-messages/{mid}").json()["email_replies"]) == 1

    # a reply from another address is taken, and flagged to the agent
    other = reply_mail(reply_to, "maija.work@firma.example", "Tässä vielä työosoitteestani.")
    assert deliver(lmtp_port, reply_to, other, sender="maija.work@firma.example") == {}
    replies = eventually(lambda: len(x := http.get(f"/api/v1/offline-messages/{mid}").json()["email_replies"]) == 2
                         and x)
    assert replies[1]["sender_differs"] is True and replies[1]["from"] == "maija.work@firma.example"

    # an unknown token, or a stranger's guess at the domain, is refused for good at RCPT
    for wrong in (f"reply+{'a' * 32}@{REPLY_DOMAIN}", f"someone@{REPLY_DOMAIN}"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            deliver(lmtp_port, wrong, reply_mail(wrong, "maija@example.fi", "hei"))
        assert refused.value.recipients[wrong][0] == 550

    # the agent's next answer quotes the reply, and has a reply address of its own
    http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Tervetuloa!"})
    _, second = smtp.wait_for(2)[1]
    assert "> Tässä vielä työosoitteestani." in second.get_body(("plain",)).get_content()
    assert second["Reply-To"].addresses[0].addr_spec not in (reply_to, None)

    # found by the register (the reply's text, the other sender), then erased with its file
    env = {"JUTELLA_DATA_DIR": str(live.rt.settings.data_dir), "JUTELLA_DATABASE_URL": database_url}
    found = run_cli("subject", "find", "tulen huomenna", env=env)
    assert found.returncode == 0 and f"offline_message {mid}" in found.stdout and "email_reply" in found.stdout
    assert f"offline_message {mid}" in run_cli("subject", "find", "maija.work@firma", env=env).stdout
    # the file's bytes are in the cluster's file store (the database), named by its row: not on this host's disk
    [(name, data)] = stored(live).items()
    assert name != "<no row>" and data.startswith(b"\x89PNG") and data == r.content
    assert disk_files(live) == []
    erased = run_cli("subject", "erase", "maija@example.fi", "--yes", env=env)
    assert erased.returncode == 0, erased.stderr
    assert "2 email replies" in erased.stdout and "1 email reply files" in erased.stdout
    assert run_cli("subject", "find", "tulen huomenna", env=env).stdout == ""
    assert stored(live) == {} and disk_files(live) == []  # the bytes went with their rows
    assert http.get(f["url"]).status_code == 404
    # and its address is gone with it
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(lmtp_port, reply_to, reply_mail(reply_to, "maija@example.fi", "vielä"))


def test_a_reply_to_a_transcript_opens_a_message_linked_to_the_chat(live, smtp, lmtp_port, clock):
    from jutella.chat import actions as chat
    from jutella.chat.metadata import Metadata

    smtp.start()
    agent_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    v, _ = live.call(chat.new_visitor, live.rt)
    conv = live.call(chat.post_visitor_message, live.rt, visitor_id=v.id, client_id="c1",
                     body="Hei, kysyisin jäsenyydestä", meta=Metadata()).conversation.id
    live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv, client_id="a1",
              body="Jäsenmaksu on 20 euroa.")
    # the agent emails the transcript to the visitor
    r = http.post(f"/api/v1/conversations/{conv}/transcript/email", json={"email": "pekka@example.fi", "lang": "fi"})
    assert r.status_code in (200, 201, 202), r.text
    _, sent = smtp.wait_for(1)[0]
    reply_to = sent["Reply-To"].addresses[0].addr_spec
    assert reply_to.endswith("@" + REPLY_DOMAIN)
    assert deliver(lmtp_port, reply_to, reply_mail(reply_to, "pekka@example.fi", "Vielä yksi kysymys: hinta?",
                                                   files=[("kuitti.png", png_bytes(), "image", "png")]),
                   sender="pekka@example.fi") == {}
    inbox = eventually(lambda: http.get("/api/v1/offline-messages").json())
    [m] = inbox
    assert (m["reason"], m["state"], m["email"]) == ("transcript_reply", "new", "pekka@example.fi")
    detail = http.get(f"/api/v1/offline-messages/{m['id']}").json()
    assert detail["conversation_id"] == conv
    assert [x["body"] for x in detail["email_replies"]] == ["Vielä yksi kysymys: hinta?"]
    [f] = detail["email_replies"][0]["files"]
    assert http.get(f["url"]).content == next(iter(stored(live).values())) and "<no row>" not in stored(live)
    # a second reply to the same transcript joins the same message
    assert deliver(lmtp_port, reply_to, reply_mail(reply_to, "pekka@example.fi", "Ja aukioloajat?"),
                   sender="pekka@example.fi") == {}
    eventually(lambda: len(http.get(f"/api/v1/offline-messages/{m['id']}").json()["email_replies"]) == 2)
    assert len(http.get("/api/v1/offline-messages").json()) == 1

    # retention: past the offline messages' period the thread goes with its replies and addresses
    from sqlalchemy import func, select

    from jutella.privacy import retention
    from jutella.store.models import EmailReply, ReplyToken

    clock.advance(days=live.rt.settings.retention.offline_days + 1)
    counts = live.call(retention.run, live.rt)
    assert counts["email_replies"] == 2 and counts["offline_messages"] == 1 and counts["reply_addresses"] >= 1
    assert counts["email_reply_files"] == 1 and stored(live) == {}  # the file's bytes went with its row

    async def left():
        async with live.rt.db.reader() as s:
            return [(await s.execute(select(func.count()).select_from(t))).scalar_one()
                    for t in (EmailReply, ReplyToken)]
    assert live.call(left) == [0, 0]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(lmtp_port, reply_to, reply_mail(reply_to, "pekka@example.fi", "Vielä?"), sender="pekka@example.fi")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_worker_may_bind_the_lmtp_address(live, smtp, lmtp_port):
    """``jutella serve --workers N``: each worker's lifespan binds JUTELLA_LMTP_LISTEN with
    SO_REUSEPORT (realtime/lmtp.py); a second bind beside the running one succeeds and either
    may take the connection."""
    from jutella.realtime import lmtp

    second = live.call(lmtp.start, live.rt)
    try:
        wrong = f"reply+{'b' * 32}@{REPLY_DOMAIN}"
        for _ in range(4):  # whichever worker takes it, it answers the same
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                deliver(lmtp_port, wrong, reply_mail(wrong, "maija@example.fi", "hei"))
    finally:
        second.close()

