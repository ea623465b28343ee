"""Sliding-window counters for sign-in throttling and rate limits.

Keys are HMACs of what they count (an email, a client address) under a secret
of this process, so the counters never hold an address or an email in the
clear, and nothing of them reaches the database or a log. With Redis
configured the counters can be shared between workers (see realtime.redis).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Callable


class MemoryThrottle:
    def __init__(self, now: Callable[[], float], secret: bytes | None = None):
        self._now = now
        self._secret = secret or secrets.token_bytes(32)
        self._hits: dict[str, deque[float]] = {}

    def key(self, kind: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{kind}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"{kind}:{mac.hexdigest()[:32]}"

    def _window(self, key: str, window_s: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        cutoff = self._now() - window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            self._hits.pop(key, None)
            hits = self._hits.setdefault(key, deque())
        return hits

    async def count(self, key: str, window_s: float) -> int:
        return len(self._window(key, window_s))

    async def hit(self, key: str, window_s: float) -> int:
        hits = self._window(key, window_s)
        hits.append(self._now())
        return len(hits)

    async def retry_after(self, key: str, window_s: float) -> float:
        hits = self._window(key, window_s)
        return max(0.0, hits[0] + window_s - self._now()) if hits else 0.0

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)
