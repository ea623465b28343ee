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
