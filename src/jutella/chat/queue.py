"""Where a waiting visitor stands: their place in the queue and a typical
wait, told to the widget while the chat waits for an agent (docs/widget.md,
"Waiting feedback"; the ``queue`` frame in docs/protocol.md).

- **The queue** is a department's waiting chats, or, for chats without a
  department, the shared queue of those. Its order is the order the chats
  began in (their ids): :func:`waiting_order`, and a visitor's place in it
  :func:`queue_position` (1 is next). A chat passed back to a department's
  queue keeps its place by age.
- **The typical wait** is the median time from a chat's start to its first
  accept, over the chats of the same department (of every chat when it has
  none) accepted in the last ``TYPICAL_WINDOW``, computed by the database in
  one aggregate query: :func:`typical_wait`. Fewer than ``MIN_SAMPLES`` such
  chats: no estimate (None). Each worker keeps the answer per department for
  ``TYPICAL_CACHE`` so that telling a queue is not a query per frame.

Nothing here is personal data: counts, durations and the chats' own ids,
which stay on the server (a visitor's socket is told only its own place).

When a queue changes (a chat in it started, was taken, closed or passed on),
the action calls :func:`queue_changed` after its commit. That recomputes the
queue's order at most once per ``RECOMPUTE_INTERVAL`` (the first change after
a quiet spell at once, later ones together at the end of the interval) and
publishes it on the hub's ``waiting:<department>`` channel, so the visitors'
sockets of every worker (Redis) tell their own visitor their new place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, cast, extract, func, or_, select

from jutella.channels import waiting_channel
from jutella.runtime import Runtime
from jutella.store.models import Conversation

from .states import WAITING

log = logging.getLogger("jutella.queue")

CONV = Conversation.__table__
TYPICAL_WINDOW = timedelta(days=7)  # accepted in the last week
MIN_SAMPLES = 5  # fewer accepted chats than this: no estimate
TYPICAL_CACHE = timedelta(seconds=60)  # each worker's answer per department, kept this long
RECOMPUTE_INTERVAL = 0.5  # seconds: a queue is recomputed and told at most this often


def _in_queue(department_id: int | None):
    return CONV.c.department_id.is_(None) if not department_id else CONV.c.department_id == department_id


# -- the place in the queue ------------------------------------------------------------------
async def waiting_order(rt: Runtime, department_id: int | None) -> list[int]:
    """The ids of the chats waiting in a department's queue (``None``: the
    shared one), the oldest first."""
    async with rt.db.connection() as conn:
        rows = await conn.execute(select(CONV.c.id).where(CONV.c.state == WAITING, _in_queue(department_id))
                                  .order_by(CONV.c.id))
        return list(rows.scalars())


class _Places:
    """The places of the last order asked about. Every waiting visitor's socket
    on a worker gets the same order (one hub event, shared), so the index is
    built once per word rather than each socket scanning the list: a thousand
    waiting made that a million steps on the event loop twice a second."""

    __slots__ = ("order", "places")

    def __init__(self) -> None:
        self.order: list[int] | None = None  # held, so that its id is not reused while remembered
        self.places: dict[int, int] = {}

    def of(self, order: list[int]) -> dict[int, int]:
        if order is not self.order:
            self.order, self.places = order, {c: i + 1 for i, c in enumerate(order)}
        return self.places


_PLACES = _Places()


def queue_position(order: list[int], conversation_id: int) -> int | None:
    """A chat's place in its queue's order (1 is next), or None when it is not there."""
    return _PLACES.of(order).get(conversation_id)


async def waiting_in(rt: Runtime, conversation_id: int) -> tuple[bool, int | None]:
    """(Whether the chat is waiting, the department whose queue it is in)."""
    async with rt.db.connection() as conn:
        row = (await conn.execute(select(CONV.c.state, CONV.c.department_id)
                                  .where(CONV.c.id == conversation_id))).first()
    if row is None or row.state != WAITING:
        return False, None
    return True, row.department_id


# -- the typical wait ---------------------------------------------------------------------------
def _wait_seconds(dialect: str):
    """Seconds from a chat's start to its first accept, in the database's own terms."""
    if dialect == "sqlite":  # datetimes are ISO text there
        return (func.julianday(CONV.c.accepted_at) - func.julianday(CONV.c.created_at)) * 86400.0
    return cast(extract("epoch", CONV.c.accepted_at - CONV.c.created_at), Float)


async def median_wait(rt: Runtime, department_id: int | None, now: datetime) -> tuple[int, float | None]:
    """(How many chats were accepted in the window, the median of their
    waits in seconds), in one query: the middle row (or the two middle rows'
    mean) of the waits in order, by window functions."""
    async with rt.db.connection() as conn:
        wait = _wait_seconds(conn.dialect.name)
        where = [CONV.c.accepted_at.is_not(None), CONV.c.accepted_at >= now - TYPICAL_WINDOW,
                 CONV.c.accepted_at <= now]
        if department_id:
            where.append(CONV.c.department_id == department_id)
        ranked = select(wait.label("w"), func.row_number().over(order_by=wait).label("rn"),
                        func.count().over().label("n")).where(*where).subquery()
        middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
        row = (await conn.execute(select(func.max(ranked.c.n), func.avg(ranked.c.w))
                                  .where(and_(middle)))).first()
    count = int(row[0] or 0) if row is not None else 0
    return count, (float(row[1]) if count else None)


async def typical_wait(rt: Runtime, department_id: int | None) -> int | None:
    """The typical wait for a department's queue (``None``: any chat), whole
    seconds, or None with fewer than ``MIN_SAMPLES`` accepted chats in the
    window. Kept per department for ``TYPICAL_CACHE`` (by the runtime's clock)."""
    watch = _watch(rt)
    now = rt.clock.now()
    key = department_id or 0
    cached = watch.typical.get(key)
    if cached is not None and now < cached[0]:
        return cached[1]
    count, median = await median_wait(rt, department_id, now)
    value = max(0, round(median)) if count >= MIN_SAMPLES and median is not None else None
    watch.typical[key] = (now + TYPICAL_CACHE, value)
    return value


# -- telling the waiting visitors --------------------------------------------------------------
@dataclass
class QueueWord:
    """What one queue's waiting visitors are told (the hub event, on the server only)."""

    department_id: int | None
    waiting: list[int]
    typical_wait_s: int | None

    def frame(self) -> dict[str, Any]:
        return {"type": "queue", "department": self.department_id, "waiting": self.waiting,
                "typical_wait_s": self.typical_wait_s}


async def queue_word(rt: Runtime, department_id: int | None) -> QueueWord:
    """A queue as it stands now: its order and typical wait."""
    return QueueWord(department_id or None, await waiting_order(rt, department_id),
                     await typical_wait(rt, department_id))


class QueueWatch:
    """Per worker: the typical waits it keeps, and the queues due to be told
    again. ``changed`` starts a recompute at once after a quiet spell; while
    one is due, more changes join it; after one ran, the next waits until
    ``interval`` has passed since it started."""

    def __init__(self, interval: float = RECOMPUTE_INTERVAL):
        self.interval = interval
        self.typical: dict[int, tuple[datetime, int | None]] = {}
        self._last: dict[int, float] = {}
        self._due: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()

    def changed(self, key: int, run: Callable[[int], Awaitable[None]]) -> None:
        if key in self._due:
            return  # a recompute is due: it reads the queue as it is then
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last.get(key, float("-inf")) + self.interval - loop.time())
        self._due[key] = loop.call_later(delay, self._start, key, run)

    def _start(self, key: int, run: Callable[[int], Awaitable[None]]) -> None:
        self._due.pop(key, None)
        self._last[key] = asyncio.get_running_loop().time()
        task = asyncio.ensure_future(run(key))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # the next change tells the queue again; a visitor's socket also asks at (re)connect
            log.warning("telling a queue failed: %s", type(task.exception()).__name__)

    async def settled(self) -> None:
        """Until no queue is due to be told nor being told (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        while self._due or self._tasks:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:  # until the first one falls due
                await asyncio.sleep(max(0.0, min(h.when() for h in self._due.values()) - loop.time()))


def _watch(rt: Runtime) -> QueueWatch:
    if rt.queues is None:
        rt.queues = QueueWatch()
    return rt.queues


async def _tell(rt: Runtime, key: int) -> None:
    word = await queue_word(rt, key or None)
    await rt.hub.publish(waiting_channel(key), word.frame())


def queue_changed(rt: Runtime, department_id: int | None) -> None:
    """After the commit of a change to a queue (a chat in it started, taken,
    closed, passed on): its waiting visitors hear their new places, through
    the hub, at most every ``RECOMPUTE_INTERVAL``."""
    _watch(rt).changed(department_id or 0, lambda key: _tell(rt, key))
