"""Live revocation (issue 14, item 2): when who may see what changes, every
open console socket of every worker re-checks what it follows within one
second, stops receiving what it may no longer see, and never replays it.

On all three topologies; with two servers (pg+redis) the HTTP calls go to
one server and the agents' sockets to the other (chat_clients.agent), so the
change crosses Redis."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosed

from jutella.store.access_version import read_access_version

from tests.chat_clients import agent, visitor
from tests.conftest import TOPOLOGIES
from tests.helpers import add_staff, eventually, sign_in

WITHIN = 1.0  # seconds: the promise


@pytest.fixture(params=TOPOLOGIES)
def backend(request):
    return request.param


def is_event(conversation, seq=None):
    return lambda f: f["type"] == "event" and f["conversation"] == conversation and (seq is None or f["seq"] == seq)


def is_hidden(conversation):
    return lambda f: f["type"] == "hidden" and f["conversation"] == conversation


def started_chat(live, body: str, **extra):
    v, _ = visitor(live)
    v.message(body, **extra)
    return v, v.until(lambda f: f["type"] == "ack")["conversation"]


def chat_in_only_department_online(live, http, account_id: int, body: str):
    """A chat in the department of the agent behind ``http``: the agent comes
    online first, so that the chat goes to the only department online (a
    visitor may name only a department the widget offers, and with one
    online it offers none; issue 15). Returns the visitor, the conversation
    and the agent's socket that keeps them online."""
    online, _ = agent(live, http)
    eventually(lambda: account_id in live.rt.presence.online_agents())
    v, conv = started_chat(live, body)
    return v, conv, online


def access_version(live) -> int:
    async def read():
        async with live.rt.db.connection() as conn:
            return await read_access_version(conn)
    return live.call(read)


def fence(live, a) -> None:
    """Wait until the socket has handled every hub event published before
    now: a new visitor's conversation is published after them, from the same
    server, on a channel every console follows, and a socket handles its hub
    events in order (through Redis too: one publisher's order is kept)."""
    v, conv = started_chat(live, "fence")
    a.until(lambda f: f["type"] == "conversation" and f["conversation"]["id"] == conv)
    v.close()


def test_a_following_socket_stops_at_a_restriction_and_never_replays_it(live, backend):
    """The defect: a socket that already followed a chat kept receiving the
    person's new messages after the restriction, while HTTP said 404."""
    if backend == "pg+redis":
        assert live.agent_side is not live  # the flag is set through one worker, the socket is on the other
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    v, conv = started_chat(live, "Opiskelijanumeroni on 1234567")
    a, _ = agent(live, aino, subscriptions={conv: 0})
    assert a.until(is_event(conv, 1))["body"] == "Opiskelijanumeroni on 1234567"
    before = access_version(live)

    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "conversations": [conv]})
    assert r.status_code == 200, r.text
    set_at = time.monotonic()
    a.until(is_hidden(conv), timeout=WITHIN)
    assert time.monotonic() - set_at < WITHIN
    assert access_version(live) == before + 1
    assert aino.get(f"/api/v1/conversations/{conv}").status_code == 404

    # the person writes again: HTTP and the socket agree that Aino sees nothing of it
    v.message("Ja puhelinnumeroni on 040 123 4567")
    assert v.until(lambda f: f["type"] == "ack")["seq"] == 2
    fence(live, a)
    assert not [f for f in a.frames if f["type"] == "event" and f["conversation"] == conv and f["seq"] > 1]
    assert not [f for f in a.frames if f["type"] == "conversation" and f["conversation"]["id"] == conv
                and f["conversation"]["last_seq"] > 1]

    # asking for it again: subscribe (whose replay is the catch-up read) and a reconnecting hello
    a.send(type="subscribe", conversation=conv, last_seq=0)
    assert a.until(lambda f: f["type"] == "error")["code"] == "not_found"
    a.close()
    again, _ = agent(live, aino, subscriptions={conv: 0})
    fence(live, again)
    assert not [f for f in again.frames if f["type"] == "event" and f["conversation"] == conv]
    again.close()
    v.close()


# the frame reaching the other server is the point (pg+redis, which runs the same SQL on PostgreSQL);
# one server on PostgreSQL shows nothing that SQLite and pg+redis do not
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_lifting_a_restriction_tells_the_console_to_reload(live):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    v, conv = started_chat(live, "hei")
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "conversations": [conv]})
    a, _ = agent(live, aino)
    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": False, "conversations": [conv]})
    assert r.status_code == 200 and r.json()["count"] == 1
    a.until(lambda f: f["type"] == "access_changed", timeout=WITHIN)
    a.send(type="subscribe", conversation=conv, last_seq=0)
    assert a.until(is_event(conv, 1))["body"] == "hei"
    a.close()
    v.close()


def test_an_agent_with_the_privacy_role_keeps_following(live):
    add_staff(live, "chair@example.org", ["agent", "privacy"], name="Chair")
    chair = sign_in(live, "chair@example.org")
    v, conv = started_chat(live, "hei")
    a, _ = agent(live, chair, subscriptions={conv: 0})
    a.until(is_event(conv, 1))
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "conversations": [conv]})
    v.message("toinen")
    assert a.until(is_event(conv, 2))["body"] == "toinen"
    assert not [f for f in a.frames if f["type"] == "hidden"]
    a.close()
    v.close()


def test_stale_roles_and_memberships_take_effect_on_the_open_socket(live, backend):
    """The defect: the socket kept the account it read at sign-in."""
    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    admin, aino = sign_in(live, "ilona@example.org"), sign_in(live, "aino@example.org")
    dept = admin.post("/api/v1/departments", json={"name": "Jäsenyys"}).json()["id"]
    assert admin.put(f"/api/v1/departments/{dept}/members", json={"account_ids": [aino_id]}).status_code == 200
    v, conv, _online = chat_in_only_department_online(live, aino, aino_id, "Jäsenmaksu?")
    a, _ = agent(live, aino, subscriptions={conv: 0})
    assert a.until(is_event(conv, 1))["body"] == "Jäsenmaksu?"

    # the membership goes: the chat of that department goes with it
    before = access_version(live)
    assert admin.put(f"/api/v1/departments/{dept}/members", json={"account_ids": []}).status_code == 200
    changed_at = time.monotonic()
    a.until(is_hidden(conv), timeout=WITHIN)
    a.until(lambda f: f["type"] == "access_changed", timeout=WITHIN)  # the console reloads its lists
    assert time.monotonic() - changed_at < WITHIN
    assert access_version(live) == before + 1
    v.message("Hei?")
    v.until(lambda f: f["type"] == "ack")
    fence(live, a)
    assert not [f for f in a.frames if f["type"] == "event" and f["conversation"] == conv and f["seq"] > 1]
    a.send(type="subscribe", conversation=conv, last_seq=0)
    assert a.until(lambda f: f["type"] == "error")["code"] == "not_found"
    again, _ = agent(live, aino, subscriptions={conv: 0})
    fence(live, again)
    assert not [f for f in again.frames if f["type"] == "event" and f["conversation"] == conv]
    again.close()

    # the agent role goes: the socket closes with 4403
    assert admin.patch(f"/api/v1/accounts/{aino_id}", json={"roles": ["privacy"]}).status_code == 200
    removed_at = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        a.until(lambda f: False, timeout=WITHIN + 1)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert time.monotonic() - removed_at < WITHIN
    assert access_version(live) == before + 2
    v.close()


# the close reaching the other server is the point (pg+redis, which runs the same SQL on PostgreSQL);
# one server on PostgreSQL shows nothing that SQLite and pg+redis do not
@pytest.mark.parametrize("backend", ["sqlite", "pg+redis"])
def test_a_disabled_account_s_socket_closes(live):
    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    admin, aino = sign_in(live, "ilona@example.org"), sign_in(live, "aino@example.org")
    a, _ = agent(live, aino)
    before = access_version(live)
    assert admin.post(f"/api/v1/accounts/{aino_id}/disable").status_code == 200
    with pytest.raises(ConnectionClosed) as closed:
        a.until(lambda f: False, timeout=WITHIN + 1)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (4401, 4403)
    assert access_version(live) == before + 1


def test_the_access_version_row_is_created_once_under_concurrent_first_bumps(live):
    """Several workers may make the first change at the same moment: the row
    is created by one of them and no action fails on a duplicate key."""
    import asyncio

    from jutella.store.access_version import bump_access_version

    async def bump_concurrently(rt):
        async def one():
            async with rt.db.transaction() as s:
                return await bump_access_version(s)

        if rt.db.dialect == "sqlite":  # one writer a process: the transactions queue up
            return await asyncio.gather(*(one() for _ in range(5)))
        from jutella.store.db import Database

        others = [Database(rt.db.url) for _ in range(4)]
        try:
            async def other(db):
                async with db.transaction() as s:
                    return await bump_access_version(s)
            return await asyncio.gather(one(), *(other(db) for db in others))
        finally:
            for db in others:
                await db.dispose()

    assert access_version(live) == 0
    assert sorted(live.call(bump_concurrently, live.rt)) == [1, 2, 3, 4, 5]
    assert access_version(live) == 5


def test_erasure_hides_the_erased_conversation_from_the_socket_following_it(live):
    add_staff(live, "chair@example.org", ["agent", "privacy"], name="Chair")
    chair = sign_in(live, "chair@example.org")
    v, conv = started_chat(live, "Poistakaa tietoni")
    a, _ = agent(live, chair, subscriptions={conv: 0})
    a.until(is_event(conv, 1))
    r = chair.post("/api/v1/privacy/erase", json={"confirm": True, "conversations": [conv]})
    assert r.status_code == 200, r.text
    a.until(is_hidden(conv), timeout=WITHIN)
    a.close()
    v.close()


def test_hide_forgets_the_conversation_and_says_so():
    """Protocol.hide, sans I/O: the frame goes out, the watermark, the replay
    and the pending catch-up of the conversation are forgotten, and its later
    events are dropped."""
    import orjson

    from jutella.realtime import protocol as P

    proto = P.Protocol("agent", 0.0)
    commands = proto.receive(orjson.dumps({"type": "hello", "subscriptions": {"17": 3, "18": 0}}), 0.0)
    assert [type(c) for c in commands] == [P.AgentHello, P.FetchSince, P.FetchSince]
    proto.welcome(agent={"id": 1})
    proto.data_to_send()
    proto.event(17, 9, {"kind": "message"}, live=True)  # a gap: a catch-up read is asked for
    proto.hide(17)
    assert [orjson.loads(f) for f in proto.data_to_send()] == [{"type": "hidden", "conversation": 17}]
    assert not proto.is_tracking(17) and proto.is_tracking(18)
    assert all(c.conversation != 17 for c in proto.pending_commands())
    proto.event(17, 4, {"kind": "message"})
    proto.event(17, 10, {"kind": "message"}, live=True)
    assert proto.data_to_send() == []
    with pytest.raises(RuntimeError):
        P.Protocol("visitor", 0.0).hide(1)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_lost_event_is_made_up_for_by_the_access_version(live):
    """The hub event is published after the commit and may be lost (Redis
    went away): when the hub says it lost notifications, a socket whose access
    version moved re-checks everything it follows."""
    from sqlalchemy import delete

    from jutella.chat.actions import AGENTS_CHANNEL
    from jutella.store.access_version import bump_access_version
    from jutella.store.models import StaffDepartment

    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    admin, aino = sign_in(live, "ilona@example.org"), sign_in(live, "aino@example.org")
    dept = admin.post("/api/v1/departments", json={"name": "Jäsenyys"}).json()["id"]
    admin.put(f"/api/v1/departments/{dept}/members", json={"account_ids": [aino_id]})
    v, conv, _online = chat_in_only_department_online(live, aino, aino_id, "Jäsenmaksu?")
    a, _ = agent(live, aino, subscriptions={conv: 0})
    a.until(is_event(conv, 1))

    async def change_without_telling(rt):  # the membership goes, and its hub event is lost
        async with rt.db.transaction() as s:
            await s.execute(delete(StaffDepartment).where(StaffDepartment.account_id == aino_id))
            await bump_access_version(s)

    async def hub_lost_notifications(rt):
        rt.hub.deliver_local(AGENTS_CHANNEL, {"type": "_resync"})

    live.call(change_without_telling, live.rt)
    with pytest.raises(TimeoutError):  # nothing told the socket
        a.until(is_hidden(conv), timeout=0.3)
    live.call(hub_lost_notifications, live.rt)
    a.until(is_hidden(conv), timeout=WITHIN)
    a.until(lambda f: f["type"] == "resync")
    a.close()
    v.close()
