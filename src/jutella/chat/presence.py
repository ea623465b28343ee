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

from sqlalchemy import select

from jutella.channels import PRESENCE_CHANNEL
from jutella.clock import Clock
from jutella.runtime import Runtime
from jutella.store.models import Department, StaffDepartment

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
        # what this worker last told its widgets: (anyone online, the departments
        # to choose from); None until the first publish_presence
        self.published: tuple[bool, list[dict[str, Any]]] | None = None
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


async def online_departments(rt: Runtime) -> list[dict[str, Any]]:
    """Departments with at least one member online (not away), in display order."""
    online = rt.presence.online_agents()
    if not online:
        return []
    async with rt.db.reader() as s:
        rows = (await s.execute(in_display_order(
            select(Department.id, Department.name).where(Department.id.in_(
                select(StaffDepartment.department_id).where(StaffDepartment.account_id.in_(online))))))).all()
    return [{"id": i, "name": n} for i, n in rows]


async def visitor_choice(rt: Runtime) -> list[dict[str, Any]]:
    """What the widget offers: the online departments when the setting is on and
    more than one is online; otherwise nothing (the chat goes to the only one
    online, or to the shared queue)."""
    if not rt.settings.widget_department_choice:
        return []
    found = await online_departments(rt)
    return found if len(found) > 1 else []


async def publish_presence(rt: Runtime, *, announce: bool = True) -> None:
    """Tell this worker's widgets when "is anyone online?" changes, and (with
    Redis) tell the other workers who is online here. Each worker computes the
    answer from its own agents plus the others' announcements, so the frame
    is delivered locally only: no two workers' views race on the wire.

    ``announce=False`` when another worker's announcement prompted the call:
    answering it with an announcement of our own made two workers bounce
    announcements off each other for ever (found by the 2-worker benchmark)."""
    announce_to = getattr(rt.hub, "announce_presence", None)
    if announce and announce_to is not None:
        announce_to(sorted(rt.presence.local_online()))
    async with rt.presence.publishing:  # computed and told in the order of the calls
        now_online = rt.presence.any_online()
        departments = await visitor_choice(rt)  # the widget's department picker (docs/departments.md)
        if rt.presence.published != (now_online, departments):
            rt.presence.published = (now_online, departments)
            rt.hub.deliver_local(PRESENCE_CHANNEL, {"type": "presence", "agents_online": now_online,
                                                    "departments": departments})


async def current_choice(rt: Runtime) -> list[dict[str, Any]]:
    """The departments a new widget may pick from: as last published (no
    database read per opened widget), or read now if nothing was published yet."""
    published = rt.presence.published
    return published[1] if published is not None else await visitor_choice(rt)
