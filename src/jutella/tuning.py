"""How a jutella server process tunes the interpreter it runs in.

Process-wide settings belong to whatever starts the server, not to the
application factory: ``create_app`` builds a plain application, so tests and
applications that embed jutella keep their own interpreter settings.
``jutella serve`` hands uvicorn :func:`served_app` (jutella/cli.py) as its
factory, which calls :func:`tune_process` in every worker process (uvicorn
spawns its workers as fresh interpreters, so tuning the parent would not
reach them). ``jutella bench`` measures a ``jutella serve`` of its own, so its
numbers are those of a tuned server, as before.
"""

from __future__ import annotations

import gc
import sys

# The database driver threads (aiosqlite, SQLite's writer thread) hand
# results back through the GIL; the default 5 ms switch interval would add up
# to 5 ms per statement while the event loop is busy.
SWITCH_INTERVAL = 0.0005  # seconds

# Thousands of open connections are millions of long-lived objects, and with
# CPython's default thresholds the cyclic collector walked all of them every
# few seconds while connections were arriving (pauses of 0.2-1.7 s at 10,000
# visitors, the benchmark's p99 spikes). Full collections now run only after
# 100 middle ones. A pause lasts as long as the generations it walks are big:
# young ones every 20,000 allocations and middle ones every fifth keep those
# to 100,000 objects at most (middle collections at 10,000 visitors took up to
# 104 ms; with 50,000 and 20 they took 200-310 ms; docs/performance.md).
GC_THRESHOLDS = (20_000, 5, 100)


def tune_process() -> None:
    """Set this process's switch interval and collector thresholds."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)


# What `jutella serve` gives uvicorn (jutella/cli.py): here, below the
# application, so that the parent of several workers, which serves nothing
# itself, need not import the application to read them.
# How uvicorn serves jutella, the same for `jutella serve`, the benchmark and
# the test servers. WebSocket upgrades go to jutella's own protocol
# (realtime/wsserver.py: the chat sockets without ASGI, 14 KiB less a
# connection; other paths on to uvicorn's sans-I/O one); permessage-deflate
# is off (it costs hundreds of KiB a connection); frames above 64 KiB are
# refused before jutella parses them; no access log (it would hold IP addresses).
# No protocol-level keepalive pings from uvicorn: jutella's own protocol has a
# heartbeat (realtime/protocol.py) that knows when its frames are still on
# their way; uvicorn's closed 50 busy consoles whose pong sat behind ten
# thousand queue updates (found by the 10,000-visitor benchmark).
# HTTP is uvicorn's httptools protocol with a deadline for request headers and
# a cap per address on connections waiting for theirs (realtime/httpserver.py).
SERVER_OPTIONS: dict = dict(http="jutella.realtime.httpserver:HttpProtocol",
                            ws="jutella.realtime.wsserver:ChatSocket", ws_per_message_deflate=False,
                            ws_max_size=64 * 1024, ws_ping_interval=None, ws_ping_timeout=None,
                            access_log=False, proxy_headers=False, server_header=False, date_header=True)


# Graceful drain (docs/housekeeping.md): on SIGTERM a worker stops accepting,
# tells its chat sockets to reconnect (1012), lets their writes in flight
# commit and be acknowledged, hands the housekeeping lock over and exits, all
# within DRAIN_SECONDS: uvicorn gives the connections SOCKETS_DRAIN_SECONDS
# (its timeout_graceful_shutdown), the application's own teardown
# (app.py's lifespan: the mail being sent, the lock, the database) has the rest.
DRAIN_SECONDS = 10.0
SOCKETS_DRAIN_SECONDS = 5.0
TEARDOWN_SECONDS = DRAIN_SECONDS - SOCKETS_DRAIN_SECONDS - 0.5
