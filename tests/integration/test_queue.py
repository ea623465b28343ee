"""The waiting feedback's numbers (chat/queue.py): a waiting chat's place in
its queue and the typical wait, an SQL aggregate, so on SQLite and
PostgreSQL; and a queue's change told once through the hub, coalesced. The
widget's side is tests/browser/test_waiting_browser.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, update

from jutella.channels import waiting_channel
from jutella.chat import actions as chat
from jutella.chat.metadata import Metadata
from jutella.chat.queue import queue_position, typical_wait, waiting_order
from jutella.store.models import Conversation, Department, Visitor

from tests.conftest import BOTH
from tests.helpers import add_staff

CONV = Conversation.__table__


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def department(ip, name: str) -> int:
    async def make():
        async with ip.rt.db.transaction() as s:
            d = Department(name=name, position=0, created_at=ip.rt.clock.now())
            s.add(d)
            await s.flush()
            return d.id

    return ip.call(make)


def waiting_chat(ip, text: str = "Hei", department_id: int | None = None) -> int:
    visitor, _token = ip.call(chat.new_visitor, ip.rt)
    posted = ip.call(chat.post_visitor_message, ip.rt, visitor_id=visitor.id, client_id="c1", body=text,
                     meta=Metadata())
    conv = posted.conversation.id
    if department_id is not None:
        async def move():
            async with ip.rt.db.transaction() as s:
                await s.execute(update(Conversation).where(Conversation.id == conv).values(department_id=department_id))
        ip.call(move)
    return conv


def accepted(ip, waits: list[float], *, department_id: int | None = None, ago: timedelta = timedelta(hours=1)):
    """Chats that were accepted ``ago``, each after waiting the given seconds
    (written directly: the history a week of work leaves)."""
    now = ip.rt.clock.now()

    async def seed():
        async with ip.rt.db.transaction() as s:
            for i, wait in enumerate(waits):
                visitor = (await s.execute(insert(Visitor).values(
                    public_id=f"v-seed{department_id}{i}{wait}{ago.days}", token_hash=f"h{department_id}-{i}-{wait}-{ago}",
                    created_at=now, last_seen_at=now).returning(Visitor.id))).scalar_one()
                took = now - ago
                await s.execute(insert(Conversation).values(
                    visitor_id=visitor, state="closed", created_at=took - timedelta(seconds=wait), accepted_at=took,
                    closed_at=took, last_activity_at=took, last_seq=0, agent_seen_seq=0, visitor_seen_seq=0,
                    department_id=department_id))

    ip.call(seed)


def order(ip, department_id=None) -> list[int]:
    return ip.call(waiting_order, ip.rt, department_id)


def test_the_place_in_the_queue_counts_the_older_waiting_chats_of_the_same_queue(in_process):
    ip = in_process
    agent = add_staff(ip, "aino@example.org", ["agent"], name="Aino")
    sales = department(ip, "Myynti")
    first, sold, second, sold2, third = (waiting_chat(ip), waiting_chat(ip, department_id=sales), waiting_chat(ip),
                                         waiting_chat(ip, department_id=sales), waiting_chat(ip))
    shared = order(ip)
    assert shared == [first, second, third]
    assert [queue_position(shared, c) for c in (first, second, third)] == [1, 2, 3]
    assert queue_position(order(ip, sales), sold2) == 2  # its own department's queue only
    assert queue_position(shared, sold) is None

    ip.call(chat.accept, ip.rt, agent_id=agent, conversation_id=first)  # taken: out of the queue
    ip.call(chat.close, ip.rt, conversation_id=second, by="visitor")  # left: out of the queue
    shared = order(ip)
    assert queue_position(shared, third) == 1
    assert queue_position(shared, first) is None
    ip.call(chat.close, ip.rt, conversation_id=sold, by="visitor")
    assert order(ip, sales) == [sold2]


def test_the_typical_wait_is_the_median_of_last_weeks_first_accepts(in_process, clock):
    ip = in_process
    sales, support = department(ip, "Myynti"), department(ip, "Tuki")
    accepted(ip, [60, 120, 180, 240], department_id=sales)
    accepted(ip, [5, 5, 5, 5, 5, 5], department_id=sales, ago=timedelta(days=8))  # before the week
    accepted(ip, [3000, 3000], department_id=support)
    assert ip.call(typical_wait, ip.rt, sales) is None  # four samples: too few to say
    assert ip.call(typical_wait, ip.rt, None) == 210  # every department: 60 120 [180 240] 3000 3000

    accepted(ip, [600], department_id=sales)
    assert ip.call(typical_wait, ip.rt, sales) is None  # kept for a minute: not a query per frame
    clock.advance(seconds=61)
    assert ip.call(typical_wait, ip.rt, sales) == 180  # 60 120 [180] 240 600
    accepted(ip, [1000], department_id=sales)
    clock.advance(seconds=61)
    assert ip.call(typical_wait, ip.rt, sales) == 210  # 60 120 [180 240] 600 1000: the two middle ones
    assert ip.call(typical_wait, ip.rt, support) is None
    clock.advance(days=7)
    assert ip.call(typical_wait, ip.rt, sales) is None  # the week passed


def test_a_queue_change_is_told_through_the_hub_after_the_commit(in_process):
    """The waiting visitors' sockets hear a queue's order on its hub channel
    after each change, coalesced: four changes in a row are told in fewer
    words (how the coalescing itself paces them: tests/unit/test_queue_watch.py)."""
    ip = in_process
    agent = add_staff(ip, "aino@example.org", ["agent"], name="Aino")
    chats = [waiting_chat(ip, f"Hei {i}") for i in range(5)]

    async def watch():
        rt = ip.rt
        await rt.queues.settled()  # the chats' own starts told
        words = []
        async with rt.hub.subscribe([waiting_channel(None)]) as sub:
            await chat.accept(rt, agent_id=agent, conversation_id=chats[0])
            for c in chats[1:4]:
                await chat.close(rt, conversation_id=c, by="visitor")
            while not words or words[-1]["waiting"] != [chats[4]]:
                words.append((await asyncio.wait_for(sub.get(), 5))[1])
        return words

    words = ip.call(watch)
    assert 1 <= len(words) < 4
    assert all(chats[0] not in w["waiting"] for w in words)  # told after the accept's commit
    assert words[-1] == {"type": "queue", "department": None, "waiting": [chats[4]], "typical_wait_s": None}


@pytest.mark.parametrize("backend", ["sqlite"])  # the socket's part: the dialect does not matter here
def test_a_waiting_visitors_socket_is_told_at_join_at_resume_and_when_the_queue_moves(live):
    from tests.chat_clients import agent as agent_socket, visitor
    from tests.helpers import sign_in

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    first, _ = visitor(live)
    first.message("Hei")
    told = first.until(lambda f: f["type"] == "queue")
    conv = told["conversation"]
    assert told == {"type": "queue", "conversation": conv, "position": 1, "typical_wait_s": None}

    second, welcome = visitor(live)
    second.message("Hello")
    assert second.until(lambda f: f["type"] == "queue")["position"] == 2  # at join
    second.close()
    again, welcome = visitor(live, token=welcome["token"], last_seq=1)  # a new page: resume
    resumed = again.until(lambda f: f["type"] == "queue")
    assert resumed["position"] == 2 and resumed["conversation"] == welcome["conversation"]["id"]

    sock, _ = agent_socket(live, sign_in(live, "aino@example.org"))
    sock.send(type="accept", conversation=conv)
    assert first.until(lambda f: f["type"] == "event" and f.get("state") == "active")
    assert again.until(lambda f: f["type"] == "queue")["position"] == 1  # moved up
    first.send(type="ping")  # and the taken one was told nothing more (as far as a ping can show)
    first.until(lambda f: f["type"] == "pong")
    assert [f for f in first.frames if f["type"] == "queue"] == [told]
    for s in (first, again, sock):
        s.close()
