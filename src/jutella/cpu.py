"""Bounded pools for the CPU-heavy work, so that none of it runs on the event
loop and none of it waits in a queue without end (docs/security.md, "CPU-heavy
requests").

A :class:`Pool` has a fixed number of workers and a fixed number of places in
its queue. ``await pool.run(fn, *args)`` takes a place or, when every worker
and every queue place is taken, raises :class:`Busy` at once: the web layer
answers 503 with ``Retry-After`` (web/errors.py ``busy_error``). A place is
given back when the job has finished (or was cancelled before it started), not
when the caller stops waiting, so a client that hangs up cannot free a place
its job still holds.

Two pools, built from the settings in services.py:

- ``passwords``: threads. argon2-cffi releases the GIL while it hashes, so a
  hash on a worker thread leaves the event loop running.
- ``uploads``: processes (forkserver). Pillow holds the GIL for long stretches
  of some decoders (WebP: 1.5 s at a time for a 40-megapixel picture, measured
  here), so a thread would still stall the loop; and a hostile picture's
  memory (a gigabyte for 40 megapixels) belongs to the worker process, which
  the kernel may kill without taking the server with it. The functions sent
  there must be importable top-level ones taking and returning plain data
  (chat/filework.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")
RETRY_AFTER_SECONDS = 2


class Busy(Exception):
    """Every worker and queue place of a pool is taken: try again later."""

    def __init__(self, pool: str, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(f"the {pool} pool is full")
        self.pool = pool
        self.retry_after = retry_after


class Pool:
    """``workers`` threads (or processes) and at most ``queue`` jobs waiting for them."""

    def __init__(self, name: str, workers: int, queue: int, *, processes: bool = False):
        if workers < 1 or queue < 0:
            raise ValueError("a pool needs at least one worker and a queue of zero or more")
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self.processes = processes
        self._taken = 0
        self._lock = threading.Lock()
        self._executor: Executor | None = None  # made on first use: most runtimes never hash or decode

    @property
    def taken(self) -> int:
        """Jobs running or queued now."""
        return self._taken

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.processes:
                    self._executor = ProcessPoolExecutor(self.workers,
                                                         mp_context=multiprocessing.get_context("forkserver"))
                else:
                    self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"jutella-{self.name}")
            return self._executor

    def _release(self, _future: Any = None) -> None:
        with self._lock:
            self._taken -= 1

    def submit(self, fn: Callable[..., T], *args: Any):
        """Take a place and start ``fn(*args)`` on a worker (a concurrent
        future), or raise :class:`Busy`."""
        with self._lock:
            if self._taken >= self.capacity:
                raise Busy(self.name)
            self._taken += 1
        try:
            future = self._pool().submit(fn, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.processes:
            # a process pool starts its worker processes inside submit(),
            # waiting for each to be forked: not on the event loop
            future = await asyncio.to_thread(self.submit, fn, *args)
        else:
            future = self.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except BrokenExecutor:
            # a worker process died (killed for its memory, say): the jobs it
            # took down may be retried; the next job starts a fresh pool
            self._reset()
            raise Busy(self.name) from None

    def _reset(self) -> None:
        with self._lock:
            broken, self._executor = self._executor, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop taking work; queued jobs are cancelled, running ones finish."""
        self._reset()


def _default_passwords() -> Pool:
    return Pool("passwords", 2, 16)


def _default_uploads() -> Pool:
    return Pool("uploads", 1, 2, processes=True)


@dataclass
class CpuPools:
    """The running application's pools (``Runtime.cpu``)."""

    passwords: Pool = field(default_factory=_default_passwords)
    uploads: Pool = field(default_factory=_default_uploads)

    def close(self) -> None:
        self.passwords.close()
        self.uploads.close()
