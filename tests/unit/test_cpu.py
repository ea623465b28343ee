"""jutella/cpu.py: a pool takes at most workers + queue jobs, refuses the next
one at once, and gives a place back when a job ends, not when its caller
stops waiting."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jutella.cpu import Busy, Pool
from tests.conftest import run_async


def test_full_means_busy_at_once_and_places_come_back_when_jobs_end():
    async def main():
        pool = Pool("t", 1, 1)
        gate = threading.Event()
        running = asyncio.ensure_future(pool.run(gate.wait))
        queued = asyncio.ensure_future(pool.run(lambda: 42))
        await asyncio.sleep(0)
        with pytest.raises(Busy) as refused:
            await pool.run(lambda: 1)
        assert refused.value.retry_after >= 1 and pool.taken == 2
        # the queued job's caller leaves: its job is cancelled before it starts, and its place comes back
        queued.cancel()
        await asyncio.gather(queued, return_exceptions=True)
        assert pool.taken == 1
        # the running job's caller leaves: the job goes on, and keeps its place until it ends
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert pool.taken == 1
        gate.set()
        for _ in range(200):
            if pool.taken == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.taken == 0
        assert await pool.run(sum, [1, 2]) == 3
        pool.close()

    run_async(main())

