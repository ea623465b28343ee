"""Webhooks (administrators): the hooks, their secrets, the delivery log and
sending a delivery again (docs/webhooks.md). The actions and every rule live
in ``mail.webhooks``; this module only parses, calls and shapes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from jutella.accounts.scopes import WEBHOOKS_MANAGE
from jutella.mail import webhooks

from . import schemas as S
from .auth import Staff, StaffContext, runtime
from .routes_chat import ERRORS

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
admin = Staff(scope=WEBHOOKS_MANAGE)  # admins, or an API token with webhooks:manage (docs/api.md)

Event = Literal["conversation.created", "conversation.closed", "offline_message.created", "rating.created"]
PersonalField = Literal["name", "email", "text"]


class HookIn(BaseModel):
    name: str = Field(..., max_length=1000)
    url: str = Field(..., max_length=4000)
    events: list[Event] = Field(..., max_length=20)
    personal: list[PersonalField] = Field(default_factory=list, max_length=3,
                                          description="personal fields its payloads carry; none: ids, site, "
                                                      "department and times only")
    enabled: bool = True


class HookUpdate(HookIn):
    new_secret: bool = Field(False, description="replace the secret; the answer shows the new one, once")


class HookOut(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    personal: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    secret_hint: str = Field(description="the secret's last characters")
    secret: str | None = Field(None, description="only in the answer that made it (a new hook, a new secret)")


class HooksOut(BaseModel):
    hooks: list[HookOut]
    events: list[str]
    personal_fields: list[str]
    allow_private: bool = Field(description="JUTELLA_WEBHOOK_ALLOW_PRIVATE: private addresses and http allowed")


class DeliveryOut(BaseModel):
    id: int
    delivery_id: str = Field(description="X-Jutella-Delivery, the same on every attempt")
    hook_id: int
    event: str
    state: Literal["queued", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


def _in(body: HookIn) -> webhooks.HookIn:
    return webhooks.HookIn(name=body.name, url=body.url, events=list(body.events), personal=list(body.personal),
                           enabled=body.enabled)


@router.get("/webhooks", response_model=HooksOut, responses=ERRORS)
async def list_hooks(request: Request, who: StaffContext = Depends(admin)) -> HooksOut:
    rt = runtime(request)
    return HooksOut(hooks=[HookOut(**h) for h in await webhooks.list_hooks(rt)], events=list(webhooks.EVENTS),
                    personal_fields=list(webhooks.PERSONAL_FIELDS), allow_private=rt.settings.webhook_allow_private)


@router.post("/webhooks", response_model=HookOut, status_code=201, responses=ERRORS)
async def create_hook(body: HookIn, request: Request, who: StaffContext = Depends(admin)) -> HookOut:
    return HookOut(**await webhooks.create_hook(runtime(request), actor_id=who.id, data=_in(body)))


@router.put("/webhooks/{hook_id}", response_model=HookOut, responses=ERRORS)
async def update_hook(hook_id: S.Id, body: HookUpdate, request: Request,
                      who: StaffContext = Depends(admin)) -> HookOut:
    return HookOut(**await webhooks.update_hook(runtime(request), actor_id=who.id, hook_id=hook_id, data=_in(body),
                                                new_secret_wanted=body.new_secret))


@router.delete("/webhooks/{hook_id}", status_code=204, responses=ERRORS)
async def delete_hook(hook_id: S.Id, request: Request, who: StaffContext = Depends(admin)) -> None:
    await webhooks.delete_hook(runtime(request), actor_id=who.id, hook_id=hook_id)


@router.get("/webhooks/deliveries", response_model=DeliveriesOut, responses=ERRORS)
async def list_deliveries(request: Request, hook: int | None = Query(None, ge=1, le=S.MAX_ID),
                          limit: int = Query(100, ge=1, le=500),
                          who: StaffContext = Depends(admin)) -> DeliveriesOut:
    rows = await webhooks.deliveries(runtime(request), hook_id=hook, limit=limit)
    return DeliveriesOut(deliveries=[DeliveryOut(**d) for d in rows])


@router.post("/webhooks/deliveries/{delivery}/redeliver", status_code=204, responses=ERRORS)
async def redeliver(delivery: S.Id, request: Request, who: StaffContext = Depends(admin)) -> None:
    await webhooks.redeliver(runtime(request), actor_id=who.id, delivery_row=delivery)
