"""The console's Embed page (administrators): the script tag to paste and the
sites allowed to embed the widget (docs/sites.md). Changes are actions in
``chat.sites``, audited; every worker sees them within about a second."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jutella.chat import sites
from jutella.chat.errors import ChatError

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import ERRORS

router = APIRouter(prefix="/api/v1", tags=["sites"])
admin = Staff("admin")
agent = Staff("agent")


class Texts(BaseModel):
    fi: str | None = Field(None, max_length=1000)
    en: str | None = Field(None, max_length=1000)
    sv: str | None = Field(None, max_length=1000)


class ProfileTexts(BaseModel):
    launcher: Texts | None = None
    header: Texts | None = None
    greeting: Texts | None = None
    offline: Texts | None = None


class ProfileOut(BaseModel):
    colour: str | None = Field(None, description="#rrggbb; null: the default profile's (or the built-in) colour")
    text_colour: str | None = Field(None, description="white or black: the one that reads on the colour")
    position: Literal["right", "left"] | None = None
    when_closed: Literal["form", "hide"] | None = Field(
        None, description="outside the opening hours: the offline form or no launcher; null: the default's (form)")
    texts: dict[str, dict[str, str]] = Field(default_factory=dict,
                                             description="launcher, header, greeting, offline: {fi, en, sv}")
    departments: list[int] = Field(default_factory=list, description="offered; empty: all")
    logo: str | None = Field(None, description="the logo's address, served by jutella")


class ProfileIn(BaseModel):
    name: str | None = Field(None, max_length=1000, description="the site's name (not for the default profile)")
    colour: str | None = Field(None, max_length=20)
    position: Literal["right", "left"] | None = None
    when_closed: Literal["form", "hide"] | None = Field(
        None, description="outside the opening hours: the offline form or no launcher; null: the default's (form)")
    texts: ProfileTexts = Field(default_factory=ProfileTexts)
    departments: list[S.Id] = Field(default_factory=list, max_length=200)


LOGO_ERRORS = {**ERRORS, **{code: {"model": S.ErrorResponse} for code in (400, 413, 415, 503)}}
LOGO_BODY = {"requestBody": {"description": "the picture: PNG, JPEG or WebP, at most 1 MB", "content": {
    t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/png", "image/jpeg", "image/webp")}}}


class SiteChoice(BaseModel):
    id: int
    origin: str
    name: str | None = None


class SiteOut(BaseModel):
    id: int | None = Field(description="null: from JUTELLA_ALLOWED_ORIGINS (read-only here)")
    origin: str
    name: str | None = None
    from_settings: bool
    profile: ProfileOut | None = Field(None, description="the site's own profile; null: the default's")


class SitesOut(BaseModel):
    snippet: str = Field(description="the script tag a site pastes into its pages")
    own_origin: str = Field(description="the server's own origin, always allowed")
    sites: list[SiteOut]
    default_profile: ProfileOut


class SiteIn(BaseModel):
    origin: str = Field(..., max_length=1000)
    name: str | None = Field(None, max_length=1000)


async def _out(request: Request) -> SitesOut:
    rt = runtime(request)
    stored = await sites.stored_profiles(rt)
    own = {key: ProfileOut(**p) for key, p in stored.items()}
    return SitesOut(snippet=sites.snippet(rt), own_origin=rt.settings.public_origin,
                    sites=[SiteOut(id=e.id, origin=e.origin, name=e.name, from_settings=e.id is None,
                                   profile=own.get(sites.profile_key(e.id)) if e.id is not None else None)
                           for e in await sites.list_sites(rt)],
                    default_profile=own.get(sites.DEFAULT_KEY) or ProfileOut(**sites.profile_out(None)))


def _texts(body: ProfileIn) -> dict[str, Any]:
    return {k: v.model_dump() for k, v in body.texts if v is not None}


async def _read_logo(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > sites.LOGO_BYTES:
        raise ChatError("too_large", "The file is too large (at most {size}).", 413, size="1 MB")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > sites.LOGO_BYTES:
            raise ChatError("too_large", "The file is too large (at most {size}).", 413, size="1 MB")
    return bytes(data)


@router.get("/sites/choices", response_model=list[SiteChoice], responses=ERRORS)
async def site_choices(request: Request, who: StaffContext = Depends(agent)) -> list[SiteChoice]:
    """The stored sites, for the console's site filters (agents)."""
    return [SiteChoice(id=e.id, origin=e.origin, name=e.name) for e in await sites.list_sites(runtime(request))
            if e.id is not None]


@router.put("/sites/default/profile", response_model=SitesOut, responses={**ERRORS, 400: {"model": S.ErrorResponse}})
async def set_default_profile(body: ProfileIn, request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    await sites.set_profile(runtime(request), actor_id=who.id, site_id=None, colour=body.colour,
                            position=body.position, texts=_texts(body), departments=body.departments,
                            when_closed=body.when_closed)
    return await _out(request)


@router.put("/sites/{site_id}/profile", response_model=SitesOut, responses={**ERRORS, 400: {"model": S.ErrorResponse}})
async def set_profile(site_id: S.Id, body: ProfileIn, request: Request,
                      who: StaffContext = Depends(admin)) -> SitesOut:
    rt = runtime(request)
    sites.valid_name(body.name)  # checked before anything is stored
    await sites.set_profile(rt, actor_id=who.id, site_id=site_id, colour=body.colour, position=body.position,
                            texts=_texts(body), departments=body.departments, when_closed=body.when_closed)
    await sites.rename_site(rt, actor_id=who.id, site_id=site_id, name=body.name)
    return await _out(request)


@router.put("/sites/default/logo", response_model=SitesOut, responses=LOGO_ERRORS, openapi_extra=LOGO_BODY)
async def set_default_logo(request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    """The logo as the request's body (PNG, JPEG or WebP, at most 1 MB)."""
    await sites.set_logo(runtime(request), actor_id=who.id, site_id=None, data=await _read_logo(request))
    return await _out(request)


@router.delete("/sites/default/logo", response_model=SitesOut, responses=ERRORS)
async def remove_default_logo(request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    await sites.set_logo(runtime(request), actor_id=who.id, site_id=None, data=None)
    return await _out(request)


@router.put("/sites/{site_id}/logo", response_model=SitesOut, responses=LOGO_ERRORS, openapi_extra=LOGO_BODY)
async def set_logo(site_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    """The logo as the request's body (PNG, JPEG or WebP, at most 1 MB)."""
    await sites.set_logo(runtime(request), actor_id=who.id, site_id=site_id, data=await _read_logo(request))
    return await _out(request)


@router.delete("/sites/{site_id}/logo", response_model=SitesOut, responses=ERRORS)
async def remove_logo(site_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> SitesOut:
    await sites.set_logo(runtime(request), actor_id=who.id, site_id=site_id, data=None)
    return await _out(request)


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
