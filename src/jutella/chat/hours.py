"""Opening hours (docs/hours.md): when a chat may start.

The pure part: a :class:`Schedule` (weekly intervals per weekday plus date
exceptions, in the register's time zone), :func:`is_open`,
:func:`next_opening`, :func:`parse` (validation of what an administrator
sends) and :func:`may_start`, the one rule "may a chat start now for
department X" that the socket, the widget's choice and the HTTP availability
check all ask (through chat/presence.py). No schedule at all means always open.

Intervals are wall-clock times of one day, ``start < end``; ``24:00`` ends a
day. An interval over midnight is refused: write it as two (``22:00-24:00``
and the next day's ``00:00-02:00``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import ChatError

Interval = tuple[time, time]  # end time.max stands for 24:00
SERVICE = None  # the service-wide schedule's department id
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_INTERVALS = 6
MAX_EXCEPTIONS = 400
MAX_NOTE = 200
LOOKAHEAD_DAYS = 400


@dataclass(frozen=True)
class Exception_:
    intervals: tuple[Interval, ...]  # empty: closed all day
    note: str | None = None


@dataclass(frozen=True)
class Schedule:
    tz: ZoneInfo
    weekly: dict[int, tuple[Interval, ...]] = field(default_factory=dict)  # Monday = 0
    exceptions: dict[date, Exception_] = field(default_factory=dict)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        ex = self.exceptions.get(day)
        return ex.intervals if ex is not None else self.weekly.get(day.weekday(), ())


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    if at.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return at.astimezone(tz)


def is_open(schedule: Schedule | None, at: datetime) -> bool:
    """Open at ``at`` (aware)? No schedule: always open."""
    if schedule is None:
        return True
    local = _local(at, schedule.tz)
    now = local.time().replace(tzinfo=None)
    return any(start <= now and (now < end or end == time.max) for start, end in schedule.intervals_on(local.date()))


def _at(day: date, t: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time as an aware instant. A time that does not exist (the
    hour skipped in March) is shifted forward by the jump (03:30 becomes 04:30)."""
    return datetime.combine(day, t, tzinfo=tz).astimezone(UTC).astimezone(tz)


def next_opening(schedule: Schedule | None, at: datetime) -> datetime | None:
    """When it next opens, in the register's time zone: ``at`` itself when open
    now; None when there is no schedule (always open) or no opening within a
    year."""
    if schedule is None or is_open(schedule, at):
        return None if schedule is None else _local(at, schedule.tz)
    local = _local(at, schedule.tz)
    for offset in range(LOOKAHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        for start, _end in sorted(schedule.intervals_on(day)):
            when = _at(day, start, schedule.tz)
            if when > local:
                return when
    return None


def may_start(schedules: dict[int | None, Schedule], department_id: int | None, *, online: bool,
              at: datetime, strict: bool) -> bool:
    """The one rule: may a chat start now in this department (None: the shared
    queue)? Someone must be online for it, and with ``hours_strict`` its
    hours (its own, else the service-wide ones) must be open."""
    if not online:
        return False
    return not strict or is_open(schedule_for(schedules, department_id), at)


def schedule_for(schedules: dict[int | None, Schedule], department_id: int | None) -> Schedule | None:
    """A department's own schedule, else the service-wide one (None: always open)."""
    return schedules.get(department_id) or schedules.get(SERVICE)


# -- what an administrator sends ----------------------------------------------------------------
def _bad(message: str, **params: Any) -> ChatError:
    return ChatError("hours_invalid", message, 400, **params)


def _time(value: Any) -> time:
    if not isinstance(value, str) or not _TIME.match(value):
        raise _bad("“{value}” is not a time. Write it as HH:MM, like 09:00.", value=str(value)[:10])
    if value == "24:00":
        return time.max
    h, m = value.split(":")
    return time(int(h), int(m))


def fmt(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def _intervals(raw: Any) -> tuple[Interval, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise _bad("At most {n} intervals a day.", n=MAX_INTERVALS)
    out = []
    for pair in raw:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _bad("An interval is a start and an end.")
        start, end = _time(pair[0]), _time(pair[1])
        if start == time.max or not start < end:
            raise _bad("{end} is not after {start}. An interval over midnight is written as two.",
                       start=fmt(start), end=fmt(end))
        out.append((start, end))
    out.sort()
    for (s1, e1), (s2, e2) in zip(out, out[1:]):
        if s2 < e1:
            raise _bad("{a} and {b} overlap.", a=f"{fmt(s1)}–{fmt(e1)}", b=f"{fmt(s2)}–{fmt(e2)}")
    return tuple(out)


def parse(weekly: Any, exceptions: Any) -> tuple[dict[str, list[list[str]]], list[dict[str, Any]]]:
    """Validate an administrator's hours; return them in their stored form
    (``{"0": [["09:00", "16:00"]], ...}``, ``[{"date", "hours", "note"}]``).
    Refused with ``hours_invalid`` and a message saying what is wrong."""
    if not isinstance(weekly, dict):
        raise _bad("The weekly hours are missing.")
    stored_weekly: dict[str, list[list[str]]] = {}
    for key, raw in weekly.items():
        if str(key) not in {str(d) for d in range(7)}:
            raise _bad("Unknown weekday {day}.", day=str(key)[:3])
        iv = _intervals(raw)
        if iv:
            stored_weekly[str(key)] = [[fmt(s), fmt(e)] for s, e in iv]
    if not isinstance(exceptions, list) or len(exceptions) > MAX_EXCEPTIONS:
        raise _bad("At most {n} exceptions.", n=MAX_EXCEPTIONS)
    stored_ex: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ex in exceptions:
        if not isinstance(ex, dict):
            raise _bad("An exception is a date with its hours.")
        try:
            day = date.fromisoformat(str(ex.get("date")))
        except ValueError:
            raise _bad("“{value}” is not a date. Write it as YYYY-MM-DD.", value=str(ex.get("date"))[:12]) from None
        if day.isoformat() in seen:
            raise _bad("{date} is listed twice.", date=day.isoformat())
        seen.add(day.isoformat())
        note = " ".join(str(ex.get("note") or "").split())[:MAX_NOTE] or None
        iv = _intervals(ex.get("hours") or [])
        stored_ex.append({"date": day.isoformat(), "hours": [[fmt(s), fmt(e)] for s, e in iv], "note": note})
    stored_ex.sort(key=lambda e: e["date"])
    return stored_weekly, stored_ex


def load(tz: ZoneInfo, weekly: dict[str, Any], exceptions: list[dict[str, Any]]) -> Schedule:
    """A stored schedule (already validated by :func:`parse`) as a :class:`Schedule`."""
    return Schedule(
        tz=tz,
        weekly={int(k): tuple((_time(s), _time(e)) for s, e in v) for k, v in (weekly or {}).items()},
        exceptions={date.fromisoformat(e["date"]): Exception_(tuple((_time(s), _time(x)) for s, x in e["hours"]),
                                                              e.get("note")) for e in (exceptions or [])},
    )
