"""Sliding-window counters for sign-in throttling and rate limits.

Keys are HMACs of what they count (an email, a client address) under a secret
of this process, so the counters never hold an address or an email in the
clear, and nothing of them reaches the database or a log. With Redis
configured the counters are shared between workers (realtime/redis_throttle.py,
a subclass of this one) and the secret is shared too (:func:`shared_secret`).

A limit is enforced with :meth:`MemoryThrottle.reserve`: the attempt is
counted *before* the work it limits (a password check, a new conversation),
in one atomic step that also says whether it was allowed, so parallel
requests cannot all pass a check that each made before any of them counted.
A caller that finds afterwards that the attempt should not count (a right
password) gives it back with :meth:`MemoryThrottle.release`. ``hit`` keeps
its old meaning (count one and return the count), which is itself a
reservation: ``if await throttle.hit(key, window) > limit: refuse``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import secrets
from bisect import bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SECRET_FILE = "throttle.key"  # nosec B105: a file name; in the data dir, the HMAC secret workers share


class ThrottleUnavailable(Exception):
    """The shared counters cannot be reached, and the limit asked not to be
    enforced by this worker alone (sign-in: refused rather than unlimited)."""


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` hits of ``key`` within ``window_s`` seconds."""

    key: str
    window_s: float
    limit: int


@dataclass
class Slot:
    """One open thing counted under ``key`` (``member``: its name in Redis;
    empty when counted in this process)."""

    key: str
    member: str = ""


@dataclass
class Reservation:
    """What :meth:`MemoryThrottle.reserve` answers. ``ok``: the hit was
    counted under every limit; otherwise nothing was counted, ``refused`` is
    the index of the first limit that was full and ``retry_after`` the
    seconds until it has room."""

    ok: bool
    refused: int | None = None
    retry_after: float = 0.0
    keys: tuple[str, ...] = ()
    member: str = ""  # the hit's own name (Redis) or time (memory), for release
    _times: list[float] = field(default_factory=list, repr=False)

    def __bool__(self) -> bool:
        return self.ok


def shared_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The HMAC secret every worker of an installation uses for its throttle
    keys: the configured one, else 32 random bytes kept in
    ``<data_dir>/throttle.key`` (made by whichever worker comes first; the
    file appears complete or not at all). Never sent to Redis."""
    if configured:
        return hashlib.sha256(b"jutella-throttle\0" + configured.encode()).digest()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    if not path.exists():
        tmp = data_dir / f".{SECRET_FILE}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and refuses when another worker made it first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_bytes()
    if len(secret) < 32:
        raise RuntimeError(f"{path} is damaged: delete it and restart every worker")
    return secret


class MemoryThrottle:
    """Each key's hits are a sorted list of times: a list is 56 bytes plus 8
    a hit where a deque is 624 bytes from the start, and every open widget
    has two of these (messages a minute, chats an hour)."""

    def __init__(self, now: Callable[[], float], secret: bytes | None = None):
        self._now = now
        self._secret = secret or secrets.token_bytes(32)
        self._hits: dict[str, list[float]] = {}
        self._ids = itertools.count(1)
        self._slots: dict[str, int] = {}  # things open now (widget sockets) per key

    def key(self, kind: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{kind}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"{kind}:{mac.hexdigest()[:32]}"

    def _window(self, key: str, window_s: float) -> list[float]:
        """The key's hits within the window (a fresh empty list when it has
        none: reading a key that was never hit leaves nothing behind)."""
        hits = self._hits.get(key)
        if hits is None:
            return []
        expired = bisect_right(hits, self._now() - window_s)
        if expired:
            del hits[:expired]
            if not hits:
                del self._hits[key]
        return hits

    async def count(self, key: str, window_s: float) -> int:
        return len(self._window(key, window_s))

    async def hit(self, key: str, window_s: float) -> int:
        hits = self._window(key, window_s)
        if not hits:
            self._hits[key] = hits
        hits.append(self._now())
        return len(hits)

    async def retry_after(self, key: str, window_s: float) -> float:
        hits = self._window(key, window_s)
        return max(0.0, hits[0] + window_s - self._now()) if hits else 0.0

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    async def reserve(self, *limits: Limit, strict: bool = False) -> Reservation:
        """Count one hit under every limit if each has room, else none (all
        or nothing, in one step: no await between the check and the count).
        ``strict`` matters only for shared counters (RedisThrottle): when they
        are out of reach it raises ThrottleUnavailable instead of counting
        in this worker alone."""
        return self._reserve_here(limits)

    def _reserve_here(self, limits: tuple[Limit, ...]) -> Reservation:
        now = self._now()
        for i, lim in enumerate(limits):
            hits = self._window(lim.key, lim.window_s)
            if len(hits) >= lim.limit:
                # room comes when all but limit-1 of the hits have left the window
                oldest = hits[len(hits) - lim.limit] if lim.limit > 0 else now
                return Reservation(False, refused=i, retry_after=max(0.0, oldest + lim.window_s - now))
        times = []
        for lim in limits:
            hits = self._hits.setdefault(lim.key, [])
            insort(hits, now)
            times.append(now)
        return Reservation(True, keys=tuple(lim.key for lim in limits), member=str(next(self._ids)),
                           _times=times)

    async def release(self, reservation: Reservation) -> None:
        """Take back a reservation's hits (the attempt turned out not to
        count: a right password). Harmless on a refused one or twice."""
        self._release_here(reservation)

    def _release_here(self, reservation: Reservation) -> None:
        if not reservation.ok:
            return
        for key, when in zip(reservation.keys, reservation._times):
            hits = self._hits.get(key)
            if hits and when in hits:
                hits.remove(when)
                if not hits:
                    del self._hits[key]
        reservation._times = []

    async def close(self) -> None:
        """Nothing to close in memory (RedisThrottle closes its connections)."""

    # -- slots: how many of something are open at once (a client's widget sockets) ------------
    async def take_slot(self, key: str, limit: int) -> "Slot | None":
        """One more open thing under ``key`` if fewer than ``limit`` are open
        (0: no limit), else None. Give it back with :meth:`give_slot`."""
        n = self._slots.get(key, 0)
        if limit and n >= limit:
            return None
        self._slots[key] = n + 1
        return Slot(key)

    async def give_slot(self, slot: "Slot") -> None:
        n = self._slots.get(slot.key, 0) - 1
        if n > 0:
            self._slots[slot.key] = n
        else:
            self._slots.pop(slot.key, None)

    async def refresh_slots(self) -> None:
        """Shared slots (RedisThrottle) say they are still held; nothing to do here."""

    def sweep(self, longest_window_s: float = 86_400) -> int:
        """Forget keys whose last hit is older than any window (housekeeping
        calls this; otherwise every visitor and address ever seen would keep
        a key for the life of the process). Returns how many went."""
        cutoff = self._now() - longest_window_s
        gone = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in gone:
            del self._hits[key]
        return len(gone)
