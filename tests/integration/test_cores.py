"""One core for each conversation change (issue 14, item 3): every way of
taking a waiting chat meets the same concurrent-chat limit, and every way of
adding an event (message, note, upload, transfer) draws its seq from the same
place, over real HTTP and sockets on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from jutella.chat import actions as chat
from jutella.store.models import Attachment, ChatEvent, Conversation

from tests.chat_clients import agent, visitor
from tests.helpers import add_staff, error_code, sign_in
from tests.integration.test_attachments import png, stored_files, upload
from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

LIMIT_MESSAGE = "Aino has reached their limit of 1 chats."


@pytest.fixture
def settings_overrides():
    return {"max_concurrent_chats": 1}


def db(live, fn):
    async def q():
        async with live.rt.db.reader() as s:
            return await fn(s)
    return live.call(q)


def conversation(live, conv_id: int) -> Conversation:
    return db(live, lambda s: s.get(Conversation, conv_id))


def count(live, model, conv_id: int) -> int:
    async def q(s):
        return (await s.execute(select(func.count()).select_from(model).where(
            model.conversation_id == conv_id))).scalar_one()
    return db(live, q)


def seqs_of(live, conv_id: int) -> list[int]:
    async def q(s):
        return list((await s.execute(select(ChatEvent.seq).where(ChatEvent.conversation_id == conv_id)
                                     .order_by(ChatEvent.seq))).scalars())
    return db(live, q)


def start_chat(live, text: str) -> tuple[object, dict, int]:
    v, welcome = visitor(live)
    v.message(text)
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    return v, welcome, conv


def aino_holding_one_chat(live):
    """Aino (limit 1) holds one chat; a second waits. Returns (Aino's HTTP
    client, her socket, the second chat's visitor, the second chat)."""
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    aino = sign_in(live, "aino@example.org")
    sock, _ = agent(live, aino)
    v1, _, conv1 = start_chat(live, "ensimmäinen")
    assert aino.post(f"/api/v1/conversations/{conv1}/accept").status_code == 200
    v2, _, conv2 = start_chat(live, "toinen")
    v1.close()
    return aino, sock, v2, conv2


def test_an_upload_past_the_limit_is_refused_like_accept_and_stores_nothing(live):
    """The defect: accept said 409 limit_reached, yet an upload into the same
    waiting chat answered 201 and made it the agent's second chat."""
    aino, sock, v2, conv2 = aino_holding_one_chat(live)
    refused = aino.post(f"/api/v1/conversations/{conv2}/accept")
    assert refused.status_code == 409 and error_code(refused) == "limit_reached"
    assert refused.json()["error"]["message"] == LIMIT_MESSAGE

    r = upload(aino, None, png(), "ohje.png", url=f"/api/v1/conversations/{conv2}/attachments")
    assert r.status_code == 409, r.text
    assert error_code(r) == "limit_reached" and r.json()["error"]["message"] == LIMIT_MESSAGE
    # nothing of it stays: still waiting for someone, no row, no file (not even a temporary one)
    after = conversation(live, conv2)
    assert (after.state, after.agent_id, after.last_seq) == ("waiting", None, 1)
    assert count(live, Attachment, conv2) == 0 and stored_files(live) == []
    assert seqs_of(live, conv2) == [1]
    # the console shows it waiting still, with only the visitor's message
    detail = aino.get(f"/api/v1/conversations/{conv2}").json()
    assert detail["conversation"]["state"] == "waiting" and [e["kind"] for e in detail["events"]] == ["message"]
    v2.close()
    sock.close()


def test_accept_past_the_limit_is_refused_alike_over_http_and_socket(live):
    aino, sock, v2, conv2 = aino_holding_one_chat(live)
    sock.send(type="accept", conversation=conv2)
    err = sock.until(lambda f: f["type"] == "error")
    assert (err["code"], err["message"]) == ("limit_reached", LIMIT_MESSAGE)
    sock.message("minä otan", conversation=conv2)  # writing into a waiting chat takes it: the same refusal
    err = sock.until(lambda f: f["type"] == "error")
    assert (err["code"], err["message"]) == ("limit_reached", LIMIT_MESSAGE)
    r = aino.post(f"/api/v1/conversations/{conv2}/accept")
    assert r.status_code == 409 and r.json()["error"]["message"] == LIMIT_MESSAGE
    assert conversation(live, conv2).state == "waiting" and seqs_of(live, conv2) == [1]
    # a note is not taking it: allowed at the limit, and it stays waiting
    r = aino.post(f"/api/v1/conversations/{conv2}/notes", json={"client_id": "n1", "body": "Jonossa"})
    assert r.status_code == 201 and r.json()["seq"] == 2
    assert conversation(live, conv2).state == "waiting"
    v2.close()
    sock.close()


def test_auto_assign_respects_the_limit(live):
    aino, sock, v2, conv2 = aino_holding_one_chat(live)
    # Aino is the only one online and full: the chat keeps waiting
    assert live.call(chat.auto_assign, live.rt, conv2) is None
    assert conversation(live, conv2).state == "waiting"
    # Bertta comes online: the next new chat goes to her, not to Aino
    bertta = add_staff(live, "bertta@example.org", ["agent"], name="Bertta")
    bertta_sock, _ = agent(live, sign_in(live, "bertta@example.org"))
    live.rt.settings.auto_assign = True
    v3, _, conv3 = start_chat(live, "kolmas")
    joined = v3.until(lambda f: f["type"] == "event" and f["kind"] == "state")
    assert joined["state"] == "active" and "Bertta" in joined["body"]
    assert conversation(live, conv3).agent_id == bertta
    # now both are full: conv2 still has nobody
    assert live.call(chat.auto_assign, live.rt, conv2) is None
    assert (conversation(live, conv2).state, conversation(live, conv2).agent_id) == ("waiting", None)
    for c in (v2, v3, sock, bertta_sock):
        c.close()


@pytest.mark.parametrize("settings_overrides", [{"max_concurrent_chats": 0}])
def test_every_kind_of_event_takes_the_next_seq_under_concurrency(live):
    """20 writes at once into one conversation (visitor and agent messages on
    their sockets; notes, uploads and a transfer with its note over HTTP):
    the conversation's seqs are exactly 1..N, each stored event once, and
    every acknowledged write holds its own seq."""
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    carl_id = add_staff(live, "carl@example.org", ["agent"], name="Carl")
    aino = sign_in(live, "aino@example.org")
    carl = sign_in(live, "carl@example.org")
    a_sock, _ = agent(live, aino)
    c_sock, _ = agent(live, carl)
    v, welcome, conv = start_chat(live, "alku")
    token = welcome["token"]
    assert aino.post(f"/api/v1/conversations/{conv}/accept").status_code == 200
    start = conversation(live, conv).last_seq
    assert start == 2  # the message and "Aino joined"

    acked: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(11)

    def http(fn, may_conflict=False):
        def run():
            gate.wait()
            r = fn()
            if may_conflict and r.status_code == 409:  # after the transfer: Carl's chat
                assert error_code(r) == "conflict", r.text
                return
            assert r.status_code in (200, 201), r.text
            with lock:
                acked.append(r.json()["seq"] if "seq" in r.json() else None)
        return run

    jobs = [http(lambda i=i: aino.post(f"/api/v1/conversations/{conv}/notes",
                                       json={"client_id": f"n{i}", "body": f"muistiinpano {i}"})) for i in range(4)]
    jobs += [http(lambda: upload(live.client(), token, png(), "kuva.png")) for _ in range(3)]
    jobs += [http(lambda: upload(aino, None, png(), "ohje.png",
                                 url=f"/api/v1/conversations/{conv}/attachments"), may_conflict=True) for _ in range(2)]
    jobs.append(http(lambda: aino.post(f"/api/v1/conversations/{conv}/transfer",
                                       json={"agent_id": carl_id, "note": "Carl jatkaa"})))
    visitor_ids = [uuid.uuid4().hex for _ in range(6)]
    agent_ids = [uuid.uuid4().hex for _ in range(4)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        gate.wait()  # the HTTP writes start together with the socket frames below
        for i, cid in enumerate(visitor_ids):
            v.message(f"viesti {i}", client_id=cid)
        for i, cid in enumerate(agent_ids):
            a_sock.message(f"vastaus {i}", client_id=cid, conversation=conv)
        for f in futures:
            f.result()
    for cid in visitor_ids:
        acked.append(v.until(lambda f, cid=cid: f["type"] == "ack" and f["client_id"] == cid)["seq"])
    for cid in agent_ids:  # before the transfer: stored; after it: Carl's chat, refused
        frame = a_sock.until(lambda f, cid=cid: f["type"] in ("ack", "error") and f.get("client_id") == cid)
        if frame["type"] == "ack":
            acked.append(frame["seq"])
        else:
            assert frame["code"] == "conflict"
    transferred = None in acked  # its answer carries no seq: the conversation
    acked = [s for s in acked if s is not None]

    seqs = seqs_of(live, conv)
    total = conversation(live, conv).last_seq
    assert seqs == list(range(1, total + 1))  # no gap, no duplicate
    assert len(set(acked)) == len(acked) and set(acked) <= set(seqs)
    # the writes besides the acked ones: the transfer's "joined" event and its note
    assert transferred and total == start + len(acked) + 2
    assert conversation(live, conv).agent_id == carl_id != aino_id
    for c in (v, a_sock, c_sock):
        c.close()
