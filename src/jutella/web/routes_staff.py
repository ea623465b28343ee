"""Staff sign-in, set-up and invitation links (public: no session yet), the
signed-in member's own account, account management and the audit log."""

from __future__ import annotations

from datetime import date

import segno
from fastapi import APIRouter, Depends, Query, Request, Response

from jutella.accounts import actions
from jutella.accounts.audit import read_log
from jutella.mail import invitations

from . import schemas as S
from .auth import Staff, StaffContext, clear_session_cookie, client_address, runtime, set_session_cookie
from .errors import ApiError, request_language

public = APIRouter(prefix="/api/v1/public/staff", tags=["staff sign-in"])
me = APIRouter(prefix="/api/v1/me", tags=["own account"])
admin = APIRouter(prefix="/api/v1", tags=["administration"])

ERRORS = {401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}}


# -- public: sign in, set-up link, invitation link ------------------------------
@public.post("/login", response_model=S.MeOut, responses={**ERRORS, 429: {"model": S.ErrorResponse}})
async def login(body: S.LoginIn, request: Request, response: Response) -> S.MeOut:
    rt = runtime(request)
    signed = await actions.login(rt, email=body.email, password=body.password, totp=body.totp,
                                 client=client_address(request))
    return await signed_in_answer(rt, response, signed)


@public.post("/setup/check", response_model=S.LinkInfo, responses={400: {"model": S.ErrorResponse}})
async def setup_check(body: S.TokenIn, request: Request) -> S.LinkInfo:
    await actions.check_link(runtime(request), body.token, actions.SETUP)
    return S.LinkInfo()


async def signed_in_answer(rt, response: Response, signed: actions.SignedIn) -> S.MeOut:
    """The answer to a sign-in, and to a set-up or invitation (signed in at once): the session cookie and the
    CSRF token."""
    set_session_cookie(response, rt, signed.token)
    return await me_out(rt, signed.account, signed.session)


async def me_out(rt, account, session) -> S.MeOut:
    """The signed-in account and its session's CSRF token; whether two-factor
    sign-in must be turned on first (an administrator requires it of everyone,
    or single sign-on opened this session without the second factor the
    account's roles need: docs/sso.md)."""
    for_roles = bool(session.needs_totp)
    return S.MeOut(account=S.AccountOut.of(account), csrf_token=session.csrf_token, language=account.language,
                   require_totp=for_roles or await actions.require_totp_for_all(rt), totp_for_roles=for_roles)


@public.post("/setup", response_model=S.MeOut, responses={400: {"model": S.ErrorResponse}})
async def setup(body: S.SetupIn, request: Request, response: Response) -> S.MeOut:
    """The first administrator's account; they are signed in at once (as by /login)."""
    rt = runtime(request)
    signed = await actions.complete_setup(rt, body.token, email=body.email, name=body.name, password=body.password)
    return await signed_in_answer(rt, response, signed)


@public.post("/invitation/check", response_model=S.LinkInfo, responses={400: {"model": S.ErrorResponse}})
async def invitation_check(body: S.TokenIn, request: Request) -> S.LinkInfo:
    account = await actions.check_link(runtime(request), body.token, actions.INVITE)
    return S.LinkInfo(email=account.email if account else None, name=account.name if account else None)


@public.post("/invitation", response_model=S.MeOut, responses={400: {"model": S.ErrorResponse}})
async def invitation(body: S.InvitationIn, request: Request, response: Response) -> S.MeOut:
    """The invited person's password; they are signed in at once (as by /login)."""
    rt = runtime(request)
    signed = await actions.accept_invitation(rt, body.token, password=body.password)
    return await signed_in_answer(rt, response, signed)


# -- own account ---------------------------------------------------------------
any_staff = Staff(allow_unenrolled=True)
me_reader = Staff(allow_unenrolled=True, bootstrap=True)  # GET /me hands the CSRF token out


@me.get("", response_model=S.MeOut, responses=ERRORS)
async def get_me(request: Request, who: StaffContext = Depends(me_reader)) -> S.MeOut:
    """The signed-in account and its CSRF token: the one staff read that needs
    no token (the console asks with ``X-Requested-With``; web/auth.py)."""
    return await me_out(runtime(request), who.account, who.session)


@me.post("/logout", response_model=S.Ok, responses=ERRORS)
async def logout(request: Request, response: Response, who: StaffContext = Depends(any_staff)) -> S.Ok:
    rt = runtime(request)
    await actions.logout(rt, who.session)
    clear_session_cookie(response, rt)
    return S.Ok()


@me.post("/password", response_model=S.Ok, responses=ERRORS)
async def change_password(body: S.PasswordIn, request: Request, who: StaffContext = Depends(any_staff)) -> S.Ok:
    await actions.change_password(runtime(request), account_id=who.id, session_id=who.session.id,
                                  current=body.current, new=body.new, client=client_address(request))
    return S.Ok()


@me.post("/totp/begin", response_model=S.TotpBeginOut, responses=ERRORS)
async def totp_begin(request: Request, who: StaffContext = Depends(any_staff)) -> S.TotpBeginOut:
    secret, uri = await actions.begin_totp(runtime(request), account_id=who.id)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return S.TotpBeginOut(secret=secret, uri=uri, qr_svg_data_uri=qr)


@me.post("/totp/confirm", response_model=S.RecoveryCodesOut, responses=ERRORS)
async def totp_confirm(body: S.CodeIn, request: Request, who: StaffContext = Depends(any_staff)) -> S.RecoveryCodesOut:
    codes = await actions.confirm_totp(runtime(request), account_id=who.id, code=body.code)
    return S.RecoveryCodesOut(recovery_codes=codes)


@me.post("/totp/disable", response_model=S.Ok, responses=ERRORS)
async def totp_disable(body: S.PasswordConfirmIn, request: Request,
                       who: StaffContext = Depends(any_staff)) -> S.Ok:
    if await actions.require_totp_for_all(runtime(request)):
        raise ApiError(403, "totp_required_by_admin", "An administrator requires two-factor sign-in for everyone.")
    await actions.disable_totp(runtime(request), actor_id=who.id, account_id=who.id, password=body.password,
                               client=client_address(request))
    return S.Ok()


@me.put("/language", response_model=S.Ok, responses=ERRORS)
async def set_language(body: S.LanguageIn, request: Request, response: Response,
                       who: StaffContext = Depends(any_staff)) -> S.Ok:
    await actions.set_language(runtime(request), account_id=who.id, language=body.language)
    response.set_cookie("jutella_lang", body.language, samesite="lax", max_age=365 * 86400, path="/",
                        secure=runtime(request).settings.secure_cookies)
    return S.Ok()


# -- administration: accounts and security settings ------------------------------
only_admin = Staff("admin")


@admin.get("/accounts", response_model=list[S.AccountOut], responses=ERRORS)
async def list_accounts(request: Request, who: StaffContext = Depends(only_admin)) -> list[S.AccountOut]:
    rt = runtime(request)
    accounts = await actions.list_accounts(rt)
    mailed = await invitations.deliveries(rt, [a.email for a in accounts if a.password_hash is None])
    return [S.AccountOut.of(a).model_copy(update={"invitation_delivery": mailed.get(a.email)}) for a in accounts]


@admin.post("/accounts", response_model=S.AccountCreatedOut, status_code=201, responses=ERRORS)
async def create_account(body: S.AccountCreateIn, request: Request,
                         who: StaffContext = Depends(only_admin)) -> S.AccountCreatedOut:
    rt = runtime(request)
    created = await actions.create_account(rt, actor_id=who.id, email=body.email, name=body.name, roles=body.roles,
                                           mailer=_mailer(request, who))
    invitations.kick(rt)
    return S.AccountCreatedOut(account=S.AccountOut.of(created.account), invitation_link=created.invitation_link,
                               invitation_mailed=created.invitation_mail is not None)


def _mailer(request: Request, who: StaffContext):
    """The invitation mail (SMTP configured), in the inviting admin's console language."""
    return invitations.mailer(runtime(request), lang=request_language(request), inviter=who.account.name)


@admin.patch("/accounts/{account_id}", response_model=S.AccountOut, responses=ERRORS)
async def update_account(account_id: S.Id, body: S.AccountPatchIn, request: Request,
                         who: StaffContext = Depends(only_admin)) -> S.AccountOut:
    account = await actions.update_account(runtime(request), actor_id=who.id, account_id=account_id,
                                           name=body.name, roles=body.roles)
    return S.AccountOut.of(account)


@admin.post("/accounts/{account_id}/disable", response_model=S.AccountOut, responses=ERRORS)
async def disable_account(account_id: S.Id, request: Request, who: StaffContext = Depends(only_admin)) -> S.AccountOut:
    if account_id == who.id:
        raise ApiError(409, "disable_self", "You cannot disable your own account.")
    return S.AccountOut.of(await actions.set_disabled(runtime(request), actor_id=who.id, account_id=account_id,
                                                      disabled=True))


@admin.post("/accounts/{account_id}/enable", response_model=S.AccountOut, responses=ERRORS)
async def enable_account(account_id: S.Id, request: Request, who: StaffContext = Depends(only_admin)) -> S.AccountOut:
    return S.AccountOut.of(await actions.set_disabled(runtime(request), actor_id=who.id, account_id=account_id,
                                                      disabled=False))


@admin.post("/accounts/{account_id}/invitation", response_model=S.InvitationOut, responses=ERRORS)
async def reinvite(account_id: S.Id, request: Request, who: StaffContext = Depends(only_admin)) -> S.InvitationOut:
    rt = runtime(request)
    made = await actions.reinvite(rt, actor_id=who.id, account_id=account_id, mailer=_mailer(request, who))
    invitations.kick(rt)
    return S.InvitationOut(invitation_link=made.invitation_link or "", invitation_mailed=made.invitation_mail is not None)


@admin.post("/accounts/{account_id}/totp/reset", response_model=S.Ok, responses=ERRORS)
async def reset_totp(account_id: S.Id, request: Request, who: StaffContext = Depends(only_admin)) -> S.Ok:
    await actions.disable_totp(runtime(request), actor_id=who.id, account_id=account_id, password=None)
    return S.Ok()


@admin.get("/settings/security", response_model=S.SecuritySettings, responses=ERRORS)
async def get_security(request: Request, who: StaffContext = Depends(only_admin)) -> S.SecuritySettings:
    return S.SecuritySettings(require_totp=await actions.require_totp_for_all(runtime(request)))


@admin.put("/settings/security", response_model=S.SecuritySettings, responses=ERRORS)
async def put_security(body: S.SecuritySettings, request: Request,
                       who: StaffContext = Depends(Staff("admin", allow_unenrolled=True))) -> S.SecuritySettings:
    await actions.set_require_totp(runtime(request), actor_id=who.id, value=body.require_totp)
    return body


# -- the audit log ---------------------------------------------------------------
@admin.get("/audit/actors", response_model=list[S.AuditActor], responses=ERRORS)
async def audit_actors(request: Request, who: StaffContext = Depends(Staff("admin", "privacy"))) -> list[S.AuditActor]:
    """The staff accounts (id and name) for the audit log's account filter;
    the privacy contact may read the log without being an administrator."""
    return [S.AuditActor(id=a.id, name=a.name) for a in await actions.list_accounts(runtime(request))]


@admin.get("/audit", response_model=S.AuditPage, responses=ERRORS)
async def audit_log(
    request: Request,
    account: int | None = Query(None, ge=1, le=S.MAX_ID, description="the staff account that acted"),
    subject: str | None = Query(None, max_length=64, description="a record or data-subject reference"),
    since: date | None = Query(None),
    until: date | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
    who: StaffContext = Depends(Staff("admin", "privacy")),
) -> S.AuditPage:
    total, rows = await read_log(runtime(request), actor_id=who.id, account=account, subject=subject, since=since,
                                 until=until, limit=limit, offset=offset)
    return S.AuditPage(total=total, rows=[
        S.AuditRow(seq=e.seq, at=e.at, actor_id=e.actor_id, actor=name, action=e.action, target_type=e.target_type,
                   target_id=e.target_id, subject=e.subject, detail=e.detail) for e, name in rows])
