"""The console's API tokens page (administrators; docs/api.md): list, make
(the token is in the answer once, never again) and revoke. Cookie sessions
only: no scope opens these routes to a token, so a token cannot make another."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jutella.accounts import apitokens
from jutella.accounts.scopes import SCOPES

from . import schemas as S
from .auth import Staff, StaffContext, runtime

router = APIRouter(prefix="/api/v1", tags=["api tokens"])
admin = Staff("admin")
ERRORS = {code: {"model": S.ErrorResponse} for code in (400, 401, 403, 404)}


class ScopeOut(BaseModel):
    name: str
    roles: list[str] = Field(description="a maker needs one of these roles")
    description: str


class TokenOut(BaseModel):
    id: int
    name: str
    scopes: list[str]
    created_by: int | None = Field(description="null: made by the operator on the command line")
    created_by_name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokensOut(BaseModel):
    scopes: list[ScopeOut]
    tokens: list[TokenOut]


class TokenIn(BaseModel):
    name: str = Field(..., max_length=1000)
    scopes: list[str] = Field(..., max_length=20)
    expires_days: int | None = Field(None, ge=1, le=apitokens.MAX_DAYS, description="null: never expires")


class TokenMadeOut(BaseModel):
    token: str = Field(description="shown this once: jutella keeps only its hash")
    made: TokenOut


def _out(request: Request, row, creator_name: str | None) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, scopes=row.scopes, created_by=row.created_by,
                    created_by_name=creator_name, created_at=row.created_at, expires_at=row.expires_at,
                    revoked_at=row.revoked_at, last_used_at=row.last_used_at,
                    state=apitokens.state(row, runtime(request).clock.now()))  # type: ignore[arg-type]


@router.get("/tokens", response_model=TokensOut, responses=ERRORS)
async def list_tokens(request: Request, who: StaffContext = Depends(admin)) -> TokensOut:
    rows = await apitokens.list_tokens(runtime(request))
    return TokensOut(scopes=[ScopeOut(name=s.name, roles=list(s.roles), description=s.description)
                             for s in SCOPES.values()],
                     tokens=[_out(request, t, n) for t, n in rows])


@router.post("/tokens", response_model=TokenMadeOut, status_code=201, responses=ERRORS)
async def make_token(body: TokenIn, request: Request, who: StaffContext = Depends(admin)) -> TokenMadeOut:
    made = await apitokens.create(runtime(request), actor_id=who.id, name=body.name, scopes=body.scopes,
                                  expires_days=body.expires_days)
    return TokenMadeOut(token=made.token, made=_out(request, made.row, who.account.name))


@router.post("/tokens/{token_id}/revoke", response_model=S.Ok, responses=ERRORS)
async def revoke_token(token_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> S.Ok:
    await apitokens.revoke(runtime(request), actor_id=who.id, token_id=token_id)
    return S.Ok()
