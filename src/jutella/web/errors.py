"""One error shape for the whole API: ``{"error": {"code", "message"}}``, the
message in the caller's language."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from jutella.accounts.errors import AccountError
from jutella.cpu import Busy
from jutella.faults import FAULTS, fault_log_line
from jutella.i18n import gettext, negotiate
from jutella.store.db import storage_fault


class ApiError(AccountError):
    """An expected refusal raised by the web layer itself."""

    def __init__(self, status: int, code: str, message: str, **params: object):
        super().__init__(code, message, status, **params)


def request_language(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"), request.cookies.get("jutella_lang"))


def error_response(request: Request, status: int, code: str, message: str, headers=None, **params) -> JSONResponse:
    text = gettext(request_language(request), message, **params)
    return JSONResponse({"error": {"code": code, "message": text}}, status_code=status, headers=headers)


async def account_error(request: Request, exc: AccountError) -> JSONResponse:
    headers = None
    if exc.status == 429:
        headers = {"Retry-After": str(int(exc.params.get("minutes", 1)) * 60)}
    elif exc.status == 503:  # e.g. the shared sign-in counters are out of reach (accounts/attempts.py)
        headers = {"Retry-After": "30"}
    response = error_response(request, exc.status, exc.code, exc.message, headers, **exc.params)
    field = getattr(exc, "field", None)
    if field:  # a form field's error: the widget shows it beside that field
        import json

        body = json.loads(response.body)
        body["error"]["field"] = field
        response = JSONResponse(body, status_code=exc.status, headers=headers)
    return response


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or "request"
    return error_response(request, 422, "invalid", "Check the field {field}: {problem}", field=field,
                          problem=first.get("msg", "invalid value"))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    messages = {404: "Not found.", 405: "Method not allowed.", 401: "Sign in first.", 403: "Not allowed."}
    return error_response(request, exc.status_code, f"http_{exc.status_code}",
                          messages.get(exc.status_code, str(exc.detail)), getattr(exc, "headers", None))


async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A request naming records that do not exist or clash with stored ones:
    the database refused it and nothing was written."""
    return error_response(request, 409, "conflict", "That refers to a record that does not exist or conflicts "
                                                     "with one that does. Nothing was changed.")


# -- faults of the storage (their answers: jutella/faults.py) ---------------------------
async def storage_error(request: Request, exc: Exception) -> JSONResponse:
    """The database is locked, full or unreachable: a clear refusal the
    client may retry (Retry-After), and nothing half-written (the unit of
    work's transaction rolled back)."""
    import logging

    fault = storage_fault(exc)
    if fault is None:  # some other database error: a bug, not a fault to report as one
        logging.getLogger("jutella").error("unexpected database error on %s %s", request.method,
                                           request.url.path, exc_info=exc)
        return error_response(request, 500, "internal", "Something went wrong. Nothing was saved.")
    status, code, retry, message = FAULTS[fault.kind]
    logging.getLogger("jutella.store").warning(fault_log_line(fault.kind, f"{request.method} {request.url.path}"))
    return error_response(request, status, code, message, {"Retry-After": str(retry)})


# -- the CPU pools full (jutella/cpu.py) --------------------------------------------------
async def busy_error(request: Request, exc: Busy) -> JSONResponse:
    """Every worker and queue place of a CPU pool is taken: refused at once,
    nothing done, with the seconds after which to try again."""
    return error_response(request, 503, "busy", "The server is busy. Nothing was done; try again in a moment.",
                          {"Retry-After": str(exc.retry_after)})
