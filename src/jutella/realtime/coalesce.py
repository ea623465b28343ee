"""An agent console's list updates, held and sent together.

Under load a console would otherwise get a ``conversation`` frame (and a
socket write) for every message of every chat it lists. The agent
connection holds the newest update of each conversation until the hub
events at hand are handled, and at most ``LIST_UPDATE_INTERVAL`` after the
last batch; the first after a quiet spell goes at once. Messages themselves
are never held (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# An agent's list updates go out at most this often (seconds), together; the
# first after a quiet spell at once.
LIST_UPDATE_INTERVAL = 0.1


class ListUpdates:
    """The list updates one agent connection holds. ``wake`` is called when
    held updates fall due on the timer (the outbound task then calls
    :meth:`take`). Slots and one dict: one of these per agent socket."""

    __slots__ = ("held", "_loop", "_wake", "_sent_at", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]):
        self.held: dict[int, dict[str, Any]] = {}  # conversation -> its newest update, oldest first
        self._loop = loop
        self._wake = wake
        self._sent_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, event: dict[str, Any]) -> None:
        """Keep the newest update of the event's conversation. "new" and
        "transfer" survive a later update of the same conversation, so the
        waiting alert and the transfer alert still sound (a transfer's
        receiver may also hear of it on the queue it left, or from an
        auto-assignment right after); ``restricted`` is the server's, not the
        console's."""
        conv = event["conversation"]["id"]
        frame = {k: v for k, v in event.items() if k != "restricted"}
        held = self.held.pop(conv, None)  # re-inserted: the dict keeps the order of the newest updates
        if held is not None and held.get("new") and not frame.get("new"):
            frame["new"] = True
        if held is not None and held.get("transfer") and not frame.get("transfer"):
            frame["transfer"] = held["transfer"]
        self.held[conv] = frame

    def drop(self, conversation: int) -> None:
        """Forget what is held of a conversation (this console may no longer see it)."""
        self.held.pop(conversation, None)

    def take(self) -> dict[str, Any] | None:
        """The frame to send now: the one update, or ``conversations`` with
        several; None when nothing is held or the last frame went out less
        than the interval ago (then the timer wakes the connection when they
        fall due)."""
        if not self.held:
            return None
        now = self._loop.time()
        due = self._sent_at + LIST_UPDATE_INTERVAL
        if now < due:  # one went out a moment ago: these go together at the end of the interval
            if self._timer is None:
                self._timer = self._loop.call_at(due, self._due)
            return None
        self._sent_at = now
        held, self.held = list(self.held.values()), {}
        return held[0] if len(held) == 1 else {"type": "conversations", "items": held}

    def _due(self) -> None:
        self._timer = None
        self._wake()

    def cancel(self) -> None:
        """The connection closed: no timer outlives it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
