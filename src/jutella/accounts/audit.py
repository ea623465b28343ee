"""The audit log: append-only, hash-chained, written through :func:`record`.

Every row carries ``prev_hash`` (the previous row's ``hash``) and its own
``hash`` = SHA-256 over the previous hash and the row's canonical content. The
one-row ``audit_head`` table is updated first in the writer's transaction,
which serialises concurrent writers on SQLite (write lock) and PostgreSQL (row
lock) alike, so the chain never forks. :func:`verify` recomputes it and names
the first row where it breaks.

Rows name records by id, never by their personal content, so erasing a data
subject leaves the chain whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.runtime import Runtime
from jutella.store.models import AuditEntry, AuditHead, StaffAccount


def _digest(prev_hash: str, seq: int, at: datetime, actor_id: int | None, action: str,
            target_type: str | None, target_id: str | None, subject: str | None,
            detail: dict[str, Any]) -> str:
    content = orjson.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor_id, action, target_type, target_id, subject, detail],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + b"\n" + content).hexdigest()


async def record(
    session: AsyncSession,
    at: datetime,
    *,
    actor_id: int | None,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one row inside the caller's transaction."""
    head = (
        await session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
            .returning(AuditHead.seq, AuditHead.last_hash)
        )
    ).one()
    seq, prev_hash = head.seq, head.last_hash
    detail = detail or {}
    tid = None if target_id is None else str(target_id)
    digest = _digest(prev_hash, seq, at, actor_id, action, target_type, tid, subject, detail)
    entry = AuditEntry(
        seq=seq, at=at, actor_id=actor_id, action=action, target_type=target_type,
        target_id=tid, subject=subject, detail=detail, prev_hash=prev_hash, hash=digest,
    )
    session.add(entry)
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    return entry


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_at_seq: int | None = None
    reason: str = ""


async def verify(session: AsyncSession) -> VerifyResult:
    """Recompute the chain from the oldest row still kept (retention trims the
    start), and check it ends at the head."""
    prev: str | None = None
    checked = 0
    last_seq: int | None = None
    result = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq))
    async for row in result:
        if prev is not None and row.prev_hash != prev:
            return VerifyResult(False, checked, row.seq, "its previous-hash does not match the row before it")
        if last_seq is not None and row.seq != last_seq + 1:
            return VerifyResult(False, checked, row.seq, f"rows between {last_seq} and {row.seq} are missing")
        expected = _digest(row.prev_hash, row.seq, row.at, row.actor_id, row.action,
                           row.target_type, row.target_id, row.subject, row.detail)
        if expected != row.hash:
            return VerifyResult(False, checked, row.seq, "its content does not match its hash (edited)")
        prev, last_seq = row.hash, row.seq
        checked += 1
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if last_seq is not None and (head.seq != last_seq or head.last_hash != prev):
        return VerifyResult(False, checked, last_seq, "the newest rows after it were removed")
    return VerifyResult(True, checked)


async def read_log(rt: Runtime, *, actor_id: int | None, account: int | None = None, subject: str | None = None,
                   since: date | None = None, until: date | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[int, list[tuple[AuditEntry, str | None]]]:
    """A page of the log, newest first, as (total matching, [(row, acting
    account's name)]). ``account``: the account that acted; ``subject``: a
    record or data-subject reference; ``since``/``until``: whole days (UTC),
    both included. Reading the log is itself logged (``audit.view``)."""
    where = []
    if account is not None:
        where.append(AuditEntry.actor_id == account)
    if subject:
        where.append((AuditEntry.subject == subject) | (AuditEntry.target_id == subject))
    if since:
        where.append(AuditEntry.at >= datetime.combine(since, time.min, UTC))
    if until:
        where.append(AuditEntry.at < datetime.combine(until, time.min, UTC) + timedelta(days=1))
    async with rt.db.reader() as s:
        total = (await s.execute(select(func.count()).select_from(AuditEntry).where(*where))).scalar_one()
        rows = [(e, name) for e, name in (await s.execute(
            select(AuditEntry, StaffAccount.name).outerjoin(StaffAccount, StaffAccount.id == AuditEntry.actor_id)
            .where(*where).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset))).all()]
    async with rt.db.transaction() as s:
        await record(s, rt.clock.now(), actor_id=actor_id, action="audit.view",
                     detail={"account": account, "subject": subject is not None})
    return total, rows
