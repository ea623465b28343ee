"""The chat over real WebSockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from jutella.accounts import actions as accounts

from tests.chat_clients import agent, visitor
from tests.conftest import TOPOLOGIES
from tests.helpers import add_staff, sign_in


@pytest.fixture(params=TOPOLOGIES)
def backend(request):
    """Runs on all three topologies (one process on SQLite, on PostgreSQL, two servers on PostgreSQL + Redis)."""
    return request.param


def is_event(seq=None, kind=None):
    return lambda f: f["type"] == "event" and (seq is None or f["seq"] == seq) and (kind is None or f["kind"] == kind)


def test_visitor_and_agent_chat_both_ways(live):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    a, welcome = agent(live, http)
    assert welcome["agent"]["name"] == "Aino"
    v, vw = visitor(live)
    assert vw["token"] and vw["conversation"] is None and vw["agents_online"] is True

    cid = v.message("Hei, tarvitsen apua")
    ack = v.until(lambda f: f["type"] == "ack")
    assert ack["client_id"] == cid and ack["seq"] == 1
    conv = ack["conversation"]
    listed = a.until(lambda f: f["type"] == "conversation")
    assert listed["conversation"]["id"] == conv and listed["conversation"]["state"] == "waiting"

    a.send(type="subscribe", conversation=conv, last_seq=0)
    first = a.until(is_event(1))
    assert first["body"] == "Hei, tarvitsen apua" and first["author"] == "visitor"
    a.send(type="accept", conversation=conv)
    joined = v.until(is_event(2))
    assert joined["author"] == "system" and joined["body"] == "Aino joined the chat."
    a.send(type="typing", conversation=conv, active=True)
    assert v.until(lambda f: f["type"] == "typing")["active"] is True
    a.message("Hei! Miten voin auttaa?", conversation=conv)
    reply = v.until(is_event(3))
    assert reply["author"] == "agent" and reply["author_name"] == "Aino" and reply["body"] == "Hei! Miten voin auttaa?"
    v.send(type="typing", active=True)
    assert a.until(lambda f: f["type"] == "typing")["author"] == "visitor"

    # the conversation as the console's HTTP API shows it, with the metadata
    detail = http.get(f"/api/v1/conversations/{conv}").json()
    assert [e["seq"] for e in detail["events"]] == [1, 2, 3]
    info = detail["visitor_info"]
    assert (info["browser"], info["browser_version"], info["os"]) == ("Chrome", "124", "Linux")
    assert info["referrer"] == "https://search.example/" and info["page_url"] == "https://site.example/help"
    v.close()
    a.close()


def test_list_updates_published_together_reach_the_agent_together_each_once(live):
    """Under load an agent's list updates go out as one "conversations" frame
    (docs/performance.md). Three published in one go arrive, each once; on one
    server they come in one frame."""
    from jutella.chat import actions as chat
    from jutella.store.models import Conversation

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    visitors, convs = [], []
    for i in range(3):
        v, _ = visitor(live)
        v.message(f"Viesti {i}")
        convs.append(v.until(lambda f: f["type"] == "ack")["conversation"])
        visitors.append(v)
    for conv in convs:
        a.until(lambda f, conv=conv: f["type"] == "conversation" and f["conversation"]["id"] == conv)
    before = a.batches

    async def burst(rt):  # what actions publish after one commit, for three conversations at once
        async with rt.db.reader() as s:
            rows = [await s.get(Conversation, conv) for conv in convs]
        for row in rows:
            row.last_activity_at = rt.clock.now()
            await rt.hub.publish(chat.list_channel(row), chat.list_frame(row, restricted=False, probe=True))

    live.agent_side.call(burst, live.agent_side.rt)
    got = [a.until(lambda f: f["type"] == "conversation" and f.get("probe"))["conversation"]["id"] for _ in convs]
    assert sorted(got) == sorted(convs)
    if live.peer is None:  # through Redis they may come one by one
        assert a.batches == before + 1
    with pytest.raises(TimeoutError):  # and nothing twice
        a.until(lambda f: f["type"] == "conversation" and f.get("probe"), timeout=0.5)
    for v in visitors:
        v.close()
    a.close()


def test_resend_is_acked_again_and_stored_once(live):
    v, _ = visitor(live)
    v.message("once", client_id="fixed-id-1")
    first = v.until(lambda f: f["type"] == "ack")
    v.message("once", client_id="fixed-id-1")
    second = v.until(lambda f: f["type"] == "ack")
    assert first["seq"] == second["seq"] == 1
    # a later message in the open conversation, sent twice: the resend takes no seq of its own
    v.message("later", client_id="fixed-id-2")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "fixed-id-2")["seq"] == 2
    v.message("later", client_id="fixed-id-2")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "fixed-id-2")["seq"] == 2
    v.message("third")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] != "fixed-id-2")["seq"] == 3
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    events = http.get(f"/api/v1/conversations/{first['conversation']}").json()["events"]
    assert [(e["seq"], e["body"]) for e in events] == [(1, "once"), (2, "later"), (3, "third")]


def test_reconnect_resumes_after_the_last_seq_exactly_once(live):
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    v, w = visitor(live)
    token = w["token"]
    v.message("one")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    v.until(is_event(1))
    v.close()  # the visitor drops off; meanwhile the agent writes twice
    a, _ = agent(live, http, subscriptions={conv: 0})
    a.until(is_event(1))
    a.message("two", conversation=conv)
    a.message("three", conversation=conv)
    a.until(is_event(4))
    v2, w2 = visitor(live, token=token, last_seq=1)
    assert w2["conversation"]["id"] == conv and "token" not in w2
    got = [v2.until(is_event())["seq"] for _ in range(3)]
    assert got == [2, 3, 4]  # joined, two, three: everything after 1, once, in order
    v2.message("four")
    assert v2.until(lambda f: f["type"] == "ack")["seq"] == 5


# the protocol's refusals, before any storage or fan-out: the topology does not show
@pytest.mark.parametrize("backend", ["sqlite"])
def test_errors_are_frames_and_the_connection_stays(live):
    v, _ = visitor(live)
    v.conn.send("not json")
    assert v.until(lambda f: f["type"] == "error")["code"] == "malformed"
    v.send(type="dance")
    assert v.until(lambda f: f["type"] == "error")["code"] == "unknown_type"
    v.message("   ", client_id="c1")
    e = v.until(lambda f: f["type"] == "error")
    assert e["code"] == "empty" and e["client_id"] == "c1"
    v.message("x" * 4001, client_id="c2")
    assert v.until(lambda f: f["type"] == "error")["code"] == "too_long"
    v.message("still here")
    assert v.until(lambda f: f["type"] == "ack")["seq"] == 1


# the handshake's refusal (a token that matches no row): the topology does not show
@pytest.mark.parametrize("backend", ["sqlite"])
def test_bad_token_closes_with_4401(live):
    conn = connect(live.ws_url + "/ws/visitor", origin=live.url)
    conn.send('{"type":"hello","token":"made-up-token","last_seq":0}')
    with pytest.raises(ConnectionClosed) as info:
        conn.recv(timeout=5)
    assert info.value.rcvd.code == 4401


# refused on the Origin header before the socket opens: the topology does not show
@pytest.mark.parametrize("backend", ["sqlite"])
def test_foreign_origin_is_refused_with_403(live):
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url + "/ws/visitor", origin="https://evil.example", open_timeout=5)
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url + "/ws/agent", origin="https://evil.example", open_timeout=5)
    assert info.value.response.status_code == 403


# the close reaching the other server is the point (pg+redis, which runs the same SQL on PostgreSQL);
# one server on PostgreSQL shows nothing that SQLite and pg+redis do not
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_agent_socket_needs_a_session_and_closes_when_the_account_is_disabled(live):
    conn = connect(live.ws_url + "/ws/agent", origin=live.url)
    with pytest.raises(ConnectionClosed) as info:
        conn.recv(timeout=5)
    assert info.value.rcvd.code == 4401
    add_staff(live, "admin@example.org", ["admin"])
    agent_id = add_staff(live, "aino@example.org", ["agent"])
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    live.call(accounts.set_disabled, live.rt, actor_id=None, account_id=agent_id, disabled=True)
    with pytest.raises(ConnectionClosed) as info:
        a.until(lambda f: False)
    assert info.value.rcvd.code == 4401


# presence is in memory or in Redis, never SQL: one server on PostgreSQL shows what SQLite does
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_the_widget_learns_whether_anyone_is_online(live):
    c = live.client()
    assert c.get("/api/v1/public/availability").json() == {"agents_online": False}
    v, w = visitor(live)
    assert w["agents_online"] is False
    add_staff(live, "aino@example.org", ["agent"])
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    # (housekeeping's first round may say "no one" before the agent is in: a load-dependent race)
    assert v.until(lambda f: f["type"] == "presence" and f["agents_online"])["agents_online"] is True
    assert c.get("/api/v1/public/availability").json() == {"agents_online": True}
    a.send(type="presence", state="away")
    assert v.until(lambda f: f["type"] == "presence")["agents_online"] is False


def test_idle_conversations_are_closed(live, clock):
    from jutella.chat import actions as chat

    v, _ = visitor(live)
    v.message("anyone?")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    clock.advance(minutes=29)
    assert live.call(chat.close_idle, live.rt) == 0
    clock.advance(minutes=2)
    assert live.call(chat.close_idle, live.rt) == 1
    state = v.until(lambda f: f["type"] == "event" and f["kind"] == "state")
    assert state["state"] == "closed" and "inactivity" in state["body"]
    assert live.call(chat.close_idle, live.rt) == 0  # twice is harmless
    v.message("hello again")  # a new message starts a new conversation
    assert v.until(lambda f: f["type"] == "ack")["conversation"] != conv


@pytest.fixture
def settings_overrides(request):
    return {"auto_assign": True} if "auto_assign" in request.node.name else {}


def test_auto_assign_gives_new_chats_to_the_least_busy_online_agent(live):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "eero@example.org", ["agent"], name="Eero")
    a1, _ = agent(live, sign_in(live, "aino@example.org"))
    a2, _ = agent(live, sign_in(live, "eero@example.org"))
    names = []
    for n in range(4):
        v, _ = visitor(live)
        v.message(f"chat {n}")
        names.append(v.until(lambda f: f["type"] == "event" and f["kind"] == "state")["body"])
    assert sorted(names) == ["Aino joined the chat."] * 2 + ["Eero joined the chat."] * 2
