"""HTML pages and the health check."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from .auth import runtime
from .i18n import LANGUAGES, catalog, language_name
from .errors import request_language

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


def json_data(value: object) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>`` and
    ``&`` escaped so no string can close the element."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # JSON with <, > and & escaped; no string can end the element  # nosec B704


TEMPLATES.env.filters["json_data"] = json_data


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz(request: Request) -> JSONResponse:
    rt = runtime(request)
    db_ok = await rt.db.ping()
    body: dict[str, object] = {"status": "ok" if db_ok else "unavailable"}
    if not rt.hub.healthy:
        body["status"] = "degraded" if db_ok else "unavailable"
        body["redis"] = "unavailable"
    return JSONResponse(body, status_code=200 if db_ok else 503)


@router.get("/metrics")
async def metrics(request: Request):
    """Prometheus metrics of this process (no personal data in them)."""
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST

    rt = runtime(request)
    rt.metrics.redis_up.set(1 if rt.hub.healthy else 0)
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@router.api_route("/console", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/console/setup", methods=["GET", "HEAD"], response_class=HTMLResponse)
@router.api_route("/console/invite", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def console(request: Request) -> HTMLResponse:
    lang = request_language(request)
    return TEMPLATES.TemplateResponse(request, "console.html", {
        "lang": lang,
        "i18n": {"lang": lang, "messages": catalog(lang),
                 "languages": [{"code": c, "name": language_name(c)} for c in LANGUAGES]},
    }, headers={"Cache-Control": "no-store"})
