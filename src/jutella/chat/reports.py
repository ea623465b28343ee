"""Reports that keep no personal data (docs/reports.md).

The one rule that adds to the daily aggregates, called inside the same
transaction as the action that counts: a conversation's close
(``actions.core_close``), an offline message's arrival (``offline.submit``)
and a rating given after the close (``attachments.rate``). A cell is (day and
hour in the register's time zone, site, department) and holds counts only:
no id of a visitor or a conversation, no text. Times (first answer, duration)
go into fixed histogram buckets, from which the reads give the median and the
90th percentile as the bucket's upper bound.

A conversation is counted once: ``conversation.counted`` turns true in the
same write that counts it, so a second close (or a close run twice on two
workers) adds nothing. A rating adds to its chat's cell only when the chat
was counted (chats closed before the upgrade are not).
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from jutella.runtime import Runtime
from jutella.store import dialect
from jutella.store.models import (REPORT_BOUNDS, REPORT_BUCKETS, ChatEvent, Conversation, ReportAgentDaily,
                                  ReportDaily, StaffAccount)

from .errors import ChatError

CONV = Conversation.__table__
EVENT = ChatEvent.__table__
DAILY, AGENT = ReportDaily, ReportAgentDaily
MAX_DAYS = 366
# the events that are messages of the chat: what the visitor and the agents wrote or sent
MESSAGE_KINDS = ("message", "attachment")


def bucket(seconds: float) -> int:
    """The histogram bucket of a time: bucket i holds values up to
    REPORT_BOUNDS[i] seconds (inclusive); the last one, over an hour."""
    return bisect.bisect_left(REPORT_BOUNDS, max(0.0, seconds))


def cell_of(when: datetime, time_zone: str) -> tuple[date, int]:
    """(day, hour) of ``when`` in the register's time zone."""
    local = when.astimezone(ZoneInfo(time_zone))
    return local.date(), local.hour



def _add_daily(conn: Connection, day: date, hour: int, department_id: int | None, site_id: int | None,
               **amounts: int) -> None:
    """Add to one cell, making it first (ON CONFLICT DO NOTHING on the
    cell's unique index, so two writers never make two rows)."""
    conn.execute(dialect.insert(conn, DAILY).values(day=day, hour=hour, site_id=site_id, department_id=department_id)
                 .on_conflict_do_nothing())
    conn.execute(update(DAILY).where(
        DAILY.c.day == day, DAILY.c.hour == hour, func.coalesce(DAILY.c.site_id, 0) == (site_id or 0),
        func.coalesce(DAILY.c.department_id, 0) == (department_id or 0))
        .values({name: DAILY.c[name] + n for name, n in amounts.items() if n}))


def core_count_closed(conn: Connection, conv: Any, now: datetime, *, time_zone: str, per_agent: bool) -> bool:
    """Count a conversation that closes now (``conv``: its row, with
    ``id``, ``created_at``, ``department_id``); False when it was counted
    already. Called by ``actions.core_close`` in the close's own write."""
    if conn.execute(update(CONV).where(CONV.c.id == conv.id, CONV.c.counted.is_(False))
                    .values(counted=True)).rowcount != 1:
        return False
    messages = conn.execute(select(func.count()).where(
        EVENT.c.conversation_id == conv.id, EVENT.c.kind.in_(MESSAGE_KINDS),
        EVENT.c.author.in_(("visitor", "agent")))).scalar_one()
    first = conn.execute(select(EVENT.c.agent_id, EVENT.c.created_at).where(
        EVENT.c.conversation_id == conv.id, EVENT.c.kind.in_(MESSAGE_KINDS), EVENT.c.author == "agent")
        .order_by(EVENT.c.seq).limit(1)).first()
    day, hour = cell_of(conv.created_at, time_zone)
    amounts = {"chats": 1, "messages": messages, f"duration_{bucket((now - conv.created_at).total_seconds())}": 1}
    if first is None:
        amounts["missed"] = 1
    else:
        amounts[f"first_answer_{bucket((first.created_at - conv.created_at).total_seconds())}"] = 1
    _add_daily(conn, day, hour, getattr(conv, "department_id", None), getattr(conv, "site_id", None), **amounts)
    if per_agent and first is not None and first.agent_id is not None:
        column = f"first_answer_{bucket((first.created_at - conv.created_at).total_seconds())}"
        conn.execute(dialect.insert(conn, AGENT).values(day=day, agent_id=first.agent_id).on_conflict_do_nothing())
        conn.execute(update(AGENT).where(AGENT.c.day == day, AGENT.c.agent_id == first.agent_id).values(
            {"chats_answered": AGENT.c.chats_answered + 1, column: AGENT.c[column] + 1}))
    return True


def core_count_rating(conn: Connection, conv: Any, rating: int, *, time_zone: str) -> None:
    """A rating given after the close adds to its chat's cell (the day and
    hour the chat began), when the chat was counted."""
    if not getattr(conv, "counted", False) or not 1 <= rating <= 5:
        return
    day, hour = cell_of(conv.created_at, time_zone)
    _add_daily(conn, day, hour, conv.department_id, getattr(conv, "site_id", None), **{f"rating_{rating}": 1})


def core_count_offline(conn: Connection, created_at: datetime, department_id: int | None, *, time_zone: str,
                       site_id: int | None = None) -> None:
    """An offline message arrived (``offline.submit``'s own transaction)."""
    day, hour = cell_of(created_at, time_zone)
    _add_daily(conn, day, hour, department_id, site_id, offline_messages=1)


# -- reading ---------------------------------------------------------------------------------
def percentile(counts: list[int], q: float) -> dict[str, int] | None:
    """The q-th quantile (nearest rank) of a histogram, as its bucket's
    upper bound: {"le": seconds}, {"gt": 3600} for the open bucket, None
    for no values."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, -(-int(q * 100) * total // 100))  # ceil(q * total) without float error
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return {"le": REPORT_BOUNDS[i]} if i < len(REPORT_BOUNDS) else {"gt": REPORT_BOUNDS[-1]}
    return None  # not reached


def _times(counts: list[int]) -> dict[str, Any]:
    return {"count": sum(counts), "median": percentile(counts, 0.5), "p90": percentile(counts, 0.9),
            "buckets": counts}


def _figures(row: Any) -> dict[str, Any]:
    fa = [int(row[f"first_answer_{i}"] or 0) for i in range(REPORT_BUCKETS)]
    du = [int(row[f"duration_{i}"] or 0) for i in range(REPORT_BUCKETS)]
    chats, missed = int(row["chats"] or 0), int(row["missed"] or 0)
    return {"chats": chats, "answered": chats - missed, "missed": missed,
            "offline_messages": int(row["offline_messages"] or 0), "messages": int(row["messages"] or 0),
            "ratings": {str(i): int(row[f"rating_{i}"] or 0) for i in range(1, 6)},
            "first_answer": _times(fa), "duration": _times(du)}


SUMMED = ["chats", "missed", "offline_messages", "messages", *[f"rating_{i}" for i in range(1, 6)],
          *[f"first_answer_{i}" for i in range(REPORT_BUCKETS)], *[f"duration_{i}" for i in range(REPORT_BUCKETS)]]
EMPTY = {name: 0 for name in SUMMED}


def parse_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """The report's days from the query (``YYYY-MM-DD``, both inclusive);
    without them the last 30 days. Refusals are 400s that say what is wrong."""
    def one(value: str) -> date:
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise ChatError("bad_date", "Give dates as YYYY-MM-DD, like 2026-12-31.", 400) from None

    last = one(end) if end else today
    first = one(start) if start else last - timedelta(days=29)
    if first > last:
        raise ChatError("bad_range", "The start date is after the end date.", 400)
    if (last - first).days + 1 > MAX_DAYS:
        raise ChatError("range_too_long", "Choose at most 366 days.", 400)
    return first, last


def today(rt: Runtime) -> date:
    return cell_of(rt.clock.now(), rt.settings.time_zone)[0]


async def daily(rt: Runtime, *, start: date, end: date, department: int | None = None,
                per_agent: bool = False) -> dict[str, Any]:
    """The report of ``start``..``end`` (inclusive): every day with its
    figures (zeros included), the range's totals, the chats per hour of day,
    and, when ``per_agent`` and the setting allow it, each agent's chats
    answered and first-answer times. Holds no personal data of visitors: not
    audited (docs/reports.md)."""
    where = [DAILY.c.day >= start, DAILY.c.day <= end]
    if department is not None:
        where.append(DAILY.c.department_id == department)
    sums = [func.coalesce(func.sum(DAILY.c[name]), 0).label(name) for name in SUMMED]
    async with rt.db.connection() as conn:
        by_day = {row.day: row._mapping for row in (await conn.execute(
            select(DAILY.c.day, *sums).where(*where).group_by(DAILY.c.day))).all()}
        total = (await conn.execute(select(*sums).where(*where))).one()._mapping
        by_hour = {row.hour: row.chats for row in (await conn.execute(
            select(DAILY.c.hour, func.sum(DAILY.c.chats).label("chats")).where(*where)
            .group_by(DAILY.c.hour))).all()}
        agents = None
        if per_agent and rt.settings.reports_per_agent:
            agent_sums = [func.sum(AGENT.c[f"first_answer_{i}"]).label(f"first_answer_{i}")
                          for i in range(REPORT_BUCKETS)]
            rows = (await conn.execute(
                select(AGENT.c.agent_id, StaffAccount.name, func.sum(AGENT.c.chats_answered).label("answered"),
                       *agent_sums).join(StaffAccount, StaffAccount.id == AGENT.c.agent_id)
                .where(AGENT.c.day >= start, AGENT.c.day <= end)
                .group_by(AGENT.c.agent_id, StaffAccount.name).order_by(StaffAccount.name))).all()
            agents = []
            for row in rows:
                fa = [int(row._mapping[f"first_answer_{i}"] or 0) for i in range(REPORT_BUCKETS)]
                agents.append({"agent_id": row.agent_id, "name": row.name, "chats_answered": int(row.answered or 0),
                               "first_answer": _times(fa)})
    days = []
    day = start
    while day <= end:
        days.append({"day": day.isoformat(), **_figures(by_day.get(day, EMPTY))})
        day += timedelta(days=1)
    out: dict[str, Any] = {
        "from": start.isoformat(), "to": end.isoformat(), "time_zone": rt.settings.time_zone,
        "department": department, "bucket_bounds": list(REPORT_BOUNDS), "totals": _figures(total),
        "hours": [int(by_hour.get(h, 0) or 0) for h in range(24)], "days": days}
    if agents is not None:
        out["agents"] = agents
    return out


CSV_HEADER = ["day", "chats", "answered", "missed", "offline_messages", "messages",
              "first_answer_median_s", "first_answer_p90_s", "duration_median_s", "duration_p90_s",
              "rating_1", "rating_2", "rating_3", "rating_4", "rating_5"]


def _bound(p: dict[str, int] | None) -> str:
    if p is None:
        return ""
    return str(p["le"]) if "le" in p else f">{p['gt']}"


def csv_rows(report: dict[str, Any]) -> list[list[str | int]]:
    """The report's days as CSV rows (numbers and dates only: nothing a
    spreadsheet could run), percentiles as their bucket's upper bound in
    seconds (">3600": over an hour)."""
    rows: list[list[str | int]] = [CSV_HEADER]
    for d in report["days"]:
        rows.append([d["day"], d["chats"], d["answered"], d["missed"], d["offline_messages"], d["messages"],
                     _bound(d["first_answer"]["median"]), _bound(d["first_answer"]["p90"]),
                     _bound(d["duration"]["median"]), _bound(d["duration"]["p90"]),
                     *[d["ratings"][str(i)] for i in range(1, 6)]])
    return rows
