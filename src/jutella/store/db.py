"""The engine, sessions and migrations, and the ways in to the database.

One way per purpose:

- ``transaction()``: a write as an ORM unit of work (the actions: accounts,
  departments, privacy, settings). One transaction, committed when the block
  ends; on SQLite one at a time per process (an asyncio lock, then BEGIN
  IMMEDIATE).
- ``write_core(fn, lock=...)``: the hot path (chat messages, visitor
  sign-ups): a synchronous function of SQLAlchemy Core statements, group
  committed with the other calls pending at the same moment
  (:class:`SyncGroupWriter` on SQLite's writer thread, :class:`PgGroupWriter`
  on PostgreSQL). Its result comes back after the commit.
- ``reader()`` (ORM) and ``connection()`` (Core, for hot reads): reads only.
- ``migrate()`` for the schema, ``checkpoint()`` and ``vacuum()`` for
  maintenance after personal data is erased.

Nothing else writes: no code outside this module takes ``engine`` to write
around these (a write that bypassed ``transaction()`` on SQLite would bypass
the process's write lock too); the tests use it to play another client.

SQLite is opened with WAL, foreign keys, ``secure_delete`` (erased rows are
overwritten with zeros, not left in free pages) and a busy timeout. PostgreSQL
goes through asyncpg. Migrations are Alembic's, run from ``serve`` (in the
parent process, before any worker starts) and by the test fixtures.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import re
import threading
from contextvars import ContextVar
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker,
                                    create_async_engine)

from . import search

log = logging.getLogger("jutella")
MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
_in_transaction: ContextVar[bool] = ContextVar("jutella_in_transaction", default=False)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
)
DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds to reach PostgreSQL before a request is refused
DEFAULT_VACUUM_WAIT = 30.0  # seconds Database.vacuum waits for other sessions' older snapshots

# PostgreSQL, for Database.vacuum. The next transaction id not yet handed out: a transaction that
# committed before this was read is older; a session whose snapshot (backend_xmin) or own
# transaction (backend_xid) is older than it may still see rows that transaction deleted, and
# VACUUM keeps those ("dead but not yet removable"). xid is 32-bit and only compared with =, so
# "older" is "greater age()" (the same base within one statement).
_NEXT_XID = text("SELECT CAST(pg_snapshot_xmax(pg_current_snapshot()) AS xid)")
_OLDER_SNAPSHOTS = text("""
SELECT format('pid %s (%s)', pid, coalesce(nullif(application_name, ''), backend_type))
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
   AND (datname = current_database() OR backend_type = 'walsender')
   AND pid NOT IN (SELECT pid FROM pg_stat_progress_vacuum)  -- a VACUUM's snapshot holds nothing back
   AND (age(backend_xmin) > age(CAST(:h AS xid)) OR age(backend_xid) > age(CAST(:h AS xid)))
UNION ALL
SELECT format('prepared transaction %s', gid) FROM pg_prepared_xacts
 WHERE database = current_database() AND age(transaction) > age(CAST(:h AS xid))
UNION ALL
SELECT format('replication slot %s', slot_name) FROM pg_replication_slots
 WHERE age(xmin) > age(CAST(:h AS xid))
""")
# after a VACUUM, the row versions it had to keep (its own count, in the statistics it reports at its end)
_DEAD_VERSIONS = text("""
SELECT coalesce(sum(n_dead_tup), 0) > 0 FROM pg_stat_all_tables
 WHERE relid = CAST(:t AS regclass)
    OR relid = (SELECT reltoastrelid FROM pg_class WHERE oid = CAST(:t AS regclass))
""")


class StorageFault(Exception):
    """The database cannot take a write (or answer at all) right now: SQLite's
    write lock is held elsewhere beyond the busy timeout ("locked"), the disk
    or the database's size limit is full ("full"), or PostgreSQL cannot be
    reached ("unavailable"). Nothing of the failed unit of work was stored,
    with one exception said in its text: a group-committed write whose batch
    was still running when the database closed (``_GroupCommit.stop``) may or
    may not have been committed (a chat message's resend with the same client
    id is recognised either way)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


# SQLite's messages for the faults that pass (sqlite3 puts them in str(exc)).
_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
_FULL = ("database or disk is full", "disk i/o error")


def storage_fault(exc: BaseException) -> StorageFault | None:
    """Classify an exception from the database layer; None if it is not a
    fault of the storage itself (a bug, a constraint, a bad request)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError, TimeoutError as PoolTimeout

    if isinstance(exc, StorageFault):
        return exc
    if isinstance(exc, IntegrityError):
        return None
    # an error while cleaning up after a fault (a failed ROLLBACK TO SAVEPOINT
    # after SQLite rolled the transaction back) is that fault
    context = exc.__context__
    if context is not None and context is not exc and isinstance(context, Exception) and not isinstance(
            context, IntegrityError):
        inner = storage_fault(context)
        if inner is not None:
            return inner
    text_ = str(getattr(exc, "orig", None) or exc).lower()
    if isinstance(exc, DBAPIError) or type(exc).__module__.startswith(("sqlite3", "asyncpg")):
        if any(m in text_ for m in _LOCKED):
            return StorageFault("locked", "database is locked")
        if any(m in text_ for m in _FULL):
            return StorageFault("full", "database or disk is full")
        if "no space left on device" in text_ or "could not extend file" in text_ or "disk full" in text_:
            return StorageFault("full", "disk full")
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connection_error(exc):
            return StorageFault("unavailable", "connection to the database lost")
        return None
    if isinstance(exc, PoolTimeout):
        return StorageFault("unavailable", "no database connection free in time")
    # A bare OSError or TimeoutError is the database's only inside a database
    # block: faults() decides that, not this function (a file a CLI command
    # writes, say, is not the database).
    return None


_CONNECTION_ERRORS = ("ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError",
                      "ConnectionRejectionError", "AdminShutdownError", "CrashShutdownError",
                      "TooManyConnectionsError")


def _is_connection_error(exc: BaseException | None) -> bool:
    """A lost or refused connection somewhere in the chain (the driver's
    exception, the adapter's wrapper, their causes)."""
    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, (OSError, TimeoutError)):
            return True
        name, module = type(exc).__name__, type(exc).__module__
        if name in _CONNECTION_ERRORS or ("asyncpg" in module and name in ("InterfaceError", "InternalClientError")
                                          and "connection" in str(exc).lower()):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


@asynccontextmanager
async def faults() -> AsyncIterator[None]:
    """Turn the storage's faults inside the block into :class:`StorageFault`
    (whatever the driver raised: sqlite3's OperationalError, asyncpg's lost
    connection, a refused TCP connect), so the web layer maps them in one place."""
    try:
        yield
    except StorageFault:
        raise
    except Exception as exc:
        _raise_as_fault(exc)


def _raise_as_fault(exc: Exception) -> NoReturn:
    """Raise ``exc`` as a :class:`StorageFault` when it is one of the storage's
    faults, else as it is (faults() and write_core's inlined copy of it)."""
    fault = _as_fault(exc)
    if fault is exc:
        raise exc
    raise fault from exc


def _as_fault(exc: Exception) -> Exception:
    """``exc`` as the StorageFault it is, or ``exc`` itself when it is none."""
    fault = storage_fault(exc)
    if fault is None and isinstance(exc, (OSError, TimeoutError)):
        # asyncpg raises the socket's own error when it cannot connect
        fault = StorageFault("unavailable", type(exc).__name__)
    return exc if fault is None else fault


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def email_hash(email: str | None) -> str | None:
    """SHA-256 of a normalised address: the register's key for a person named
    by email (privacy.subjects.email_hash is this function)."""
    if email is None:
        return None
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


def configure_sqlite(sync_engine, begin: str = "BEGIN", busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, *,
                     raw_begin: bool = False) -> None:
    """The pragmas on every new connection, and SQLAlchemy's documented recipe
    for the sqlite3 module: SQLAlchemy, not the module, decides when a
    transaction begins (``begin``), so SAVEPOINTs work. ``busy_timeout_ms``:
    how long a write waits for another process's write lock before it fails
    with "database is locked" (a :class:`StorageFault`). ``raw_begin``: the
    engine's connections are ``sqlite3``'s own (the writer thread's): the
    BEGIN goes to the driver directly instead of through SQLAlchemy's
    statement execution (once per batch; the same statement, and a
    failure is the driver's error, which storage_fault classifies the same)."""

    @event.listens_for(sync_engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
        # chat/access.py's restriction by email compares hashes in SQL
        dbapi_conn.create_function("jutella_email_hash", 1, email_hash, deterministic=True)

    @event.listens_for(sync_engine, "begin")
    def _begin(conn) -> None:  # pragma: no cover - trivial
        # A write transaction asks for "BEGIN IMMEDIATE" (Database.transaction):
        # a deferred one that reads and then writes fails at once with
        # SQLITE_BUSY, without waiting, when another connection (the writer
        # thread, another process) committed in between.
        statement = conn.get_execution_options().get("sqlite_begin", begin)
        if raw_begin:
            conn.connection.dbapi_connection.execute(statement).close()
        else:
            conn.exec_driver_sql(statement)


def create_engine(url: str, *, pool_size: int = 10, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                  connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        configure_sqlite(engine.sync_engine, busy_timeout_ms=busy_timeout_ms)
        return engine
    # pool_pre_ping: a pooled connection that died in an outage is replaced
    # on its next checkout, so the pool recovers by itself when PostgreSQL
    # is back; the connect timeout bounds how long a request waits meanwhile.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               pool_timeout=connect_timeout * 2, connect_args={"timeout": connect_timeout})


class Database:
    """The engine and a session factory; one per application.

    SQLite has one writer at a time. Rather than let concurrent writers wait on
    SQLite's busy handler (which sleeps in growing steps), this process
    serialises its write transactions with an asyncio lock, and the hot path
    (chat messages) goes through :meth:`write_core`, which gathers what is
    pending into one transaction: one commit, one fsync, for many messages
    (group commit). Nothing is acknowledged before that commit returns.
    """

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, session_info: dict[str, Any] | None = None,
                 workers: int = 1):
        self.url = url
        self.workers = workers  # worker processes on this host (PostgreSQL's batches in flight: PgGroupWriter)
        self.busy_timeout_ms = busy_timeout_ms
        self.connect_timeout = connect_timeout
        self.engine = create_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms,
                                    connect_timeout=connect_timeout)
        # ``session_info``: what every session carries in ``session.info`` (the
        # audit log's key and checkpoint, accounts/audit_anchor.py)
        self.session_info = session_info or {}
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=self.session_info)
        self._write_lock: asyncio.Lock | None = None
        self._sync_writer: SyncGroupWriter | None = None
        self._pg_writer: PgGroupWriter | None = None
        # how long vacuum() waits for other sessions' older snapshots before it VACUUMs anyway
        self.vacuum_wait = DEFAULT_VACUUM_WAIT

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back on error.
        A fault of the storage (locked, full, unreachable) comes out as a
        :class:`StorageFault`; nothing of the block is stored then."""
        if _in_transaction.get():
            # Opening a second write transaction inside one would wait for
            # itself forever on SQLite; fail loudly instead.
            raise RuntimeError("a write transaction was opened inside another")
        token = _in_transaction.set(True)
        try:
            async with faults():
                if self.dialect == "sqlite":
                    async with self._lock():
                        async with self._sessions() as session:
                            async with session.begin():
                                await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
                                yield session
                    return
                async with self._sessions() as session:
                    async with session.begin():
                        yield session
        finally:
            _in_transaction.reset(token)

    async def write_core(self, fn: Callable[[Connection], T], *, lock: int | None = None,
                         quick: Quick | None = None) -> T:
        """The hot path: run a *synchronous* function of SQLAlchemy Core
        statements in one transaction and return its result after the commit.

        On SQLite, a single writer thread with its own connection runs every
        pending call in one transaction: one thread hop and one fsync per batch
        instead of one hop per statement. On PostgreSQL the pending calls
        likewise share one transaction on an asyncpg connection (through
        ``run_sync``; the hot statements, ``store/prepared.py``, on asyncpg
        itself): one BEGIN, one COMMIT and one WAL flush for the batch
        (:class:`PgGroupWriter`).

        ``lock``: the conversation whose row ``fn`` locks (PostgreSQL runs a
        batch's calls in ascending order of it, so two batches in flight
        take their row locks in the same order and cannot deadlock on them).

        ``quick``: the same write as one statement, for the common case
        (PostgreSQL runs the batch's quick writes together in one round trip
        and one commit, and ``fn`` only for those it says it did not do;
        SQLite always runs ``fn``). Both must give the same result."""
        # faults() written out: an async context manager (a generator, its
        # frame and two awaits) per chat message showed in the profile
        try:
            writer = self._sync_writer or self._pg_writer
            if writer is None:
                if self.engine.dialect.name == "sqlite":
                    writer = self._sync_writer = SyncGroupWriter(self)
                else:
                    writer = self._pg_writer = PgGroupWriter(self)
            return await writer.submit(fn, lock, quick)
        except StorageFault:
            raise
        except Exception as exc:
            _raise_as_fault(exc)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with faults():
            async with self._sessions() as session:
                yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for hot reads (no ORM session to build: a
        reconnecting client's catch-up is one of these per conversation)."""
        async with faults():
            async with self.engine.connect() as conn:
                yield conn

    async def ping(self, timeout: float | None = None) -> bool:
        """Can the database answer a query? Bounded in time: a database that
        hangs counts as down after ``timeout`` seconds (the connect timeout)."""

        async def one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(one(), timeout or self.connect_timeout)
            return True
        except Exception:
            return False

    async def checkpoint(self) -> None:
        """Fold SQLite's WAL into the main file (after an erasure, say)."""
        if self.dialect == "sqlite":
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def vacuum(self, tables: Sequence[str]) -> list[str]:
        """PostgreSQL: VACUUM the tables (after an erasure), so dead row
        versions do not linger in their files (nor in their TOAST tables').
        VACUUM cannot run inside a transaction, hence a connection in
        autocommit of its own.

        VACUUM keeps, silently, every dead row version that a transaction
        still open elsewhere can see: another host's, another worker's, an
        operator's ``psql``. So it first waits, up to ``vacuum_wait`` seconds,
        until no other session of the database holds a snapshot or a
        transaction id older than this call (polling ``pg_stat_activity``; no
        lock is held meanwhile, chat traffic goes on), and then VACUUMs, after
        which nothing the caller deleted before the call is left. If the
        bound passes it VACUUMs anyway, logs a warning naming the sessions
        and the tables that still hold dead row versions, and returns those
        tables (empty: none; docs/privacy.md, "VACUUM waits for older
        sessions")."""
        if self.dialect == "sqlite":
            return []
        async with faults():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                # every transaction that can see rows deleted before now has an xid or xmin below this
                horizon = (await conn.execute(_NEXT_XID)).scalar_one()
                holders = await self._older_snapshots(conn, horizon)
                for table in tables:
                    await conn.execute(text(f"VACUUM {table}"))  # table names from jutella's code, never input
                if not holders:
                    return []
                kept = [t for t in tables if (await conn.execute(_DEAD_VERSIONS, {"t": t})).scalar_one()]
                if kept:  # (none: those sessions ended before the VACUUMs began)
                    log.warning("VACUUM after deleting personal data ran after waiting %.0f s while older database "
                                "sessions were still open (%s); dead row versions remain in: %s. They go with the "
                                "next VACUUM of those tables once those sessions end", self.vacuum_wait,
                                "; ".join(holders), ", ".join(kept))
                return kept

    async def _older_snapshots(self, conn: AsyncConnection, horizon: int) -> list[str]:
        """Wait (bounded by ``vacuum_wait``) until no other session can see a
        row deleted before ``horizon``; return those that still can (empty
        when none is left)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.vacuum_wait
        pause = 0.01
        announced = False
        while True:
            holders = [row[0] for row in await conn.execute(_OLDER_SNAPSHOTS, {"h": horizon})]
            left = deadline - loop.time()
            if not holders or left <= 0:
                return holders
            if not announced:
                announced = True
                log.info("VACUUM after deleting personal data waits (up to %.0f s) for older database sessions "
                         "to end: %s", self.vacuum_wait, "; ".join(holders))
            await asyncio.sleep(min(pause, left))  # polled: PostgreSQL announces no snapshot's end
            pause = min(pause * 2, 0.25)

    async def migrate(self) -> None:
        async with faults():
            if await self._at_head():
                return  # nothing to do, and Alembic (a second of CPU to import and read) is not loaded
            if self.dialect != "sqlite":
                async with self.engine.begin() as conn:
                    await conn.run_sync(_upgrade)
                return
            async with self.engine.connect() as conn:
                await conn.run_sync(_upgrade_sqlite)

    async def _at_head(self) -> bool:
        """Is the schema already the newest migration's? (Every server start
        and CLI command migrates; almost always there is nothing to do.)"""
        head = head_revision()
        if head is None:
            return False
        async with self.engine.connect() as conn:
            return await _version_num(conn) == head

    async def dispose(self) -> None:
        """Close the writers (every write still waiting gets a StorageFault)
        and the engine's connections. The Database stays usable: a later
        write_core starts a new writer."""
        writers = [w for w in (self._sync_writer, self._pg_writer) if w is not None]
        self._sync_writer = self._pg_writer = None
        for writer in writers:
            await writer.stop()
        await self.engine.dispose()


@dataclass(frozen=True, slots=True)
class Quick:
    """A write's one-statement form (PostgreSQL): ``statement`` (a Prepared
    that returns exactly one row each time) with ``params``; ``done`` turns
    that row into the write's result. A row whose ``key`` column is NULL
    means "not done here, nothing written": the write's function runs
    instead (a resend, a conversation to start). ``seen``, if given, is
    called first with every row, done or not (what the statement saw on the
    way, e.g. chat/actions.py's hint of which statement to offer next). See
    PgGroupWriter._quick."""

    statement: Any  # store.prepared.Prepared
    params: dict[str, Any]
    done: Callable[[Any], Any]
    key: str
    seen: Callable[[Any], None] | None = None


@dataclass(slots=True)
class Job:
    """One write_core call waiting for its batch."""

    fn: Callable[[Connection], Any]  # run on the writer's connection, inside the batch's transaction
    future: asyncio.Future  # its caller waits here for (result, exception)
    lock: int | None = None  # the conversation whose row fn locks (PgGroupWriter's batch order)
    quick: Quick | None = None  # its one-statement form, tried first on PostgreSQL


# What a write still waiting when its writer stops gets: nothing of it ran.
CLOSING = "the database is closing; the write was not stored"
# ... and what one whose batch was running gets, if that batch does not end
# within STOP_GRACE: its COMMIT may or may not have happened.
CLOSED_IN_FLIGHT = "the database closed while the write's batch was running; it may or may not be stored"


class _GroupCommit:
    """What both group-commit writers share: write_core calls wait in
    ``pending``; one task takes up to MAX_BATCH of them at a time and starts
    them as one batch on a task of its own (``_batch``, in one transaction:
    run_batch), at most ``in_flight`` batches at once, and each caller gets its
    outcome. Subclasses say how a batch runs.

    ``stop`` answers every caller: those still pending get a StorageFault at
    once; batches already running get STOP_GRACE seconds to end with their
    real outcome, then are cancelled and their callers get a StorageFault."""

    MAX_BATCH = 1000
    IN_FLIGHT = 1
    STOP_GRACE = 2.0  # seconds

    def __init__(self, in_flight: int | None = None) -> None:
        self.pending: list[Job] = []
        self.wake = asyncio.Event()
        self.stopped = False
        self.in_flight = in_flight or self.IN_FLIGHT  # batches running at once at most
        self._slots = asyncio.Semaphore(self.in_flight)
        self._running: set[asyncio.Task] = set()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, fn: Callable[[Connection], T], lock: int | None = None, quick: Quick | None = None) -> T:
        if self.stopped:
            raise StorageFault("unavailable", CLOSING)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.append(Job(fn, future, lock, quick))
        self.wake.set()
        return await future

    async def stop(self) -> None:
        self.stopped = True
        self.task.cancel()  # no batch starts after this
        await asyncio.gather(self.task, return_exceptions=True)
        jobs, self.pending = self.pending, []
        fail(jobs, StorageFault("unavailable", CLOSING))
        if self._running:
            _done, late = await asyncio.wait(self._running, timeout=self.STOP_GRACE)
            for task in late:
                task.cancel()  # _commit answers its callers
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                await self._slots.acquire()
                jobs, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH:]
                self._start(jobs)

    def _start(self, jobs: list[Job]) -> None:
        task = asyncio.get_running_loop().create_task(self._commit(jobs))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _commit(self, jobs: list[Job]) -> None:
        try:
            outcomes = await self._batch(jobs)
        except asyncio.CancelledError:  # stop() gave up waiting for this batch
            fail(jobs, StorageFault("unavailable", CLOSED_IN_FLIGHT))
            raise
        except Exception as exc:  # the commit failed: nothing in the batch is stored
            outcomes = [(None, exc)] * len(jobs)
        settle(jobs, outcomes)

    async def _batch(self, jobs: list[Job]) -> list[tuple[Any, Any]]:
        raise NotImplementedError


class SyncGroupWriter(_GroupCommit):
    """SQLite's writer thread: batches of Core functions, one transaction each."""

    def __init__(self, db: Database):
        from sqlalchemy import create_engine as create_sync_engine
        from sqlalchemy.pool import StaticPool

        self.db = db
        url = db.url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://")
        self.engine = create_sync_engine(url, poolclass=StaticPool,
                                         connect_args={"check_same_thread": False,
                                                       "timeout": db.busy_timeout_ms / 1000})
        # the writer takes the write lock up front
        configure_sqlite(self.engine, "BEGIN IMMEDIATE", busy_timeout_ms=db.busy_timeout_ms, raw_begin=True)

        self.executor = _WriterThread("jutella-sqlite-writer")
        self._conn: Connection | None = None  # the writer thread's one connection, kept between batches
        self._writes = 0  # writes since the full-text index was last brought up to date
        super().__init__()

    def _start(self, jobs: list[Job]) -> None:
        # The full-text index in batches (store/search.py, migration 0025): every INDEX_EVERY
        # writes, one more job in this batch indexes what is above the mark, in the batch's
        # own transaction (no commit of its own): one FTS5 segment for hundreds of messages.
        self._writes += len(jobs)
        if self._writes >= search.INDEX_EVERY:
            self._writes = 0
            done: asyncio.Future = asyncio.get_running_loop().create_future()
            done.add_done_callback(_index_outcome)
            jobs.append(Job(search.index_tail, done))
        super()._start(jobs)

    async def stop(self) -> None:
        await super().stop()
        # A batch cancelled by stop may still be running on the thread (a
        # thread cannot be cancelled; SQLite's busy timeout bounds it): wait
        # for it off the event loop, then close the thread's connection.
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self.executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    def _connection(self) -> Connection:
        """Kept open: a pool checkout, reset and return per batch cost as much
        as a small batch's statements (docs/performance.md)."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        return self._conn

    async def _batch(self, jobs: list[Job]) -> list[tuple[Any, Any]]:
        async with self.db._lock():  # no other write transaction of this process meanwhile
            return await self.executor.run(lambda: run_batch(self._connection(), jobs))


class _WriterThread:
    """The writer's one thread, fed through a queue: a batch in, its outcome
    back on the event loop through ``call_soon_threadsafe``. What
    ``run_in_executor`` on a one-thread ThreadPoolExecutor did, without its
    second (concurrent) future, the callbacks chaining the two, and the
    pool's bookkeeping per call: 31-32 us of CPU per hand-off there, 20-21
    here (docs/performance.md). As with the executor, a call whose awaiting
    task is cancelled still runs to its end on the thread; ``shutdown``
    waits for everything queued before it."""

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[], T]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return future

    def shutdown(self, wait: bool = True) -> None:
        self._queue.put(None)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, future = item
            try:
                outcome = (fn(), None)
            except BaseException as exc:  # handed to the caller, as the executor did
                outcome = (None, exc)
            try:
                future.get_loop().call_soon_threadsafe(_settle_future, future, outcome)
            except RuntimeError:  # the event loop is closed: nobody waits any more
                pass


def _settle_future(future: asyncio.Future, outcome: tuple[Any, BaseException | None]) -> None:
    if future.done():  # its caller was cancelled
        return
    result, exc = outcome
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _index_outcome(future: asyncio.Future) -> None:
    """The writer's own index job: nobody waits for it; a failure is logged
    (the index stays behind its mark, and the next job or housekeeping round
    tries again; search still finds what is above the mark)."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("full-text index not brought up to date: %s", exc)


def run_batch(conn: Connection, jobs: list[Job]) -> list[tuple[Any, Any]]:
    """Run a batch of jobs in one transaction on ``conn``; (result, exception)
    for each. Optimistically without a SAVEPOINT per job (two statements
    each); if any job raises, the transaction is rolled back and the whole
    batch runs again with a SAVEPOINT per job, so that the failing job's
    writes are undone and the others stand. Jobs are plain functions of the
    connection, so running one twice is safe when the first run was rolled
    back. A storage fault or a deadlock fails the whole batch (raised)."""
    try:
        with conn.begin():
            return [(job.fn(conn), None) for job in jobs]
    except Exception as exc:  # nothing of it was committed
        if storage_fault(exc) is not None or _is_deadlock(exc):
            raise
        if len(jobs) == 1:
            return [(None, exc)]
    outcomes: list[tuple[Any, Any]] = []
    with conn.begin():
        for job in jobs:
            try:
                with conn.begin_nested():
                    outcomes.append((job.fn(conn), None))
            except Exception as exc:  # this job's savepoint is rolled back; the others stand
                if storage_fault(exc) is not None or _is_deadlock(exc) or not _sqlite_in_transaction(conn):
                    # SQLite may have rolled back the whole transaction
                    # (SQLITE_FULL, SQLITE_BUSY): nothing in this batch
                    # can be trusted to commit, so all of it fails (a
                    # later SAVEPOINT would silently begin a new one).
                    raise
                outcomes.append((None, exc))
    return outcomes


def _lock_order(job: Job) -> tuple[bool, int]:
    return (job.lock is None, job.lock or 0)


def settle(jobs: Sequence[Job], outcomes: list[tuple[Any, Any]]) -> None:
    """Hand each job's (result, exception) to its waiting caller (unless it
    gave up)."""
    for job, (result, exc) in zip(jobs, outcomes):
        future = job.future
        if future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


def fail(jobs: Iterable[Job], exc: BaseException) -> None:
    """Fail every job still waiting with ``exc``."""
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)


def _is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL chose this transaction to break a deadlock (40P01) or a
    serialization conflict (40001): nothing of it was stored; run it again."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return code in ("40P01", "40001")


# PostgreSQL write batches in flight at once from one host, shared among its
# worker processes (``batches_in_flight``).
HOST_BATCHES_IN_FLIGHT = 2


def batches_in_flight(workers: int) -> int:
    """How many write batches each of a host's ``workers`` processes runs at
    once on PostgreSQL: HOST_BATCHES_IN_FLIGHT shared out, at least one each.
    One process runs two, so that a batch can start while the one before
    waits for its COMMIT (one at a time made the round trips the limit, and a
    slow batch would hold up every write behind it); two processes run one
    each, so that the host still has two in flight. With two each, the same
    writes came in twice as many smaller transactions, each with its own
    commit, and four backends competed for this machine's two cores: at a
    fixed 3,000 messages/s on two workers PostgreSQL spent 0.160 ms a
    delivered message instead of 0.139 and p99 was 36-63 ms instead of 22-26
    (docs/performance.md, "Session 15"). A slow batch now holds up its own
    worker's writes only, not the other's."""
    return max(1, HOST_BATCHES_IN_FLIGHT // max(1, workers))


class PgGroupWriter(_GroupCommit):
    """PostgreSQL's group commit: the write_core calls pending at the same
    moment run in one transaction on one connection (run_batch), at most
    ``in_flight`` batches at a time per process (``batches_in_flight``: two
    when the process is its host's only worker). Each message then costs its own
    statements only, not a pool checkout, BEGIN, COMMIT and WAL flush of its
    own. Two batches (of one worker or of two) may lock the same
    conversations in opposite orders; PostgreSQL then cancels one of them as
    a deadlock, and that batch runs again. A busy writer keeps its
    connections between batches (``_checkout``)."""

    MAX_BATCH = 200
    ATTEMPTS = 3
    KEEP_IDLE = 1.0  # seconds a connection is kept for the next batch (see _checkout)

    def __init__(self, db: Database):
        self.db = db
        self._idle: list[tuple[AsyncConnection, float]] = []  # (connection, when its last batch ended)
        super().__init__(batches_in_flight(db.workers))

    def _start(self, jobs: list[Job]) -> None:
        # Two batches in flight that lock the same two conversations in
        # opposite orders deadlock, and PostgreSQL takes deadlock_timeout
        # (1 s) to notice: the 1-worker benchmark's p99 showed it. Jobs in one
        # batch are concurrent requests (one connection awaits each write
        # before its next), so any order is a valid one: lock order it is,
        # stable for jobs on the same conversation, unknown locks last.
        jobs.sort(key=_lock_order)
        super()._start(jobs)

    async def _batch(self, jobs: list[Job]) -> list[tuple[Any, Any]]:
        """The batch's quick writes first, each statement's together
        (``_quick``, whose callers have their answers as soon as it
        commits, whatever happens to the rest), then the rest in one
        transaction (``_transaction``)."""
        rest = await self._quick(jobs)
        outcomes: list[tuple[Any, Any]] = [(None, None)] * len(jobs)  # the quick ones are answered already
        if rest:
            for i, outcome in zip(rest, await self._transaction([jobs[i] for i in rest])):
                outcomes[i] = outcome
        return outcomes

    async def _quick(self, jobs: list[Job]) -> list[int]:
        """Run the jobs that have a one-statement form (Quick), all those of
        one statement in one round trip: asyncpg's ``fetchmany``, the
        extended protocol's executions before one Sync, one implicit
        transaction, so all of them commit or none does (then each runs its
        function). One round trip and one commit for the lot, instead of a
        BEGIN, two statements each and a COMMIT. Their callers are answered
        here, after that commit; the answer is the indexes of the jobs still
        to run, in order: those without a quick form and those whose row
        says the statement did not do them. A lost connection fails the
        batch as a failed transaction does."""
        groups: dict[Any, list[int]] = {}  # statement (a Prepared, by identity) -> its jobs' indexes
        rest: list[int] = []
        for i, job in enumerate(jobs):
            if job.quick is None:
                rest.append(i)
            else:
                groups.setdefault(job.quick.statement, []).append(i)
        if not groups:
            return rest
        conn = await self._checkout()
        try:
            for statement, indexes in groups.items():
                try:
                    rows = await statement.fetch_each(conn, [jobs[i].quick.params for i in indexes])
                except Exception as exc:
                    if not _refused(exc):
                        raise
                    rest.extend(indexes)  # none of them was stored (a resend racing in, a deadlock): the long way
                    continue
                if len(rows) != len(indexes):  # a quick statement that can give no row, or two: a bug, said loudly
                    raise RuntimeError(f"a quick statement gave {len(rows)} rows for {len(indexes)} writes")
                for i, row in zip(indexes, rows):
                    quick = jobs[i].quick
                    if quick.seen is not None:
                        try:
                            quick.seen(row)
                        except Exception:  # what it says is never a reason to fail writes already committed
                            log.exception("a quick write's seen() failed")
                    if getattr(row, quick.key) is None:
                        rest.append(i)
                        continue
                    try:
                        outcome = (quick.done(row), None)
                    except Exception as exc:  # stored; the caller hears what went wrong after
                        outcome = (None, exc)
                    settle([jobs[i]], [outcome])
        except BaseException:
            await _discard(conn)
            raise
        await self._checkin(conn)
        rest.sort()
        return rest

    async def _transaction(self, jobs: list[Job]) -> list[tuple[Any, Any]]:
        for attempt in range(self.ATTEMPTS):
            conn = await self._checkout()
            try:
                outcomes = await conn.run_sync(run_batch, jobs)
            except BaseException as exc:
                await _discard(conn)  # whatever state it is in, it is not kept (lost, cancelled mid-statement)
                if not isinstance(exc, Exception) or not _is_deadlock(exc) or attempt == self.ATTEMPTS - 1:
                    raise
                continue
            await self._checkin(conn)
            return outcomes
        raise AssertionError("unreachable")  # pragma: no cover

    async def _checkout(self) -> AsyncConnection:
        """The connection a batch runs on: one kept from a batch that ended less
        than KEEP_IDLE seconds ago, else one from the pool. The pool's
        pre-ping (BEGIN, a query, ROLLBACK: three round trips, and 13% of a
        worker's CPU on the message path) then runs once per busy spell
        instead of once per batch; a connection idle longer goes back to the
        pool, whose pre-ping finds a dead one, so an outage between spells is
        recovered from as before. A connection that fails a batch is never
        kept (``_batch``)."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn, since = self._idle.pop()
            if now - since <= self.KEEP_IDLE and not conn.closed and not conn.invalidated:
                return conn
            await conn.close()
        return await self.db.engine.connect()

    async def _checkin(self, conn: AsyncConnection) -> None:
        if self.stopped or conn.closed or conn.invalidated or conn.in_transaction():
            await conn.close()
        else:
            self._idle.append((conn, asyncio.get_running_loop().time()))

    async def stop(self) -> None:
        await super().stop()
        idle, self._idle = self._idle, []
        for conn, _since in idle:
            await conn.close()


def _refused(exc: Exception) -> bool:
    """PostgreSQL refused the statement (a constraint, a deadlock): its
    implicit transaction was rolled back and the connection is fine. Not a
    fault of the storage (full, shut down), nor a lost connection."""
    return (type(exc).__module__.startswith("asyncpg") and getattr(exc, "sqlstate", None) is not None
            and storage_fault(exc) is None)


async def _discard(conn: AsyncConnection) -> None:
    """Close a connection a batch failed on, without letting a failure to
    close it (a lost connection, a cancelled statement still in progress)
    hide the batch's own exception; one that cannot be closed is
    invalidated, so the pool never hands it out again."""
    try:
        await conn.close()
    except Exception:
        try:
            await conn.invalidate()
        except Exception as exc:  # already broken: the pool drops it either way
            log.debug("a failed batch's connection could not be invalidated: %s", type(exc).__name__)


def _sqlite_in_transaction(conn: Connection) -> bool:
    """Is the sqlite3 connection under ``conn`` still inside its transaction?"""
    try:
        return bool(conn.connection.dbapi_connection.in_transaction)
    except Exception:  # not a sqlite3 connection: assume it is
        return True


def head_revision() -> str | None:
    """The newest migration's revision, read from the files' ``revision`` and
    ``down_revision`` lines; None unless there is exactly one head (then
    ``migrate`` asks Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        rev = _REVISION_LINE.search(source)
        down = _DOWN_REVISION_LINE.search(source)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        if down.group(1) != "None":
            parents.add(down.group(1).strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


_REVISION_LINE = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION_LINE = re.compile(r"^down_revision\s*=\s*(None|'[^']+'|\"[^\"]+\")\s*$", re.M)


async def _version_num(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision; None for a database Alembic has not
    touched, or one with several revisions (branches)."""
    if conn.dialect.name == "sqlite":
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    else:
        exists = "SELECT 1 WHERE to_regclass('alembic_version') IS NOT NULL"
    if (await conn.execute(text(exists))).first() is None:
        return None
    rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    return rows[0][0] if len(rows) == 1 else None


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def alembic_to(revision: str, *, down: bool = False) -> Callable[[Any], None]:
    """For ``run_sync``: Alembic up (or ``down``) to ``revision`` on that connection."""
    def run(sync_conn) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    return run


_upgrade = alembic_to("head")


def _upgrade_sqlite(sync_conn) -> None:
    """The migrations on SQLite with foreign keys off: a migration that
    rebuilds a table (0009) drops the old one, and with them on that would run
    every ON DELETE CASCADE on its rows. The pragma only takes effect outside
    a transaction, so it is set on the driver's connection before the
    migrations' transaction begins; they check the keys themselves
    (``PRAGMA foreign_key_check``) before committing. On again afterwards,
    whatever happened: the connection goes back to the pool."""
    raw = sync_conn.connection  # the pooled DBAPI connection; no transaction begins here
    cursor = raw.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
        with sync_conn.begin():
            _upgrade(sync_conn)
    finally:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
