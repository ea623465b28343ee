"""Reports (docs/reports.md): the daily aggregates, as JSON and as CSV, for
staff with the admin role. They hold no personal data of visitors, so reading
them writes no audit row; the per-agent figures (staff data) come only to
admins and only while ``reports_per_agent`` is on."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from jutella.accounts.scopes import REPORTS_READ
from jutella.chat import reports

from . import schemas as S
from .auth import Staff, StaffContext, runtime

router = APIRouter(prefix="/api/v1", tags=["reports"])
ERRORS = {400: {"model": S.ErrorResponse}, 401: {"model": S.ErrorResponse}, 403: {"model": S.ErrorResponse}}


async def _report(request: Request, who: StaffContext, start: str | None, end: str | None,
                  department: int | None) -> dict[str, Any]:
    rt = runtime(request)
    first, last = reports.parse_range(start, end, reports.today(rt))
    return await reports.daily(rt, start=first, end=last, department=department, per_agent=who.has("admin"))


@router.get("/reports/daily", responses=ERRORS)
async def daily(request: Request, start: str | None = Query(None, alias="from", max_length=32),
                end: str | None = Query(None, alias="to", max_length=32),
                department: int | None = Query(None, ge=1, le=2**53),
                who: StaffContext = Depends(Staff(scope=REPORTS_READ))) -> dict[str, Any]:
    """Each day of ``from``..``to`` (``YYYY-MM-DD``, inclusive, at most 366
    days; default the last 30) with its chats, answered and missed chats,
    offline messages, messages, ratings, and the median and 90th percentile of
    the time to first answer and of the chat's duration, each given as its
    histogram bucket's upper bound in seconds (``{"le": 60}``; ``{"gt": 3600}``:
    over an hour). Days are in the register's time zone (``time_zone``)."""
    return await _report(request, who, start, end, department)


@router.get("/reports/daily.csv", responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
async def daily_csv(request: Request, start: str | None = Query(None, alias="from", max_length=32),
                    end: str | None = Query(None, alias="to", max_length=32),
                    department: int | None = Query(None, ge=1, le=2**53),
                    who: StaffContext = Depends(Staff(scope=REPORTS_READ, page=True))) -> Response:
    """The same days as CSV, one row a day (numbers and dates only). Opened
    from the console as a download, a same-origin navigation, so it needs no
    CSRF header (web/auth.py ``Staff(page=True)``)."""
    report = await _report(request, who, start, end, department)
    out = io.StringIO()
    csv.writer(out).writerows(reports.csv_rows(report))
    name = f"jutella-report-{report['from']}-{report['to']}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
