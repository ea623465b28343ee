"""The console's chat API (agents) and the widget's public availability check."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from jutella.accounts.scopes import CONVERSATIONS_READ
from jutella.chat import access
from jutella.chat import actions as chat
from jutella.chat import reads
from jutella.chat.attachments import transcript_mails
from jutella.chat.presence import current_offer

from . import schemas as S
from .auth import Staff, StaffContext, runtime

public = APIRouter(prefix="/api/v1/public", tags=["widget"])
router = APIRouter(prefix="/api/v1", tags=["conversations"])
agent = Staff("agent")
reader = Staff(scope=CONVERSATIONS_READ)  # the reads an API token may make too (docs/api.md)
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse}}


class Closed(BaseModel):
    next: str | None
    tz: str


class Availability(BaseModel):
    agents_online: bool
    closed: Closed | None = None


@public.get("/availability", response_model=Availability, response_model_exclude_none=True)
async def availability(request: Request) -> Availability:
    """Whether a chat may start now (someone on duty, within the opening hours:
    docs/hours.md); the widget asks before the visitor opens it (this request
    writes nothing to the browser and stores nothing)."""
    offer = await current_offer(runtime(request))
    return Availability(agents_online=offer["agents_online"], closed=offer.get("closed"))


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
    visitor_name: str | None = Field(None, description="the name given on the site's pre-chat form (docs/prechat.md)")
    site_id: int | None = Field(None, description="the site the chat began on; null: the default profile's")


class VisitorInfo(BaseModel):
    visitor: str
    name: str | None = None  # the name given on the pre-chat form, else on the offline form (canned {visitor_name})
    email: str | None = None  # the email address given on the pre-chat form (docs/prechat.md)
    topic: str | None = None  # the topic chosen on the pre-chat form
    prechat: bool = False  # the visitor answered a pre-chat form (name, email and topic above come from it)
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    referrer: str | None
    page_url: str | None
    current_page: str | None = None  # where the visitor is now (the widget reports it while the chat is open)
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
    transcript_mails: list[S.TranscriptMail] = []  # each emailed transcript and its mail's state


class SearchHit(BaseModel):
    conversation: int
    seq: int
    author: str
    body: str
    at: datetime
    state: str


async def viewer(rt, who: StaffContext) -> access.Viewer:
    return await access.viewer_for(rt, who.account, who.roles)


def filters(state: str | None, label: int | None, agent_id: int | None, start: datetime | None,
            end: datetime | None, department: int | None = None, site: int | None = None) -> reads.Filters:
    """The list's and the search's filters (chat/reads.py)."""
    return reads.Filters(state=state, label=label, agent_id=agent_id, start=start, end=end, department=department,
                         site=site)


StateFilter = Literal["waiting", "active", "closed", "open"]


@router.get("/conversations", response_model=list[ConversationSummary], responses=ERRORS)
async def list_conversations(
    request: Request,
    state: StateFilter | None = Query(None, description="open = waiting or active"),
    limit: int = Query(100, ge=1, le=500),
    label: int | None = Query(None, ge=1, le=S.MAX_ID, description="with this label"),
    agent_id: int | None = Query(None, ge=1, le=S.MAX_ID, alias="agent", description="handled by this agent"),
    department: int | None = Query(None, ge=1, le=S.MAX_ID, description="in this department"),
    site: int | None = Query(None, ge=0, le=S.MAX_ID, description="from this site (0: the default profile's)"),
    start: datetime | None = Query(None, alias="from", description="started at or after (ISO 8601; UTC if no zone)"),
    end: datetime | None = Query(None, alias="to", description="started before (ISO 8601; UTC if no zone)"),
    who: StaffContext = Depends(reader),
) -> list[ConversationSummary]:
    rt = runtime(request)
    rows = await reads.list_conversations(rt, await viewer(rt, who),
                                          filters(state, label, agent_id, start, end, department, site), limit)
    return [ConversationSummary(**row) for row in rows]


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail, responses=ERRORS)
async def get_conversation(conversation_id: S.Id, request: Request,
                           who: StaffContext = Depends(reader)) -> ConversationDetail:
    rt = runtime(request)
    d = await reads.conversation_detail(rt, await viewer(rt, who), conversation_id)
    conv = d.conversation
    info = VisitorInfo(visitor=d.summary["visitor"], browser=conv.browser, browser_version=conv.browser_version,
                       os=conv.os, os_version=conv.os_version, referrer=conv.referrer, page_url=conv.page_url,
                       current_page=conv.current_page, language=conv.language,
                       earlier=[ConversationSummary(**e) for e in d.earlier],
                       name=conv.prechat_name or d.given_name, email=conv.prechat_email, topic=conv.prechat_topic,
                       prechat=any((conv.prechat_name, conv.prechat_email, conv.prechat_topic)))
    rating = {"rating": conv.rating, "rating_comment": conv.rating_comment,
              "rated_at": conv.rated_at.isoformat() if conv.rated_at else None} if conv.rating else None
    mails = [S.TranscriptMail(**m) for m in await transcript_mails(rt, conv.id)]
    return ConversationDetail(conversation=ConversationSummary(**d.summary), visitor_info=info,
                              events=[EventOut(**e) for e in d.events], rating=rating, transcript_mails=mails)


async def _visible_or_404(rt, who: StaffContext, conversation_id: int) -> None:
    """Read by staff who may not see it: 404, as if it did not exist (the
    actions check inside their own writes instead)."""
    await access.conversation_or_404(rt, await viewer(rt, who), conversation_id)


@router.post("/conversations/{conversation_id}/accept", response_model=ConversationSummary, responses=ERRORS)
async def accept(conversation_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> ConversationSummary:
    rt = runtime(request)
    await chat.accept(rt, agent_id=who.id, conversation_id=conversation_id, viewer=await viewer(rt, who))
    return ConversationSummary(**await reads.summary_after_change(rt, conversation_id))


@router.post("/conversations/{conversation_id}/close", response_model=ConversationSummary, responses=ERRORS)
async def close(conversation_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> ConversationSummary:
    rt = runtime(request)
    await chat.close(rt, conversation_id=conversation_id, by="agent", agent_id=who.id, viewer=await viewer(rt, who))
    return ConversationSummary(**await reads.summary_after_change(rt, conversation_id))


@router.get("/search", response_model=list[SearchHit], responses=ERRORS)
async def search(request: Request, q: str = Query(..., min_length=1, max_length=200),
                 limit: int = Query(50, ge=1, le=200),
                 state: StateFilter | None = Query(None, description="open = waiting or active"),
                 label: int | None = Query(None, ge=1, le=S.MAX_ID, description="with this label"),
                 agent_id: int | None = Query(None, ge=1, le=S.MAX_ID, alias="agent", description="handled by them"),
                 department: int | None = Query(None, ge=1, le=S.MAX_ID, description="in this department"),
                 site: int | None = Query(None, ge=0, le=S.MAX_ID, description="from this site (0: no site)"),
                 start: datetime | None = Query(None, alias="from", description="conversation started at or after"),
                 end: datetime | None = Query(None, alias="to", description="conversation started before"),
                 who: StaffContext = Depends(reader)) -> list[SearchHit]:
    """Search every stored message (chat histories), optionally only in the
    conversations that match the filters."""
    rt = runtime(request)
    hits = await reads.search(rt, await viewer(rt, who), q, filters(state, label, agent_id, start, end, department,
                                                                             site), limit)
    return [SearchHit(conversation=e.conversation_id, seq=e.seq, author=e.author, body=e.body or "",
                      at=e.created_at, state=st) for e, st in hits]
