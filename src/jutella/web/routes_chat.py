"""The console's chat API (agents) and the widget's public availability check."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import func, select

from jutella.accounts import audit
from jutella.chat import access
from jutella.chat import actions as chat
from jutella.chat.labels import labels_of
from jutella.store.models import (ChatEvent, Conversation, ConversationLabel, Department, OfflineMessage, StaffAccount,
                                  Visitor)
from jutella.store.search import matching_event_ids

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .errors import ApiError

public = APIRouter(prefix="/api/v1/public", tags=["widget"])
router = APIRouter(prefix="/api/v1", tags=["conversations"])
agent = Staff("agent")
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse}}


class Availability(BaseModel):
    agents_online: bool


@public.get("/availability", response_model=Availability)
async def availability(request: Request) -> Availability:
    """Whether anyone is on duty; the widget asks before the visitor opens it
    (this request writes nothing to the browser and stores nothing)."""
    return Availability(agents_online=runtime(request).presence.any_online())


class LabelRef(BaseModel):
    id: int
    name: str
    color: str


class ConversationSummary(BaseModel):
    id: int
    state: Literal["waiting", "active", "closed"]
    agent_id: int | None
    agent_name: str | None
    visitor: str
    created_at: datetime
    last_activity_at: datetime
    last_seq: int
    unread: int
    preview: str | None
    browser: str | None
    os: str | None
    labels: list[LabelRef] = []
    department_id: int | None = None
    department_name: str | None = None


class VisitorInfo(BaseModel):
    visitor: str
    name: str | None = None  # the name they gave on the offline form, if any (canned {visitor_name})
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    referrer: str | None
    page_url: str | None
    language: str | None
    earlier: list[ConversationSummary]


class EventOut(BaseModel):
    type: str = "event"
    conversation: int
    seq: int
    kind: str
    author: str
    author_name: str | None
    body: str | None
    client_id: str | None
    at: str
    data: dict[str, Any] | None = None
    state: str | None = None


class ConversationDetail(BaseModel):
    conversation: ConversationSummary
    visitor_info: VisitorInfo
    events: list[EventOut]
    rating: dict[str, Any] | None = None  # the visitor's rating at close: rating, rating_comment, rated_at


class SearchHit(BaseModel):
    conversation: int
    seq: int
    author: str
    body: str
    at: datetime
    state: str


async def viewer(rt, who: StaffContext) -> access.Viewer:
    return await access.viewer_for(rt, who.account)


async def _summaries(s, where, limit: int) -> list[ConversationSummary]:
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
    return [ConversationSummary(
        id=c.id, state=c.state, agent_id=c.agent_id, agent_name=name, visitor=pub, created_at=c.created_at,
        last_activity_at=c.last_activity_at, last_seq=c.last_seq, unread=n or 0,
        preview=(p[:140] if p else None), browser=c.browser, os=c.os, department_id=c.department_id,
        department_name=dept, labels=[LabelRef(id=x.id, name=x.name, color=x.color) for x in tags[c.id]])
        for c, name, pub, p, n, dept in rows]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def filters(state: str | None, label: int | None, agent_id: int | None, start: datetime | None,
            end: datetime | None, department: int | None = None) -> list:
    """The list's and the search's filters (docs/agent-tools.md). Dates are
    when the conversation started: ``from`` inclusive, ``to`` exclusive."""
    where: list = []
    if state == "open":
        where.append(Conversation.state != chat.CLOSED)
    elif state:
        where.append(Conversation.state == state)
    if label is not None:
        where.append(Conversation.id.in_(select(ConversationLabel.conversation_id)
                                         .where(ConversationLabel.label_id == label)))
    if agent_id is not None:
        where.append(Conversation.agent_id == agent_id)
    if department is not None:
        where.append(Conversation.department_id == department)
    if start is not None:
        where.append(Conversation.created_at >= _utc(start))
    if end is not None:
        where.append(Conversation.created_at < _utc(end))
    return where


StateFilter = Literal["waiting", "active", "closed", "open"]


@router.get("/conversations", response_model=list[ConversationSummary], responses=ERRORS)
async def list_conversations(
    request: Request,
    state: StateFilter | None = Query(None, description="open = waiting or active"),
    limit: int = Query(100, ge=1, le=500),
    label: int | None = Query(None, ge=1, le=S.MAX_ID, description="with this label"),
    agent_id: int | None = Query(None, ge=1, le=S.MAX_ID, alias="agent", description="handled by this agent"),
    department: int | None = Query(None, ge=1, le=S.MAX_ID, description="in this department"),
    start: datetime | None = Query(None, alias="from", description="started at or after (ISO 8601; UTC if no zone)"),
    end: datetime | None = Query(None, alias="to", description="started before (ISO 8601; UTC if no zone)"),
    who: StaffContext = Depends(agent),
) -> list[ConversationSummary]:
    rt = runtime(request)
    where = access.conversation_clause(await viewer(rt, who)) + filters(state, label, agent_id, start, end, department)
    async with rt.db.reader() as s:
        return await _summaries(s, where, limit)


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail, responses=ERRORS)
async def get_conversation(conversation_id: S.Id, request: Request,
                           who: StaffContext = Depends(agent)) -> ConversationDetail:
    rt = runtime(request)
    seen = access.conversation_clause(await viewer(rt, who))
    async with rt.db.reader() as s:
        found = await _summaries(s, [Conversation.id == conversation_id, *seen], 1)
        if not found:
            raise ApiError(404, "not_found", "No such conversation.")
        conv = await s.get(Conversation, conversation_id)
        if conv is None:
            raise ApiError(404, "not_found", "No such conversation.")
        earlier = await _summaries(s, [Conversation.visitor_id == conv.visitor_id, Conversation.id != conv.id,
                                       *seen], 20)
        given_name = (await s.execute(select(OfflineMessage.name).where(
            OfflineMessage.visitor_id == conv.visitor_id).order_by(OfflineMessage.id.desc()).limit(1))
        ).scalar_one_or_none()
    await chat.record_view(rt, agent_id=who.id, conversation_id=conv.id, visitor_id=conv.visitor_id)
    events = await chat.events_since(rt, conv.id, 0, limit=10_000)
    info = VisitorInfo(visitor=found[0].visitor, browser=conv.browser, browser_version=conv.browser_version,
                       os=conv.os, os_version=conv.os_version, referrer=conv.referrer, page_url=conv.page_url,
                       language=conv.language, earlier=earlier, name=given_name)
    rating = {"rating": conv.rating, "rating_comment": conv.rating_comment,
              "rated_at": conv.rated_at.isoformat() if conv.rated_at else None} if conv.rating else None
    return ConversationDetail(conversation=found[0], visitor_info=info, events=[EventOut(**e) for e in events],
                              rating=rating)


async def _visible_or_404(rt, who: StaffContext, conversation_id: int) -> None:
    """Not taken, closed, labelled or read by staff who may not see it: 404, as if it did not exist."""
    await access.conversation_or_404(rt, await viewer(rt, who), conversation_id)


@router.post("/conversations/{conversation_id}/accept", response_model=ConversationSummary, responses=ERRORS)
async def accept(conversation_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> ConversationSummary:
    rt = runtime(request)
    await _visible_or_404(rt, who, conversation_id)
    await chat.accept(rt, agent_id=who.id, conversation_id=conversation_id)
    async with rt.db.reader() as s:
        return (await _summaries(s, [Conversation.id == conversation_id], 1))[0]


@router.post("/conversations/{conversation_id}/close", response_model=ConversationSummary, responses=ERRORS)
async def close(conversation_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> ConversationSummary:
    rt = runtime(request)
    await _visible_or_404(rt, who, conversation_id)
    await chat.close(rt, conversation_id=conversation_id, by="agent", agent_id=who.id)
    async with rt.db.reader() as s:
        return (await _summaries(s, [Conversation.id == conversation_id], 1))[0]


@router.get("/search", response_model=list[SearchHit], responses=ERRORS)
async def search(request: Request, q: str = Query(..., min_length=1, max_length=200),
                 limit: int = Query(50, ge=1, le=200),
                 state: StateFilter | None = Query(None, description="open = waiting or active"),
                 label: int | None = Query(None, ge=1, le=S.MAX_ID, description="with this label"),
                 agent_id: int | None = Query(None, ge=1, le=S.MAX_ID, alias="agent", description="handled by them"),
                 department: int | None = Query(None, ge=1, le=S.MAX_ID, description="in this department"),
                 start: datetime | None = Query(None, alias="from", description="conversation started at or after"),
                 end: datetime | None = Query(None, alias="to", description="conversation started before"),
                 who: StaffContext = Depends(agent)) -> list[SearchHit]:
    """Search every stored message (chat histories), optionally only in the
    conversations that match the filters."""
    rt = runtime(request)
    narrowed = filters(state, label, agent_id, start, end, department)
    seen = access.conversation_clause(await viewer(rt, who))
    async with rt.db.reader() as s:
        # with filters, look further down the ranking so that filtering leaves enough hits
        ids = await matching_event_ids(s, q, limit=min(limit * 20, 2000) if narrowed else limit)
        rows = (await s.execute(select(ChatEvent, Conversation.state).join(Conversation)
                                .where(ChatEvent.id.in_(ids), ChatEvent.kind == "message", *seen,
                                       *narrowed))
                ).all() if ids else []
    order = {i: n for n, i in enumerate(ids)}
    rows.sort(key=lambda r: order[r[0].id])
    rows = rows[:limit]
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=who.id, action="conversation.search",
                           detail={"results": len(rows)})
    return [SearchHit(conversation=e.conversation_id, seq=e.seq, author=e.author, body=e.body or "",
                      at=e.created_at, state=st) for e, st in rows]
