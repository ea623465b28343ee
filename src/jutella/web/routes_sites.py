"""The console's Embed page (administrators): the script tag to paste and the
sites allowed to embed the widget (docs/sites.md). Changes are actions in
``chat.sites``, audited; every worker sees them within about a second."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jutella.chat import sites

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import ERRORS

router = APIRouter(prefix="/api/v1", tags=["sites"])
admin = Staff("admin")


class SiteOut(BaseModel):
    id: int | None = Field(description="null: from JUTELLA_ALLOWED_ORIGINS (read-only here)")
    origin: str
    name: str | None = None
    from_settings: bool


class SitesOut(BaseModel):
    snippet: str = Field(description="the script tag a site pastes into its pages")
    own_origin: str = Field(description="the server's own origin, always allowed")
    sites: list[SiteOut]


class SiteIn(BaseModel):
    origin: str = Field(..., max_length=1000)
    name: str | None = Field(None, max_length=1000)


async def _out(request: Request) -> SitesOut:
    rt = runtime(request)
    return SitesOut(snippet=sites.snippet(rt), own_origin=rt.settings.public_origin,
                    sites=[SiteOut(id=e.id, origin=e.origin, name=e.name, from_settings=e.id is None)
                           for e in await sites.list_sites(rt)])


@router.get("/sites", response_model=SitesOut, responses=ERRORS)
async def list_sites(request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    return await _out(request)


@router.post("/sites", response_model=SitesOut, status_code=201, responses=ERRORS)
async def add_site(body: SiteIn, request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    await sites.add_site(runtime(request), actor_id=who.id, origin=body.origin, name=body.name)
    return await _out(request)


@router.delete("/sites/{site_id}", response_model=SitesOut, responses=ERRORS)
async def remove_site(site_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    await sites.remove_site(runtime(request), actor_id=who.id, site_id=site_id)
    return await _out(request)
