"""How often a queue's waiting visitors are told their places
(chat/queue.QueueWatch): the first change after a quiet spell at once, the
changes that follow within the interval together, once, when it has passed."""

from __future__ import annotations

import asyncio

from jutella.chat.queue import RECOMPUTE_INTERVAL, QueueWatch
from tests.conftest import run_async


def test_changes_are_told_at_once_then_together_once_per_interval():
    async def scenario():
        loop = asyncio.get_running_loop()
        watch = QueueWatch(interval=0.2)
        runs: list[tuple[int, float]] = []

        async def run(key: int) -> None:
            runs.append((key, loop.time()))

        start = loop.time()
        for _ in range(10):  # a burst in one queue
            watch.changed(3, run)
        watch.changed(0, run)  # another queue is its own
        for _ in range(100):  # a few turns of the loop, no time
            if len(runs) == 2:
                break
            await asyncio.sleep(0)
        first = list(runs)
        assert loop.time() - start < 0.2
        for _ in range(10):  # more of the burst, while the first is told
            watch.changed(3, run)
        await watch.settled()
        return start, first, runs

    start, first, runs = run_async(scenario())
    assert sorted(k for k, _ in first) == [0, 3]  # at once, each queue once
    assert [k for k, _ in runs].count(3) == 2  # twenty changes: told twice
    later = [t for k, t in runs if k == 3][1]
    assert later - start >= 0.2  # not before the interval passed
    assert RECOMPUTE_INTERVAL == 0.5
