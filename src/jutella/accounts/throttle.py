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
from bisect import bisect_right
from collections.abc import Callable


class MemoryThrottle:
    """Each key's hits are a sorted list of times: a list is 56 bytes plus 8
    a hit where a deque is 624 bytes from the start, and every open widget
    has two of these (messages a minute, chats an hour)."""

    def __init__(self, now: Callable[[], float], secret: bytes | None = None):
        self._now = now
        self._secret = secret or secrets.token_bytes(32)
        self._hits: dict[str, list[float]] = {}

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

    def sweep(self, longest_window_s: float = 86_400) -> int:
        """Forget keys whose last hit is older than any window (housekeeping
        calls this; otherwise every visitor and address ever seen would keep
        a key for the life of the process). Returns how many went."""
        cutoff = self._now() - longest_window_s
        gone = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in gone:
            del self._hits[key]
        return len(gone)
