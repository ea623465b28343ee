"""Attachments (images and PDFs), ratings at close, and transcripts.

Every change goes through one function here: one transaction, then publish.

Files: an upload is read with the size limit enforced while it arrives, its
type is decided from its first bytes (never its name), images are re-encoded
by Pillow without metadata, and the bytes go into the cluster's file store
(store/files.py; the database by default) in the same transaction as the row
and its chat event: a refused or rolled back upload stores nothing, and every
host serves every file. The files of a visitor's replies by email
(chat/email_replies.py) go into the same store the same way
(:func:`with_new_files`). Erasure and retention delete the bytes with
the rows (:func:`delete_files_in` in their transaction, and
:func:`delete_files_after` after it for an object store). Files an
older jutella kept in ``<data_dir>/attachments/`` are moved into the store
by :func:`import_disk_files`. See docs/attachments.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, insert, select

from jutella.accounts import audit
from jutella.mail import limits, outbox, webhooks
from jutella.runtime import Runtime
from jutella.store.db import StorageFault
from jutella.store.files import FileStore, Opened, fault_name
from jutella.store.models import Attachment, ChatEvent, Conversation, EmailReplyFile, MailOutbox, TranscriptRequest

from . import access, filework, reply_tokens, reports
from .actions import (_AGENT_SEEN, _STAFF_NAME, AGENTS_CHANNEL, CLOSED, CONV, ChatError, _agent_name, _row,
                      conv_channel, core_append, core_lock_for, core_take, event_frame, events_since, list_channel,
                      list_frame, publish_agent_write, summary, viewer_of)
from .offline import validate_email
from .transcript import render_mail

ATTACHMENT = Attachment.__table__
log = logging.getLogger("jutella.files")
T = TypeVar("T")
REPLY_FILE = EmailReplyFile.__table__  # a reply by email's files (chat/email_replies.py) share the store

IMAGE_TYPES = filework.IMAGE_FORMATS
PDF = filework.PDF
TYPES = (*IMAGE_TYPES, PDF)
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
TMP_PREFIX = ".tmp-"


class AttachmentError(ChatError):
    """An upload refused (maps to 413, 415, 409 ...)."""


STORAGE_NAME = re.compile(r"[0-9a-f]{48}")


def files(rt: Runtime) -> FileStore:
    """The cluster's file store (store/files.py), built with the runtime."""
    if rt.files is None:
        raise RuntimeError("the runtime has no file store (services.build_runtime makes one)")
    return rt.files


def legacy_folder(rt: Runtime) -> Path:
    """Where jutella kept attachments before issue 20, one folder per host:
    read only by :func:`import_disk_files`, which empties it."""
    return Path(rt.settings.data_dir) / "attachments"


def sniff(head: bytes) -> str | None:
    """The type from the content's first bytes. Only what is recognised here is
    accepted; SVG, HTML, GIF, executables and everything else is not."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def clean_filename(name: str | None, content_type: str) -> str:
    """For display only: no path, no control characters, at most 120 characters,
    and the extension that matches the content."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"\s+", " ", base).strip(" .")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", PDF: "pdf"}[content_type]
    stem = stem[:110] or "attachment"
    return f"{stem}.{ext}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


REFUSALS = {  # chat/filework.py's reasons: the API's code, what the user reads, the status
    "too_many_pixels": ("too_many_pixels", "The image is too large (at most 40 megapixels).", 413),
    "unreadable": ("unreadable", "The image could not be read.", 415),
    "pdf_tail": ("unreadable", "The PDF file could not be read.", 415),
    "pdf_markup": ("unsupported_type", "Only images (PNG, JPEG, WebP) and PDF files can be sent.", 415),
    "pdf_active": ("unsupported_type", "PDF files with scripts or actions that start programs cannot be sent.", 415),
}


def refusal(reason: str) -> AttachmentError:
    return AttachmentError(*REFUSALS.get(reason, REFUSALS["unreadable"]))


def check(data: bytes, limit: int) -> str:
    """The cheap checks, on the event loop, before any decoding: not empty,
    within the size limit, a type recognised from its first bytes, and for an
    image a header that says at most MAX_PIXELS. Returns the content type."""
    if not data:
        raise AttachmentError("empty", "The file is empty.", 400)
    if len(data) > limit:
        raise AttachmentError("too_large", "The file is too large (at most {size}).", 413,
                              size=human_size(limit))
    content_type = sniff(data[:16])
    if content_type is None:
        raise AttachmentError("unsupported_type", "Only images (PNG, JPEG, WebP) and PDF files can be sent.", 415)
    if content_type in IMAGE_TYPES:
        size = filework.dimensions(data, content_type)
        if size is None:
            raise refusal("unreadable")
        width, height = size
        if width <= 0 or height <= 0:
            raise refusal("unreadable")
        if width * height > MAX_PIXELS:
            raise refusal("too_many_pixels")
    return content_type


async def prepare(rt: Runtime, data: bytes, filename: str | None) -> tuple[bytes, str, str]:
    """Check and clean an upload: (bytes to store, content type, display
    name). The cheap checks here; the decoding, re-encoding and the PDF scan
    in the upload pool's worker processes (jutella/cpu.py: 503 when full)."""
    content_type = check(data, rt.settings.max_attachment_bytes)
    try:
        stored = await rt.cpu.uploads.run(filework.clean, data, content_type, MAX_PIXELS)
    except filework.Refused as exc:
        raise refusal(exc.code) from None
    return stored, content_type, clean_filename(filename, content_type)


def human_size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} kB"


def public_info(a: Attachment) -> dict[str, Any]:
    return {"id": a.public_id, "name": a.filename, "type": a.content_type, "size": a.size,
            "url": f"/attachments/{a.public_id}"}


@dataclass
class Stored:
    attachment: Attachment
    event: Any  # the chat event (its seq, conversation_id ...)


async def add(rt: Runtime, *, conversation_id: int | None, visitor_id: int | None = None,
              agent_id: int | None = None, data: bytes, filename: str | None,
              viewer: access.Viewer | None = None) -> Stored:
    """Store an upload as the next event of the conversation (``core_append``).
    A visitor sends into their open conversation; an agent into one they may
    write to, and a waiting one becomes theirs through ``core_take`` exactly
    as accepting it or replying does: within their concurrent-chat limit, or
    refused (409 ``limit_reached``, the same message as accept).

    Order: the content is checked and cleaned in memory; the row, its event
    and the bytes (the file store's ``put_core``) are written in one
    transaction, where every refusal about the conversation is decided, so a
    refused upload leaves neither a row nor a file. (A store that cannot join
    the transaction gets the bytes before it, and they are deleted again when
    it fails.)

    An agent's upload into a conversation ``viewer`` (loaded from
    ``agent_id`` when not given) may not see is "not found": decided inside
    the write, and asked once before the content is decoded too, so a hidden
    conversation costs no image work and answers 404 as a missing one does."""
    if agent_id is not None:
        viewer = await viewer_of(rt, viewer, agent_id)
        await access.conversation_or_404(rt, viewer, conversation_id)  # early; the write decides again
    else:  # a visitor without an open chat costs no decoding either; the write decides again
        async with rt.db.reader() as s:
            open_one = (await s.execute(select(Conversation.id).where(
                Conversation.visitor_id == visitor_id, Conversation.state != CLOSED).limit(1))).first()
        if open_one is None:
            raise AttachmentError("no_conversation", "Write a message first: files can be sent in an open chat.",
                                  409)
    # the cheap checks here; decoding and re-encoding in the upload pool (cpu.py)
    stored, content_type, name = await prepare(rt, data, filename)
    store = files(rt)
    storage_name = secrets.token_hex(24)
    now = rt.clock.now()
    uploader = "agent" if agent_id is not None else "visitor"
    public_id = secrets.token_urlsafe(32)
    values = dict(public_id=public_id, uploader=uploader, agent_id=agent_id, content_type=content_type,
                  size=len(stored), filename=name, storage_name=storage_name, created_at=now)
    info = public_info(Attachment(**values))

    def work(conn: Connection):
        if uploader == "visitor":
            found = conn.execute(select(CONV).where(CONV.c.visitor_id == visitor_id, CONV.c.state != CLOSED)
                                 .order_by(CONV.c.id.desc()).limit(1).with_for_update()).first()
            if found is None:
                raise AttachmentError("no_conversation", "Write a message first: files can be sent in an "
                                                         "open chat.", 409)
            conv, agent_name, joined = _row(found), None, None
        else:
            conv = core_lock_for(conn, viewer, conversation_id)
            agent_name = _STAFF_NAME.scalar(conn, {"b_agent": agent_id})
            joined = core_take(conn, conv, agent_id, now, limit=rt.settings.max_concurrent_chats, name=agent_name)
        ev = core_append(conn, conv.id, now, kind="attachment", author=uploader, agent_id=agent_id,
                         data={"attachment": info})
        row = {**values, "conversation_id": conv.id, "seq": ev.seq}
        row["id"] = conn.execute(insert(ATTACHMENT).values(**row).returning(ATTACHMENT.c.id)).scalar_one()
        put_new_files(store, conn, {storage_name: stored}, now)
        conv.last_seq, conv.last_activity_at = ev.seq, now
        if uploader == "agent":
            _AGENT_SEEN.run(conn, {"b_conv": conv.id, "b_seq": ev.seq})
            conv.agent_seen_seq = ev.seq
        return Attachment(**row), conv, ev, joined, agent_name

    att, conv, ev, joined, agent_name = await with_new_files(
        rt, {storage_name: stored}, lambda: rt.db.write_core(work, lock=conversation_id))
    if uploader == "agent":
        await publish_agent_write(rt, conv, joined, ev, agent_name, restricted=None)
    else:
        await rt.hub.publish(conv_channel(conv.id), event_frame(ev))
        await rt.hub.publish(list_channel(conv), list_frame(conv, restricted=None))
    return Stored(att, ev)


def put_new_files(store: FileStore, conn: Connection, new: dict[str, bytes], now: datetime) -> None:
    """Inside the transaction that writes the rows naming ``new`` (key:
    bytes): the bytes commit or roll back with them. (A store that cannot
    join it got them in :func:`with_new_files` before.)"""
    if store.transactional:
        for key, data in new.items():
            store.put_core(conn, key, data, now)


async def with_new_files(rt: Runtime, new: dict[str, bytes], write: Callable[[], Awaitable[T]],
                         kept: Callable[[T], bool] = lambda _: True) -> T:
    """Run ``write``, the transaction that writes the rows naming ``new`` and
    calls :func:`put_new_files`: the one way files come into the store (a
    chat's upload, a reply by email's files). A store that cannot join the
    transaction gets the bytes before it, and they are deleted again when it
    fails or (``kept`` false of its result) did not keep them. Shielded: a
    request cancelled midway (the client gone) must not leave such a store
    with bytes whose row never came."""
    store = files(rt)

    async def run() -> T:
        if not store.transactional:
            for key, data in new.items():
                await store.put(key, data)
        try:
            result = await write()
        except BaseException:
            if not store.transactional:
                await _drop(store, list(new))
            raise
        if not store.transactional and not kept(result):
            await _drop(store, list(new))
        return result

    return await asyncio.shield(run())


async def _drop(store: FileStore, keys: list[str]) -> None:
    """Files put for rows that never came: deleted now, or, when the store
    does not answer, by retention's sweep once an hour old (no row names them)."""
    try:
        await store.delete(keys)
    except Exception as exc:
        log.warning("file store: %d file(s) of a write that did not happen are left for the sweep (%s)",
                    len(keys), fault_name(exc))


async def find(rt: Runtime, public_id: str) -> tuple[Attachment, Conversation] | None:
    if not public_id or len(public_id) > 64:
        return None
    async with rt.db.reader() as s:
        row = (await s.execute(select(Attachment, Conversation).join(
            Conversation, Conversation.id == Attachment.conversation_id).where(
            Attachment.public_id == public_id))).first()
    return (row[0], row[1]) if row else None


async def visitors_conversation(rt: Runtime, visitor_id: int, conversation_id: int | None) -> Conversation:
    """The visitor's own conversation (their latest when ``conversation_id``
    is None); anyone else's is "not found"."""
    async with rt.db.reader() as s:
        if conversation_id is None:
            conv = (await s.execute(select(Conversation).where(Conversation.visitor_id == visitor_id)
                                    .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()
        else:
            conv = await s.get(Conversation, conversation_id)
    if conv is None or conv.visitor_id != visitor_id:
        raise ChatError("not_found", "No such conversation.", 404)
    return conv


async def staff_may_open(rt: Runtime, viewer: access.Viewer, a: Attachment, conv: Conversation) -> bool:
    """Whether ``viewer`` may open the file (chat/access.py
    ``may_see_attachment``); a yes is audited as a view (``attachment.view``)."""
    async with rt.db.connection() as conn:
        visible = await access.may_see_attachment(conn, viewer, conv.id)
    if visible:
        await record_view(rt, agent_id=viewer.account_id, a=a, visitor_id=conv.visitor_id)
    return visible


async def open_file(rt: Runtime, a: Attachment) -> Opened | None:
    """The attachment's bytes to stream (None: gone, served as 404)."""
    return await files(rt).open(a.storage_name)


async def record_view(rt: Runtime, *, agent_id: int, a: Attachment, visitor_id: int) -> None:
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=agent_id, action="attachment.view",
                           target_type="attachment", target_id=a.id, subject=f"visitor:{visitor_id}")


async def delete_files_in(rt: Runtime, s, storage_names: list[str]) -> None:
    """Inside an erasing or retention transaction (the session ``s``), after
    the rows naming ``storage_names`` are deleted: their bytes go with them
    (the file store's ``forget_core``). The database's store deletes them
    in this transaction, so a rolled back erasure keeps them and a committed
    one leaves them nowhere; a store that cannot join it writes them down
    as due for deletion here, and :func:`delete_files_after` deletes them."""
    store = files(rt)
    if storage_names:
        names = sorted(set(storage_names))
        now = rt.clock.now()
        await s.run_sync(lambda sync: store.forget_core(sync.connection(), names, now))


async def delete_files_after(rt: Runtime, storage_names: list[str]) -> list[str]:
    """After the commit that deleted their rows: the bytes of a store that
    could not join that transaction (nothing to do for the database's).
    Returns the names whose bytes are still there (the object store did not
    answer): due for deletion, which the housekeeper retries
    (:func:`delete_due_files`) until they are gone."""
    if not storage_names:
        return []
    left = await files(rt).delete_due(storage_names)
    if left:
        rt.caches.pop(DUE_RETRY, None)  # the housekeeper tries again on its next round, not in a minute
    return left


DUE_RETRY = "files.due_retry"  # rt.caches: (monotonic time of the next try, seconds to wait after it)


async def delete_due_files(rt: Runtime, *, force: bool = False) -> list[str]:
    """The housekeeper's round (app.py): delete every file due for deletion
    (an erasure's or retention's whose object store did not answer then).
    When some stay due, the next try waits twice as long as the last (2 s
    after a new failure, at most 5 minutes); ``force``: now. Returns the
    names still due."""
    store = rt.files
    if store is None or store.transactional:
        return []
    now = time.monotonic()
    retry_at, wait = rt.caches.get(DUE_RETRY, (0.0, 0.0))  # type: ignore[misc]
    if not force and now < retry_at:
        return []
    left = await store.delete_due()
    if left:
        wait = min(max(2 * float(wait), 2.0), 300.0)  # type: ignore[arg-type]
        rt.caches[DUE_RETRY] = (now + wait, wait)
    else:
        rt.caches[DUE_RETRY] = (now + 60.0, 0.0)  # nothing (more) due: look again in a minute
    return left


async def sweep(rt: Runtime) -> int:
    """Files without a row: stored bytes that neither an attachment nor a
    reply by email's file names (a crash between a non-transactional store's
    put and its row), files still due for deletion, and what an older
    jutella left in this host's attachment folder (:func:`import_disk_files`).
    Returns how many went. An object store that does not answer leaves its
    part for the next run (said in the log)."""
    store = files(rt)
    cutoff = rt.clock.now().timestamp() - 3600
    removed = 0
    try:
        await delete_due_files(rt, force=True)
        # the store's list first, then the rows: bytes and their row commit together, so a
        # file listed here whose row is committed by now is in ``known`` below
        listed = [e async for e in store.entries()]
        async with rt.db.reader() as s:
            known = set((await s.execute(select(Attachment.storage_name))).scalars())
            known |= set((await s.execute(select(EmailReplyFile.storage_name))).scalars())  # replies by email
        orphans = [e.key for e in listed if e.key not in known
                   and (store.transactional or e.created_at.timestamp() < cutoff)]  # mid-upload is not an orphan
        removed = await store.delete(orphans) if orphans else 0
    except StorageFault as exc:
        if exc.kind != "files_unavailable":
            raise
        log.warning("retention: the file store's sweep is left for the next run (%s)", exc.kind)
    _moved, left = await import_disk_files(rt)
    return removed + left


def _row_of_file(conn: Connection, name: str, *, lock: bool = False):
    """When the row that names a stored file was made (a chat's attachment, or
    a reply by email's file: the folder held both), or None when none does."""
    for table in (ATTACHMENT, REPLY_FILE):
        query = select(table.c.created_at).where(table.c.storage_name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is not None:
            return row[0]
    return None


async def import_disk_files(rt: Runtime, directory: Path | None = None, *,
                            orphans_at_once: bool = False) -> tuple[int, int]:
    """Move the files an older jutella kept in ``<data_dir>/attachments/``
    (a chat's attachments; a reply by email's files, had a build kept them
    there) into the file store (migration 0022's other half; run by ``jutella`` after
    the migrations, by every command including ``serve``, and by retention's
    sweep). Idempotent: a file goes into the store in a transaction that
    finds its row (locked, so an erasure meanwhile waits or has won), and is
    deleted from the disk only after that commit; a file whose row is gone,
    and a temporary upload, is deleted once an hour old. Returns (moved,
    deleted).

    ``directory``: another folder than this host's (a restore's unpacked
    files of a backup an older jutella made); ``orphans_at_once``: files
    without a row go however new (nothing is uploading into that folder)."""
    directory = directory or legacy_folder(rt)
    if not directory.is_dir():
        return 0, 0
    store = files(rt)
    cutoff = float("inf") if orphans_at_once else rt.clock.now().timestamp() - 3600
    moved = removed = 0
    for path in sorted(directory.iterdir()):
        name = path.name
        if not path.is_file():
            continue
        if name.startswith(TMP_PREFIX) or not STORAGE_NAME.fullmatch(name):
            if name.startswith(TMP_PREFIX) and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
            continue
        data = await asyncio.to_thread(path.read_bytes)
        if store.transactional:
            def put(conn: Connection, name=name, data=data) -> bool:
                created = _row_of_file(conn, name, lock=True)
                if created is not None:
                    store.put_core(conn, name, data, created)
                return created is not None
            async with rt.db.transaction() as s:
                known = await s.run_sync(lambda sync, put=put: put(sync.connection()))
        else:
            async with rt.db.reader() as s:
                known = await s.run_sync(lambda sync, name=name: _row_of_file(sync.connection(), name) is not None)
            if known:
                await store.put(name, data)
        if known:
            path.unlink(missing_ok=True)
            moved += 1
        elif path.stat().st_mtime < cutoff:  # an orphan an older jutella's crash left
            path.unlink(missing_ok=True)
            removed += 1
    if moved or removed:
        _fsync_dir(directory)
    try:
        directory.rmdir()  # only when empty: nothing of anyone's is ever left behind by this
    except OSError:
        pass
    return moved, removed


# -- ratings -------------------------------------------------------------------------
async def rate(rt: Runtime, *, visitor_id: int, conversation_id: int, rating: int, comment: str | None) -> Conversation:
    """The visitor's rating of their own closed conversation, once."""
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ChatError("rating_invalid", "Choose a rating from 1 to 5.", 400)
    comment = (comment or "").strip() or None
    if comment and len(comment) > 2000:
        raise ChatError("too_long", "The comment is too long (at most 2000 characters).", 400)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        conv = await s.get(Conversation, conversation_id, with_for_update=True)
        if conv is None or conv.visitor_id != visitor_id:
            raise ChatError("not_found", "No such conversation.", 404)
        if conv.state != CLOSED:
            raise ChatError("not_closed", "A chat can be rated once it has ended.", 409)
        if conv.rating is not None:
            raise ChatError("already_rated", "This chat has already been rated.", 409)
        conv.rating, conv.rating_comment, conv.rated_at = rating, comment, now
        # added to the chat's cell of the reports' aggregates in this same transaction (chat/reports.py)
        tz = rt.settings.time_zone
        await s.run_sync(lambda sync: reports.core_count_rating(sync.connection(), conv, rating, time_zone=tz))
        name = await _agent_name(s, conv.agent_id)
        # the hooks that take it, queued in this same transaction; the comment only for those that ticked
        # "text", and for nobody while the person's processing is restricted (mail/webhooks.py)
        restricted = bool((await s.execute(select(access.visitor_restricted(conv.visitor_id)))).scalar())
        await webhooks.emit(s, now, "rating.created", {**webhooks.conversation_data(conv), "rating": rating,
                                                       "rated_at": now.isoformat()},
                            {"text": comment} if comment else {}, conversation_id=conv.id,
                            withhold_personal=restricted)
    webhooks.kick(rt)
    frame = {"type": "conversation", "conversation": {**summary(conv, name), **rating_info(conv)}}
    await rt.hub.publish(AGENTS_CHANNEL, frame)
    return conv


def rating_info(conv: Conversation) -> dict[str, Any]:
    return {"rating": conv.rating, "rating_comment": conv.rating_comment,
            "rated_at": conv.rated_at.isoformat() if conv.rated_at else None}


# -- transcripts ---------------------------------------------------------------------
async def transcript(rt: Runtime, conversation_id: int) -> tuple[Conversation, list[dict[str, Any]]]:
    """The visitor-facing events (internal notes left out) of a conversation."""
    async with rt.db.reader() as s:
        conv = await s.get(Conversation, conversation_id)
    if conv is None:
        raise ChatError("not_found", "No such conversation.", 404)
    return conv, await events_since(rt, conversation_id, 0, limit=10_000, for_visitor=True)


async def staff_answered(rt: Runtime, conversation_id: int) -> bool:
    """Whether staff wrote in the conversation where the visitor saw it (a
    message or a file; an internal note does not count)."""
    async with rt.db.reader() as s:
        return (await s.execute(select(ChatEvent.id).where(
            ChatEvent.conversation_id == conversation_id, ChatEvent.author == "agent",
            ChatEvent.kind.in_(("message", "attachment"))).limit(1))).scalar_one_or_none() is not None


async def email_transcript(rt: Runtime, *, conversation_id: int, email: str, lang: str,
                           visitor_id: int | None = None, agent_id: int | None = None,
                           client: str | None = None) -> TranscriptRequest:
    """Queue the transcript to ``email`` through the outbox. The address is kept
    (transcript_request) as part of the register, as the widget tells the visitor.

    Asked for by a visitor (``visitor_id``), jutella would otherwise mail any
    text to any address from the organisation's sender: so only a conversation
    in which staff took part (:func:`staff_answered`), and counted per client
    address and for everyone (mail/limits.py) once everything else is fine."""
    email = validate_email(email)
    if visitor_id is not None:
        async with rt.db.reader() as s:
            own = await s.get(Conversation, conversation_id)
        if own is None or own.visitor_id != visitor_id:
            raise ChatError("not_found", "No such conversation.", 404)
        if not await staff_answered(rt, conversation_id):
            raise ChatError("no_staff_reply", "A transcript can be emailed only after our staff have answered in "
                                              "the chat. You can save it as a file instead.", 409)
        await limits.reserve_transcript(rt, client=client or "unknown")
    conv, events = await transcript(rt, conversation_id)
    subject, text, html = render_mail(rt, conv, events, lang)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = outbox.enqueue(s, rt, kind="transcript", to_addr=email, to_name=None, subject=subject,
                             body_text=text, body_html=html)
        await s.flush()
        # its own reply address: an answer to the transcript comes back to staff (chat/email_replies.py)
        reply_tokens.issue(s, rt, row, email=email, conversation_id=conv.id)
        req = TranscriptRequest(conversation_id=conv.id, email=email, requested_by="agent" if agent_id else "visitor",
                                agent_id=agent_id, outbox_id=row.id, created_at=now)
        s.add(req)
        if agent_id is not None:
            await audit.record(s, now, actor_id=agent_id, action="conversation.transcript_email",
                               target_type="conversation", target_id=conv.id, subject=f"visitor:{conv.visitor_id}")
    if rt.outbox is not None:
        rt.outbox.kick()
    return req


# -- where a transcript's mail is (docs/mail.md, "Delivery states where they were asked for") ----------
def _mail_out(t: TranscriptRequest, state: str | None, error: str | None) -> dict[str, Any]:
    return {"id": t.id, "outbox_id": t.outbox_id, "to": t.email, "at": t.created_at.isoformat(),
            "requested_by": t.requested_by, "delivery": state or "not_sent", "error": error}


async def transcript_mails(rt: Runtime, conversation_id: int) -> list[dict[str, Any]]:
    """A conversation's emailed transcripts, each with its mail's true state
    (mail/outbox.py ``DELIVERY_STATES``; ``not_sent`` once the mail row is
    gone), oldest first. For staff who may see the conversation (the caller
    checks)."""
    async with rt.db.reader() as s:
        rows = (await s.execute(select(TranscriptRequest, MailOutbox.state, MailOutbox.last_error).outerjoin(
            MailOutbox, MailOutbox.id == TranscriptRequest.outbox_id).where(
            TranscriptRequest.conversation_id == conversation_id).order_by(TranscriptRequest.id))).all()
    return [_mail_out(t, state, error) for t, state, error in rows]


async def visitors_transcript_mail(rt: Runtime, *, visitor_id: int, request_id: int) -> str:
    """The delivery state of a transcript mail the visitor asked for, for
    their widget to tell them honestly ("not_found" for anyone else's). No
    server reply text: only the state."""
    async with rt.db.reader() as s:
        row = (await s.execute(select(TranscriptRequest, MailOutbox.state).join(
            Conversation, Conversation.id == TranscriptRequest.conversation_id).outerjoin(
            MailOutbox, MailOutbox.id == TranscriptRequest.outbox_id).where(
            TranscriptRequest.id == request_id, Conversation.visitor_id == visitor_id,
            TranscriptRequest.requested_by == "visitor"))).first()
    if row is None:
        raise ChatError("not_found", "No such transcript mail.", 404)
    return row[1] or "not_sent"

