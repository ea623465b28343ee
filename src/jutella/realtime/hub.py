"""The hub: "look, something new" notifications from actions to connections.

Actions publish after their transaction commits; every connection subscribed
to the channel gets the event. The in-memory hub serves one process; the Redis
hub (same interface) carries events between workers. The database stays the
source of truth: a subscriber that misses an event catches up from it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

Event = dict[str, Any]


class Subscription:
    """One connection's channels and the events waiting for it.

    A plain deque plus a wake-up callback rather than an asyncio.Queue: a
    connection's one outbound task waits on a single event for both hub
    events and frames to write (see realtime/endpoints.py), and ten thousand
    idle connections should not each carry a queue's futures and locks."""

    LIMIT = 10_000

    def __init__(self, hub: "MemoryHub", channels: set[str], notify: Callable[[], None] | None = None):
        self._hub = hub
        self.channels = channels
        self.pending: deque[tuple[str, Event]] = deque()
        self.overflowed = False  # the consumer fell LIMIT events behind at least once (it resynchronised)
        self._notify = notify
        self._event: asyncio.Event | None = None

    def deliver(self, channel: str, event: Event) -> None:
        if len(self.pending) >= self.LIMIT:
            # A consumer this far behind (a console during a burst of ten
            # thousand queue updates) must not hold the publisher or grow
            # without bound: forget what waits and have it catch up from the
            # database, as after a lost Redis connection.
            self.pending.clear()
            self.pending.append(("_hub", {"type": "_resync"}))
            self.overflowed = True
        self.pending.append((channel, event))
        if self._notify is not None:
            self._notify()
        elif self._event is not None:
            self._event.set()

    def add(self, channel: str) -> None:
        self.channels.add(channel)
        self._hub._subs[channel].add(self)

    def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        self._hub._subs[channel].discard(self)

    async def get(self) -> tuple[str, Event]:
        """The next event (for consumers without a notify callback)."""
        while not self.pending:
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()
        return self.pending.popleft()


class MemoryHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def healthy(self) -> bool:
        return True

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver_local(channel, event)

    def deliver_local(self, channel: str, event: Event) -> None:
        for sub in list(self._subs.get(channel, ())):
            sub.deliver(channel, event)

    @asynccontextmanager
    async def subscribe(self, channels: Iterable[str],
                        notify: Callable[[], None] | None = None) -> AsyncIterator[Subscription]:
        sub = Subscription(self, set(), notify)
        for channel in channels:
            sub.add(channel)
        try:
            yield sub
        finally:
            for channel in list(sub.channels):
                sub.remove(channel)
            for channel in [c for c, subs in self._subs.items() if not subs]:
                self._subs.pop(channel, None)
