"""The pre-chat form per site (administrators; docs/prechat.md): a section of
the console's Embed page. Changes are actions in ``chat.prechat``, audited;
every worker follows them within about a second."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from jutella.chat import prechat, sites

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import ERRORS

router = APIRouter(prefix="/api/v1", tags=["prechat"])
admin = Staff("admin")
Mode = Literal["off", "optional", "required"]


class TopicIO(BaseModel):
    key: str | None = Field(None, max_length=16, description="kept when editing; a new topic gets one")
    labels: dict[str, str] = Field(..., description="the topic's name by language: en, fi, sv (one at least)")
    department_id: S.BodyId | None = Field(None, description="the department a chat on this topic goes to")


class FormIO(BaseModel):
    origin: str = Field("", max_length=300, description="a site's origin, or '' for the default of every site "
                                                        "without its own form")
    name: Mode = "off"
    email: Mode = "off"
    topic: Mode = "off"
    topics: list[TopicIO] = Field(default_factory=list, max_length=100)


class SiteRef(BaseModel):
    origin: str
    name: str | None = None


class DepartmentRef(BaseModel):
    id: int
    name: str


class PrechatOut(BaseModel):
    forms: list[FormIO]
    sites: list[SiteRef] = Field(description="the sites that may embed the widget (each may have its own form)")
    departments: list[DepartmentRef]


async def _out(request: Request) -> PrechatOut:
    rt = runtime(request)
    listed = [SiteRef(origin=rt.settings.public_origin)] + [SiteRef(origin=e.origin, name=e.name)
                                                            for e in await sites.list_sites(rt)]
    return PrechatOut(forms=[FormIO(**f.as_dict()) for f in await prechat.list_forms(rt)], sites=listed,
                      departments=[DepartmentRef(id=i, name=n) for i, n in await prechat.department_names(rt)])


@router.get("/prechat", response_model=PrechatOut, responses=ERRORS)
async def get_prechat(request: Request, who: StaffContext = Depends(admin)) -> PrechatOut:
    return await _out(request)


@router.put("/prechat", response_model=PrechatOut, responses=ERRORS)
async def put_prechat(body: FormIO, request: Request, who: StaffContext = Depends(admin)) -> PrechatOut:
    topics: list[dict[str, Any]] = [t.model_dump() for t in body.topics]
    await prechat.save_form(runtime(request), actor_id=who.id, origin=body.origin, name=body.name, email=body.email,
                            topic=body.topic, topics=topics)
    return await _out(request)


@router.delete("/prechat", response_model=PrechatOut, responses=ERRORS)
async def delete_prechat(request: Request, origin: str = Query("", max_length=300),
                         who: StaffContext = Depends(admin)) -> PrechatOut:
    await prechat.remove_form(runtime(request), actor_id=who.id, origin=origin)
    return await _out(request)
