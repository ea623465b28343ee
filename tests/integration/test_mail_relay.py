"""No mail relay (docs/security.md "No mail relay"; mail/limits.py).

An anonymous visitor must not make jutella mail their own text to an address
of their choosing from the organisation's sender, and a handful of client
addresses must not use up the email form for everybody. Clients come from
different loopback addresses (127.0.0.2, 127.0.0.3, ...), as real clients do;
the hour passes on the fake clock. Mail goes to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import func, select

from jutella.chat import actions as chat
from jutella.chat.metadata import Metadata
from jutella.store.models import MailOutbox, OfflineMessage, TranscriptRequest

from tests.helpers import HTTP_TLS, add_staff, error_code, outbox_idle

H = "X-Jutella-Visitor"
PHISH = "Your account is locked: log in at https://jamko-login.example/verify to keep it."
FORM = {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Milloin toimisto on auki?",
        "lang": "fi"}


@pytest.fixture
def settings_overrides(smtp, request):
    """Real SMTP, and a test's own settings by indirect parametrization."""
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example",
            **getattr(request, "param", {})}


def client_from(live, address: str, **kw) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (a loopback address of its own)."""
    return live.client(transport=httpx.HTTPTransport(local_address=address, verify=HTTP_TLS), **kw)


def count(live, model) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(model))).scalar_one()
    return live.call(q)


def fresh_chat(live, text: str = PHISH, agent_id: int | None = None) -> tuple[str, int]:
    """A new anonymous visitor with a chat (answered by ``agent_id`` when given)."""
    visitor, token = live.call(chat.new_visitor, live.rt)
    conv = live.call(chat.post_visitor_message, live.rt, visitor_id=visitor.id, client_id="c1", body=text,
                     meta=Metadata()).conversation.id
    if agent_id is not None:
        live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv, client_id="a1",
                  body="Hei! Miten voin auttaa?")
        live.call(chat.close, live.rt, conversation_id=conv, by="agent", agent_id=agent_id)
    return token, conv


def ask_transcript(client: httpx.Client, token: str, conv: int, to: str = "victim@example.com") -> httpx.Response:
    return client.post("/api/v1/public/transcript/email", headers={H: token},
                       json={"email": to, "conversation": conv, "lang": "en"})


def health(live) -> dict:
    r = live.client().get("/healthz")
    assert r.status_code == 200
    return r.json()


# -- transcripts ----------------------------------------------------------------------------------
def test_fresh_visitors_cannot_have_their_own_text_mailed_anywhere(live, smtp):
    """Today's attack: eight fresh anonymous visitors each have a transcript of
    their own text (a phishing link) mailed to an arbitrary address. None is
    queued, none arrives; each is told why, in their language."""
    smtp.start()
    for n in range(8):
        token, conv = fresh_chat(live)
        r = ask_transcript(client_from(live, f"127.0.0.{n + 2}", headers={"Accept-Language": "fi"}), token, conv,
                           to=f"victim{n}@example.com")
        assert r.status_code == 409, r.text
        assert error_code(r) == "no_staff_reply"
        assert "henkilökuntamme on vastannut" in r.json()["error"]["message"]
    assert count(live, MailOutbox) == 0 and count(live, TranscriptRequest) == 0
    assert outbox_idle(live) and smtp.messages == []
    assert health(live) == {"status": "ok"}


def test_an_internal_note_is_not_staff_taking_part(live, smtp):
    from jutella.chat.notes import post_note

    agent = add_staff(live, "aino@example.org", ["agent"])
    token, conv = fresh_chat(live)
    live.call(post_note, live.rt, agent_id=agent, conversation_id=conv, body="katsotaan myöhemmin", client_id="n1")
    r = ask_transcript(live.client(), token, conv)
    assert r.status_code == 409 and error_code(r) == "no_staff_reply"
    assert count(live, MailOutbox) == 0


def test_an_answered_chat_is_mailed_but_a_few_an_hour_per_client_address(live, smtp, clock):
    """Staff answered: the transcript goes. But one client address gets 3 an
    hour, however many fresh visitor tokens it uses; another address is not
    touched; after the hour the first may again."""
    smtp.start()
    agent = add_staff(live, "aino@example.org", ["agent"])
    chats = [fresh_chat(live, f"kysymys {n}", agent) for n in range(6)]
    one = client_from(live, "127.0.0.2", headers={"Accept-Language": "en"})
    for token, conv in chats[:3]:
        assert ask_transcript(one, token, conv).status_code == 202
    mails = smtp.wait_for(3)
    assert [rcpt for rcpt, _msg in mails] == [["victim@example.com"]] * 3
    refused = ask_transcript(one, *chats[3])
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert "save the transcript as a file" in refused.json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert ask_transcript(client_from(live, "127.0.0.3"), *chats[4]).status_code == 202
    smtp.wait_for(4)
    assert count(live, TranscriptRequest) == 4

    clock.advance(minutes=61)
    assert ask_transcript(one, *chats[5]).status_code == 202
    smtp.wait_for(5)
    assert outbox_idle(live) and len(smtp.messages) == 5


@pytest.mark.parametrize("settings_overrides", [{"transcript_email_global_hour": 4}], indirect=True, ids=["cap4"])
def test_transcripts_have_a_global_hourly_cap(live, smtp, clock, caplog):
    smtp.start()
    caplog.set_level(logging.WARNING, logger="jutella.mail")
    agent = add_staff(live, "aino@example.org", ["agent"])
    chats = [fresh_chat(live, f"kysymys {n}", agent) for n in range(7)]
    for n, (token, conv) in enumerate(chats[:4]):
        assert ask_transcript(client_from(live, f"127.0.0.{n // 2 + 2}"), token, conv).status_code == 202
    assert len(smtp.wait_for(4)) == 4
    assert health(live) == {"status": "ok"}  # at the cap, nobody refused yet
    for token, conv in chats[4:6]:
        r = ask_transcript(client_from(live, "127.0.0.9"), token, conv)
        assert r.status_code == 429 and error_code(r) == "busy"
        assert "Save the transcript as a file" in r.json()["error"]["message"]
    assert count(live, TranscriptRequest) == 4
    assert health(live) == {"status": "degraded", "transcript_email": "capped"}
    lines = [rec.getMessage() for rec in caplog.records if "global cap" in rec.getMessage()]
    assert len(lines) == 1 and "transcript_email" in lines[0] and "127.0.0" not in lines[0]

    clock.advance(minutes=61)
    assert health(live) == {"status": "ok"}
    assert ask_transcript(client_from(live, "127.0.0.9"), *chats[6]).status_code == 202


# -- the offline form ----------------------------------------------------------------------------
def send_until_refused(client: httpx.Client, at_most: int = 31) -> tuple[int, httpx.Response | None]:
    """Form posts without a browser key (an attacker keeps none) until one is refused."""
    for n in range(at_most):
        r = client.post("/api/v1/public/offline-messages", json={**FORM, "message": f"roskaa {n}"})
        if r.status_code != 201:
            return n, r
    return at_most, None


def test_seventeen_addresses_cannot_block_a_genuine_visitor(live):
    """Today's attack: 17 addresses each sending as much as they may used up
    the global cap, and a genuine visitor got 429."""
    attempts = [send_until_refused(client_from(live, f"127.0.1.{n + 1}", headers={"Accept-Language": "en"}))
                for n in range(17)]
    genuine = client_from(live, "127.0.2.1").post("/api/v1/public/offline-messages",
                                                  json={**FORM, "browser_key": "genuine"})
    assert genuine.status_code == 201, genuine.text
    per_client = live.rt.settings.offline_per_client_hour
    for sent, refused in attempts:
        assert sent == per_client and refused is not None and refused.status_code == 429
        assert error_code(refused) == "rate_limited" and "from this network" in refused.json()["error"]["message"]
    assert count(live, OfflineMessage) == 17 * per_client + 1
    assert health(live) == {"status": "ok"}


@pytest.mark.parametrize("settings_overrides", [{"offline_global_hour": 10}], indirect=True, ids=["cap10"])
def test_the_global_cap_refuses_new_senders_and_tells_the_operator(live, clock, caplog):
    """Six a client address an hour by default: two addresses reach a cap of
    ten; whoever comes next is refused, /healthz and the log say so; an hour
    later the form takes messages again."""
    caplog.set_level(logging.WARNING, logger="jutella.mail")
    first = client_from(live, "127.0.0.2")
    for _ in range(10):  # refused fields (typos) cost nothing: only valid messages are counted
        assert first.post("/api/v1/public/offline-messages", json={**FORM, "email": "maija@"}).status_code == 400
    assert send_until_refused(first)[0] == 6
    sent, refused = send_until_refused(client_from(live, "127.0.0.3", headers={"Accept-Language": "sv"}))
    assert sent == 4 and refused.status_code == 429 and error_code(refused) == "busy"
    assert "ovanligt många meddelanden" in refused.json()["error"]["message"]
    late = client_from(live, "127.0.0.4").post("/api/v1/public/offline-messages",
                                               json={**FORM, "browser_key": "someone"})
    assert late.status_code == 429 and error_code(late) == "busy"
    assert 0 < int(late.headers["Retry-After"]) <= 3600
    assert count(live, OfflineMessage) == 10
    assert health(live) == {"status": "degraded", "offline_form": "capped"}
    lines = [rec.getMessage() for rec in caplog.records if "global cap" in rec.getMessage()]
    assert len(lines) == 1 and "offline_form" in lines[0] and "127.0.0" not in lines[0]
    assert "maija" not in lines[0].lower()

    clock.advance(minutes=61)
    assert health(live) == {"status": "ok"}
    assert client_from(live, "127.0.0.4").post("/api/v1/public/offline-messages",
                                               json={**FORM, "browser_key": "someone"}).status_code == 201
