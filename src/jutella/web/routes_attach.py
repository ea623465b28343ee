"""Attachments, ratings and transcripts over HTTP (docs/attachments.md).

Visitors authenticate with their token in the ``X-Jutella-Visitor`` header
(never in a URL); staff with their session (and CSRF on changes). Files are
served on their own path, ``/attachments/{public_id}``, outside /api and the
console, with headers that never let a browser run them: nosniff, a CSP of
``default-src 'none'; sandbox``, and ``Content-Disposition: attachment`` for
PDFs. Anyone but the conversation's visitor and staff who may see it gets a
404, as if the file did not exist.
"""

from __future__ import annotations

from typing import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from jutella.accounts import actions as accounts
from jutella.accounts.throttle import Limit
from jutella.chat import access
from jutella.chat import actions as chat
from jutella.chat import attachments as att
from jutella.chat import transcript as tr
from jutella.i18n import LANGUAGES
from jutella.store.models import Conversation, Visitor

from . import schemas as S
from .auth import COOKIE, Staff, StaffContext, client_address, cross_site, runtime
from .errors import ApiError, request_language
from .routes_chat import _visible_or_404, viewer

VISITOR_HEADER = "x-jutella-visitor"
public = APIRouter(prefix="/api/v1/public", tags=["widget"])
router = APIRouter(prefix="/api/v1", tags=["conversations"])
files = APIRouter(include_in_schema=False)
agent = Staff("agent")
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse},
          409: {"model": S.ErrorResponse}, 413: {"model": S.ErrorResponse}, 415: {"model": S.ErrorResponse}}
MULTIPART_OVERHEAD = 64 * 1024
UPLOADS_PER_WINDOW, UPLOAD_WINDOW = 30, 600  # one visitor's uploads, accepted or not, per 10 minutes


class AttachmentOut(BaseModel):
    id: str
    name: str
    type: str
    size: int
    url: str
    conversation: int
    seq: int


class RatingIn(BaseModel):
    conversation: int | None = Field(None, description="default: the visitor's latest conversation")
    rating: int = Field(..., ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


class RatingOut(BaseModel):
    conversation: int
    rating: int
    comment: str | None


class EmailIn(BaseModel):
    email: str = Field(..., max_length=1000)
    conversation: int | None = None
    lang: str | None = Field(None, max_length=8)


class Queued(BaseModel):
    ok: bool = True
    id: int | None = Field(None, description="the transcript mail; its state: GET .../transcript/email/{id}")
    delivery: str = Field("queued", description="mail/outbox.py DELIVERY_STATES")
    outbox_id: int | None = Field(None, description="staff only: the mail row whose outbox frames follow it")


class MailState(BaseModel):
    id: int
    delivery: str = Field(description="queued, sending, sent, refused, failed, uncertain or not_sent")


async def visitor_of(request: Request) -> Visitor:
    token = request.headers.get(VISITOR_HEADER, "")
    visitor = await chat.visitor_by_token(runtime(request), token) if token else None
    if visitor is None:
        raise ApiError(401, "unknown_visitor", "This browser has no chat. Start a chat first.")
    return visitor


async def _read_upload(request: Request) -> tuple[bytes, str | None]:
    """The one file of a multipart upload, refused (413) as soon as more than
    the limit has arrived: nothing larger is ever buffered or written."""
    limit = runtime(request).settings.max_attachment_bytes
    size = att.human_size(limit)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise ApiError(413, "too_large", "The file is too large (at most {size}).", size=size)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "bad_upload", "Send the file as multipart/form-data in the field \"file\".")

    async def limited() -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit + MULTIPART_OVERHEAD:
                raise ApiError(413, "too_large", "The file is too large (at most {size}).", size=size)
            yield chunk

    try:
        form = await MultiPartParser(request.headers, limited(), max_files=1, max_fields=4).parse()
    except MultiPartException:
        raise ApiError(400, "bad_upload", "Send the file as multipart/form-data in the field \"file\".") from None
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "bad_upload", "Send the file as multipart/form-data in the field \"file\".")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise ApiError(413, "too_large", "The file is too large (at most {size}).", size=size)
        return data, upload.filename
    finally:
        await form.close()


def _out(stored: att.Stored) -> AttachmentOut:
    a = stored.attachment
    return AttachmentOut(**att.public_info(a), conversation=a.conversation_id, seq=stored.event.seq)


# -- visitors ---------------------------------------------------------------------------
@public.post("/attachments", response_model=AttachmentOut, status_code=201, responses=ERRORS)
async def visitor_upload(request: Request) -> AttachmentOut:
    """A file into the visitor's open chat (header X-Jutella-Visitor: the token)."""
    visitor = await visitor_of(request)
    rt = runtime(request)
    # per browser, and per address as well: a fresh visitor token is free to
    # get, the address is not (JUTELLA_MAX_UPLOADS_PER_CLIENT). Counted before
    # the work, in the one step that checks (refused uploads count too: each
    # one costs work)
    limits = [Limit(rt.throttle.key("attachments", str(visitor.id)), UPLOAD_WINDOW, UPLOADS_PER_WINDOW)]
    if rt.settings.max_uploads_per_client:
        limits.append(Limit(rt.throttle.key("attachments-client", client_address(request)), UPLOAD_WINDOW,
                            rt.settings.max_uploads_per_client))
    reservation = await rt.throttle.reserve(*limits)
    if not reservation:
        raise ApiError(429, "rate_limited", "Too many files from this browser. Try again later."
                       if reservation.refused == 0 else "Too many files from your network. Try again later.")
    data, name = await _read_upload(request)
    stored = await att.add(rt, conversation_id=None, visitor_id=visitor.id, data=data, filename=name)
    return _out(stored)


async def _own_conversation(request: Request, visitor: Visitor, conversation_id: int | None) -> Conversation:
    return await att.visitors_conversation(runtime(request), visitor.id, conversation_id)


@public.post("/rating", response_model=RatingOut, responses=ERRORS)
async def rate(body: RatingIn, request: Request) -> RatingOut:
    """The visitor rates their own ended chat, once."""
    visitor = await visitor_of(request)
    conv = await _own_conversation(request, visitor, body.conversation)
    conv = await att.rate(runtime(request), visitor_id=visitor.id, conversation_id=conv.id, rating=body.rating,
                          comment=body.comment)
    return RatingOut(conversation=conv.id, rating=conv.rating or 0, comment=conv.rating_comment)


def _language(request: Request, wanted: str | None) -> str:
    return wanted if wanted in LANGUAGES else request_language(request)


HTML_PAGE = {**ERRORS, 200: {"content": {"text/html": {}}, "description": "the printable page"}}


@public.get("/transcript", responses=HTML_PAGE)
async def visitor_transcript(request: Request, conversation: int | None = None,
                             lang: str | None = None) -> Response:
    """The visitor's own conversation as a self-contained printable page, sent
    as a download (the widget saves it; the token never appears in a URL)."""
    visitor = await visitor_of(request)
    conv = await _own_conversation(request, visitor, conversation)
    conv, events = await att.transcript(runtime(request), conv.id)
    html = tr.render_page(runtime(request), conv, events, _language(request, lang), inline_css=True)
    return HTMLResponse(html, headers={"Cache-Control": "private, no-store",
                                       "Content-Disposition": f'attachment; filename="chat-{conv.id}.html"'})


@public.post("/transcript/email", response_model=Queued, status_code=202,
             responses={**ERRORS, 429: {"model": S.ErrorResponse}})
async def visitor_transcript_email(body: EmailIn, request: Request) -> Queued:
    """Mail the transcript to the address typed; the address is stored in the
    register. Only once staff have answered in the chat (409 before), and a few
    an hour per client address (429; mail/limits.py)."""
    visitor = await visitor_of(request)
    conv = await _own_conversation(request, visitor, body.conversation)
    rt = runtime(request)
    req = await att.email_transcript(rt, conversation_id=conv.id, email=body.email,
                                     lang=_language(request, body.lang), visitor_id=visitor.id,
                                     client=client_address(request))
    return Queued(id=req.id)


@public.get("/transcript/email/{request_id}", response_model=MailState, responses=ERRORS)
async def visitor_transcript_email_state(request_id: S.Id, request: Request) -> MailState:
    """Where the transcript mail this visitor asked for is: the widget tells
    them "on its way" only while it is queued or sending, and that it could
    not be sent when the mail server refused it (docs/mail.md)."""
    visitor = await visitor_of(request)
    state = await att.visitors_transcript_mail(runtime(request), visitor_id=visitor.id, request_id=request_id)
    return MailState(id=request_id, delivery=state)


# -- staff -------------------------------------------------------------------------------
@router.post("/conversations/{conversation_id}/attachments", response_model=AttachmentOut, status_code=201,
             responses=ERRORS)
async def agent_upload(conversation_id: S.Id, request: Request, who: StaffContext = Depends(agent)) -> AttachmentOut:
    rt = runtime(request)
    data, name = await _read_upload(request)
    stored = await att.add(rt, conversation_id=conversation_id, agent_id=who.id, data=data, filename=name,
                           viewer=await viewer(rt, who))
    return _out(stored)


@router.get("/conversations/{conversation_id}/transcript", responses=HTML_PAGE)
async def agent_transcript(conversation_id: S.Id, request: Request, lang: str | None = None,
                           who: StaffContext = Depends(Staff("agent", page=True))) -> Response:
    """The printable transcript (what the visitor saw; no internal notes). Audited as a view.
    The console opens it as a page: a same-origin navigation stands for the CSRF token."""
    rt = runtime(request)
    await _visible_or_404(rt, who, conversation_id)
    conv, events = await att.transcript(rt, conversation_id)
    await chat.record_view(rt, agent_id=who.id, conversation_id=conv.id, visitor_id=conv.visitor_id)
    html = tr.render_page(rt, conv, events, _language(request, lang), inline_css=False)
    return HTMLResponse(html, headers={"Cache-Control": "private, no-store"})


@router.post("/conversations/{conversation_id}/transcript/email", response_model=Queued, status_code=202,
             responses=ERRORS)
async def agent_transcript_email(conversation_id: S.Id, body: EmailIn, request: Request,
                                 who: StaffContext = Depends(agent)) -> Queued:
    rt = runtime(request)
    await _visible_or_404(rt, who, conversation_id)
    req = await att.email_transcript(rt, conversation_id=conversation_id, email=body.email,
                                     lang=_language(request, body.lang), agent_id=who.id)
    return Queued(id=req.id, outbox_id=req.outbox_id)


@router.get("/conversations/{conversation_id}/transcript-mails", response_model=list[S.TranscriptMail],
            responses=ERRORS)
async def agent_transcript_mails(conversation_id: S.Id, request: Request,
                                 who: StaffContext = Depends(agent)) -> list[S.TranscriptMail]:
    """The conversation's emailed transcripts and their mails' states (the
    conversation view reads them again when an outbox frame names it)."""
    rt = runtime(request)
    await _visible_or_404(rt, who, conversation_id)
    return [S.TranscriptMail(**m) for m in await att.transcript_mails(rt, conversation_id)]


# -- the files ---------------------------------------------------------------------------
@files.api_route("/attachments/{public_id}", methods=["GET", "HEAD"])
async def serve(public_id: str, request: Request) -> Response:
    rt = runtime(request)
    found = await att.find(rt, public_id)
    allowed = False
    if found is not None:
        a, conv = found
        token = request.headers.get(VISITOR_HEADER, "")
        if token:
            visitor = await chat.visitor_by_token(rt, token)
            allowed = visitor is not None and visitor.id == conv.visitor_id
        # a staff session, unless another site's page sent the browser here (it would be audited as a view)
        if not allowed and request.cookies.get(COOKIE) and not cross_site(request):
            session = await accounts.authenticate(rt, request.cookies.get(COOKIE))
            if session is not None and {"agent", "privacy"} & set(session[0].role_names):
                allowed = await att.staff_may_open(rt, await access.viewer_for(rt, session[0]), a, conv)
    opened = await att.open_file(rt, found[0]) if found and allowed else None
    if opened is None:
        return Response(status_code=404, content=b'{"error":{"code":"not_found","message":"Not found."}}',
                        media_type="application/json",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return await file_response(request, opened, found[0].content_type, found[0].filename)


async def file_response(request: Request, opened: att.Opened, content_type: str, filename: str) -> Response:
    """A stored file (a chat's attachment, a reply by email's file) as its
    response: a PDF downloaded, an image shown, never sniffed nor run, in a
    sandbox, not cached; streamed from the cluster's file store
    (store/files.py) a chunk at a time, so any host serves any file."""
    disposition = "attachment" if content_type == att.PDF else "inline"
    headers = {
        "Content-Length": str(opened.size),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": content_disposition(disposition, filename),
        "Cache-Control": "private, no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if request.method == "HEAD":
        await opened.chunks.aclose()  # type: ignore[attr-defined]
        return Response(status_code=200, media_type=content_type, headers=headers)
    return StreamingResponse(opened.chunks, media_type=content_type, headers=headers)


def _ascii(name: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in name)


def content_disposition(kind: str, name: str) -> str:
    """``kind; filename="..."``: printable ASCII only, without quotes,
    backslashes, semicolons or percent signs (every other character becomes
    ``_``), so nothing in a visitor's file name can end the parameter or the
    header. A name that is not plain ASCII also goes as RFC 6266/5987
    ``filename*=UTF-8''...``, every byte but letters, digits and ``._-``
    percent-encoded, which browsers prefer; the name shows as it was given."""
    fallback = _ascii(name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += "; filename*=UTF-8''" + quote(name, safe="", encoding="utf-8", errors="strict")
    return value
