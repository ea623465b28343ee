"""The erasure ledger: what each erasure removed, as keyed hashes, so that
``jutella restore`` of an older backup erases it again (privacy/backup.py).

Each erasure writes one *batch* of rows in its own transaction, before its
rows go (the ids and addresses are read then):

- ``conversation``, ``offline_message``, ``email`` (a mail's id): each record
  of the selection, by its id (ids are never reused);
- ``visitor``: a visitor all of whose chats were erased (erase() deletes such
  visitors), by the visitor's id: an older backup's other chats and forms of
  that browser go too;
- ``address``: an email address of which nothing is left after the erasure
  (every form, reply mail and transcript address with it was selected), by
  the normalised address: an older backup's forms, mails and transcripts with
  it go too (an address still used by an unselected record is not recorded,
  so a restore takes no more than the erasure took).

A digest is ``HMAC-SHA256(ledger key, "kind:value")``; the ledger key is
derived from the audit log's key (``<data_dir>/audit.key`` or
``JUTELLA_AUDIT_KEY``, accounts/audit_anchor.py), which lives outside the
database and outside the backups. Without it nobody can test a guessed
address or id against the ledger. ``key_id`` names the key a row was made
with, so a restore under another key stops instead of silently missing rows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.store.models import (Conversation, ErasureLedger, MailOutbox, OfflineMessage, TranscriptRequest,
                                  Visitor)

_INFO = b"jutella erasure ledger v1"


def ledger_key(audit_key: bytes) -> bytes:
    return hmac.new(audit_key, _INFO, hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:16]


def digest(key: bytes, kind: str, value: Any) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def normal_address(address: str) -> str:
    return address.strip().casefold()


async def record(s: AsyncSession, sel: Any, now: datetime) -> str:
    """Inside the erasing transaction, before its deletions: write the batch
    for ``sel`` (a subjects.Selection). Returns the batch id."""
    key = ledger_key(s.info["audit"].key())
    convs, offline, mails = set(sel.conversations), set(sel.offline_messages), set(sel.emails)
    items: set[tuple[str, Any]] = {("conversation", c) for c in convs}
    items |= {("offline_message", m) for m in offline} | {("email", e) for e in mails}
    if convs:
        visitors = set((await s.execute(select(Conversation.visitor_id).where(
            Conversation.id.in_(convs)))).scalars())
        for v in visitors:
            left = (await s.execute(select(func.count()).select_from(Conversation).where(
                Conversation.visitor_id == v, Conversation.id.notin_(convs)))).scalar_one()
            if not left:
                items.add(("visitor", v))
    for address in await _addresses(s, convs, offline, mails):
        if not await _used_elsewhere(s, address, convs, offline, mails):
            items.add(("address", address))
    batch = secrets.token_hex(16)
    kid = key_id(key)
    s.add_all([ErasureLedger(batch=batch, kind=kind, digest=digest(key, kind, value), key_id=kid, erased_at=now)
               for kind, value in sorted(items, key=str)])
    return batch


async def _addresses(s: AsyncSession, convs: set[int], offline: set[int], mails: set[int]) -> set[str]:
    found: set[str] = set()
    if offline:
        found |= set((await s.execute(select(OfflineMessage.email).where(OfflineMessage.id.in_(offline)))).scalars())
    if convs:
        found |= set((await s.execute(select(TranscriptRequest.email).where(
            TranscriptRequest.conversation_id.in_(convs)))).scalars())
        found |= set((await s.execute(select(Conversation.prechat_email).where(  # the pre-chat form's
            Conversation.id.in_(convs), Conversation.prechat_email.isnot(None)))).scalars())
    if mails:
        found |= set((await s.execute(select(MailOutbox.to_addr).where(
            MailOutbox.id.in_(mails), MailOutbox.kind == "reply"))).scalars())
    return {normal_address(a) for a in found if a}


async def _used_elsewhere(s: AsyncSession, address: str, convs: set[int], offline: set[int], mails: set[int]) -> bool:
    forms = select(func.count()).select_from(OfflineMessage).where(
        func.lower(OfflineMessage.email) == address)
    if offline:
        forms = forms.where(OfflineMessage.id.notin_(offline))
    transcripts = select(func.count()).select_from(TranscriptRequest).where(
        func.lower(TranscriptRequest.email) == address)
    if convs:
        transcripts = transcripts.where(TranscriptRequest.conversation_id.notin_(convs))
    chats = select(func.count()).select_from(Conversation).where(func.lower(Conversation.prechat_email) == address)
    if convs:
        chats = chats.where(Conversation.id.notin_(convs))
    sent = select(func.count()).select_from(MailOutbox).where(
        func.lower(MailOutbox.to_addr) == address, MailOutbox.kind == "reply")
    if mails:
        sent = sent.where(MailOutbox.id.notin_(mails))
    if offline:  # the replies to the selected forms go with them
        sent = sent.where(MailOutbox.offline_message_id.is_(None) | MailOutbox.offline_message_id.notin_(offline))
    return any([(await s.execute(q)).scalar_one() for q in (forms, transcripts, chats, sent)])


# -- applying it to a restored database -------------------------------------------------------
def pending(current: Iterable[dict[str, Any]], restored_batches: set[str]) -> list[dict[str, Any]]:
    """The rows of the current ledger that the restored database has not seen:
    every erasure made after the backup was taken."""
    return [row for row in current if row["batch"] not in restored_batches]


async def matches(s: AsyncSession, rows: list[dict[str, Any]], key: bytes) -> dict[str, set[int]]:
    """The records of the (restored) database that ``rows`` name: a
    selection as {"conversations", "offline_messages", "emails"}."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        wanted.setdefault(row["kind"], set()).add(row["digest"])

    def hit(kind: str, value: Any) -> bool:
        return digest(key, kind, value) in wanted.get(kind, ())

    sel: dict[str, set[int]] = {"conversations": set(), "offline_messages": set(), "emails": set()}
    visitors = {v for v in (await s.execute(select(Visitor.id))).scalars() if hit("visitor", v)}
    for cid, vid, given in (await s.execute(select(Conversation.id, Conversation.visitor_id,
                                                    Conversation.prechat_email))).all():
        if hit("conversation", cid) or vid in visitors or (given and hit("address", normal_address(given))):
            sel["conversations"].add(cid)
    for cid, address in (await s.execute(select(TranscriptRequest.conversation_id, TranscriptRequest.email))).all():
        if address and hit("address", normal_address(address)):
            sel["conversations"].add(cid)
    for mid, address, vid in (await s.execute(select(OfflineMessage.id, OfflineMessage.email,
                                                      OfflineMessage.visitor_id))).all():
        if hit("offline_message", mid) or vid in visitors or (address and hit("address", normal_address(address))):
            sel["offline_messages"].add(mid)
    for eid, address, kind in (await s.execute(select(MailOutbox.id, MailOutbox.to_addr, MailOutbox.kind))).all():
        if hit("email", eid) or (kind == "reply" and address and hit("address", normal_address(address))):
            sel["emails"].add(eid)
    return sel


async def prune(s: AsyncSession, cut: datetime) -> int:
    """Rows of erasures before ``cut`` (now less retention.backups_days): every
    backup older than them is past its retention, and a restore refuses it."""
    return (await s.execute(delete(ErasureLedger).where(ErasureLedger.erased_at < cut))).rowcount or 0
