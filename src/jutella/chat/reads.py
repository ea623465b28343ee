"""What staff read about conversations: the list, the history search and one
conversation in full. Each takes the caller's :class:`~jutella.chat.access.Viewer`
and asks chat/access.py for the conversations it may see; each that shows a
person's chats to staff writes its audit row here, not in the route (the
HTTP routes only parse, call and shape, docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from jutella.accounts import audit
from jutella.runtime import Runtime
from jutella.store.models import (ChatEvent, Conversation, ConversationLabel, Department, OfflineMessage, StaffAccount,
                                  Visitor)
from jutella.store.search import matching_event_ids

from . import access
from .actions import CLOSED, ChatError, events_since, record_view
from .labels import labels_of


@dataclass(frozen=True)
class Filters:
    """The list's and the search's filters (docs/agent-tools.md). Dates are
    when the conversation started: ``start`` inclusive, ``end`` exclusive;
    ``state`` "open" is waiting or active."""

    state: str | None = None
    label: int | None = None
    agent_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    department: int | None = None
    site: int | None = None  # a stored site's id; 0: the default profile's (no site)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def filter_clause(f: Filters) -> list:
    where: list = []
    if f.state == "open":
        where.append(Conversation.state != CLOSED)
    elif f.state:
        where.append(Conversation.state == f.state)
    if f.label is not None:
        where.append(Conversation.id.in_(select(ConversationLabel.conversation_id)
                                         .where(ConversationLabel.label_id == f.label)))
    if f.agent_id is not None:
        where.append(Conversation.agent_id == f.agent_id)
    if f.department is not None:
        where.append(Conversation.department_id == f.department)
    if f.site is not None:
        where.append(Conversation.site_id.is_(None) if f.site == 0 else Conversation.site_id == f.site)
    if f.start is not None:
        where.append(Conversation.created_at >= _utc(f.start))
    if f.end is not None:
        where.append(Conversation.created_at < _utc(f.end))
    return where


async def _summaries(s, where: list, limit: int) -> list[dict[str, Any]]:
    """The list's rows: the conversation with its agent's and department's
    names, the visitor's public id, the last message (140 characters), the
    visitor's messages the agent has not seen, and the labels."""
    preview = (select(ChatEvent.body).where(ChatEvent.conversation_id == Conversation.id, ChatEvent.kind == "message")
               .order_by(ChatEvent.seq.desc()).limit(1).scalar_subquery())
    unread = (select(func.count()).select_from(ChatEvent).where(
        ChatEvent.conversation_id == Conversation.id, ChatEvent.author == "visitor",
        ChatEvent.seq > Conversation.agent_seen_seq).scalar_subquery())
    rows = (await s.execute(
        select(Conversation, StaffAccount.name, Visitor.public_id, preview, unread, Department.name)
        .join(Visitor, Visitor.id == Conversation.visitor_id)
        .outerjoin(StaffAccount, StaffAccount.id == Conversation.agent_id)
        .outerjoin(Department, Department.id == Conversation.department_id)
        .where(*where).order_by(Conversation.last_activity_at.desc()).limit(limit))).all()
    tags = await labels_of(s, [r[0].id for r in rows])
    return [dict(
        id=c.id, state=c.state, agent_id=c.agent_id, agent_name=name, visitor=pub, created_at=c.created_at,
        last_activity_at=c.last_activity_at, last_seq=c.last_seq, unread=n or 0,
        preview=(p[:140] if p else None), browser=c.browser, os=c.os, department_id=c.department_id,
        visitor_name=c.prechat_name, site_id=c.site_id,
        department_name=dept, labels=[dict(id=x.id, name=x.name, color=x.color) for x in tags[c.id]])
        for c, name, pub, p, n, dept in rows]


async def list_conversations(rt: Runtime, viewer: access.Viewer, filters: Filters, limit: int) -> list[dict[str, Any]]:
    """The conversations ``viewer`` sees that match ``filters``, latest activity
    first. The rows carry previews of what visitors wrote: audited
    (``conversation.list``, the ids shown)."""
    async with rt.db.reader() as s:
        rows = await _summaries(s, [*access.conversation_clause(viewer), *filter_clause(filters)], limit)
    await audit.record_shown(rt, actor_id=viewer.account_id, action="conversation.list",
                             shown={"conversations": [r["id"] for r in rows]})
    return rows


async def summary_after_change(rt: Runtime, conversation_id: int) -> dict[str, Any]:
    """One conversation's list row right after an action on it by the caller
    (accept, close, transfer): the action itself decided, inside its write,
    that the caller may see it, so no second rule is applied here (a
    transfer may hand it out of the caller's sight)."""
    async with rt.db.reader() as s:
        found = await _summaries(s, [Conversation.id == conversation_id], 1)
    if not found:
        raise ChatError("not_found", "No such conversation.", 404)
    return found[0]


@dataclass
class Detail:
    summary: dict[str, Any]
    conversation: Conversation
    earlier: list[dict[str, Any]]  # the same visitor's other conversations this viewer sees (20 latest)
    given_name: str | None  # the name they gave on their latest offline form, if any
    events: list[dict[str, Any]] = field(default_factory=list)


async def conversation_detail(rt: Runtime, viewer: access.Viewer, conversation_id: int) -> Detail:
    """One conversation in full for ``viewer`` ("not found" when they may not
    see it), audited as a view (``conversation.view``, naming the earlier
    conversations listed with it)."""
    seen = access.conversation_clause(viewer)
    async with rt.db.reader() as s:
        found = await _summaries(s, [Conversation.id == conversation_id, *seen], 1)
        conv = await s.get(Conversation, conversation_id) if found else None
        if conv is None:
            raise ChatError("not_found", "No such conversation.", 404)
        # a returning browser's earlier chats, unless the setting (and so the privacy notice) says no
        earlier = await _summaries(s, [Conversation.visitor_id == conv.visitor_id, Conversation.id != conv.id,
                                       *seen], 20) if rt.settings.returning_visitor_history else []
        given_name = (await s.execute(select(OfflineMessage.name).where(
            OfflineMessage.visitor_id == conv.visitor_id).order_by(OfflineMessage.id.desc()).limit(1))
        ).scalar_one_or_none()
    await record_view(rt, agent_id=viewer.account_id, conversation_id=conv.id, visitor_id=conv.visitor_id,
                      earlier=[row["id"] for row in earlier])
    events = await events_since(rt, conv.id, 0, limit=10_000)
    return Detail(found[0], conv, earlier, given_name, events)


async def search(rt: Runtime, viewer: access.Viewer, q: str, filters: Filters,
                 limit: int) -> list[tuple[ChatEvent, str]]:
    """Stored messages matching ``q`` in the conversations ``viewer`` sees
    (and that match ``filters``), best first: (event, its conversation's
    state). Audited (``conversation.search``, with the number of results and
    the ids of the messages and conversations shown)."""
    narrowed = filter_clause(filters)
    async with rt.db.reader() as s:
        # with filters, look further down the ranking so that filtering leaves enough hits
        ids = await matching_event_ids(s, q, limit=min(limit * 20, 2000) if narrowed else limit)
        rows = (await s.execute(select(ChatEvent, Conversation.state).join(Conversation)
                                .where(ChatEvent.id.in_(ids), ChatEvent.kind == "message",
                                       *access.conversation_clause(viewer), *narrowed))
                ).all() if ids else []
    order = {i: n for n, i in enumerate(ids)}
    hits = sorted(((e, st) for e, st in rows), key=lambda r: order[r[0].id])[:limit]
    await audit.record_shown(rt, actor_id=viewer.account_id, action="conversation.search", always=True,
                             detail={"results": len(hits)},
                             shown={"conversations": [e.conversation_id for e, _ in hits],
                                    "messages": [e.id for e, _ in hits]})
    return hits
