"""HTML pages and the health check."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from jutella.accounts import oidc
from jutella.i18n import LANGUAGES, catalog, gettext, language_name
from jutella.mail import limits
from jutella.store.models import MailOutbox
from jutella.templating import ENV

from .auth import client_address, runtime
from .errors import request_language

TEMPLATES = Jinja2Templates(env=ENV)
router = APIRouter(include_in_schema=False)
SERVICE_WORKER = (Path(__file__).parent / "static" / "console" / "sw.js").read_bytes()
FAVICON = Path(__file__).parent / "static" / "favicon.ico"


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
async def favicon() -> FileResponse:
    """The icon browsers ask for on every jutella page (the console, /privacy,
    /demo): a small local file, so their logs show no 404 (issue 17)."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz(request: Request) -> JSONResponse:
    """``ok``; ``degraded`` (200: chat works, something around it does not,
    named in the body: ``redis``, ``mail``, ``offline_form`` or
    ``transcript_email`` "capped"); ``unavailable`` (503: the
    database does not answer). Bounded in time. See docs/deployment.md."""
    rt = runtime(request)
    db_ok = await rt.db.ping()
    body: dict[str, object] = {"status": "ok" if db_ok else "unavailable"}
    if not db_ok:
        body["database"] = "unavailable"
    if not rt.hub.healthy:
        body["status"] = "degraded" if db_ok else "unavailable"
        body["redis"] = "unavailable"
    if db_ok:
        mail = await mail_health(rt)
        if mail:
            body["mail"] = mail
            if body["status"] == "ok":
                body["status"] = "degraded"
    try:
        capped = await asyncio.wait_for(limits.capped(rt), rt.db.connect_timeout)
    except Exception:  # the shared counters are away: redis says so above
        capped = []
    for kind in capped:  # a global mail cap refused visitors this hour (mail/limits.py)
        body[kind] = "capped"
        if body["status"] == "ok":
            body["status"] = "degraded"
    return JSONResponse(body, status_code=200 if db_ok else 503, headers={"Cache-Control": "no-store"})


async def mail_health(rt) -> str | None:
    """The outbox as /healthz reports it (no personal data): ``failing`` while
    a queued mail's last attempt failed (the SMTP server refused for now or
    could not be reached; it is retried with backoff); ``refused`` when a mail
    was refused for good or given up (``refused``, ``failed``) within the last
    hour (the person who asked is told so where they asked: docs/mail.md);
    ``delayed`` when the oldest queued mail has waited more than
    ``mail_delay_alert_minutes``; None when the outbox is fine."""
    import asyncio
    from datetime import UTC, timedelta

    from sqlalchemy import func, select

    now = rt.clock.now()

    async def query():
        async with rt.db.reader() as s:
            failing, oldest = (await s.execute(select(func.count(MailOutbox.last_error),
                                                      func.min(MailOutbox.created_at))
                                               .where(MailOutbox.state == "queued"))).one()
            # a refused or given-up row keeps the time its last attempt was due
            refused = (await s.execute(select(func.count()).select_from(MailOutbox).where(
                MailOutbox.state.in_(("refused", "failed")),
                MailOutbox.next_attempt_at > now - timedelta(hours=1)))).scalar_one()
            return failing, oldest, refused

    try:
        failing, oldest, refused = await asyncio.wait_for(query(), rt.db.connect_timeout)
    except Exception:  # the database just went away: the next probe says so
        return None
    if failing:
        return "failing"
    if refused:
        return "refused"
    if oldest is not None:
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        if now - oldest > timedelta(minutes=rt.settings.mail_delay_alert_minutes):
            return "delayed"
    return None


def _metrics_token(request: Request) -> str:
    token = runtime(request).settings.metrics_token
    return token.get_secret_value() if token is not None else ""


def metrics_allowed(request: Request) -> bool:
    """A loopback client (the client address, so a request that came through a
    trusted proxy counts from where it came) or the bearer token of
    ``JUTELLA_METRICS_TOKEN``, compared in constant time."""
    token = _metrics_token(request)
    if token:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


@router.get("/metrics")
async def metrics(request: Request):
    """Prometheus metrics of this process (no personal data in them), for
    loopback clients or the bearer token of ``JUTELLA_METRICS_TOKEN``."""
    from prometheus_client import CONTENT_TYPE_LATEST

    rt = runtime(request)
    if not metrics_allowed(request):
        if _metrics_token(request):
            return JSONResponse({"error": {"code": "not_signed_in", "message": "Send the metrics token."}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})
        return JSONResponse({"error": {"code": "forbidden", "message": "Metrics are served to this host only."}},
                            status_code=403, headers={"Cache-Control": "no-store"})
    rt.metrics.redis_up.set(1 if rt.hub.healthy else 0)
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@router.get("/console-sw.js")
async def console_service_worker() -> Response:
    """The console's service worker. Served from the root so that its scope can
    be ``/console`` (a worker under /static/console/ could only control
    /static/console/); it caches the static shell only (static/console/sw.js)."""
    return Response(SERVICE_WORKER, media_type="text/javascript",
                    headers={"Cache-Control": "no-cache"})


@router.api_route("/console", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/console/setup", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/console/invite", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/console/sso", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def console(request: Request) -> HTMLResponse:
    lang = request_language(request)
    return TEMPLATES.TemplateResponse(request, "console.html", {
        "lang": lang,
        "i18n": {"lang": lang, "messages": catalog(lang),
                 "languages": [{"code": c, "name": language_name(c)} for c in LANGUAGES]},
        "sso": await _sso(request, lang),
    }, headers={"Cache-Control": "no-store"})


async def _sso(request: Request, lang: str) -> dict[str, object]:
    """What the sign-in page says about single sign-on (static/console/sso.js):
    its button, and at /console/sso (the provider's answer came back, web/
    routes_sso.py) why it was refused (a code from the address; only the known
    ones have words) or that jutella's own two-factor code is next."""
    settings = runtime(request).settings
    out: dict[str, object] = {"enabled": settings.oidc_configured, "sso_only": settings.oidc_sso_only}
    if request.url.path == "/console/sso" and settings.oidc_configured:
        code = request.query_params.get("error")
        if code:
            out["notice"] = gettext(lang, oidc.refusal(code) or oidc.REFUSALS["sso_failed"])
        elif await oidc.pending_totp(runtime(request), request.cookies.get(oidc.COOKIE)):
            out["step"] = "totp"
    return out
