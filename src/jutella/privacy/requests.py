"""The request log: each data-subject request with the date it was received,
how the person's identity was verified, the one-month deadline (GDPR article
12(3)) and its status. The console flags requests near or past their deadline."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from jutella.accounts import audit
from jutella.accounts.errors import AccountError
from jutella.runtime import Runtime
from jutella.store.models import SubjectRequest

NEAR = timedelta(days=7)


def one_month_after(when: datetime) -> datetime:
    """The same day of the next month (or its last day), as article 12(3) counts."""
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def _out(r: SubjectRequest, now: datetime) -> dict[str, Any]:
    if r.status != "open":
        urgency = "closed"
    elif now > r.deadline:
        urgency = "overdue"
    elif r.deadline - now <= NEAR:
        urgency = "near"
    else:
        urgency = "ok"
    return {"id": r.id, "kind": r.kind, "received_at": r.received_at, "deadline": r.deadline,
            "verified_how": r.verified_how, "status": r.status, "note": r.note, "handled_by": r.handled_by,
            "closed_at": r.closed_at, "urgency": urgency}


async def list_requests(rt: Runtime, *, actor_id: int | None) -> list[dict[str, Any]]:
    """The request log (how each person was verified, notes): audited
    (``subject_request.list``, the ids shown)."""
    now = rt.clock.now()
    async with rt.db.reader() as s:
        rows = (await s.execute(select(SubjectRequest).order_by(SubjectRequest.status != "open",
                                                                 SubjectRequest.deadline))).scalars().all()
    await audit.record_shown(rt, actor_id=actor_id, action="subject_request.list",
                             shown={"subject_requests": [r.id for r in rows]})
    return [_out(r, now) for r in rows]


async def add(rt: Runtime, *, actor_id: int, kind: str, received_at: datetime | None, verified_how: str,
              note: str | None) -> dict[str, Any]:
    now = rt.clock.now()
    received = received_at or now
    if received.tzinfo is None:
        raise AccountError("date_invalid", "Give the date with a time zone.", 400)
    if received > now + timedelta(minutes=5):
        raise AccountError("date_future", "The date received cannot be in the future.", 400)
    async with rt.db.transaction() as s:
        r = SubjectRequest(kind=kind, received_at=received, deadline=one_month_after(received),
                           verified_how=verified_how.strip(), status="open", note=note, handled_by=actor_id,
                           created_at=now)
        s.add(r)
        await s.flush()
        await audit.record(s, now, actor_id=actor_id, action="subject_request.add", target_type="subject_request",
                           target_id=r.id, detail={"kind": kind})
    return _out(r, now)


async def update(rt: Runtime, *, actor_id: int, request_id: int, status: str | None,
                 note: str | None) -> dict[str, Any]:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        r = await s.get(SubjectRequest, request_id)
        if r is None:
            raise AccountError("not_found", "No such request.", 404)
        if status:
            r.status = status
            r.closed_at = now if status != "open" else None
        if note is not None:
            r.note = note
        r.handled_by = actor_id
        await audit.record(s, now, actor_id=actor_id, action="subject_request.update",
                           target_type="subject_request", target_id=r.id, detail={"status": r.status})
    return _out(r, now)
