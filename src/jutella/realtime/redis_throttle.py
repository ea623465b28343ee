"""The throttle's counters in Redis, so every worker (and host) of an
installation enforces one limit, not one each.

Each key is a sorted set ``<prefix>:throttle:<kind>:<hmac>`` of hits scored
by time; a Lua script checks every limit of a reservation and counts the hit
under all of them, or none, in one step that no other worker can interleave.
Members are random names, scores are times: Redis holds no address, email or
visitor id, and the HMAC secret stays with the workers (accounts/throttle.py
``shared_secret``). Keys expire with their window.

Time is the runtime's clock (the workers' clocks agree to NTP's precision;
tests move a FakeClock), sent with each call.

When Redis cannot be reached, a limit reserved with ``strict=True`` (sign-in,
password confirmation) raises ThrottleUnavailable, which the caller turns
into a 503: refusing sign-in while Redis is down is better than letting each
worker count alone, or not at all. Every other limit falls back to this
worker's memory counters (the parent class), so chat goes on, limited per
worker, until Redis is back (``/healthz`` already says "degraded").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jutella.accounts.throttle import Limit, MemoryThrottle, Reservation, Slot, ThrottleUnavailable

log = logging.getLogger("jutella.redis")

# Open things (a client's widget sockets) counted for all workers: a sorted set
# per key, one member per open socket scored with the time it lapses. Workers
# refresh their members (housekeeping, every minute); a crashed worker's lapse
# after SLOT_TTL_S, so they do not hold a client's slots for ever.
SLOT_TTL_S = 180.0
TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS: the limits' keys; ARGV: now, member, then window and limit for each key.
# Returns {0, "0"} when counted, else {i, seconds} for the first full limit i (1-based).
RESERVE = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[1 + 2 * i])
  local limit = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local wait = window
    if limit > 0 then
      local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
      wait = tonumber(oldest[2]) + window - now
    end
    return {i, tostring(wait)}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[1 + 2 * i]) * 1000))
end
return {0, '0'}
"""

# KEYS[1]; ARGV: now, member, window. Counts one hit and returns the count.
HIT = """
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - window)
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return redis.call('ZCARD', KEYS[1])
"""


class RedisThrottle(MemoryThrottle):
    def __init__(self, url: str, prefix: str, now: Callable[[], float], secret: bytes):
        super().__init__(now, secret)
        self.url = url
        self.prefix = f"{prefix}:throttle:"
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._down = False
        self._held: dict[str, str] = {}  # this worker's open slots: member -> key

    def _client(self) -> aioredis.Redis:
        if self._redis is None:  # made on first use, on the loop that uses it
            # a bounded pool that waits for a free connection: a burst queues for a moment
            # instead of failing (which would refuse sign-in) or opening thousands of sockets
            pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=32, timeout=2,
                                                            socket_connect_timeout=2, socket_timeout=2)
            self._redis = aioredis.Redis(connection_pool=pool)
            self._scripts = {"reserve": self._redis.register_script(RESERVE),
                             "hit": self._redis.register_script(HIT),
                             "take_slot": self._redis.register_script(TAKE_SLOT)}
        return self._redis

    def _script(self, name: str) -> Any:
        self._client()
        return self._scripts[name]

    def _failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning("redis throttle unreachable (%s): sign-in refused, other limits per worker",
                        type(exc).__name__)
        self._down = True

    def _ok(self) -> None:
        if self._down:
            log.warning("redis throttle reachable again")
        self._down = False

    def _member(self) -> str:
        return secrets.token_hex(8)

    async def reserve(self, *limits: Limit, strict: bool = False) -> Reservation:
        member = self._member()
        args: list[object] = [repr(self._now()), member]
        for lim in limits:
            args += [repr(float(lim.window_s)), lim.limit]
        try:
            refused, wait = await self._script("reserve")(keys=[self.prefix + lim.key for lim in limits], args=args)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            if strict:
                raise ThrottleUnavailable() from exc
            return self._reserve_here(limits)
        self._ok()
        refused = int(refused)
        if refused:
            return Reservation(False, refused=refused - 1, retry_after=max(0.0, float(wait)))
        return Reservation(True, keys=tuple(lim.key for lim in limits), member=member)

    async def release(self, reservation: Reservation) -> None:
        if not reservation.ok:
            return
        if reservation._times:  # counted in memory while Redis was away
            self._release_here(reservation)
            return
        try:
            async with self._client().pipeline(transaction=True) as pipe:
                for key in reservation.keys:
                    pipe.zrem(self.prefix + key, reservation.member)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)  # the hit stays until its window ends: the limit errs on the safe side

    async def hit(self, key: str, window_s: float) -> int:
        try:
            n = int(await self._script("hit")(keys=[self.prefix + key], args=[repr(self._now()), self._member(),
                                                                    repr(float(window_s))]))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await super().hit(key, window_s)
        self._ok()
        return n

    async def count(self, key: str, window_s: float) -> int:
        try:
            n = int(await self._client().zcount(self.prefix + key, f"({self._now() - window_s!r}", "+inf"))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await super().count(key, window_s)
        return n

    async def retry_after(self, key: str, window_s: float) -> float:
        now = self._now()
        try:
            first = await self._client().zrangebyscore(self.prefix + key, f"({now - window_s!r}", "+inf",
                                                       start=0, num=1, withscores=True)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await super().retry_after(key, window_s)
        return max(0.0, float(first[0][1]) + window_s - now) if first else 0.0

    async def reset(self, key: str) -> None:
        await super().reset(key)
        try:
            await self._client().delete(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def take_slot(self, key: str, limit: int) -> Slot | None:
        now = self._now()
        member = self._member()
        try:
            took = int(await self._script("take_slot")(
                keys=[self.prefix + key],
                args=[repr(now), repr(now + SLOT_TTL_S), member, limit, int(SLOT_TTL_S * 1000)]))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await super().take_slot(key, limit)  # counted in this worker alone meanwhile
        self._ok()
        if not took:
            return None
        slot = Slot(key, member)
        self._held[member] = key
        return slot

    async def give_slot(self, slot: Slot) -> None:
        if not slot.member:
            await super().give_slot(slot)
            return
        self._held.pop(slot.member, None)
        try:
            await self._client().zrem(self.prefix + slot.key, slot.member)
        except (RedisError, OSError) as exc:
            self._failed(exc)  # it lapses after SLOT_TTL_S

    async def refresh_slots(self) -> None:
        if not self._held:
            return
        lapse = self._now() + SLOT_TTL_S
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for member, key in list(self._held.items()):
                    pipe.zadd(self.prefix + key, {member: lapse}, xx=True)
                    pipe.pexpire(self.prefix + key, int(SLOT_TTL_S * 1000))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
