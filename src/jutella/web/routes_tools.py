"""The agents' tools: canned responses, labels and internal notes (issue 8).

- ``/api/v1/canned``: an agent lists their own responses and the shared ones,
  and manages their own; an administrator manages the shared ones.
- ``/api/v1/labels``: every agent reads the label set, administrators change it;
  ``PUT``/``DELETE /api/v1/conversations/{id}/labels/{label}`` puts a label on
  a conversation or takes it off.
- ``POST /api/v1/conversations/{id}/notes``: an internal note (the agent
  socket's ``note`` frame does the same).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from jutella.accounts import actions as accounts
from jutella.chat import canned, labels, notes
from jutella.chat.actions import ChatError

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import EventOut, viewer

router = APIRouter(prefix="/api/v1", tags=["agent tools"])
agent = Staff("agent")
agent_or_admin = Staff("agent", "admin")
admin = Staff("admin")
ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}, 404: {"model": S.ErrorResponse},
          409: {"model": S.ErrorResponse}, 422: {"model": S.ErrorResponse}}


# -- canned responses ----------------------------------------------------------------------
class CannedIn(BaseModel):
    shortcut: str = Field(max_length=64)
    language: str = Field(max_length=8)
    body: str = Field(max_length=8_000)
    shared: bool = False


class CannedOut(BaseModel):
    id: int
    shortcut: str
    language: str
    body: str
    shared: bool
    mine: bool
    updated_at: datetime


def _canned_out(row, who: StaffContext) -> CannedOut:
    return CannedOut(id=row.id, shortcut=row.shortcut, language=row.language, body=row.body,
                     shared=row.owner_id is None, mine=row.owner_id == who.id, updated_at=row.updated_at)


@router.get("/canned", response_model=list[CannedOut], responses=ERRORS)
async def list_canned(request: Request, who: StaffContext = Depends(agent_or_admin)) -> list[CannedOut]:
    """Your own responses and the shared ones."""
    return [_canned_out(r, who) for r in await canned.visible_to(runtime(request), who.id)]


@router.post("/canned", response_model=CannedOut, status_code=201, responses=ERRORS)
async def create_canned(body: CannedIn, request: Request, who: StaffContext = Depends(agent_or_admin)) -> CannedOut:
    """A personal response, or (administrators, ``shared: true``) a shared one."""
    data = canned.clean(body.shortcut, body.language, body.body)
    if body.shared and not who.has("admin"):
        raise ChatError("forbidden", "Only an administrator can change shared responses.", 403)
    if not body.shared and not who.has("agent"):
        raise ChatError("forbidden", "Your account does not have the role needed for this.", 403)
    row = await canned.create(runtime(request), owner_id=None if body.shared else who.id, data=data)
    return _canned_out(row, who)


@router.put("/canned/{canned_id}", response_model=CannedOut, responses=ERRORS)
async def update_canned(canned_id: S.Id, body: CannedIn, request: Request,
                        who: StaffContext = Depends(agent_or_admin)) -> CannedOut:
    data = canned.clean(body.shortcut, body.language, body.body)
    row = await canned.update(runtime(request), canned_id=canned_id, actor_id=who.id, is_admin=who.has("admin"),
                              data=data)
    return _canned_out(row, who)


@router.delete("/canned/{canned_id}", status_code=204, responses=ERRORS)
async def delete_canned(canned_id: S.Id, request: Request, who: StaffContext = Depends(agent_or_admin)) -> Response:
    await canned.delete(runtime(request), canned_id=canned_id, actor_id=who.id, is_admin=who.has("admin"))
    return Response(status_code=204)


# -- labels ----------------------------------------------------------------------------------
class LabelIn(BaseModel):
    name: str = Field(max_length=200)
    color: str = Field(max_length=16)


class LabelOut(BaseModel):
    id: int
    name: str
    color: str


@router.get("/labels", response_model=list[LabelOut], responses=ERRORS)
async def list_labels(request: Request, who: StaffContext = Depends(agent_or_admin)) -> list[LabelOut]:
    return [LabelOut(id=x.id, name=x.name, color=x.color) for x in await labels.all_labels(runtime(request))]


@router.post("/labels", response_model=LabelOut, status_code=201, responses=ERRORS)
async def create_label(body: LabelIn, request: Request, who: StaffContext = Depends(admin)) -> LabelOut:
    x = await labels.create(runtime(request), name=body.name, color=body.color)
    return LabelOut(id=x.id, name=x.name, color=x.color)


@router.put("/labels/{label_id}", response_model=LabelOut, responses=ERRORS)
async def update_label(label_id: S.Id, body: LabelIn, request: Request, who: StaffContext = Depends(admin)) -> LabelOut:
    x = await labels.update(runtime(request), label_id=label_id, name=body.name, color=body.color)
    return LabelOut(id=x.id, name=x.name, color=x.color)


@router.delete("/labels/{label_id}", status_code=204, responses=ERRORS)
async def delete_label(label_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> Response:
    await labels.delete_label(runtime(request), label_id=label_id)
    return Response(status_code=204)


@router.put("/conversations/{conversation_id}/labels/{label_id}", status_code=204, responses=ERRORS)
async def add_label(conversation_id: S.Id, label_id: S.Id, request: Request,
                    who: StaffContext = Depends(agent)) -> Response:
    rt = runtime(request)
    await labels.set_label(rt, agent_id=who.id, conversation_id=conversation_id, label_id=label_id, on=True,
                           viewer=await viewer(rt, who))
    return Response(status_code=204)


@router.delete("/conversations/{conversation_id}/labels/{label_id}", status_code=204, responses=ERRORS)
async def remove_label(conversation_id: S.Id, label_id: S.Id, request: Request,
                       who: StaffContext = Depends(agent)) -> Response:
    rt = runtime(request)
    await labels.set_label(rt, agent_id=who.id, conversation_id=conversation_id, label_id=label_id, on=False,
                           viewer=await viewer(rt, who))
    return Response(status_code=204)


# -- the agents, for the filter bar ------------------------------------------------------------
class AgentRef(BaseModel):
    id: int
    name: str


@router.get("/agents", response_model=list[AgentRef], responses=ERRORS)
async def list_agents(request: Request, who: StaffContext = Depends(agent)) -> list[AgentRef]:
    """Staff with the agent role (names only), for filtering by agent."""
    return [AgentRef(id=i, name=n) for i, n in await accounts.list_agents(runtime(request))]


# -- internal notes ----------------------------------------------------------------------------
class NoteIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64)
    body: str = Field(max_length=8_000)


@router.post("/conversations/{conversation_id}/notes", response_model=EventOut, status_code=201,
             responses={**ERRORS, 200: {"model": EventOut, "description": "A resend: the note stored before."}})
async def post_note(conversation_id: S.Id, body: NoteIn, request: Request, response: Response,
                    who: StaffContext = Depends(agent)) -> EventOut:
    """An internal note: staff see it, the visitor never does. A resend with
    the same client_id stores nothing new and answers with the stored note."""
    rt = runtime(request)
    posted = await notes.post_note(rt, agent_id=who.id, conversation_id=conversation_id, body=body.body,
                                   client_id=body.client_id, viewer=await viewer(rt, who))
    response.status_code = 201 if posted.new else 200
    ev = posted.event
    return EventOut(conversation=ev.conversation_id, seq=ev.seq, kind=ev.kind, author=ev.author,
                    author_name=who.account.name if ev.agent_id == who.id else None, body=ev.body,
                    client_id=ev.client_id, at=ev.created_at.isoformat(), data=ev.data)
