"""Slow clients let go: the rules for connections whose request has not arrived.

A connection costs the server a socket, a file descriptor and a protocol
object from the moment it is accepted, and nothing bounded how long a client
could take to send its request: 3,000 connections that never finished their
request headers all stayed open (issue 15, "slowloris"). Two rules, enforced
by jutella's HTTP protocol (realtime/httpserver.py) for every request,
WebSocket upgrades included (their handshake *is* that request; the server
answers it at once, and after the 101 the endpoints' own hello timer and
heartbeat take over):

- **a deadline**: a request's headers must be complete within
  ``header_timeout_s`` of the connection being accepted (or, on a kept-alive
  connection, of the next request's first byte; the idle time before that
  is uvicorn's keep-alive timeout). A connection that misses it is closed,
  with ``408 Request Timeout`` when part of a request had arrived.
- **a cap per address**: at most ``per_address`` connections from one peer
  address may be waiting for their request headers at once; one more is
  closed as soon as it is accepted (or as its next request begins). Other
  addresses are not touched, and the address gets its connections back as
  its waiting ones finish or miss the deadline.

The address is the TCP peer. Behind a reverse proxy every connection comes
from the proxy, which reads the client's headers itself (nginx has its own
``client_header_timeout``) and sends each request whole: ``exempt`` says which
peers the cap does not apply to (wired to the trusted proxies where that
setting exists; see app.py). The deadline applies to everyone.

Counts are kept in this process's memory under the throttle's keyed hash of
the address (``key``), as the other per-address limits are; nothing is
stored or logged. This module is the bookkeeping, free of uvicorn, so the
application factory can build it under any server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

STATE_KEY = "jutella.slow_clients"  # the lifespan state entry the HTTP protocol reads


class SlowClients:
    """Per process: connections waiting for their request headers, counted by address."""

    __slots__ = ("header_timeout_s", "per_address", "_key", "_exempt", "waiting", "total", "_on_refused",
                 "_on_late")

    def __init__(self, *, header_timeout_s: float, per_address: int, key: Callable[[str], str],
                 exempt: Callable[[str], bool] | None = None,
                 on_refused: Callable[[], None] | None = None, on_late: Callable[[], None] | None = None):
        self.header_timeout_s = header_timeout_s
        self.per_address = per_address  # 0: no cap
        self._key = key
        self._exempt = exempt
        self._on_refused = on_refused
        self._on_late = on_late
        self.waiting: dict[str, int] = {}  # keyed hash of an address -> connections waiting for headers
        self.total = 0  # all of them (the /metrics gauge)

    def enter(self, host: str | None) -> str | None | Literal[False]:
        """A connection from ``host`` starts waiting for request headers.
        False: refused (the address is at its cap; close the connection).
        Otherwise what :meth:`leave` takes when the wait ends: the counted key,
        or None when the address is not counted (exempt, no cap, no address)."""
        if not self.per_address or host is None or (self._exempt is not None and self._exempt(host)):
            return None
        key = self._key(host)
        n = self.waiting.get(key, 0)
        if n >= self.per_address:
            if self._on_refused is not None:
                self._on_refused()
            return False
        self.waiting[key] = n + 1
        self.total += 1
        return key

    def leave(self, key: str | None) -> None:
        """The wait :meth:`enter` counted under ``key`` is over (headers in, deadline, connection gone)."""
        if key is None:
            return
        n = self.waiting.get(key, 0) - 1
        if n > 0:
            self.waiting[key] = n
        else:
            self.waiting.pop(key, None)
        self.total -= 1

    def late(self) -> None:
        """A connection missed the header deadline (counted for /metrics)."""
        if self._on_late is not None:
            self._on_late()
