"""Single sign-on with OpenID Connect: the browser's way to the identity
provider and back (accounts/oidc.py does the protocol and the accounts;
docs/sso.md).

- ``GET /console/sso/start``: a new sign-in; a cookie ties it to this
  browser, and the browser goes on to the provider.
- ``GET /console/sso/callback``: the provider's answer. Signed in: the
  session cookie, on to ``/console``. jutella's own two-factor code needed:
  on to ``/console/sso``, whose page asks for it. Refused: on to
  ``/console/sso?error=CODE``, whose page says why (web/pages.py).
- ``POST /api/v1/public/staff/sso/totp``: that code; answers as a sign-in
  does (the session cookie and ``/me``'s body).

The first two are navigations (no JSON, not in the OpenAPI document); all
three are public: no session exists yet.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from jutella.accounts import oidc
from jutella.accounts.errors import AccountError
from jutella.chat.departments import set_account_departments
from jutella.cpu import Busy

from . import schemas as S
from .auth import client_address, runtime, set_session_cookie
from .routes_staff import ERRORS, signed_in_answer

pages = APIRouter(include_in_schema=False)
public = APIRouter(prefix="/api/v1/public/staff/sso", tags=["staff sign-in"])


def _cookie(response: Response, request: Request, value: str, minutes: int) -> None:
    response.set_cookie(oidc.COOKIE, value, max_age=minutes * 60, httponly=True, samesite="lax", path="/",
                        secure=runtime(request).settings.secure_cookies)


def _forget(response: Response, request: Request) -> None:
    response.delete_cookie(oidc.COOKIE, path="/", httponly=True, samesite="lax",
                           secure=runtime(request).settings.secure_cookies)


def _refused(request: Request, exc: AccountError) -> RedirectResponse:
    code = exc.code if oidc.refusal(exc.code) else "sso_failed"
    response = RedirectResponse(f"/console/sso?error={code}", status_code=303)
    _forget(response, request)
    return response


@pages.get("/console/sso/start")
async def start(request: Request) -> Response:
    """On to the identity provider (404 when single sign-on is not configured)."""
    if not runtime(request).settings.oidc_configured:
        raise AccountError("sso_off", "Single sign-on is not configured.", 404)
    try:
        url, browser = await oidc.begin(runtime(request), client=client_address(request))
    except AccountError as exc:
        return _refused(request, exc)
    response = RedirectResponse(url, status_code=303)
    _cookie(response, request, browser, oidc.LOGIN_MINUTES)
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.get("/console/sso/callback")
async def callback(request: Request) -> Response:
    """The provider's answer (``code`` and ``state``, or ``error``)."""
    rt = runtime(request)
    if not rt.settings.oidc_configured:
        raise AccountError("sso_off", "Single sign-on is not configured.", 404)
    query = request.query_params
    browser = request.cookies.get(oidc.COOKIE)
    try:
        signed = await oidc.complete(rt, state=query.get("state"), code=query.get("code"), error=query.get("error"),
                                     browser=browser, sync_departments=set_account_departments)
    except AccountError as exc:
        return _refused(request, exc)
    except Busy:  # the CPU pool that checks the ID token is full: the sign-in is spent, start again
        return _refused(request, oidc.SsoError("sso_failed"))
    if signed is None:  # jutella's own two-factor code next, from this browser (the cookie stays)
        response = RedirectResponse("/console/sso", status_code=303)
        _cookie(response, request, browser or "", oidc.TOTP_MINUTES)
        return response
    response = RedirectResponse("/console", status_code=303)
    set_session_cookie(response, rt, signed.token)
    _forget(response, request)
    return response


@public.post("/totp", response_model=S.MeOut,
             responses={**ERRORS, 400: {"model": S.ErrorResponse}, 429: {"model": S.ErrorResponse}})
async def totp(body: S.CodeIn, request: Request, response: Response) -> S.MeOut:
    """jutella's own two-factor code after the identity provider's answer,
    when the account's roles need one and the provider did not assert it."""
    rt = runtime(request)
    signed = await oidc.complete_totp(rt, browser=request.cookies.get(oidc.COOKIE), code=body.code,
                                      client=client_address(request))
    _forget(response, request)
    return await signed_in_answer(rt, response, signed)
