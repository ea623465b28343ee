"""The widget's email form (public) and the console's offline-message inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from jutella.accounts.scopes import OFFLINE_READ
from jutella.chat import access, email_replies, offline, sites
from jutella.chat.errors import ChatError
from jutella.chat import actions as chat
from jutella.chat.metadata import collect
from jutella.mail import outbox

from . import schemas as S
from .auth import Staff, StaffContext, client_address, runtime
from .routes_attach import file_response

public = APIRouter(prefix="/api/v1/public", tags=["widget"])
router = APIRouter(prefix="/api/v1", tags=["offline messages"])
agent = Staff("agent")
reader = Staff(scope=OFFLINE_READ)  # the reads an API token may make too (docs/api.md)
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse}}

# its limits (per browser, per client address, for everyone): mail/limits.py


class OfflineIn(BaseModel):
    name: str = Field("", max_length=1000)
    email: str = Field("", max_length=1000)
    message: str = Field("", max_length=20_000)
    website: str = Field("", max_length=1000, description="honeypot: people leave it empty")
    reason: Literal["no_agent", "wait_timeout", "agents_left"] = "no_agent"
    lang: str | None = Field(None, max_length=35)
    page: str | None = Field(None, max_length=4096)
    referrer: str | None = Field(None, max_length=4096)
    visitor_token: str | None = Field(None, max_length=512, description="links the chat that preceded the form")
    browser_key: str | None = Field(None, max_length=64, description="a random id this browser's widget keeps")
    department_id: S.BodyId | None = Field(None, description="the department the visitor chose, if any")
    marketing_consent: str | None = Field(None, max_length=32, description="the consent box was ticked: the "
                                          "version of the wording shown (docs/privacy.md); absent: not ticked")


class FieldError(BaseModel):
    code: str
    message: str
    field: str | None = None


class FormErrorResponse(BaseModel):
    error: FieldError


class Accepted(BaseModel):
    ok: bool = True


@public.post("/offline-messages", response_model=Accepted, status_code=201,
             responses={400: {"model": FormErrorResponse}, 429: {"model": S.ErrorResponse}})
async def submit(body: OfflineIn, request: Request) -> Accepted:
    rt = runtime(request)
    if body.website.strip():
        raise offline.FormError("website", "spam", "This message could not be sent.")
    visitor_id = None
    if body.visitor_token:
        visitor = await chat.visitor_by_token(rt, body.visitor_token)
        visitor_id = visitor.id if visitor else None
    meta = collect(request.headers.get("user-agent"), body.page, body.referrer, body.lang)
    await offline.submit(rt, name=body.name, email=body.email, message=body.message, reason=body.reason,
                         meta=meta, visitor_id=visitor_id, department_id=body.department_id,
                         client=client_address(request), browser_key=body.browser_key,
                         consent_version=body.marketing_consent, site_id=await sites.site_of(rt, meta.page_url))
    return Accepted()


class OfflineSummary(BaseModel):
    id: int
    state: Literal["new", "answered", "closed"]
    name: str
    email: str
    preview: str
    created_at: datetime
    assigned_agent_id: int | None
    assigned_agent_name: str | None
    reason: str
    language: str | None
    site_id: int | None = None
    objection: bool = Field(False, description="the person objected to direct marketing")


class ReplyOut(BaseModel):
    id: int
    body: str
    agent_name: str | None
    created_at: datetime
    delivery: Literal["queued", "sending", "sent", "refused", "failed", "uncertain", "not_sent"]
    error: str | None
    outbox_id: int | None


class EmailFileOut(BaseModel):
    id: str
    name: str
    type: str
    size: int
    url: str


class RefusedFileOut(BaseModel):
    name: str
    code: str


class EmailReplyOut(BaseModel):
    """The visitor's reply by email (docs/mail.md "Replies by email")."""

    id: int
    body: str
    sender: str = Field(alias="from")
    from_name: str | None
    sender_differs: bool = Field(description="sent from another address than the one the mail went to")
    created_at: datetime
    files: list[EmailFileOut]
    refused: list[RefusedFileOut] = Field(description="attachments not accepted (the upload checks), by name")


class OfflineDetail(OfflineSummary):
    body: str
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    referrer: str | None
    page_url: str | None
    conversation_id: int | None
    visitor: str | None
    replies: list[ReplyOut]
    email_replies: list[EmailReplyOut] = Field(description="the visitor's replies by email, oldest first")


class ReplyIn(BaseModel):
    body: str = Field(max_length=40_000)


class AssignIn(BaseModel):
    agent_id: S.BodyId | None = Field(None, description="null: unassign")


async def viewer(rt, who: StaffContext) -> access.Viewer:
    return await access.viewer_for(rt, who.account, who.roles)


@router.get("/offline-messages/contacts.csv", responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
async def contacts(request: Request, who: StaffContext = Depends(Staff("admin", page=True))) -> Response:
    """Marketing contacts: the people who ticked the email form's consent box
    (``[register.marketing]``; none when it is off), with the consent wording's
    version and time. People who objected to direct marketing and restricted
    people are left out. A download the admin opens from its address (typed,
    bookmarked, or a link on a jutella page) needs no CSRF header; one another
    site's page starts is refused (web/auth.py ``Staff(page=True)``)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "email", "consent_version", "consented_at"])
    for name, email, version, at in await offline.contacts(runtime(request), actor_id=who.id):
        writer.writerow([name.lstrip("=+-@\t\r"), email, version, at.isoformat()])  # no spreadsheet formulas
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="contacts.csv"', "Cache-Control": "no-store"})


@router.get("/offline-messages", response_model=list[OfflineSummary], responses=ERRORS)
async def inbox(request: Request, state: Literal["new", "answered", "closed", "open"] | None = Query(None),
                limit: int = Query(200, ge=1, le=1000),
                site: int | None = Query(None, ge=0, le=S.MAX_ID, description="from this site (0: no site)"),
                who: StaffContext = Depends(reader)) -> list[OfflineSummary]:
    """New messages first, then by time, newest first."""
    rt = runtime(request)
    rows = await offline.inbox(rt, viewer=await viewer(rt, who), state=state, limit=limit, site=site)
    return [OfflineSummary(**offline.summary(m, name), objection=objection) for m, name, objection in rows]


@router.get("/offline-messages/{message_id}", response_model=OfflineDetail, responses=ERRORS)
async def detail(message_id: S.Id, request: Request, who: StaffContext = Depends(reader)) -> dict[str, Any]:
    rt = runtime(request)
    return await offline.view(rt, viewer=await viewer(rt, who), message_id=message_id)


@router.get("/offline-messages/{message_id}/files/{public_id}", responses={**ERRORS, 200: {"content": {
    "image/png": {}, "image/jpeg": {}, "image/webp": {}, "application/pdf": {}}}})
async def email_file(message_id: S.Id, request: Request,
                     public_id: str = PathParam(min_length=32, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"),
                     who: StaffContext = Depends(Staff("agent", page=True))) -> Response:
    """A file attached to the visitor's reply by email; audited as a view. The
    same headers as a chat's attachment (web/routes_attach.py)."""
    rt = runtime(request)
    f = await email_replies.open_file(rt, viewer=await viewer(rt, who), message_id=message_id,
                                      public_id=public_id)
    opened = await email_replies.file_bytes(rt, f)
    if opened is None:
        raise ChatError("not_found", "No such file.", 404)
    return await file_response(request, opened, f.content_type, f.filename)


@router.post("/offline-messages/{message_id}/reply", response_model=OfflineDetail, status_code=201,
             responses=ERRORS)
async def reply(message_id: S.Id, body: ReplyIn, request: Request,
                who: StaffContext = Depends(agent)) -> dict[str, Any]:
    rt = runtime(request)
    v = await viewer(rt, who)
    await offline.reply(rt, viewer=v, message_id=message_id, body=body.body)
    return await offline.view(rt, viewer=v, message_id=message_id)


@router.post("/offline-messages/{message_id}/assign", response_model=OfflineSummary, responses=ERRORS)
async def assign(message_id: S.Id, body: AssignIn, request: Request,
                 who: StaffContext = Depends(agent)) -> OfflineSummary:
    rt = runtime(request)
    m = await offline.assign(rt, viewer=await viewer(rt, who), message_id=message_id, agent_id=body.agent_id)
    return OfflineSummary(**offline.summary(m))


@router.post("/offline-messages/{message_id}/close", response_model=OfflineSummary, responses=ERRORS)
async def close(message_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> OfflineSummary:
    rt = runtime(request)
    m = await offline.set_state(rt, viewer=await viewer(rt, who), message_id=message_id, closed=True)
    return OfflineSummary(**offline.summary(m))


@router.post("/offline-messages/{message_id}/reopen", response_model=OfflineSummary, responses=ERRORS)
async def reopen(message_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> OfflineSummary:
    rt = runtime(request)
    m = await offline.set_state(rt, viewer=await viewer(rt, who), message_id=message_id, closed=False)
    return OfflineSummary(**offline.summary(m))


@router.post("/outbox/{outbox_id}/retry", response_model=S.Ok, responses=ERRORS)
async def retry(outbox_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> S.Ok:
    """Send again a mail that was refused, failed or whose delivery is uncertain (a person decides)."""
    rt = runtime(request)
    await access.outbox_or_404(rt, await viewer(rt, who), outbox_id)  # a restricted person's mail is not resent
    await outbox.retry(rt, outbox_id)
    if rt.outbox:
        rt.outbox.kick()
    return S.Ok()
