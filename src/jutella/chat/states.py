"""A conversation's states: it waits in a queue, an agent holds it, it is over."""

from __future__ import annotations

WAITING, ACTIVE, CLOSED = "waiting", "active", "closed"
