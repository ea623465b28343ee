"""Who is on duty. An agent is online while a console tab with status
``online`` is connected; ``away`` and ``offline`` are chosen; after
``GRACE`` without any connection (a reload, a train tunnel) the agent counts as
offline. Kept in memory per process; with Redis configured the hub shares it
between workers.

Also here: telling the widgets whether anyone is on duty, and which
departments they may choose (:func:`publish_presence`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jutella.channels import PRESENCE_CHANNEL
from jutella.clock import Clock
from jutella.runtime import Runtime
from jutella.store.models import Department, OpeningHours, StaffDepartment

from . import hours
from .hours import Schedule, may_start

GRACE = timedelta(minutes=2)
STATES = ("online", "away", "offline")


@dataclass
class _Agent:
    conns: dict[str, str] = field(default_factory=dict)  # connection id -> chosen state
    last_state: str = "offline"
    gone_since: datetime | None = None


class Presence:
    def __init__(self, clock: Clock):
        self.clock = clock
        self._agents: dict[int, _Agent] = {}
        # local_online() is asked for every visitor message: remembered until
        # a change here, or until the first grace period that is running ends
        self._online: frozenset[int] | None = None
        self._online_until: datetime | None = None
        self.remote = None  # other workers' online agents (realtime.redis_hub.RemotePresence), if any
        # what this worker last told its widgets (widget_offer: anyone online, the
        # departments to choose from, closed); None until the first publish_presence
        self.published: dict[str, Any] | None = None
        # publish_presence reads the database between computing and telling:
        # one at a time, so an older answer can never be told after a newer one
        self.publishing = asyncio.Lock()

    def connect(self, agent_id: int, conn_id: str, state: str) -> None:
        self._online = None
        a = self._agents.setdefault(agent_id, _Agent())
        a.conns[conn_id] = state
        a.last_state = state
        a.gone_since = None

    def set_state(self, agent_id: int, conn_id: str, state: str) -> None:
        self._online = None
        a = self._agents.setdefault(agent_id, _Agent())
        # one person, one status: a choice in one tab applies to all their tabs
        for key in a.conns:
            a.conns[key] = state
        a.conns[conn_id] = state
        a.last_state = state
        a.gone_since = None

    def disconnect(self, agent_id: int, conn_id: str) -> None:
        self._online = None
        a = self._agents.get(agent_id)
        if a is None:
            return
        a.conns.pop(conn_id, None)
        if not a.conns:
            a.gone_since = self.clock.now()

    def forget(self, agent_id: int) -> None:
        """The account was disabled or signed out everywhere: offline at once."""
        self._online = None
        self._agents.pop(agent_id, None)

    def state_of(self, agent_id: int) -> str:
        a = self._agents.get(agent_id)
        if a is None:
            return "offline"
        if a.conns:
            states = set(a.conns.values())
            return "online" if "online" in states else ("away" if "away" in states else "offline")
        if a.gone_since is not None and self.clock.now() - a.gone_since < GRACE:
            return a.last_state
        return "offline"

    def local_online(self) -> frozenset[int]:
        now = self.clock.now()
        if self._online is not None and (self._online_until is None or now < self._online_until):
            return self._online
        online = frozenset(a for a in list(self._agents) if self.state_of(a) == "online")
        graces = [a.gone_since + GRACE for a in self._agents.values() if not a.conns and a.gone_since is not None
                  and now < a.gone_since + GRACE]
        self._online, self._online_until = online, min(graces, default=None)
        return online

    def online_agents(self) -> frozenset[int]:
        local = self.local_online()
        return local | self.remote.online() if self.remote is not None else local

    def any_online(self) -> bool:
        return bool(self.online_agents())

    def sweep(self) -> None:
        for agent_id in [a for a, s in self._agents.items() if not s.conns and self.state_of(a) == "offline"]:
            self._agents.pop(agent_id, None)


# -- what the widgets are told ---------------------------------------------------------------
def in_display_order(q):
    """Departments as the console and the widget list them."""
    return q.order_by(Department.position, Department.name, Department.id)


async def load_schedules(rt: Runtime, department_ids: list[int] | None = None) -> dict[int | None, Schedule]:
    """The opening hours as stored now (chat/hours.py), keyed by department id
    (None: the service-wide hours). With one department only, its hours are the
    service's when the service has none of its own."""
    tz = ZoneInfo(rt.settings.time_zone)
    async with rt.db.reader() as s:
        rows = (await s.execute(select(OpeningHours))).scalars().all()
    out: dict[int | None, Schedule] = {r.department_id: hours.load(tz, r.weekly, r.exceptions) for r in rows}
    if None not in out and department_ids is not None and len(department_ids) == 1 and department_ids[0] in out:
        out[None] = out[department_ids[0]]
    return out


@dataclass(frozen=True)
class _Now:
    at: datetime
    anyone_service: bool  # the shared queue may take a chat now
    offered: frozenset[int]  # the departments where a chat may start now
    departments: list[tuple[int, str]]  # all, in display order
    schedules: dict[int | None, Schedule]

    def closed(self, tz: str, departments: frozenset[int] = frozenset()) -> dict[str, Any] | None:
        """The one rule for "closed": no chat may start in the service's queue
        or any of ``departments`` (empty: all), and each of them is outside
        its hours. {"next": ISO time of the earliest opening or None, "tz"};
        None: not closed."""
        ids = [i for i, _ in self.departments if not departments or i in departments]
        if self.anyone_service or any(i in self.offered for i in ids):
            return None
        scopes = [hours.schedule_for(self.schedules, None)] + [hours.schedule_for(self.schedules, i) for i in ids]
        if not all(sc is not None and not hours.is_open(sc, self.at) for sc in scopes):
            return None
        nexts = [n for n in (hours.next_opening(sc, self.at) for sc in scopes) if n is not None]
        return {"next": min(nexts).isoformat() if nexts else None, "tz": tz}


async def _now(rt: Runtime) -> _Now:
    now = rt.clock.now()
    strict = rt.settings.hours_strict
    online = rt.presence.online_agents()
    async with rt.db.reader() as s:
        depts = (await s.execute(in_display_order(select(Department.id, Department.name)))).all()
        staffed = set((await s.execute(select(StaffDepartment.department_id).where(
            StaffDepartment.account_id.in_(online)).distinct())).scalars()) if online else set()
    schedules = await load_schedules(rt, [i for i, _ in depts])
    offered = frozenset(i for i, _ in depts if may_start(schedules, i, online=i in staffed, at=now, strict=strict))
    return _Now(now, may_start(schedules, hours.SERVICE, online=bool(online), at=now, strict=strict), offered,
                [(i, n) for i, n in depts], schedules)


async def availability(rt: Runtime) -> dict[str, Any]:
    """What the widgets are told (``welcome`` and ``presence`` frames, the HTTP
    availability check): whether a chat may start now (``agents_online``), the
    departments to choose from, and, when every queue is outside its hours and
    nobody may take a chat, ``closed``: {"next": ISO time of the next opening
    or None, "tz": the register's time zone}. Each queue's answer is
    :func:`hours.may_start`."""
    state = await _now(rt)
    out: dict[str, Any] = {"agents_online": state.anyone_service or bool(state.offered),
                           "departments": [{"id": i, "name": n} for i, n in state.departments if i in state.offered]}
    closed = state.closed(rt.settings.time_zone)
    if closed is not None:
        out["closed"] = closed
    return out


async def closed_among(rt: Runtime, offers: dict[str, frozenset[int]]) -> frozenset[str]:
    """The keys of ``offers`` (a site's origin: the departments it offers,
    empty: all) whose every queue is closed now, by the rule of ``closed``
    (the loader hides those sites' launchers that ask for it, docs/sites.md)."""
    if not offers:
        return frozenset()
    state = await _now(rt)
    return frozenset(k for k, depts in offers.items() if state.closed(rt.settings.time_zone, depts) is not None)


async def may_start_now(rt: Runtime, department_id: int | None) -> bool:
    """:func:`hours.may_start` for one queue now, for an online agent: whether
    the hours let a chat be given to someone (auto-assignment)."""
    async with rt.db.reader() as s:
        ids = list((await s.execute(select(Department.id))).scalars())
    return may_start(await load_schedules(rt, ids), department_id, online=True, at=rt.clock.now(),
                     strict=rt.settings.hours_strict)


async def online_departments(rt: Runtime) -> list[dict[str, Any]]:
    """Departments in which a chat may start now (a member online, within its
    hours as the setting ``hours_strict`` says), in display order."""
    return (await availability(rt))["departments"]


async def visitor_choice(rt: Runtime) -> list[dict[str, Any]]:
    """What the widget offers: the open departments when the setting is on and
    more than one is open; otherwise nothing (the chat goes to the only one
    online, or to the shared queue)."""
    return _choice(rt, await availability(rt))


def _choice(rt: Runtime, found: dict[str, Any]) -> list[dict[str, Any]]:
    if not rt.settings.widget_department_choice:
        return []
    return found["departments"] if len(found["departments"]) > 1 else []


async def widget_offer(rt: Runtime) -> dict[str, Any]:
    """The fields of a ``presence`` frame (and of ``welcome``): agents_online,
    departments (the picker), on_duty (the ids of the departments taking
    chats now; absent: none) and closed when the service is closed."""
    found = await availability(rt)
    out = {"agents_online": found["agents_online"], "departments": _choice(rt, found)}
    if found["departments"]:  # the departments taking chats now: the pre-chat form's topics (chat/prechat.py)
        out["on_duty"] = [d["id"] for d in found["departments"]]
    if "closed" in found:
        out["closed"] = found["closed"]
    return out


async def publish_presence(rt: Runtime, *, announce: bool = True) -> None:
    """Tell this worker's widgets when "is anyone online?" changes, and (with
    Redis) tell the other workers who is online here. Each worker computes the
    answer from its own agents plus the others' announcements, so the frame
    is delivered locally only: no two workers' views race on the wire.

    ``announce=False`` when another worker's announcement prompted the call:
    answering it with an announcement of our own made two workers bounce
    announcements off each other for ever (found by the 2-worker benchmark).
    Housekeeping calls this every two seconds, so an opening or closing time
    reaches the widgets without anyone connecting."""
    announce_to = getattr(rt.hub, "announce_presence", None)
    if announce and announce_to is not None:
        announce_to(sorted(rt.presence.local_online()))
    async with rt.presence.publishing:  # computed and told in the order of the calls
        offer = await widget_offer(rt)  # the department picker (docs/departments.md), hours (docs/hours.md)
        if rt.presence.published != offer:
            rt.presence.published = offer
            rt.hub.deliver_local(PRESENCE_CHANNEL, {"type": "presence", **offer})


async def current_offer(rt: Runtime) -> dict[str, Any]:
    """What a new widget is told: as last published (no database read per
    opened widget), or read now if nothing was published yet."""
    published = rt.presence.published
    return published if published is not None else await widget_offer(rt)


async def on_duty(rt: Runtime) -> list[int]:
    """The departments taking chats now (see :func:`current_offer`)."""
    return (await current_offer(rt)).get("on_duty", [])


async def current_choice(rt: Runtime) -> list[dict[str, Any]]:
    """The departments a new widget may pick from (see :func:`current_offer`)."""
    return (await current_offer(rt))["departments"]
