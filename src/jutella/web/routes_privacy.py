"""The privacy notice (public) and the register's operations for the
``privacy`` role: finding a data subject, the access copy, rectification,
objection and restriction flags, erasure, the request log, retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from jutella.chat import access, prechat
from jutella.i18n import negotiate
from jutella.mail import webhooks
from jutella.privacy import records
from jutella.privacy import requests as req
from jutella.privacy import retention, subjects
from jutella.privacy.export import render_html
from jutella.privacy.notice import notice, record_of_processing

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .errors import request_language
from .pages import TEMPLATES

pages = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/v1/privacy", tags=["register"])
privacy = Staff(*access.REGISTER_ROLES)  # who may use the register: chat/access.py
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse}}


@pages.api_route("/privacy", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def privacy_notice(request: Request, lang: str | None = None) -> HTMLResponse:
    chosen = lang if lang in ("fi", "en", "sv") else negotiate(request.headers.get("accept-language"))
    rt = runtime(request)  # the pre-chat form's fields in use and the webhooks that carry personal fields
    return TEMPLATES.TemplateResponse(request, "privacy.html",
                                      {"n": notice(rt.settings, chosen, await prechat.fields_in_use(rt),
                                                   await webhooks.recipients(rt))},
                                      headers={"Content-Language": chosen, "Cache-Control": "public, max-age=300"})


class SelectionIn(BaseModel):
    conversations: list[S.BodyId] = Field(default_factory=list, max_length=10_000)
    offline_messages: list[S.BodyId] = Field(default_factory=list, max_length=10_000)
    emails: list[S.BodyId] = Field(default_factory=list, max_length=10_000)

    def selection(self) -> subjects.Selection:
        return subjects.Selection(set(self.conversations), set(self.offline_messages), set(self.emails))


class MatchOut(BaseModel):
    kind: Literal["conversation", "offline_message", "email"]
    id: int
    at: datetime
    field: str
    text: str
    start: int
    end: int
    conversation_id: int | None
    visitor: str | None
    related: bool


@router.get("/subjects", response_model=list[MatchOut], responses=ERRORS)
async def find(request: Request, q: str = Query(..., max_length=200),
               who: StaffContext = Depends(privacy)) -> list[dict[str, Any]]:
    """Everything that matches an email, name, student number, phone or visitor id."""
    return [m.as_dict() for m in await subjects.find(runtime(request), q, actor_id=who.id)]


@router.post("/export", responses={**ERRORS, 200: {"content": {"application/json": {}, "text/html": {}}}})
async def export(body: SelectionIn, request: Request, format: Literal["json", "html"] = "json",
                 lang: Literal["fi", "en", "sv"] | None = None, who: StaffContext = Depends(privacy)) -> Response:
    """The data subject's access copy (articles 15 and 20) of the confirmed records."""
    rt = runtime(request)
    copy = await subjects.collect(rt, body.selection(), actor_id=who.id, fmt=format)
    stamp = rt.clock.now().strftime("%Y%m%d")
    if format == "html":
        html = render_html(copy, rt.settings, lang or request_language(request))
        return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="access-copy-{stamp}.html"',
                                           "Cache-Control": "no-store"})
    import orjson

    return Response(orjson.dumps(copy, option=orjson.OPT_INDENT_2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="access-copy-{stamp}.json"',
                             "Cache-Control": "no-store"})


class RectifyIn(BaseModel):
    record: Literal["offline_message", "offline_reply", "chat_event", "conversation"]  # conversation: the pre-chat form
    id: S.BodyId
    field: Literal["name", "email", "body"]
    value: str | None = Field(None, max_length=20_000)
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    replacement: str = Field("[…]", max_length=200)


class RectifyOut(BaseModel):
    value: str


@router.post("/rectify", response_model=RectifyOut, responses=ERRORS)
async def rectify(body: RectifyIn, request: Request, who: StaffContext = Depends(privacy)) -> RectifyOut:
    value = await subjects.rectify(runtime(request), actor_id=who.id, record=body.record, record_id=body.id,
                                   field_name=body.field, value=body.value, start=body.start, end=body.end,
                                   replacement=body.replacement)
    return RectifyOut(value=value)


class FlagIn(SelectionIn):
    kind: Literal["objection", "restriction"]
    on: bool = True
    email: str | None = Field(None, max_length=320)
    request_id: S.BodyId | None = None


class Count(BaseModel):
    count: int


@router.post("/flags", response_model=Count, responses=ERRORS)
async def flag(body: FlagIn, request: Request, who: StaffContext = Depends(privacy)) -> Count:
    n = await subjects.set_flag(runtime(request), actor_id=who.id, kind=body.kind, on=body.on, email=body.email,
                                sel=body.selection(), request_id=body.request_id)
    return Count(count=n)


class EraseIn(SelectionIn):
    confirm: Literal[True] = Field(description="must be true: erasure cannot be undone")


class ReceiptOut(BaseModel):
    """Exactly what was removed, per kind (docs/privacy.md, "The erasure receipt")."""
    counts: dict[str, int]
    ids: dict[str, list[int | str]]
    files_pending: list[str] = Field(
        [], description="of ids.attachment_files, those whose bytes are not deleted yet: the object store did not "
                        "answer; they are due for deletion, and the housekeeper deletes them as soon as it does "
                        "(always empty with the database's file store)")
    tables_pending_vacuum: list[str] = Field(
        [], description="PostgreSQL: the tables whose pages may still hold old versions of the erased rows, "
                        "because a database session older than the erasure was still open when its VACUUM ran "
                        "(after waiting up to 30 s); the next VACUUM of those tables after that session ends "
                        "removes them. Empty when nothing of the erased rows is left (always on SQLite)")


@router.post("/erase", response_model=ReceiptOut, responses=ERRORS)
async def erase(body: EraseIn, request: Request, who: StaffContext = Depends(privacy)) -> dict[str, Any]:
    """Erase exactly the selected records; the receipt lists what went."""
    return await subjects.erase(runtime(request), body.selection(), actor_id=who.id)


# -- one record in full, for rectification (the console's Register view) -----------------
class EventOut(BaseModel):
    id: int
    seq: int
    at: datetime
    author: str
    kind: str
    body: str | None


Delivery = Literal["queued", "sending", "sent", "refused", "failed", "uncertain", "not_sent"]  # mail/outbox.py


class TranscriptMailOut(BaseModel):
    id: int
    to: str
    at: datetime
    delivery: Delivery


class ConversationOut(BaseModel):
    id: int
    visitor: str
    state: str
    started_at: datetime
    restricted: bool
    events: list[EventOut]
    transcript_emails: list[TranscriptMailOut]


@router.get("/conversations/{conversation_id}", response_model=ConversationOut, responses=ERRORS)
async def conversation(conversation_id: S.Id, request: Request,
                       who: StaffContext = Depends(privacy)) -> dict[str, Any]:
    """A conversation's messages with their ids (``chat_event`` for rectify),
    restricted ones included. The view is audited."""
    return await records.conversation(runtime(request), actor_id=who.id, conversation_id=conversation_id)


class ReplyOut(BaseModel):
    id: int
    at: datetime
    body: str
    delivery: Delivery


class OfflineOut(BaseModel):
    id: int
    received_at: datetime
    name: str
    email: str
    body: str
    state: str
    conversation_id: int | None
    objection: bool
    restricted: bool
    replies: list[ReplyOut]


@router.get("/offline-messages/{message_id}", response_model=OfflineOut, responses=ERRORS)
async def offline_message(message_id: S.Id, request: Request, who: StaffContext = Depends(privacy)) -> dict[str, Any]:
    """An offline message with its replies' ids (``offline_reply`` for rectify)
    and the flags that apply to it. The view is audited."""
    return await records.offline_message(runtime(request), actor_id=who.id, message_id=message_id)


# -- the request log ------------------------------------------------------------------
class RequestIn(BaseModel):
    kind: Literal["access", "rectification", "erasure", "restriction", "portability", "objection"]
    received_at: datetime | None = None
    verified_how: str = Field(min_length=1, max_length=500)
    note: str | None = Field(None, max_length=5000)


class RequestPatch(BaseModel):
    status: Literal["open", "done", "refused"] | None = None
    note: str | None = Field(None, max_length=5000)


class RequestOut(BaseModel):
    id: int
    kind: str
    received_at: datetime
    deadline: datetime
    verified_how: str
    status: str
    note: str | None
    handled_by: int | None
    closed_at: datetime | None
    urgency: Literal["ok", "near", "overdue", "closed"]


@router.get("/requests", response_model=list[RequestOut], responses=ERRORS)
async def list_requests(request: Request, who: StaffContext = Depends(privacy)) -> list[dict[str, Any]]:
    return await req.list_requests(runtime(request), actor_id=who.id)


@router.post("/requests", response_model=RequestOut, status_code=201, responses=ERRORS)
async def add_request(body: RequestIn, request: Request, who: StaffContext = Depends(privacy)) -> dict[str, Any]:
    return await req.add(runtime(request), actor_id=who.id, kind=body.kind, received_at=body.received_at,
                         verified_how=body.verified_how, note=body.note)


@router.patch("/requests/{request_id}", response_model=RequestOut, responses=ERRORS)
async def update_request(request_id: S.Id, body: RequestPatch, request: Request,
                         who: StaffContext = Depends(privacy)) -> dict[str, Any]:
    return await req.update(runtime(request), actor_id=who.id, request_id=request_id, status=body.status,
                            note=body.note)


@router.get("/record", response_model=dict[str, Any], responses=ERRORS)
async def record(request: Request, lang: str | None = None,
                 who: StaffContext = Depends(Staff("privacy", "admin"))) -> dict[str, Any]:
    """The record of processing activities (GDPR article 30), in ``lang`` (fi, en, sv; by default the
    request's language)."""
    rt = runtime(request)
    return record_of_processing(rt.settings, negotiate(None, lang or request_language(request)),
                                await prechat.fields_in_use(rt), await webhooks.recipients(rt))


@router.post("/retention/run", response_model=dict[str, int], responses=ERRORS)
async def run_retention(request: Request, who: StaffContext = Depends(Staff("privacy", "admin"))) -> dict[str, int]:
    return await retention.run(runtime(request), actor_id=who.id)
