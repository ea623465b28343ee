"""Every change to conversations goes through one function here (Zulip's
``actions`` pattern): it writes the database in one transaction and, only
after the commit, publishes the event that connected clients receive.

Invariant: nothing is acked or published before the commit. The returned
value carries the committed seq, which the endpoint acks.
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, exists, insert, literal, not_, or_, select, true, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.accounts import audit
from jutella.accounts.tokens import hash_token, new_token
from jutella.channels import AGENTS_CHANNEL, agent_channel, conv_channel, dept_channel
from jutella.mail import webhooks
from jutella.runtime import Runtime
from jutella.settings import Settings
from jutella.store.models import ChatEvent, Conversation, StaffAccount, StaffDepartment, Visitor
from jutella.store.db import Quick
from jutella.store.prepared import Prepared

from . import reports
from .access import (Viewer, anyone_restricted, conversation_rule, core_may_see_conversation, load_viewer,
                     visitor_restricted)
from .errors import ChatError
from .departments import core_check_limit, core_department_for_new, limit_of
from .metadata import Metadata, clean_url
from .presence import current_choice, may_start_now
from .queue import queue_changed
from .states import ACTIVE, CLOSED, WAITING

if TYPE_CHECKING:  # chat/prechat.py imports chat/sites.py, which imports this module through attachments
    from .prechat import Answers

# the channel names (jutella/channels.py), ChatError and the states are imported
# above and stay importable from here


def queue_channel(conv: Conversation) -> str:
    """The queue a conversation waits in: its department's (``dept:<id>``, the
    members' consoles and admins') or, without a department, everyone's."""
    department_id = getattr(conv, "department_id", None)
    return dept_channel(department_id) if department_id else AGENTS_CHANNEL


def list_channel(conv: Conversation) -> str:
    """Who needs a list update when a message arrives: the queue's consoles while
    the conversation waits; only its agent once it is taken (this keeps a busy
    hour from fanning every message out to every console)."""
    return agent_channel(conv.agent_id) if conv.state == ACTIVE and conv.agent_id else queue_channel(conv)


# Event kinds staff see and a visitor never does (internal notes). They take a
# seq in the conversation like everything else; a visitor's connection moves
# past them silently (protocol.HIDDEN), and visitor-facing reads leave them out.
STAFF_ONLY_KINDS = frozenset({"note"})


# -- frames ------------------------------------------------------------------------
def event_frame(ev: ChatEvent, agent_name: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "event", "conversation": ev.conversation_id, "seq": ev.seq, "kind": ev.kind,
        "author": ev.author, "author_name": agent_name if ev.author == "agent" else None,
        "body": ev.body, "client_id": ev.client_id, "at": ev.created_at.isoformat(),
    }
    if ev.data:
        frame["data"] = ev.data
        if "state" in ev.data:
            frame["state"] = ev.data["state"]
    return frame


def summary(conv: Conversation, agent_name: str | None = None) -> dict[str, Any]:
    return {
        "id": conv.id, "state": conv.state, "agent_id": conv.agent_id, "agent_name": agent_name,
        "visitor": conv.visitor_id, "created_at": conv.created_at.isoformat(),
        "last_activity_at": conv.last_activity_at.isoformat(), "last_seq": conv.last_seq,
        "agent_seen_seq": conv.agent_seen_seq, "browser": conv.browser, "os": conv.os,
        "department_id": getattr(conv, "department_id", None), "site_id": getattr(conv, "site_id", None),
        "visitor_name": getattr(conv, "prechat_name", None),  # given on the pre-chat form (docs/prechat.md)
    }


def list_frame(conv, agent_name: str | None = None, *, restricted: bool | None, **extra: Any) -> dict[str, Any]:
    """A ``conversation`` list update. ``restricted`` says whether the person's
    processing is restricted (then only staff with the privacy role get it);
    None means "not known here" and makes each agent connection check the
    database before passing the frame on (see AgentConnection.on_hub)."""
    frame = {"type": "conversation", "conversation": summary(conv, agent_name), **extra}
    if restricted is not None:
        frame["restricted"] = restricted
    return frame


async def viewer_of(rt: Runtime, viewer: Viewer | None, agent_id: int | None) -> Viewer:
    """The Viewer an action checks inside its own write: the caller's, or,
    when a caller has none at hand (the agent socket, auto-assignment), a
    fresh one loaded from ``agent_id``, so no path skips the rule. A missing
    or disabled account sees nothing: "not found"."""
    if viewer is not None:
        return viewer
    loaded = await load_viewer(rt, agent_id) if agent_id is not None else None
    if loaded is None:
        raise ChatError("not_found", "No such conversation.", 404)
    return loaded


def core_visible_or_404(conn: Connection, viewer: Viewer, conversation_id: int) -> None:
    """Inside a write: a conversation ``viewer`` may not see is "not found",
    decided in the same transaction as the change (chat/access.py)."""
    if not core_may_see_conversation(conn, viewer, conversation_id):
        raise ChatError("not_found", "No such conversation.", 404)


def core_lock_for(conn: Connection, viewer: Viewer | None, conversation_id: int) -> SimpleNamespace:
    """Inside a write that changes a conversation: the conversation, locked for
    the change, or "not found" when it is missing or ``viewer`` (staff; None:
    the visitor or the server itself) may not see it: one answer for both, so
    existence does not leak. Accept, close, notes, transfers and uploads start here."""
    found = conn.execute(select(CONV).where(CONV.c.id == conversation_id).with_for_update()).first()
    if found is None:
        raise ChatError("not_found", "No such conversation.", 404)
    if viewer is not None:
        core_visible_or_404(conn, viewer, conversation_id)
    return _row(found)


# -- visitors ----------------------------------------------------------------------
async def visitor_by_token(rt: Runtime, token: str) -> Visitor | None:
    if not token or len(token) > 100:
        return None
    async with rt.db.reader() as s:
        return (await s.execute(select(Visitor).where(Visitor.token_hash == hash_token(token)))).scalar_one_or_none()


async def new_visitor(rt: Runtime) -> tuple[Visitor, str]:
    """A visitor identity: a 256-bit random token for the browser (the database
    keeps its hash) and a random public id staff can quote. Written on the
    Core writer thread: every opened widget makes one, so they batch."""
    token, digest = new_token()
    now = rt.clock.now()
    values = dict(public_id="v-" + secrets.token_hex(6), token_hash=digest, created_at=now, last_seen_at=now)

    def work(conn: Connection) -> int:
        return conn.execute(insert(VISITOR).values(**values).returning(VISITOR.c.id)).scalar_one()

    return Visitor(id=await rt.db.write_core(work), **values), token


async def touch_visitor(rt: Runtime, visitor_id: int) -> None:
    """A returning visitor: retention counts from their last visit."""
    now = rt.clock.now()
    await rt.db.write_core(lambda conn: conn.execute(
        update(VISITOR).where(VISITOR.c.id == visitor_id).values(last_seen_at=now)))


async def open_conversation_of(rt: Runtime, visitor_id: int) -> Conversation | None:
    async with rt.db.reader() as s:
        return (await s.execute(
            select(Conversation).where(Conversation.visitor_id == visitor_id, Conversation.state != CLOSED)
            .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()


async def latest_conversation_of(rt: Runtime, visitor_id: int) -> Conversation | None:
    async with rt.db.reader() as s:
        return (await s.execute(
            select(Conversation).where(Conversation.visitor_id == visitor_id)
            .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()


# -- the write path ------------------------------------------------------------------
@dataclass
class Posted:
    conversation: Conversation
    event: ChatEvent
    new: bool  # False: the client_id was already stored (a resend); ack it again, publish nothing
    conversation_created: bool = False


# The write path is SQLAlchemy Core in plain synchronous functions of a
# Connection, so Database.write_core can run a whole batch of them on
# SQLite's writer thread (one thread hop and one commit per batch), or on
# PostgreSQL through run_sync. Rows come back as plain objects. One core for
# each change of a conversation, every caller goes through it:
# core_append (the next seq), core_take (a waiting chat becomes an agent's),
# core_close, and transfers.core_transfer.
CONV = Conversation.__table__
EVENT = ChatEvent.__table__
VISITOR = Visitor.__table__
STAFF = StaffAccount.__table__


def _row(row) -> SimpleNamespace:
    return SimpleNamespace(**row._mapping)


# The hot statements, built once with bind parameters: building a statement
# and its cache key costs more than running it on SQLite, and these run for
# every message (docs/performance.md).
# They run on the driver itself, sqlite3 or asyncpg (store/prepared.py).
_EXISTING = Prepared(select(EVENT).where(EVENT.c.conversation_id == bindparam("b_conv"),
                                         EVENT.c.client_id == bindparam("b_client")))
_OPEN_CONV = Prepared(select(CONV, visitor_restricted(CONV.c.visitor_id).label("restricted"))
                      .where(CONV.c.visitor_id == bindparam("b_visitor"), CONV.c.state != CLOSED)
                      .order_by(CONV.c.id.desc()).limit(1))
_CONV_FOR_UPDATE = Prepared(select(CONV, visitor_restricted(CONV.c.visitor_id).label("restricted"))
                            .where(CONV.c.id == bindparam("b_conv")).with_for_update())
_IS_RESTRICTED = Prepared(select(visitor_restricted(bindparam("b_visitor"))))
_STAFF_NAME = Prepared(select(STAFF.c.name).where(STAFF.c.id == bindparam("b_agent")))
_AGENT_SEEN = Prepared(update(CONV).where(CONV.c.id == bindparam("b_conv"))
                       .values(agent_seen_seq=bindparam("b_seq")))


# SQLite's append (the writer thread): the event takes the next seq in the
# INSERT itself and a resend is "no row" from the unique client_id, so an
# append is two statements (this INSERT, then _SET_SEQ) and a message needs
# no separate look for a resend. Each statement is a trip out of and back
# into the GIL for the writer thread, and with the event loop busy each
# return waits for the loop to let go of it (docs/performance.md).
# SQLite only: its write transactions hold the database's one write lock
# (BEGIN IMMEDIATE), so reading last_seq inside the INSERT is safe. On
# PostgreSQL concurrent transactions would read the same last_seq; there
# the UPDATE ... RETURNING in _PG_APPEND's CTE locks the conversation row first.
_APPEND_COLUMNS = ("conversation_id", "seq", "kind", "author", "agent_id", "body", "client_id", "data", "created_at")
_APPEND_ONCE = Prepared(
    sqlite_insert(EVENT).from_select(
        list(_APPEND_COLUMNS),
        select(*(CONV.c.id if name == "conversation_id" else CONV.c.last_seq + 1 if name == "seq"
                 else bindparam(name, type_=EVENT.c[name].type) for name in _APPEND_COLUMNS))
        .where(CONV.c.id == bindparam("b_conv")))
    .on_conflict_do_nothing(index_elements=["conversation_id", "client_id"])
    .returning(EVENT.c.id, EVENT.c.seq))
# PostgreSQL's append, one statement (one round trip, asyncpg's prepared
# statement: store/prepared.py): the CTE takes the next seq with UPDATE ...
# RETURNING, which locks the conversation's row (concurrent appends to it
# wait there, in order), and the INSERT takes that seq. ``b_once``: the
# client_id when the caller has not looked for a resend (core_append's
# ``once``): a stored one leaves the conversation unchanged and inserts
# nothing, as SQLite's ON CONFLICT does; NULL turns the look off. A resend
# racing in from another transaction is not seen by that look (the
# statement's snapshot) and fails the INSERT on the unique client_id with
# IntegrityError, which the callers retry, as before. No row: a resend, or
# no such conversation.
def _taken(activity: bool, conversation, *, where: tuple = (), also: dict[str, Any] | None = None):
    """The CTE of PostgreSQL's append that takes the next seq: ``UPDATE ...
    RETURNING`` the conversation's row (locked; concurrent appends wait
    there, in order), unless the client_id ``b_once`` is stored in it.
    ``conversation``: its id (a bind parameter or a scalar subquery);
    ``where``: more conditions on the row (checked again on the row as it
    is once locked); ``also``: more columns to set."""
    moved = {"last_activity_at": bindparam("b_now")} if activity else {}
    conditions = [CONV.c.id == conversation,
                  ~exists().where(EVENT.c.conversation_id == CONV.c.id,
                                  EVENT.c.client_id == bindparam("b_once", type_=EVENT.c.client_id.type)),
                  *where]
    return update(CONV).where(*conditions).values(last_seq=CONV.c.last_seq + 1, **moved, **(also or {}))


def _appended(taken):
    """The INSERT of the event that takes the seq ``taken`` gave."""
    return insert(EVENT).from_select(
        list(_APPEND_COLUMNS),
        select(*(taken.c.id if name == "conversation_id" else taken.c.last_seq if name == "seq"
                 else bindparam(name, type_=EVENT.c[name].type) for name in _APPEND_COLUMNS)))


def _pg_append(activity: bool) -> Prepared:
    taken = _taken(activity, bindparam("b_conv")).returning(CONV.c.id, CONV.c.last_seq).cte("taken")
    return Prepared(_appended(taken).returning(EVENT.c.id, EVENT.c.seq))


# A message as one statement on PostgreSQL (the writer's quick form,
# store/db.py Quick), for the common case: the append's two CTEs as above
# and one row always: the conversation as it is after the append, with the
# person's restriction, the event's id and seq, and whether anyone at all is
# restricted; NULLs when nothing was written, and then the message goes the
# long way (the action's ``work``, which says why).
#
# Each comes in two forms. The full one works out the person's restriction.
# The cheaper one holds only while nobody is restricted: it says so in its
# WHERE (``NOT anyone_restricted()``; chat/access.py explains why the rule
# then needs no more) and does nothing otherwise. Which one a message offers
# is a hint, ``Runtime.anyone_restricted``, which every row of either form
# sets (the ``seen`` of store/db.py Quick); a stale hint costs one long way
# or a dearer statement, never a wrong answer.
def _one_row(taken, event, *extra, cheap: bool) -> Prepared:
    """The one row; ``cheap``: the cheaper form's, whose ``taken`` carries
    ``_nobody(True)`` in its WHERE, so that nobody written is restricted."""
    one = select(literal(1).label("one")).subquery("one")
    restricted = literal(False) if cheap else visitor_restricted(taken.c.visitor_id)
    return Prepared(select(*taken.c, restricted.label("restricted"), event.c.event_id, event.c.event_seq,
                           anyone_restricted().label("anyone_restricted"), *extra)
                    .select_from(one.outerjoin(taken.join(event, true()), true())))


def _event_of(taken):
    return _appended(taken).returning(EVENT.c.id.label("event_id"), EVENT.c.seq.label("event_seq")).cte("event")


def _nobody(cheap: bool) -> tuple:
    """The cheaper form's own condition (above), or none."""
    return (not_(anyone_restricted()),) if cheap else ()


@functools.cache
def _pg_visitor_message(cheap: bool) -> Prepared:
    """A visitor's message to their open conversation (``b_visitor``)."""
    open_conv = (select(CONV.c.id).where(CONV.c.visitor_id == bindparam("b_visitor"), CONV.c.state != CLOSED)
                 .order_by(CONV.c.id.desc()).limit(1).scalar_subquery())
    taken = (_taken(True, open_conv, where=(CONV.c.state != CLOSED, *_nobody(cheap)))
             .returning(*CONV.c).cte("taken"))
    return _one_row(taken, _event_of(taken), cheap=cheap)


@functools.cache
def _pg_agent_message(is_admin: bool, sees_restricted: bool, cheap: bool) -> Prepared:
    """An agent's (``b_agent``) message to a conversation (``b_conv``)
    already theirs and active (core_take has nothing to do), that they may
    see (chat/access.py's rule for their kind of Viewer, on the row; with
    nobody restricted, the rule of one who sees restricted people), with
    agent_seen_seq moved to the new event as _AGENT_SEEN does, and their
    name for the frames."""
    rule = conversation_rule(is_admin, sees_restricted or cheap, bindparam("b_agent"), CONV.c)
    taken = _taken(True, bindparam("b_conv"),
                   where=(CONV.c.state == ACTIVE, CONV.c.agent_id == bindparam("b_agent"), *rule, *_nobody(cheap)),
                   also={"agent_seen_seq": CONV.c.last_seq + 1}).returning(*CONV.c).cte("taken")
    name = select(STAFF.c.name).where(STAFF.c.id == bindparam("b_agent")).scalar_subquery().label("agent_name")
    return _one_row(taken, _event_of(taken), name, cheap=cheap)


def _quick_message(rt: Runtime, statement: Prepared, params: dict[str, Any], *, now: datetime, author: str,
                   agent_id: int | None, body: str, client_id: str, result: Any) -> Quick:
    """The writer's quick form of a message (above): ``statement`` with the
    event's values added to ``params``; ``result(conversation, event)`` is
    what the action's ``work`` would have answered, from the statement's row
    (the conversation after the append and its restriction) and the event as
    core_append gives it."""
    def seen(row: SimpleNamespace) -> None:
        rt.anyone_restricted = bool(vars(row).pop("anyone_restricted"))

    def done(row: SimpleNamespace) -> Any:
        found = vars(row)
        ev = SimpleNamespace(id=found.pop("event_id"), seq=found.pop("event_seq"), conversation_id=row.id,
                             created_at=now, kind="message", author=author, agent_id=agent_id, body=body,
                             client_id=client_id, data=None)
        row.restricted = bool(row.restricted)
        return result(row, ev)

    return Quick(statement, {**params, "b_now": now, "b_once": client_id, "created_at": now, "kind": "message",
                             "author": author, "agent_id": agent_id, "body": body, "client_id": client_id,
                             "data": None}, done, key="event_id", seen=seen)


_PG_APPEND = _pg_append(activity=True)
_PG_APPEND_QUIET = _pg_append(activity=False)  # an event that is not activity (a note)
_SET_SEQ = Prepared(update(CONV).where(CONV.c.id == bindparam("b_conv"))
                    .values(last_seq=bindparam("b_seq"), last_activity_at=bindparam("b_now")))
# The same for an event that is not activity (a note): last_activity_at stays.
_SET_SEQ_QUIET = Prepared(update(CONV).where(CONV.c.id == bindparam("b_conv")).values(last_seq=bindparam("b_seq")))


def _core_existing(conn: Connection, conv_id: int, client_id: str) -> SimpleNamespace | None:
    return _EXISTING.first(conn, {"b_conv": conv_id, "b_client": client_id})


def core_append(conn: Connection, conversation_id: int, now: datetime, *, kind: str, author: str,
                agent_id: int | None = None, body: str | None = None, client_id: str | None = None,
                data: dict[str, Any] | None = None, activity: bool = True,
                once: bool = False) -> SimpleNamespace | None:
    """THE one place a conversation's next seq is given: every event (message,
    note, upload, state change) is appended here, inside the caller's write,
    so seqs are 1, 2, 3 ... with no gap and no duplicate whoever writes.

    ``activity``: the event moves ``last_activity_at`` (a note does not).
    ``once``: the caller has not looked for ``client_id`` yet; when it is
    already stored in the conversation (a resend) nothing is written and the
    answer is None (the caller reads the stored event: a rare path, so the
    common one has no extra read on SQLite). Without ``once`` the caller has
    looked (a client_id racing in on another PostgreSQL connection raises
    IntegrityError then, which the callers retry). A missing conversation
    is a 404."""
    values = {"conversation_id": conversation_id, "created_at": now, "kind": kind, "author": author,
              "agent_id": agent_id, "body": body, "client_id": client_id, "data": data}
    if conn.dialect.name == "sqlite":
        row = _APPEND_ONCE.first(conn, {"b_conv": conversation_id, **values})
        if row is None:  # the client_id is stored (ON CONFLICT), or the conversation is gone
            if once:
                return None
            raise ChatError("not_found", "No such conversation.", 404)
        if activity:
            _SET_SEQ.run(conn, {"b_conv": conversation_id, "b_seq": row.seq, "b_now": now})
        else:
            _SET_SEQ_QUIET.run(conn, {"b_conv": conversation_id, "b_seq": row.seq})
        return SimpleNamespace(id=row.id, seq=row.seq, **values)
    row = (_PG_APPEND if activity else _PG_APPEND_QUIET).first(
        conn, {"b_conv": conversation_id, "b_now": now, "b_once": client_id if once else None, **values})
    if row is None:  # the client_id is stored (a resend), or the conversation is gone
        if once:
            return None
        raise ChatError("not_found", "No such conversation.", 404)
    return SimpleNamespace(id=row.id, seq=row.seq, **values)


TAKEN = "Another agent has already taken this conversation."
HANDLING = "Another agent is handling this conversation."


def core_take(conn: Connection, conv: SimpleNamespace, agent_id: int, now: datetime, *, limit: int,
              name: str | None, taken_message: str = HANDLING) -> SimpleNamespace | None:
    """THE one place a waiting conversation becomes an agent's: accepting it,
    writing or uploading into it, auto-assignment. ``conv``: its row, read
    FOR UPDATE in this write (updated here in place); ``limit``: the
    setting's concurrent-chat limit (the agent's own overrides it, see
    departments.core_check_limit); ``name``: the agent's, for the event.

    The "joined" event, or None when the conversation is already this
    agent's. Refused (409): closed; another agent's (``taken_message``:
    accepting says it was taken, writing that someone else handles it);
    the agent at their limit (``limit_reached``), before anything is written."""
    if conv.state == ACTIVE and conv.agent_id == agent_id:
        return None
    if conv.state == CLOSED:
        raise ChatError("closed", "This conversation is closed.", 409)
    if conv.state != WAITING:
        raise ChatError("conflict", taken_message, 409)
    return core_hand_to(conn, conv, agent_id, now, limit=limit, name=name)


def core_hand_to(conn: Connection, conv: SimpleNamespace, agent_id: int, now: datetime, *, limit: int,
                 name: str | None) -> SimpleNamespace:
    """Make ``conv`` the agent's active chat within their limit, with the
    "<name> joined the chat." event: the step taking a waiting chat and a
    transfer to an agent share (each checks its own preconditions)."""
    core_check_limit(conn, agent_id, limit)
    accepted_at = conv.accepted_at or now
    conn.execute(update(CONV).where(CONV.c.id == conv.id).values(state=ACTIVE, agent_id=agent_id,
                                                                  accepted_at=accepted_at))
    conv.state, conv.agent_id, conv.accepted_at = ACTIVE, agent_id, accepted_at
    ev = core_append(conn, conv.id, now, kind="state", author="system", agent_id=agent_id,
                     data={"state": ACTIVE, "key": "agent_joined", "name": name})
    conv.last_seq, conv.last_activity_at = ev.seq, now
    return ev


def core_close(conn: Connection, conv: SimpleNamespace, now: datetime, *, by: str, settings: Settings,
               agent_id: int | None = None) -> tuple[SimpleNamespace, str | None] | None:
    """THE one place a conversation closes (by an agent, the visitor, or after
    idling). ``conv``: its row, read FOR UPDATE in this write (updated in
    place). (The "closed" event, the name it shows), or None when it was
    closed already. The chat is counted in the reports' aggregates in the
    same write (chat/reports.py; once, whatever runs the close twice)."""
    if conv.state == CLOSED:
        return None
    who = agent_id if by == "agent" else conv.agent_id
    name = _STAFF_NAME.scalar(conn, {"b_agent": who}) if who is not None else None
    conn.execute(update(CONV).where(CONV.c.id == conv.id).values(state=CLOSED, closed_at=now, closed_by=by))
    conv.state, conv.closed_at, conv.closed_by = CLOSED, now, by
    ev = core_append(conn, conv.id, now, kind="state", author="system", agent_id=agent_id,
                     data={"state": CLOSED, "key": f"closed_by_{by}", "name": name})
    conv.last_seq, conv.last_activity_at = ev.seq, now
    reports.core_count_closed(conn, conv, now, time_zone=settings.time_zone, per_agent=settings.reports_per_agent)
    # the hooks that take it are told, queued in this same write (mail/webhooks.py); no personal field
    webhooks.core_emit(conn, now, "conversation.closed", webhooks.conversation_data(conv), {},
                       conversation_id=conv.id)
    return ev, name


async def post_visitor_message(rt: Runtime, *, visitor_id: int, client_id: str, body: str,
                               meta: Metadata, department: int | None = None,
                               conversation: int | None = None, prechat: Answers | None = None,
                               site_id: int | None = None, site_departments: frozenset[int] = frozenset()) -> Posted:
    """Store a visitor's message in their open conversation, starting one (with
    its automatic metadata) when there is none. A new conversation goes to the
    department the visitor chose, or to the only one online (docs/departments.md).
    The visitor may choose only a department the widget offers now (an
    ``department_unavailable`` refusal otherwise: nothing is stored).
    ``conversation``: the one the visitor's connection follows, if any (only
    a hint for the order of row locks; the open conversation is read here).
    ``prechat``: the site's pre-chat form's answers (chat/prechat.py
    ``check_answers``), stored with a new conversation; a chosen topic's
    department takes the chat (docs/prechat.md).
    ``site_id``: the site the widget is on (chat/sites.py ``site_of``), kept
    on a conversation this message starts; ``site_departments``: the
    departments that site's widget offers (chat/sites.py
    ``departments_offered``; empty: all)."""
    now = rt.clock.now()
    started = time.perf_counter()
    online = rt.presence.online_agents()
    offered = {d["id"] for d in await current_choice(rt)} if department is not None else set()

    def work(conn: Connection) -> Posted:
        conv = _OPEN_CONV.first(conn, {"b_visitor": visitor_id})
        created = False
        if conv is not None:
            ev = core_append(conn, conv.id, now, kind="message", author="visitor", body=body, client_id=client_id,
                             once=True)
            if ev is None:  # a resend: ack it again
                dup = _core_existing(conn, conv.id, client_id)
                if dup is None:
                    raise ChatError("not_found", "No such conversation.", 404)
                return Posted(conv, dup, new=False)
        else:
            # A resend of the message that started a conversation the visitor
            # has since ended must not start another one.
            dup_row = conn.execute(select(EVENT).join(CONV, CONV.c.id == EVENT.c.conversation_id).where(
                CONV.c.visitor_id == visitor_id, EVENT.c.client_id == client_id)).first()
            if dup_row is not None:
                dup = _row(dup_row)
                conv = _row(conn.execute(select(CONV).where(CONV.c.id == dup.conversation_id)).one())
                return Posted(conv, dup, new=False)
            if department is not None and (department not in offered
                                           or (site_departments and department not in site_departments)):
                raise ChatError("department_unavailable",
                                "That department is not available now. Choose another one, or send without choosing.",
                                409)
            values = dict(visitor_id=visitor_id, state=WAITING, agent_id=None, created_at=now, accepted_at=None,
                          closed_at=None, closed_by=None, last_activity_at=now, last_seq=0, agent_seen_seq=0,
                          visitor_seen_seq=0, browser=meta.browser, browser_version=meta.browser_version,
                          os=meta.os, os_version=meta.os_version, referrer=meta.referrer, page_url=meta.page_url,
                          current_page=meta.page_url, language=meta.language, metadata_erased_at=None,
                          department_id=core_department_for_new(
                              conn, prechat.department_id if prechat and prechat.department_id else department,
                              online),
                          prechat_name=prechat.name if prechat else None,
                          prechat_email=prechat.email if prechat else None,
                          prechat_topic=prechat.topic if prechat else None,
                          site_id=site_id)
            values["id"] = conn.execute(insert(CONV).values(**values).returning(CONV.c.id)).scalar_one()
            conv = SimpleNamespace(**values)
            conn.execute(update(VISITOR).where(VISITOR.c.id == visitor_id).values(last_seen_at=now))
            conv.restricted = bool(_IS_RESTRICTED.scalar(conn, {"b_visitor": visitor_id}))
            created = True
            ev = core_append(conn, conv.id, now, kind="message", author="visitor", body=body, client_id=client_id)
            # queued for the hooks in this same write; the first message only for those that ticked "text",
            # and for nobody while the person's processing is restricted (mail/webhooks.py)
            webhooks.core_emit(conn, now, "conversation.created", webhooks.conversation_data(conv), {"text": body},
                               conversation_id=conv.id, withhold_personal=conv.restricted)
        conv.last_seq, conv.last_activity_at = ev.seq, now
        conv.restricted = bool(conv.restricted)
        return Posted(conv, ev, new=True, conversation_created=created)

    quick = None
    if rt.db.dialect == "postgresql":
        quick = _quick_message(rt, _pg_visitor_message(not rt.anyone_restricted), {"b_visitor": visitor_id},
                               now=now, author="visitor",
                               agent_id=None, body=body, client_id=client_id,
                               result=lambda conv, ev: Posted(conv, ev, new=True))

    for attempt in range(3):
        try:
            posted = await rt.db.write_core(work, lock=conversation, quick=quick)
            break
        except IntegrityError:  # the same client_id raced in on another connection
            if attempt == 2:
                raise
    rt.metrics.commit_seconds.observe(time.perf_counter() - started)
    if posted.new:
        conv = posted.conversation
        await rt.hub.publish(conv_channel(conv.id), event_frame(posted.event))
        await rt.hub.publish(list_channel(conv), list_frame(conv, restricted=conv.restricted,
                                                           new=posted.conversation_created))
        if posted.conversation_created:
            queue_changed(rt, conv.department_id)
            webhooks.kick(rt)
    return posted


async def _agent_name(s: AsyncSession, agent_id: int | None) -> str | None:
    if agent_id is None:
        return None
    return (await s.execute(select(StaffAccount.name).where(StaffAccount.id == agent_id))).scalar_one_or_none()


async def post_agent_message(rt: Runtime, *, agent_id: int, conversation_id: int, client_id: str,
                             body: str, viewer: Viewer | None = None) -> Posted:
    """An agent's reply. Writing to a waiting conversation accepts it (within
    the agent's concurrent-chat limit). A conversation ``viewer`` (the
    caller's; loaded from ``agent_id`` when not given) may not see is "not
    found", checked inside the same write (chat/access.py)."""
    now = rt.clock.now()
    started = time.perf_counter()
    viewer = await viewer_of(rt, viewer, agent_id)

    def work(conn: Connection) -> tuple[Posted, SimpleNamespace | None, str | None]:
        conv = _CONV_FOR_UPDATE.first(conn, {"b_conv": conversation_id})
        if conv is None:
            raise ChatError("not_found", "No such conversation.", 404)
        core_visible_or_404(conn, viewer, conv.id)
        dup = _core_existing(conn, conv.id, client_id)
        if dup is not None:
            return Posted(conv, dup, new=False), None, None
        name = _STAFF_NAME.scalar(conn, {"b_agent": agent_id})
        joined = core_take(conn, conv, agent_id, now, limit=rt.settings.max_concurrent_chats, name=name)
        ev = core_append(conn, conv.id, now, kind="message", author="agent", agent_id=agent_id, body=body,
                         client_id=client_id)
        _AGENT_SEEN.run(conn, {"b_conv": conv.id, "b_seq": ev.seq})
        conv.last_seq, conv.last_activity_at, conv.agent_seen_seq = ev.seq, now, ev.seq
        conv.restricted = bool(conv.restricted)
        return Posted(conv, ev, new=True), joined, name

    quick = None
    if rt.db.dialect == "postgresql" and viewer.account_id == agent_id:
        statement = _pg_agent_message(viewer.is_admin, viewer.sees_restricted, not rt.anyone_restricted)
        quick = _quick_message(rt, statement,
                               {"b_conv": conversation_id, "b_agent": agent_id}, now=now, author="agent",
                               agent_id=agent_id, body=body, client_id=client_id,
                               result=lambda conv, ev: (Posted(conv, ev, new=True), None,
                                                        vars(conv).pop("agent_name")))

    posted, joined, name = await rt.db.write_core(work, lock=conversation_id, quick=quick)
    rt.metrics.commit_seconds.observe(time.perf_counter() - started)
    if posted.new:
        await publish_agent_write(rt, posted.conversation, joined, posted.event, name,
                                  restricted=posted.conversation.restricted)
    return posted


async def publish_agent_write(rt: Runtime, conv, joined, ev, name: str | None, *, restricted: bool | None) -> None:
    """After the commit of an agent's message or upload: the "joined" event
    when writing took the chat (core_take), the event, and the list update
    (for the queue when it was taken: it leaves the others' lists)."""
    if joined is not None:
        await rt.hub.publish(conv_channel(conv.id), event_frame(joined, name))
    await rt.hub.publish(conv_channel(conv.id), event_frame(ev, name))
    channel = queue_channel(conv) if joined is not None else agent_channel(conv.agent_id)
    await rt.hub.publish(channel, list_frame(conv, name, restricted=restricted))
    if joined is not None:  # it left its queue
        queue_changed(rt, conv.department_id)


async def accept(rt: Runtime, *, agent_id: int, conversation_id: int, viewer: Viewer | None = None) -> Conversation:
    """An agent takes a waiting conversation (:func:`core_take`, within their
    concurrent-chat limit): the HTTP route, the socket's ``accept`` and
    auto-assignment. Core on the writer thread, like the messages: a busy
    hour's accepts share commits with them instead of queueing for their own.
    A conversation ``viewer`` (loaded from ``agent_id`` when not given) may
    not see is "not found", decided inside the write."""
    now = rt.clock.now()
    limit = rt.settings.max_concurrent_chats
    viewer = await viewer_of(rt, viewer, agent_id)

    def work(conn: Connection):
        conv = core_lock_for(conn, viewer, conversation_id)
        name = _STAFF_NAME.scalar(conn, {"b_agent": agent_id})
        ev = core_take(conn, conv, agent_id, now, limit=limit, name=name, taken_message=TAKEN)
        if ev is None:  # already this agent's
            return conv, None, None, False
        restricted = bool(_IS_RESTRICTED.scalar(conn, {"b_visitor": conv.visitor_id}))  # prepared: built each time, 5 ms
        return conv, ev, name, restricted

    conv, ev, name, restricted = await rt.db.write_core(work, lock=conversation_id)
    if ev is not None:
        await rt.hub.publish(conv_channel(conv.id), event_frame(ev, name))
        await rt.hub.publish(queue_channel(conv), list_frame(conv, name, restricted=restricted))
        queue_changed(rt, conv.department_id)
    return conv


async def close(rt: Runtime, *, conversation_id: int, by: str, agent_id: int | None = None,
                viewer: Viewer | None = None) -> Conversation:
    """Close a conversation (:func:`core_close`): by an agent, by the visitor, or after idling.
    Staff closing (``by="agent"``) must see it: checked inside the write with
    ``viewer`` (loaded from ``agent_id`` when not given)."""
    now = rt.clock.now()
    if by == "agent" or viewer is not None:
        viewer = await viewer_of(rt, viewer, agent_id)

    def work(conn: Connection):
        conv = core_lock_for(conn, viewer, conversation_id)
        waited = conv.state == WAITING
        closed = core_close(conn, conv, now, by=by, agent_id=agent_id, settings=rt.settings)
        if closed is None:
            return conv, None, None, False, False
        ev, name = closed
        restricted = bool(_IS_RESTRICTED.scalar(conn, {"b_visitor": conv.visitor_id}))  # prepared: built each time, 5 ms
        return conv, ev, name, restricted, waited

    conv, ev, name, restricted, waited = await rt.db.write_core(work, lock=conversation_id)
    if ev is None:
        return conv
    if waited:  # it left its queue
        queue_changed(rt, conv.department_id)
    webhooks.kick(rt)
    await rt.hub.publish(conv_channel(conv.id), event_frame(ev, name))
    frame = list_frame(conv, name, restricted=restricted)
    await rt.hub.publish(queue_channel(conv), frame)
    if conv.department_id and conv.agent_id:  # handed to someone outside the department
        await rt.hub.publish(agent_channel(conv.agent_id), frame)
    return conv


async def mark_seen(rt: Runtime, *, conversation_id: int, by: str, seq: int) -> None:
    column = CONV.c.agent_seen_seq if by == "agent" else CONV.c.visitor_seen_seq

    def work(conn: Connection) -> None:
        conn.execute(update(CONV).where(CONV.c.id == conversation_id, column < seq, CONV.c.last_seq >= seq)
                     .values({column: seq}))

    await rt.db.write_core(work, lock=conversation_id)
    await rt.hub.publish(conv_channel(conversation_id), {"type": "seen", "conversation": conversation_id,
                                                         "by": by, "seq": seq})


async def typing(rt: Runtime, *, conversation_id: int, author: str, active: bool) -> None:
    """Typing indicators are not stored: published only."""
    await rt.hub.publish(conv_channel(conversation_id), {"type": "typing", "conversation": conversation_id,
                                                         "author": author, "active": active})


async def record_page(rt: Runtime, *, visitor_id: int, conversation_id: int, page: object) -> str | None:
    """The page the visitor is on now (issue 17): the widget reports the host
    page while a chat is open. Stored cleaned by the one rule (clean_url:
    scheme, host and path), over the previous one (no history is kept), only
    in the visitor's own open conversation, not after its metadata was
    erased, and not for a person whose processing is restricted. After the
    commit the consoles following the conversation get ``{"type": "page"}``
    on its channel (the agent socket passes it on only to those who
    subscribed, which chat/access.py allowed). Returns the stored page, or
    None when nothing changed. The visitor socket calls this at most once a
    second per connection (realtime/visitor.py, PAGE_INTERVAL)."""
    cleaned = clean_url(page)
    if cleaned is None:
        return None

    def work(conn: Connection) -> bool:
        return conn.execute(
            update(CONV).where(CONV.c.id == conversation_id, CONV.c.visitor_id == visitor_id, CONV.c.state != CLOSED,
                               CONV.c.metadata_erased_at.is_(None),
                               or_(CONV.c.current_page.is_(None), CONV.c.current_page != cleaned),
                               ~visitor_restricted(CONV.c.visitor_id))
            .values(current_page=cleaned).returning(CONV.c.id)).first() is not None

    if not await rt.db.write_core(work, lock=conversation_id):
        return None
    await rt.hub.publish(conv_channel(conversation_id), page_frame(conversation_id, cleaned))
    return cleaned


def page_frame(conversation_id: int, page: str) -> dict[str, Any]:
    """The visitor's current page, to the consoles following the conversation."""
    return {"type": "page", "conversation": conversation_id, "page": page}


async def record_view(rt: Runtime, *, agent_id: int, conversation_id: int, visitor_id: int,
                      earlier: list[int] | None = None) -> None:
    """Every staff view of a conversation writes an audit row; ``earlier``:
    the same visitor's other conversations listed beside it (with previews),
    named in the same row (``{"shown": {"conversations": [...]}}``)."""
    detail = {"shown": {"conversations": sorted(earlier)}} if earlier else None
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=agent_id, action="conversation.view",
                           target_type="conversation", target_id=conversation_id, subject=f"visitor:{visitor_id}",
                           detail=detail)


async def close_idle(rt: Runtime) -> int:
    """Close open conversations idle past ``chat_idle_close_minutes``."""
    from datetime import timedelta

    cutoff = rt.clock.now() - timedelta(minutes=rt.settings.chat_idle_close_minutes)
    async with rt.db.reader() as s:
        ids = list((await s.execute(select(Conversation.id).where(
            Conversation.state != CLOSED, Conversation.last_activity_at < cutoff))).scalars())
    for conversation_id in ids:
        await close(rt, conversation_id=conversation_id, by="idle")
    return len(ids)


async def auto_assign(rt: Runtime, conversation_id: int) -> int | None:
    """Give a new conversation to the least busy online agent of its department
    (any online agent when it has none) who is under their concurrent-chat
    limit (setting ``auto_assign``), through :func:`accept` and so
    :func:`core_take`. Returns the agent's id, or None when
    nobody can take it (it then waits in the queue)."""
    from sqlalchemy import func

    online = rt.presence.online_agents()
    if not online:
        return None
    async with rt.db.reader() as s:
        conv = await s.get(Conversation, conversation_id)
        if conv is None or conv.state != WAITING:
            return None
    if not await may_start_now(rt, conv.department_id):  # outside its hours (docs/hours.md)
        return None
    async with rt.db.reader() as s:
        if conv.department_id:
            online &= set((await s.execute(select(StaffDepartment.account_id).where(
                StaffDepartment.department_id == conv.department_id))).scalars())
        load = dict((await s.execute(
            select(Conversation.agent_id, func.count()).where(
                Conversation.state == ACTIVE, Conversation.agent_id.in_(online))
            .group_by(Conversation.agent_id))).all())
        limits = dict((await s.execute(select(StaffAccount.id, StaffAccount.max_chats).where(
            StaffAccount.id.in_(online)))).all())
    default = rt.settings.max_concurrent_chats
    candidates = [a for a in sorted(online) if a in limits and (
        not limit_of(default, limits[a]) or load.get(a, 0) < limit_of(default, limits[a]))]
    for chosen in sorted(candidates, key=lambda agent_id: load.get(agent_id, 0)):
        try:
            await accept(rt, agent_id=chosen, conversation_id=conversation_id)
        except ChatError as exc:
            # filled up meanwhile, or a person this agent may not see (restricted): the next one
            if exc.code in ("limit_reached", "not_found"):
                continue
            return None  # taken meanwhile
        return chosen
    return None


# -- reading --------------------------------------------------------------------------
async def events_since(rt: Runtime, conversation_id: int, after_seq: int, limit: int = 1000, *,
                       for_visitor: bool = False) -> list[dict[str, Any]]:
    """The conversation's events after ``after_seq``, in seq order. With
    ``for_visitor`` staff-only kinds are left out (a transcript, a visitor's
    page); a visitor's live connection instead replays with markers (see
    realtime.connection) so that its seq watermark moves past them."""
    where = [EVENT.c.conversation_id == conversation_id, EVENT.c.seq > after_seq]
    if for_visitor:
        where.append(EVENT.c.kind.notin_(STAFF_ONLY_KINDS))
    async with rt.db.connection() as conn:
        rows = (await conn.execute(
            select(EVENT, STAFF.c.name.label("agent_name")).outerjoin(STAFF, STAFF.c.id == EVENT.c.agent_id)
            .where(*where).order_by(EVENT.c.seq).limit(limit))).all()
    return [event_frame(row, row.agent_name) for row in rows]
