"""Where the attachments' bytes are: one file store for the whole cluster.

A file store keeps bytes under a key (``attachment.storage_name`` or
``email_reply_file.storage_name``: 48 random hex digits) and nothing else:
which file is whose, who may read it and when it goes are the rows'
business (chat/attachments.py, the one user of this module, and
chat/email_replies.py, privacy/erasure.py, privacy/retention.py through
it). docs/attachments.md, "Where the bytes are", is the contract in words;
tests/integration/test_filestore.py checks every implementation against it.

:class:`FileStore` is the interface. :class:`DatabaseFileStore`, the default,
keeps the bytes in the database itself (table ``attachment_blob``: a BLOB on
SQLite, ``bytea`` on PostgreSQL), so every host of a cluster serves every
file, and the bytes commit and roll back with the rows that name them: an
erasure or retention run deletes them in its own transaction, a backup of the
database holds them, a restore brings back exactly the files its rows name.

A store that cannot join a database transaction (``transactional = False``:
the S3-compatible object store of store/s3files.py) gets a file before the
transaction that writes its row (deleted again when that fails), and
:meth:`FileStore.forget_core`, in the transaction that deletes the rows,
writes their keys down as *due for deletion* (durable with the rows: a
rolled back erasure leaves nothing due); after the commit
:meth:`FileStore.delete_due` deletes them and strikes them off, and what the
object store did not take then stays due for the housekeeper's next round
(app.py). Retention's sweep removes objects no row names (a crash between a
put and its row) once an hour old (:meth:`FileStore.entries` tells how old).
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, func, insert, select

from . import dialect
from .db import Database
from .models import AttachmentBlob, SystemSetting

log = logging.getLogger("jutella.files")

KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
CHUNK = 1 << 20  # what a streamed read hands over at a time


def check_key(key: str) -> str:
    """Keys are 1-64 characters of letters, digits, ``.``, ``_`` and ``-``, not
    starting with a dot: safe as a file name or an object key anywhere."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError(f"not a file store key: {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored file, as :meth:`FileStore.entries` lists it."""

    key: str
    size: int
    created_at: datetime


@dataclass(slots=True)
class Opened:
    """A file found by :meth:`FileStore.open`: its size now, and its bytes in
    chunks of at most :data:`CHUNK` (fewer bytes than ``size`` only when it
    was deleted meanwhile)."""

    size: int
    chunks: AsyncIterator[bytes]


class FileStoreMisconfigured(Exception):
    """The store answers, but is not one jutella may use (a missing bucket,
    one that keeps old versions of deleted objects): one line for the
    operator, and the command stops before it changes anything."""


class FileStore(ABC):
    """Bytes under keys. Every method may raise the database's or the
    object store's faults (store/db.StorageFault: ``files_unavailable`` for
    an object store that does not answer)."""

    #: True: :meth:`put_core` and :meth:`delete_core` join the caller's
    #: database transaction. False: they are not available (see the module).
    transactional: bool = False
    #: the database the rows naming the files are in (where a store that is not
    #: transactional writes down the files due for deletion)
    db: Database

    @abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there; durable when it returns."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The whole file, or None when there is none."""

    @abstractmethod
    async def open(self, key: str) -> Opened | None:
        """The file to stream, or None when there is none."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""

    @abstractmethod
    async def delete(self, keys: Iterable[str]) -> int:
        """Delete these files (missing ones are no error); how many there were."""

    @abstractmethod
    def entries(self) -> AsyncIterator[Entry]:
        """Every stored file, in no particular order."""

    async def check(self) -> str | None:
        """At start-up (every ``jutella`` command): FileStoreMisconfigured when
        the store cannot be used as configured; a warning's text when it does
        not answer now; None when all is well."""
        return None

    # -- inside the caller's transaction (transactional stores only) --------------------------
    def put_core(self, conn: Connection, key: str, data: bytes, now: datetime) -> None:
        """Store ``data`` under ``key`` in the transaction of ``conn``: it
        commits or rolls back with the caller's rows."""
        raise NotImplementedError(f"{type(self).__name__} cannot join a database transaction")

    def delete_core(self, conn: Connection, keys: Iterable[str]) -> int:
        """Delete these files in the transaction of ``conn``; how many there were."""
        raise NotImplementedError(f"{type(self).__name__} cannot join a database transaction")

    # -- deleting with the rows, every store -------------------------------------------------
    def forget_core(self, conn: Connection, keys: Iterable[str], now: datetime) -> None:
        """In the transaction that deletes the rows naming ``keys``: their
        files go too. A transactional store deletes them here
        (:meth:`delete_core`); any other writes them down as due for deletion
        in this transaction (so a rolled back one leaves nothing due and a
        committed one cannot forget them), for :meth:`delete_due` after the
        commit."""
        keys = sorted({check_key(k) for k in keys})
        if not keys:
            return
        if self.transactional:
            self.delete_core(conn, keys)
        else:
            write_due_core(conn, keys, now)

    async def delete_due(self, keys: Iterable[str] | None = None) -> list[str]:
        """Delete the files written down as due (only those of ``keys`` when
        given: an erasure's own, right after its commit) and strike them off.
        Returns the keys still due: those the store did not take now (it did
        not answer), which the housekeeper's next round tries again. Nothing is
        ever due in a transactional store."""
        if self.transactional:
            return []
        due = sorted({check_key(k) for k in keys}) if keys is not None else await read_due(self.db)
        left: list[str] = []
        for start in range(0, len(due), DUE_BATCH):
            batch = due[start:start + DUE_BATCH]
            try:
                await self.delete(batch)
            except Exception as exc:  # the object store away: they stay due (no key, no secret in the line)
                log.warning("file store: %d file(s) due for deletion not deleted yet (%s); tried again later",
                            len(due) - start, fault_name(exc))
                left = due[start:]
                break
            await strike_due(self.db, batch)
        return left


# -- the files due for deletion (stores that are not transactional) ------------------------------
# Rows of ``system_setting`` (no table of their own: a key and a JSON value is all they need):
# ``file-delete:<a hash of the file's key>`` -> {"key": the file's key, "at": when it became due}.
SETTING = SystemSetting.__table__
DUE_PREFIX = "file-delete:"
DUE_BATCH = 500  # keys deleted and struck off at a time (within every driver's limit of bound parameters)


def _due_name(key: str) -> str:
    # a hash keeps the row's key within the column's 64 characters for any file key
    return DUE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:64 - len(DUE_PREFIX)]


def write_due_core(conn: Connection, keys: Iterable[str], now: datetime) -> None:
    """Write ``keys`` down as due for deletion, in the transaction of ``conn``."""
    rows = [{"key": _due_name(k), "value": {"key": k, "at": now.isoformat()}} for k in keys]
    for start in range(0, len(rows), DUE_BATCH):
        conn.execute(dialect.insert(conn, SETTING).values(rows[start:start + DUE_BATCH]).on_conflict_do_nothing(
            index_elements=[SETTING.c.key]))


async def read_due(db: Database, limit: int = 10_000) -> list[str]:
    """The keys due for deletion (at most ``limit`` a round)."""
    async with db.connection() as conn:
        values = (await conn.execute(select(SETTING.c.value).where(SETTING.c.key.startswith(DUE_PREFIX))
                                     .limit(limit))).scalars().all()
    return sorted({v["key"] for v in values if isinstance(v, dict) and isinstance(v.get("key"), str)})


async def strike_due(db: Database, keys: list[str]) -> None:
    """The files of ``keys`` are gone: no longer due."""
    names = [_due_name(k) for k in keys]
    if not names:
        return
    async with db.transaction() as s:
        for start in range(0, len(names), DUE_BATCH):
            await s.execute(delete(SETTING).where(SETTING.c.key.in_(names[start:start + DUE_BATCH])))


def fault_name(exc: BaseException) -> str:
    """What went wrong, for a log line: the fault's kind or the exception's
    class and the object store's error code, never its message (which may
    name the endpoint's credentials' owner) nor a key."""
    kind = getattr(exc, "kind", None)
    return str(kind) if kind else type(exc).__name__


BLOB = AttachmentBlob
_SIZE = select(BLOB.c.size)


class DatabaseFileStore(FileStore):
    """The bytes in jutella's own database (table ``attachment_blob``).

    Writes go through ``Database.transaction`` (SQLite's one writer); reads
    through the driver, which runs SQLite in a thread of its own and decodes
    PostgreSQL's binary protocol in C, so no file's bytes are copied about on
    the event loop by Python. A streamed read on PostgreSQL takes the file
    a chunk at a time (``substr`` of a column kept uncompressed out of line,
    migration 0022, reads only the chunk's pages); SQLite reads a value whole
    anyway, so there it is read once and handed over in chunks."""

    transactional = True

    def __init__(self, db: Database, now: Callable[[], datetime] | None = None):
        self.db = db
        self.now = now or (lambda: datetime.now(UTC))

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        now = self.now()
        async with self.db.transaction() as s:
            await s.run_sync(lambda sync: self.put_core(sync.connection(), key, data, now))

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        async with self.db.connection() as conn:
            data = (await conn.execute(select(BLOB.c.data).where(BLOB.c.name == key))).scalar_one_or_none()
        return bytes(data) if data is not None else None

    async def open(self, key: str) -> Opened | None:
        check_key(key)
        if self.db.dialect == "sqlite":
            data = await self.get(key)
            if data is None:
                return None
            return Opened(len(data), _slices(data))
        async with self.db.connection() as conn:
            size = (await conn.execute(_SIZE.where(BLOB.c.name == key))).scalar_one_or_none()
        if size is None:
            return None
        return Opened(int(size), self._chunks(key, int(size)))

    async def _chunks(self, key: str, size: int) -> AsyncIterator[bytes]:
        offset = 0
        while offset < size:
            async with self.db.connection() as conn:
                part = (await conn.execute(select(func.substr(BLOB.c.data, offset + 1, CHUNK)).where(
                    BLOB.c.name == key))).scalar_one_or_none()
            if not part:  # deleted meanwhile: the response ends short
                return
            offset += len(part)
            yield bytes(part)

    async def exists(self, key: str) -> bool:
        check_key(key)
        async with self.db.connection() as conn:
            return (await conn.execute(_SIZE.where(BLOB.c.name == key))).first() is not None

    async def delete(self, keys: Iterable[str]) -> int:
        keys = [check_key(k) for k in keys]
        if not keys:
            return 0
        async with self.db.transaction() as s:
            return await s.run_sync(lambda sync: self.delete_core(sync.connection(), keys))

    async def entries(self) -> AsyncIterator[Entry]:  # type: ignore[override]
        async with self.db.connection() as conn:
            rows = (await conn.execute(select(BLOB.c.name, BLOB.c.size, BLOB.c.created_at))).all()
        for name, size, created in rows:
            yield Entry(name, int(size), created)

    def put_core(self, conn: Connection, key: str, data: bytes, now: datetime) -> None:
        check_key(key)
        conn.execute(delete(BLOB).where(BLOB.c.name == key))
        conn.execute(insert(BLOB).values(name=key, size=len(data), data=data, created_at=now))

    def delete_core(self, conn: Connection, keys: Iterable[str]) -> int:
        keys = [check_key(k) for k in keys]
        removed = 0
        for start in range(0, len(keys), 500):  # within every driver's limit of bound parameters
            removed += conn.execute(delete(BLOB).where(BLOB.c.name.in_(keys[start:start + 500]))).rowcount or 0
        return removed


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start:start + CHUNK])
