"""The hub: "look, something new" notifications from actions to connections.

Actions publish after their transaction commits; every connection subscribed
to the channel gets the event. The in-memory hub serves one process; the Redis
hub (same interface) carries events between workers. The database stays the
source of truth: a subscriber that misses an event catches up from it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

Event = dict[str, Any]


class Subscription:
    def __init__(self, hub: "MemoryHub", channels: set[str]):
        self._hub = hub
        self.channels = channels
        self.queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(maxsize=10_000)

    def deliver(self, channel: str, event: Event) -> None:
        try:
            self.queue.put_nowait((channel, event))
        except asyncio.QueueFull:  # a stuck consumer must not stall the publisher
            pass

    def add(self, channel: str) -> None:
        self.channels.add(channel)
        self._hub._subs[channel].add(self)

    def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        self._hub._subs[channel].discard(self)

    async def get(self) -> tuple[str, Event]:
        return await self.queue.get()


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
    async def subscribe(self, channels: Iterable[str]) -> AsyncIterator[Subscription]:
        sub = Subscription(self, set())
        for channel in channels:
            sub.add(channel)
        try:
            yield sub
        finally:
            for channel in list(sub.channels):
                sub.remove(channel)
            for channel in [c for c, subs in self._subs.items() if not subs]:
                self._subs.pop(channel, None)
