"""The hub: "look, something new" notifications from actions to connections.

Actions publish after their transaction commits; every connection subscribed
to the channel gets the event. The in-memory hub serves one process; the Redis
hub (same interface) carries events between workers. The database stays the
source of truth: a subscriber that misses an event catches up from it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

Event = dict[str, Any]


class Subscription:
    """One connection's channels and the events waiting for it.

    A plain list plus a wake-up callback rather than an asyncio.Queue: a
    connection's one outbound task waits on a single event for both hub
    events and frames to write (see realtime/connection.py), and ten thousand
    idle connections should not each carry a queue's futures and locks (nor
    a deque's 624 bytes). It is its own ``async with`` (no generator frame
    kept for each connection's lifetime)."""

    LIMIT = 10_000

    def __init__(self, hub: "MemoryHub", channels: set[str], notify: Callable[[], None] | None = None):
        self._hub = hub
        self.channels = channels
        self.pending: list[tuple[str, Event]] = []
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

    def take(self, n: int) -> list[tuple[str, Event]]:
        """The next (at most) n waiting events, oldest first."""
        taken = self.pending[:n]
        del self.pending[:n]
        return taken

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._hub._unsubscribe(self)

    def add(self, channel: str) -> None:
        self.channels.add(channel)
        self._hub._subs[channel].add(self)

    def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        subs = self._hub._subs.get(channel)
        if subs is not None:
            subs.discard(self)
            if not subs:  # no channel outlives its last subscriber
                del self._hub._subs[channel]

    async def get(self) -> tuple[str, Event]:
        """The next event (for consumers without a notify callback)."""
        while not self.pending:
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()
        return self.pending.pop(0)


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

    def subscribe(self, channels: Iterable[str], notify: Callable[[], None] | None = None) -> Subscription:
        """``async with hub.subscribe(channels, notify) as sub``: subscribed
        from the call, unsubscribed when the block ends."""
        sub = Subscription(self, set(), notify)
        for channel in channels:
            sub.add(channel)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        for channel in list(sub.channels):
            sub.remove(channel)
