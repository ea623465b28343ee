"""Request and response bodies of the staff API (they make /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from jutella.store.models import StaffAccount

MAX_ID = 2**63 - 1  # ids are SQL BIGINTs: anything larger is simply not found
Id = Annotated[int, Path(ge=1, le=MAX_ID)]  # a record id in a path
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]  # a record id in a body

Role = Literal["admin", "agent", "privacy"]
Lang = Literal["fi", "en", "sv"]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    roles: list[str]
    active: bool = Field(description="can sign in: has chosen a password (accepted the invitation) or signs in "
                                     "through the identity provider")
    disabled: bool
    totp_enabled: bool
    created_at: datetime
    # not yet active: the state of the latest invitation mail (mail/outbox.py DELIVERY_STATES), None when none was mailed
    invitation_delivery: str | None = None
    sso: bool = Field(False, description="signs in through the identity provider (single sign-on, docs/sso.md)")
    password: bool = Field(True, description="has a password of its own")

    @classmethod
    def of(cls, a: StaffAccount) -> "AccountOut":
        sso = bool(a.__dict__.get("sso", False))  # a column_property (store/models.py); absent on a new row
        return cls(id=a.id, email=a.email, name=a.name, roles=a.role_names,
                   active=a.password_hash is not None or sso, disabled=a.disabled_at is not None,
                   totp_enabled=bool(a.totp_enabled), created_at=a.created_at, sso=sso,
                   password=a.password_hash is not None)


class MeOut(BaseModel):
    account: AccountOut
    csrf_token: str
    language: str | None
    require_totp: bool
    # this session came by single sign-on without the second factor the account's roles need: two-factor
    # sign-in must be turned on before anything else (docs/sso.md)
    totp_for_roles: bool = False


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp: str | None = Field(None, max_length=32)


class TokenIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SetupIn(TokenIn):
    email: str = Field(max_length=320)
    name: str = Field(max_length=1000)
    password: str = Field(max_length=1024)


class InvitationIn(TokenIn):
    password: str = Field(max_length=1024)


class LinkInfo(BaseModel):
    valid: bool = True
    email: str | None = None
    name: str | None = None


class PasswordIn(BaseModel):
    current: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class TotpBeginOut(BaseModel):
    secret: str
    uri: str
    qr_svg_data_uri: str


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class PasswordConfirmIn(BaseModel):
    password: str = Field(max_length=1024)


class LanguageIn(BaseModel):
    language: Lang


class AccountCreateIn(BaseModel):
    email: str = Field(max_length=320)
    name: str = Field(max_length=1000)
    roles: list[str] = Field(min_length=1, max_length=3)


class AccountCreatedOut(BaseModel):
    account: AccountOut
    invitation_link: str | None
    invitation_mailed: bool = Field(False, description="an invitation mail was queued (SMTP is configured); "
                                                       "its state: invitation_delivery in GET /api/v1/accounts")


class AccountPatchIn(BaseModel):
    name: str | None = Field(None, max_length=1000)
    roles: list[str] | None = Field(None, min_length=1, max_length=3)


class InvitationOut(BaseModel):
    invitation_link: str
    invitation_mailed: bool = False


class SecuritySettings(BaseModel):
    require_totp: bool


class AuditRow(BaseModel):
    seq: int
    at: datetime
    actor_id: int | None
    actor: str | None
    action: str
    target_type: str | None
    target_id: str | None
    subject: str | None
    detail: dict


class AuditPage(BaseModel):
    rows: list[AuditRow]
    total: int


class AuditActor(BaseModel):
    id: int
    name: str


class Ok(BaseModel):
    ok: bool = True


class TranscriptMail(BaseModel):
    """An emailed transcript and where its mail is (mail/outbox.py DELIVERY_STATES, or not_sent)."""

    id: int
    outbox_id: int | None
    to: str
    at: str
    requested_by: str
    delivery: str
    error: str | None = None

