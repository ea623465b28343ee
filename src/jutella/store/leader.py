"""Which process is the cluster's housekeeper (docs/housekeeping.md).

Some periodic work must run once per cluster, not once per worker: sending
the outbox, the daily retention run, closing idle conversations (and webhook
delivery). One process at a time is the *housekeeper*; every such job asks
:attr:`Housekeeper.active` (through ``Runtime.is_housekeeper()``) at the start
of each round and does nothing while it is False.

PostgreSQL: the housekeeper is the process holding a session-level advisory
lock (``pg_try_advisory_lock``) on a connection of its own, outside the pool.
Every other process tries for it every ``TRY_SECONDS``. When the holder dies
(killed, host gone) PostgreSQL ends its session and so frees the lock, and
the next try of another process, on any host, takes it: a takeover within
about ``TRY_SECONDS`` after PostgreSQL notices (at once for a killed process,
whose socket the kernel closes). The holder checks its connection every
``TRY_SECONDS`` too; when the check fails or the connection closes it stops
being the housekeeper at once, before PostgreSQL can have handed the lock on.

SQLite: one host by construction. The lock is an exclusive ``flock`` on a
file beside the database, held by one process; the kernel frees it when that
process ends, so several workers of one ``jutella serve`` elect one too.

The work itself stays idempotent (mail rows are claimed with a token,
retention deletes what is past its date), so a takeover in the middle of a
round loses and doubles nothing; the lock only keeps the rounds from running
in several places at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("jutella.housekeeper")

#: how often a process tries for the lock, and how often the holder checks its connection
TRY_SECONDS = 1.0
#: the advisory lock's key: the same for every jutella process on the database
#: (advisory locks are per database, so another application's keys do not meet it)
LOCK_KEY = 0x6A7574656C6C61  # "jutella"
LOCK_FILE = "housekeeper.lock"


class Housekeeper:
    """Holds, or tries for, the housekeeping lock. ``on_acquire``: awaited
    each time this process becomes the housekeeper (the crash recovery of the
    work it now owns); ``on_change(active)``: told every change (metrics)."""

    def __init__(self, url: str, *, data_dir: Path | None = None, connect_timeout: float = 5.0,
                 on_acquire: Callable[[], Awaitable[Any]] | None = None,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.data_dir = data_dir
        self.connect_timeout = connect_timeout
        self.on_acquire = on_acquire
        self.on_change = on_change
        self._active = False
        self._conn: Any = None  # asyncpg connection holding the lock (PostgreSQL)
        self._fd: int | None = None  # the locked file (SQLite)
        self._task: asyncio.Task | None = None
        self._held = False  # the lock is ours (active once on_acquire has settled the previous one's work)

    @property
    def active(self) -> bool:
        """Is this process the housekeeper right now?"""
        return self._active

    # -- life ------------------------------------------------------------------------
    async def start(self) -> None:
        await self._try_once()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop trying and hand the lock over (released now, not when the process ends)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        was, held = self._active, self._held
        self._set(False)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                if held:
                    await asyncio.wait_for(conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY), 2)
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()  # the session ends, and the lock with it
        self._release_file()
        if was:
            log.info("housekeeper: handed over (pid %d)", os.getpid())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TRY_SECONDS)
            await self._try_once()

    async def _try_once(self) -> None:
        try:
            if self.sqlite:
                self._try_file()
            else:
                await self._try_pg()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: not the housekeeper until the next try works
            self._lost(f"{type(exc).__name__}: {exc}")
            return
        if self._held and not self._active:
            # the lock is ours: first settle what the previous housekeeper left, then act as one
            # (no round of this process's work runs before the settling is done)
            if self.on_acquire is not None:
                try:
                    await self.on_acquire()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the next try settles again, still holding the lock
                    log.warning("housekeeper: settling the previous housekeeper's work failed: %s",
                                type(exc).__name__)
                    return
            if self._held:  # the connection may have closed meanwhile
                self._set(True)

    def _set(self, active: bool) -> None:
        """``active`` False also means the lock is not held (any more)."""
        if not active:
            self._held = False
        if active == self._active:
            return
        self._active = active
        if active:
            log.info("housekeeper: this process is the housekeeper now (pid %d)", os.getpid())
        if self.on_change is not None:
            self.on_change(active)

    def _lost(self, why: str) -> None:
        if self._active:
            log.warning("housekeeper: no longer the housekeeper (pid %d): %s", os.getpid(), why)
        self._set(False)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.terminate()

    # -- PostgreSQL --------------------------------------------------------------------
    async def _connect(self) -> Any:
        import asyncpg
        from sqlalchemy.engine import make_url
        from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

        url = make_url(self.url).set(drivername="postgresql+asyncpg")
        _args, kwargs = PGDialect_asyncpg().create_connect_args(url)
        conn = await asyncpg.connect(**kwargs, timeout=self.connect_timeout,
                                     server_settings={"application_name": "jutella housekeeper"})
        # the connection closing for any reason ends the office at once, not at the next check
        conn.add_termination_listener(self._closed)
        return conn

    def _closed(self, conn: Any) -> None:
        if conn is self._conn:  # not an earlier connection closing late
            self._lost("its database connection closed")

    async def _try_pg(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            self._set(False)
            self._conn = await self._connect()
        if self._held:  # still holding it? a query that answers says the session is alive
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self.connect_timeout)
            return
        self._held = bool(await asyncio.wait_for(
            self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY), self.connect_timeout))

    # -- SQLite --------------------------------------------------------------------------
    def _try_file(self) -> None:
        import fcntl

        if self._fd is not None:
            self._held = True  # held until stop() or the process's end
            return
        base = self.data_dir or Path(self.url.split("///", 1)[-1]).parent
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return
        self._fd = fd
        self._held = True

    def _release_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor frees the flock
            self._fd = None
