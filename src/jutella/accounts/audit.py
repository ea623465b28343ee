"""The audit log: append-only, hash-chained, written through :func:`record`.

Every row carries ``prev_hash`` (the previous row's ``hash``) and its own
``hash`` = HMAC-SHA256, with a key kept outside the database
(accounts/audit_anchor.py), over the previous hash and the row's canonical
content. The one-row ``audit_head`` table is updated first in the writer's
transaction, which serialises concurrent writers on SQLite (write lock) and
PostgreSQL (row lock) alike, so the chain never forks. After the commit the
newest row is noted in the checkpoint outside the database.

:func:`verify` recomputes the chain and names the first row where it breaks.
What it holds to (docs/security.md, "The audit log"):

- every row's keyed hash matches (without the key, an edit cannot be
  re-hashed to match);
- the chain starts at row 1 from the all-zero hash, or where a keyed
  ``audit.pruned`` row says retention stopped deleting (:func:`prune`);
- no row is missing between the first and the last, and the chain holds the
  checkpointed row with the checkpointed hash (so the newest rows up to the
  checkpoint cannot go either);
- rows hashed with the old public algorithm (SHA-256, before migration 0008)
  are accepted only before the ``audit.keyed`` row that sealed them.

Rows name records by id, never by their personal content, so erasing a data
subject leaves the chain whole.
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.runtime import Runtime
from jutella.store.models import AuditEntry, AuditHead, StaffAccount

from .audit_anchor import AuditAnchor, AuditKeyMissing, Checkpoint

GENESIS = "0" * 64
KEYED = "audit.keyed"  # seals the rows hashed before the key (migration 0008)
PRUNED = "audit.pruned"  # retention's "pruned up to here" link

#: The API token the current request acts with (set by accounts/guard.py ``authorize_token``; each
#: request runs in its own task, so it ends with the request). Every row written while a token
#: acts names it in ``detail["token"]``; an operator's token has no account (id 0): no actor.
ACTING_TOKEN: ContextVar[int | None] = ContextVar("jutella_acting_token", default=None)


def _content(seq: int, at: datetime, actor_id: int | None, action: str, target_type: str | None,
             target_id: str | None, subject: str | None, detail: dict[str, Any]) -> bytes:
    return orjson.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor_id, action, target_type, target_id, subject, detail],
        option=orjson.OPT_SORT_KEYS,
    )


def _keyed(key: bytes, prev_hash: str, content: bytes) -> str:
    return hmac.new(key, prev_hash.encode() + b"\n" + content, hashlib.sha256).hexdigest()


def _public(prev_hash: str, content: bytes) -> str:
    """The hash of the rows written before the key existed."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + content).hexdigest()


def _anchor(session: AsyncSession) -> AuditAnchor:
    anchor = session.info.get("audit")
    if anchor is None:
        raise RuntimeError("this database session has no audit anchor (build the Database in services.py)")
    return anchor


def _note_after_commit(session: AsyncSession, anchor: AuditAnchor, seq: int, digest: str) -> None:
    """Once this session's transaction commits, the checkpoint moves to the
    newest row it wrote (nothing is noted when it rolls back)."""
    info = session.info
    info["audit_tail"] = (seq, digest)
    if info.get("audit_listening"):
        return
    info["audit_listening"] = True

    def committed(_session) -> None:
        tail = info.pop("audit_tail", None)
        if tail is not None:
            anchor.note(*tail)

    def rolled_back(_session, _previous=None) -> None:
        info.pop("audit_tail", None)

    event.listen(session.sync_session, "after_commit", committed)
    event.listen(session.sync_session, "after_soft_rollback", rolled_back)


def _row(key: bytes, seq: int, prev_hash: str, at: datetime, actor_id: int | None, action: str,
         target_type: str | None, target_id: str | None, subject: str | None, detail: dict[str, Any]) -> AuditEntry:
    digest = _keyed(key, prev_hash, _content(seq, at, actor_id, action, target_type, target_id, subject, detail))
    return AuditEntry(seq=seq, at=at, actor_id=actor_id, action=action, target_type=target_type,
                      target_id=target_id, subject=subject, detail=detail, prev_hash=prev_hash, hash=digest)


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
    token = ACTING_TOKEN.get()
    if token is not None:
        detail = {**(detail or {}), "token": token}
        actor_id = actor_id or None
    anchor = _anchor(session)
    key = anchor.key()
    head = (
        await session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
            .returning(AuditHead.seq, AuditHead.last_hash, AuditHead.keyed)
        )
    ).one()
    seq, prev_hash = head.seq, head.last_hash
    if not head.keyed:
        # the rows before were hashed without the key: seal them first
        seal = _row(key, seq, prev_hash, at, None, KEYED, None, None, None, {"unkeyed_through": seq - 1})
        session.add(seal)
        seq, prev_hash = seq + 1, seal.hash
    tid = None if target_id is None else str(target_id)
    entry = _row(key, seq, prev_hash, at, actor_id, action, target_type, tid, subject, detail or {})
    session.add(entry)
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=entry.hash,
                                                                             keyed=True))
    _note_after_commit(session, anchor, seq, entry.hash)
    return entry


async def record_shown(rt: Runtime, *, actor_id: int | None, action: str, shown: dict[str, Any],
                       detail: dict[str, Any] | None = None, always: bool = False) -> None:
    """A staff list or search that showed personal data (previews, names,
    emails): one compact row naming the records shown, by kind, as sorted ids,
    never their content (``{"shown": {"conversations": [3, 7]}}``). Nothing
    shown, no row, unless ``always`` (a search is a look even when it finds
    nothing). The one rule every list and search follows (docs/privacy.md)."""
    ids = {kind: sorted(set(values)) for kind, values in shown.items()}
    if not always and not any(ids.values()):
        return
    async with rt.db.transaction() as s:
        await record(s, rt.clock.now(), actor_id=actor_id, action=action, detail={**(detail or {}), "shown": ids})


async def seal(rt: Runtime) -> bool:
    """After an upgrade from before the key (migration 0008): write the keyed
    ``audit.keyed`` row that seals the rows hashed without it, if no row has
    been written since. Run by every command after its migrations."""
    async with rt.db.reader() as s:
        if (await s.execute(select(AuditHead.keyed).where(AuditHead.id == 1))).scalar_one():
            return False
    async with rt.db.transaction() as s:
        head = (await s.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
        if head.keyed:
            return False
        key = _anchor(s).key()
        seq = head.seq + 1
        row = _row(key, seq, head.last_hash, rt.clock.now(), None, KEYED, None, None, None,
                   {"unkeyed_through": head.seq})
        s.add(row)
        await s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=row.hash, keyed=True))
        _note_after_commit(s, _anchor(s), seq, row.hash)
    return True


async def prune(session: AsyncSession, now: datetime, before: datetime) -> int:
    """Retention: delete the oldest rows, up to the first one written at or
    after ``before`` (so what remains is one unbroken run), and append the
    keyed ``audit.pruned`` link naming the last deleted row and its hash, from
    which :func:`verify` starts. Returns how many rows went."""
    # lock the head first, as record() does, so no row is appended meanwhile
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    first_kept = (await session.execute(select(func.min(AuditEntry.seq)).where(AuditEntry.at >= before))).scalar()
    older = select(func.max(AuditEntry.seq)).where(AuditEntry.at < before)
    if first_kept is not None:
        older = older.where(AuditEntry.seq < first_kept)
    through = (await session.execute(older)).scalar()
    if through is None:
        return 0
    last_hash = (await session.execute(select(AuditEntry.hash).where(AuditEntry.seq == through))).scalar_one()
    count = (await session.execute(delete(AuditEntry).where(AuditEntry.seq <= through))).rowcount or 0
    await record(session, now, actor_id=None, action=PRUNED, detail={"through": through, "hash": last_hash,
                                                                     "rows": count})
    return count


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_at_seq: int | None = None
    reason: str = ""
    warning: str = ""


async def verify(session: AsyncSession) -> VerifyResult:
    """Recompute the chain from the oldest row still kept, and check its start
    (row 1, or a keyed "pruned up to here" link), its end (the head and the
    checkpoint outside the database) and every row between."""
    anchor = _anchor(session)
    checkpoint = anchor.read_checkpoint()
    key = anchor.existing_key()
    prev: str | None = None
    first: tuple[int, str] | None = None
    last_seq: int | None = None
    checked = 0
    keyed_seen = False
    unsealed_from: int | None = None  # the first row of a run hashed without the key, not yet sealed
    links: set[tuple[int, str]] = set()
    result = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq))
    async for row in result:
        if key is None:
            raise AuditKeyMissing(f"the audit log has rows but its key is missing ({anchor.key_path} or "
                                  "JUTELLA_AUDIT_KEY): restore the key from where it was backed up")
        if prev is not None and row.prev_hash != prev:
            return VerifyResult(False, checked, row.seq, "its previous-hash does not match the row before it")
        if last_seq is not None and row.seq != last_seq + 1:
            return VerifyResult(False, checked, row.seq, f"rows between {last_seq} and {row.seq} are missing")
        if first is None:
            first = (row.seq, row.prev_hash)
        content = _content(row.seq, row.at, row.actor_id, row.action, row.target_type, row.target_id,
                           row.subject, row.detail)
        if hmac.compare_digest(_keyed(key, row.prev_hash, content), row.hash):
            if unsealed_from is not None and row.action != KEYED:
                break  # said below: rows hashed without the key are followed by a keyed row that is no seal
            unsealed_from = None
            keyed_seen = True
            if row.action == PRUNED:
                links.add((int(row.detail.get("through", -1)), str(row.detail.get("hash"))))
        elif not keyed_seen and _public(row.prev_hash, content) == row.hash:
            unsealed_from = row.seq if unsealed_from is None else unsealed_from
        else:
            return VerifyResult(False, checked, row.seq, "its content does not match its keyed hash "
                                "(edited, or re-hashed without the key)")
        if checkpoint is not None and row.seq == checkpoint.seq and row.hash != checkpoint.hash:
            return VerifyResult(False, checked, row.seq, "its hash is not the one checkpointed outside the "
                                "database (the rows up to it were replaced)")
        prev, last_seq = row.hash, row.seq
        checked += 1
    if unsealed_from is not None:
        return VerifyResult(False, checked, unsealed_from, "it and the rows after it are hashed without the key "
                            "and not sealed by it (re-hashed with the public algorithm)")
    if first is not None and first != (1, GENESIS) and (first[0] - 1, first[1]) not in links:
        return VerifyResult(False, 0, first[0], f"the {first[0] - 1} rows before it were removed "
                            "(no keyed 'pruned up to here' link names them)")
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if last_seq is not None and (head.seq != last_seq or head.last_hash != prev):
        return VerifyResult(False, checked, last_seq, "the newest rows after it were removed")
    return _against_checkpoint(anchor, checkpoint, first, last_seq, checked)


def _against_checkpoint(anchor: AuditAnchor, checkpoint: Checkpoint | None, first: tuple[int, str] | None,
                        last_seq: int | None, checked: int) -> VerifyResult:
    if checkpoint is None:
        if last_seq is None:
            return VerifyResult(True, checked)
        return VerifyResult(True, checked, warning=f"no checkpoint at {anchor.checkpoint_path}: the newest rows "
                            "are checked against the database's own head only")
    if last_seq is None or checkpoint.seq > last_seq:
        ends = f"ends at row {last_seq}" if last_seq is not None else "is empty"
        return VerifyResult(False, checked, last_seq, f"the newest rows were removed: the checkpoint outside the "
                            f"database ({anchor.checkpoint_path}) has row {checkpoint.seq}, the log {ends}")
    if first is not None and checkpoint.seq == first[0] - 1 and checkpoint.hash != first[1]:
        return VerifyResult(False, 0, first[0], "the row before it is not the one checkpointed outside the database")
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
