"""A write's one-statement form on PostgreSQL (store/db.py ``Quick``; the
messages of chat/actions.py): the quick writes pending together run in one
round trip and commit together; one whose row says "not done" runs its
function instead; a statement refused as a whole (a constraint) runs each of
its writes the long way, losing none and storing none twice; and an agent's
message still meets the rule on who may write into a chat, on both
databases."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, insert, literal, select, text, true, update
from sqlalchemy.exc import IntegrityError

from jutella.chat import actions
from jutella.chat.metadata import Metadata
from jutella.settings import Settings
from jutella.store.db import Database, Quick
from jutella.store.models import Conversation, Visitor
from jutella.store.prepared import Prepared

from tests.chat_clients import agent, visitor
from tests.conftest import BOTH, run_async
from tests.helpers import add_staff, sign_in

V = Visitor.__table__
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)


@pytest.fixture(params=BOTH)
def backend(request):
    """The quick form is PostgreSQL's; the chat test runs on both (tests/conftest.py)."""
    return request.param


def _one_row(cte, *columns) -> Prepared:
    one = select(literal(1).label("one")).subquery("one")
    return Prepared(select(*columns, func.txid_current().label("tx")).select_from(one.outerjoin(cte, true())))


_touched = update(V).where(V.c.public_id == bindparam("b_pid")).values(last_seen_at=bindparam("b_now")) \
    .returning(V.c.id.label("vid")).cte("touched")
TOUCH = _one_row(_touched, _touched.c.vid)  # a visitor seen again; NULL when there is no such visitor
_added = insert(V).values(public_id=bindparam("b_pid"), token_hash=bindparam("b_hash"), created_at=bindparam("b_now"),
                          last_seen_at=bindparam("b_now")).returning(V.c.id.label("vid")).cte("added")
ADD = _one_row(_added, _added.c.vid)


def _hash(public_id: str) -> str:
    return hashlib.sha256(public_id.encode()).hexdigest()


def _insert(public_id: str):
    """The long way of a write: its function, in the batch's transaction."""
    def job(conn):
        conn.execute(insert(V).values(public_id=public_id, token_hash=_hash(public_id), created_at=NOW,
                                      last_seen_at=NOW))
        return ("long", conn.execute(text("SELECT txid_current()")).scalar())
    return job


async def _as_one_batch(db: Database, writes):
    """Submit ``writes`` (fn, quick) while both of the writer's batch slots are
    busy, so that they wait and go as one batch."""
    def blocker(conn):
        conn.execute(text("SELECT pg_sleep(0.4)"))

    busy = [asyncio.ensure_future(db.write_core(blocker))]
    await asyncio.sleep(0.05)
    busy.append(asyncio.ensure_future(db.write_core(blocker)))
    await asyncio.sleep(0.05)
    outcomes = await asyncio.gather(*(db.write_core(fn, quick=quick) for fn, quick in writes),
                                    return_exceptions=True)
    await asyncio.gather(*busy)
    return outcomes


@pytest.mark.parametrize("backend", ["postgresql"])
def test_quick_writes_pending_together_commit_together_and_a_not_done_one_runs_its_function(database_url):
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4)
        try:
            for pid in ("a", "b", "c"):
                await db.write_core(_insert(pid))
            writes = [(_insert(pid), Quick(TOUCH, {"b_pid": pid, "b_now": LATER},
                                           lambda row: ("quick", row.tx), key="vid"))
                      for pid in ("a", "b", "missing", "c")]
            outcomes = await _as_one_batch(db, writes)
            async with db.connection() as conn:
                seen = dict((await conn.execute(select(V.c.public_id, V.c.last_seen_at))).all())
        finally:
            await db.dispose()
        return outcomes, seen

    outcomes, seen = run_async(scenario())
    kinds = [kind for kind, _tx in outcomes]
    assert kinds == ["quick", "quick", "long", "quick"], outcomes
    quick_txs = {tx for kind, tx in outcomes if kind == "quick"}
    assert len(quick_txs) == 1  # one statement's writes, one transaction
    assert outcomes[2][1] not in quick_txs  # the one it did not do ran its function, in the long way's transaction
    assert seen["a"] == seen["b"] == seen["c"] == LATER
    assert seen["missing"] == NOW  # stored once, by its function


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_quick_statement_refused_as_a_whole_runs_each_write_the_long_way(database_url):
    """Two writes of the same new visitor in one statement break its unique
    id: PostgreSQL refuses the statement for all of them, nothing of it is
    stored, and each write runs its function: the first of the two is
    stored, the second fails on its own, the bystander is stored once."""
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4)
        try:
            writes = [(_insert(pid), Quick(ADD, {"b_pid": pid, "b_hash": _hash(pid), "b_now": NOW},
                                           lambda row: ("quick", row.tx), key="vid"))
                      for pid in ("twin", "bystander", "twin")]
            outcomes = await _as_one_batch(db, writes)
            async with db.connection() as conn:
                ids = list((await conn.execute(select(V.c.public_id).order_by(V.c.public_id))).scalars())
        finally:
            await db.dispose()
        return outcomes, ids

    outcomes, ids = run_async(scenario())
    assert outcomes[0][0] == "long" and outcomes[1][0] == "long", outcomes
    assert isinstance(outcomes[2], IntegrityError), outcomes
    assert ids == ["bystander", "twin"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_quick_statement_without_its_one_row_fails_its_writes_loudly(database_url):
    """A quick statement must answer each write with one row; one that can
    give none (a bare UPDATE ... RETURNING) leaves the writer unable to
    tell whose write is whose: the callers hear of it instead of waiting
    for ever."""
    bare = Prepared(update(V).where(V.c.public_id == bindparam("b_pid")).values(last_seen_at=bindparam("b_now"))
                    .returning(V.c.id.label("vid")))

    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4)
        try:
            await db.write_core(_insert("a"))
            writes = [(_insert(pid), Quick(bare, {"b_pid": pid, "b_now": LATER}, lambda row: ("quick",), key="vid"))
                      for pid in ("a", "missing")]
            return await asyncio.wait_for(_as_one_batch(db, writes), 20)
        finally:
            await db.dispose()

    outcomes = run_async(scenario())
    assert all(isinstance(o, RuntimeError) and "quick statement" in str(o) for o in outcomes), outcomes


def test_an_agent_writes_into_their_chat_until_its_person_is_restricted(live):
    """The quick form of an agent's message carries the rule of chat/access.py:
    Mallory (no privacy role) writes into the chat she took; once the chair
    restricts its person, her next message is "not found" and stored
    nowhere, and the chair (privacy role) still sees the chat as it was."""
    add_staff(live, "chair@example.org", ["agent", "privacy"], name="Chair")
    add_staff(live, "mallory@example.org", ["agent"], name="Mallory")
    chair, mallory = sign_in(live, "chair@example.org"), sign_in(live, "mallory@example.org")
    v, _ = visitor(live)
    v.message("hello", client_id="v-1")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    m, _ = agent(live, mallory, subscriptions={conv: 0})
    m.send(type="accept", conversation=conv)
    v.until(lambda f: f["type"] == "event" and f["kind"] == "state")
    m.message("first answer", conversation=conv, client_id="m-1")
    assert m.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"
    assert v.until(lambda f: f["type"] == "event" and f.get("body") == "first answer")["author_name"] == "Mallory"
    v.message("second", client_id="v-2")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "v-2")["seq"] == 4  # 1 hello, 2 taken, 3 her answer

    def mallory_writes(client_id: str) -> dict:
        m.message(f"message {client_id}", conversation=conv, client_id=client_id)
        return m.until(lambda f: f["type"] in ("ack", "error") and f.get("client_id") == client_id)

    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "conversations": [conv]})
    assert r.status_code == 200, r.text
    # on PostgreSQL the server's last message saw nobody restricted, so m-2 is offered as the statement that
    # holds only then (chat/actions.py), and m-3 as the full one: both refused
    for client_id in ("m-2", "m-3"):
        answer = mallory_writes(client_id)
        assert answer["type"] == "error" and answer["code"] == "not_found", answer
    v.message("while restricted", client_id="v-3")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "v-3")["seq"] == 5
    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": False, "conversations": [conv]})
    assert r.status_code == 200, r.text
    # lifted: the full statement (the last one saw a restriction), then the cheaper one again
    for client_id in ("m-4", "m-5"):
        assert mallory_writes(client_id)["type"] == "ack"
    events = chair.get(f"/api/v1/conversations/{conv}").json()["events"]
    assert [e["client_id"] for e in events if e["kind"] == "message"] == ["v-1", "m-1", "v-2", "v-3", "m-4", "m-5"]


@pytest.mark.parametrize("hint", [False, True], ids=["hint-nobody", "hint-someone"])
def test_a_visitors_message_knows_its_person_is_restricted_whatever_the_hint(live, hint):
    """A message's list update says whether its person is restricted (agents
    without the privacy role are not shown such chats): right whichever of
    the two statements the server's hint (Runtime.anyone_restricted) offers,
    the one for "nobody is restricted" included, and the hint follows what
    the statement saw."""
    add_staff(live, "chair@example.org", ["agent", "privacy"], name="Chair")
    chair = sign_in(live, "chair@example.org")
    v, _ = visitor(live)
    v.message("hello", client_id="v-1")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]

    async def visitor_of_conv():
        async with live.rt.db.connection() as conn:
            return (await conn.execute(select(Conversation.visitor_id).where(Conversation.id == conv))).scalar_one()

    async def post(client_id: str):
        return await actions.post_visitor_message(live.rt, visitor_id=visitor_id, client_id=client_id, body=client_id,
                                                  meta=Metadata(), conversation=conv)

    visitor_id = live.call(visitor_of_conv)
    postgres = live.rt.db.dialect == "postgresql"
    for on, client_id in ((True, "v-2"), (False, "v-3")):
        r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": on, "conversations": [conv]})
        assert r.status_code == 200, r.text
        live.rt.anyone_restricted = hint
        posted = live.call(post, client_id)
        assert posted.new and posted.event.client_id == client_id
        assert posted.conversation.restricted is on
        assert live.rt.anyone_restricted is (on if postgres else hint)
    events = chair.get(f"/api/v1/conversations/{conv}").json()["events"]
    assert [e["client_id"] for e in events if e["kind"] == "message"] == ["v-1", "v-2", "v-3"]
