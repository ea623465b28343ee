"""The hub across processes and hosts, through Redis pub/sub.

Every worker publishes each event once to the Redis channel ``<prefix>:events``
(prefixed with its own 16-byte origin id) and delivers it to its own
subscribers at once; every worker listens on that channel and delivers what
other workers published to its local subscribers. Its own messages come back
too and are recognised by the prefix without being decoded. Redis carries
notifications only: the database stays the source of truth.

When the connection to Redis drops, local delivery goes on, ``healthy`` turns
false (``/healthz`` says "degraded"), and the listener reconnects with
backoff. After reconnecting it tells every local connection to resynchronise
(``{"type": "_resync"}``): each reads what it missed from the database by
sequence number, so nothing that was committed is lost.

Presence is shared the same way: each worker announces its set of online
agents on every change and every few seconds; a worker's announcement counts
for ``PRESENCE_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .hub import Event, MemoryHub

log = logging.getLogger("jutella.redis")
PRESENCE_TTL = 10.0
ORIGIN_BYTES = 16  # a worker's id, in front of each message it publishes


class RedisHub(MemoryHub):
    def __init__(self, url: str, prefix: str = "jutella"):
        super().__init__()
        self.url = url
        self.channel = f"{prefix}:events"
        self.origin = secrets.token_hex(8)
        self._tag = self.origin.encode()  # ORIGIN_BYTES long
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task | None = None
        self._publisher: asyncio.Task | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100_000)
        self._healthy = False
        self._ever_connected = False
        self.on_presence: Callable[[str, list[int]], None] | None = None
        self.on_presence_change: Callable[[], None] | None = None  # set by the app: re-tell local widgets

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        self._redis = aioredis.from_url(self.url, socket_connect_timeout=2, socket_timeout=None,
                                        health_check_interval=10)
        self._listener = asyncio.create_task(self._listen())
        self._publisher = asyncio.create_task(self._publish_loop())
        for _ in range(50):  # give the first subscription a moment, without blocking start-up on it
            if self._healthy:
                break
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for task in (self._listener, self._publisher):
            if task:
                task.cancel()
        await asyncio.gather(*(t for t in (self._listener, self._publisher) if t), return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver_local(channel, event)
        self._send(self._tag + orjson.dumps([channel, event]))

    def announce_presence(self, online: list[int]) -> None:
        self._send(self._tag + orjson.dumps(["_presence", online]))

    def _send(self, data: bytes) -> None:
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:  # Redis far behind: drop; clients catch up from the database
            pass

    async def _publish_loop(self) -> None:
        """One task sends everything in order, pipelining what has piled up."""
        while True:
            first = await self._outbox.get()
            batch = [first]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            try:
                if self._redis is None:
                    raise RuntimeError("the hub was not started")
                async with self._redis.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.publish(self.channel, data)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                # lost notifications are caught up from the database after the resync
                self._healthy = False
                log.warning("redis publish failed: %s", type(exc).__name__)
                await asyncio.sleep(0.2)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = None
            try:
                if self._redis is None:
                    raise RuntimeError("the hub was not started")
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                if self._ever_connected:
                    log.warning("redis connection restored; clients resynchronise from the database")
                    self.deliver_all({"type": "_resync"})
                self._healthy = self._ever_connected = True
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        await self._redis.ping()
                        continue
                    self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.warning("redis connection lost (%s); reconnecting", type(exc).__name__)
                self._healthy = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # closing a pubsub whose connection broke  # nosec B110
                        pass

    def _dispatch(self, data: bytes) -> None:
        origin = data[:ORIGIN_BYTES]
        if origin == self._tag:
            return  # our own, delivered locally when published
        if not self._followed_here(data):
            return  # no connection of this worker follows its channel: not worth decoding
        try:
            channel, event = orjson.loads(data[ORIGIN_BYTES:])
            origin = origin.decode("ascii")
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return
        if channel == "_presence":
            if self.on_presence:
                self.on_presence(origin, event)
            if self.on_presence_change:
                self.on_presence_change()
            return
        self.deliver_local(channel, event)

    def _followed_here(self, data: bytes) -> bool:
        """Whether a message from another worker may matter here, read from
        its first bytes: ``["<channel>",`` as orjson writes it. A channel
        no local connection subscribes to is dropped undecoded (with two
        workers, about half of what the other publishes). Anything not in
        that plain shape (an escape in the name) is decoded as before."""
        if data[ORIGIN_BYTES:ORIGIN_BYTES + 2] != b'["':
            return True
        end = data.find(b'"', ORIGIN_BYTES + 2)
        if end < 0:
            return True
        name = data[ORIGIN_BYTES + 2:end]
        if b"\\" in name:
            return True
        channel = name.decode("utf-8", "replace")
        return channel == "_presence" or channel in self._subs

    def deliver_all(self, event: Event) -> None:
        seen: set[int] = set()
        for subs in list(self._subs.values()):
            for sub in list(subs):
                if id(sub) not in seen:
                    seen.add(id(sub))
                    sub.deliver("_hub", event)


class RemotePresence:
    """Other workers' online agents, each announcement valid for PRESENCE_TTL."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[float, set[int]]] = {}

    def update(self, origin: str, online: list[int]) -> None:
        self._workers[origin] = (time.monotonic() + PRESENCE_TTL, set(online))

    def online(self) -> set[int]:
        now = time.monotonic()
        out: set[int] = set()
        for origin, (until, agents) in list(self._workers.items()):
            if until < now:
                del self._workers[origin]
            else:
                out |= agents
        return out


def connect_presence(hub: Any, presence: Any) -> None:
    """Wire a RedisHub and the local Presence together."""
    remote = RemotePresence()
    hub.on_presence = remote.update
    presence.remote = remote
