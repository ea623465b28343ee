"""Departments, agents' load and transfers (docs/departments.md).

Administrators manage departments and limits; agents read the list (for the
transfer dialog) and transfer their conversations. Every change is an action
in ``chat.departments`` / ``chat.transfers``, audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jutella.chat import departments as D
from jutella.chat import reads
from jutella.chat.transfers import MAX_NOTE, transfer as transfer_action

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import ERRORS, ConversationSummary, viewer

router = APIRouter(prefix="/api/v1", tags=["departments"])
admin = Staff("admin")
staff = Staff("agent", "admin")
agent = Staff("agent")


class DepartmentOut(BaseModel):
    id: int
    name: str
    position: int
    online: bool
    notify_email: str | None = None  # administrators only
    members: list[int] | None = None  # administrators only


class DepartmentIn(BaseModel):
    name: str = Field(..., max_length=1000)
    notify_email: str | None = Field(None, max_length=320)
    position: int | None = Field(None, ge=0, le=100_000)


class DepartmentChange(BaseModel):
    name: str | None = Field(None, max_length=1000)
    notify_email: str | None = Field(None, max_length=320)
    position: int | None = Field(None, ge=0, le=100_000)


class MembersIn(BaseModel):
    account_ids: list[S.BodyId] = Field(default_factory=list, max_length=1000)


class MaxChatsIn(BaseModel):
    max_chats: int | None = Field(None, ge=0, le=1000, description="null: the server's setting; 0: no limit")


class AgentLoad(BaseModel):
    id: int
    name: str
    state: str
    active: int
    limit: int  # 0 = no limit
    max_chats: int | None = None  # administrators only: the agent's own limit, if set
    departments: list[int]


class TransferIn(BaseModel):
    agent_id: S.BodyId | None = None
    department_id: S.BodyId | None = None
    note: str | None = Field(None, max_length=MAX_NOTE + 100)


def _out(d: dict[str, Any], full: bool) -> DepartmentOut:
    if full:
        return DepartmentOut(**d)
    return DepartmentOut(id=d["id"], name=d["name"], position=d["position"], online=d["online"])


async def _one(request: Request, department_id: int) -> DepartmentOut:
    for d in await D.list_departments(runtime(request)):
        if d["id"] == department_id:
            return _out(d, True)
    raise D.ChatError("not_found", "No such department.", 404)


@router.get("/departments", response_model=list[DepartmentOut], responses=ERRORS)
async def list_departments(request: Request, who: StaffContext = Depends(staff)) -> list[DepartmentOut]:
    """Every department and whether someone of it is online (members and
    notification addresses for administrators)."""
    return [_out(d, who.has("admin")) for d in await D.list_departments(runtime(request))]


@router.post("/departments", response_model=DepartmentOut, status_code=201, responses=ERRORS)
async def create_department(body: DepartmentIn, request: Request,
                            who: StaffContext = Depends(admin)) -> DepartmentOut:
    dept = await D.create(runtime(request), actor_id=who.id, name=body.name, notify_email=body.notify_email,
                          position=body.position)
    return await _one(request, dept.id)


@router.patch("/departments/{department_id}", response_model=DepartmentOut, responses=ERRORS)
async def change_department(department_id: S.Id, body: DepartmentChange, request: Request,
                            who: StaffContext = Depends(admin)) -> DepartmentOut:
    """Rename, move, or change the notification address (send null to clear it)."""
    extra: dict[str, Any] = {}
    if "notify_email" in body.model_fields_set:
        extra["notify_email"] = body.notify_email
    await D.change(runtime(request), actor_id=who.id, department_id=department_id, name=body.name,
                   position=body.position, **extra)
    return await _one(request, department_id)


@router.delete("/departments/{department_id}", response_model=S.Ok, responses=ERRORS)
async def delete_department(department_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> S.Ok:
    await D.remove(runtime(request), actor_id=who.id, department_id=department_id)
    return S.Ok()


@router.put("/departments/{department_id}/members", response_model=DepartmentOut, responses=ERRORS)
async def set_members(department_id: S.Id, body: MembersIn, request: Request,
                      who: StaffContext = Depends(admin)) -> DepartmentOut:
    await D.set_members(runtime(request), actor_id=who.id, department_id=department_id,
                        account_ids=list(body.account_ids))
    return await _one(request, department_id)


@router.get("/agents/load", response_model=list[AgentLoad], responses=ERRORS)
async def agents_load(request: Request, who: StaffContext = Depends(staff)) -> list[AgentLoad]:
    """Each agent's active chats against their limit. Administrators see every
    agent; agents (for the transfer dialog) those online."""
    full = who.has("admin")
    rows = await D.agent_load(runtime(request), only_online=not full)
    return [AgentLoad(**(r if full else {**r, "max_chats": None})) for r in rows]


@router.put("/agents/{account_id}/max-chats", response_model=S.Ok, responses=ERRORS)
async def set_max_chats(account_id: S.Id, body: MaxChatsIn, request: Request,
                        who: StaffContext = Depends(admin)) -> S.Ok:
    await D.set_max_chats(runtime(request), actor_id=who.id, account_id=account_id, max_chats=body.max_chats)
    return S.Ok()


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationSummary, responses=ERRORS)
async def transfer(conversation_id: S.Id, body: TransferIn, request: Request,
                   who: StaffContext = Depends(agent)) -> ConversationSummary:
    """Hand the conversation to an online agent (it is theirs at once) or to a
    department (it waits in that queue), with an optional note for the receiver."""
    rt = runtime(request)
    await transfer_action(rt, agent_id=who.id, conversation_id=conversation_id, to_agent_id=body.agent_id,
                          to_department_id=body.department_id, note=body.note, is_admin=who.has("admin"),
                          viewer=await viewer(rt, who))
    return ConversationSummary(**await reads.summary_after_change(rt, conversation_id))





# -- opening hours (docs/hours.md) ---------------------------------------------------------------
class HoursIn(BaseModel):
    department_id: S.BodyId | None = Field(None, description="null: the service-wide hours")
    weekly: dict[str, list[list[str]]] = Field(default_factory=dict, description='{"0": [["09:00", "16:00"]]}, Monday = 0')
    exceptions: list[dict[str, Any]] = Field(default_factory=list, max_length=400,
                                             description='[{"date": "2026-12-24", "hours": [], "note": "..."}]')


class HoursOut(BaseModel):
    department_id: int | None
    weekly: dict[str, list[list[str]]]
    exceptions: list[dict[str, Any]]


class HoursList(BaseModel):
    time_zone: str
    strict: bool
    schedules: list[HoursOut]


@router.get("/hours", response_model=HoursList, responses=ERRORS)
async def list_hours(request: Request, who: StaffContext = Depends(admin)) -> HoursList:
    rt = runtime(request)
    return HoursList(time_zone=rt.settings.time_zone, strict=rt.settings.hours_strict,
                     schedules=[HoursOut(**h) for h in await D.list_hours(rt)])


@router.put("/hours", response_model=HoursOut, responses=ERRORS)
async def set_hours(body: HoursIn, request: Request, who: StaffContext = Depends(admin)) -> HoursOut:
    """Replace one schedule; no weekly hours and no exceptions removes it (always open)."""
    return HoursOut(**await D.set_hours(runtime(request), actor_id=who.id, department_id=body.department_id,
                                        weekly=body.weekly, exceptions=body.exceptions))
