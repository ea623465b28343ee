"""Departments ("Jäsenyys", "Opintoasiat", "Tekniikka"), agents' membership of
them, and the concurrent-chat limit. See docs/departments.md.

Changes go through the actions below (one transaction, an audit row, then a
publish). The reads are small helpers the routing, the presence frames, the
widget's choice and the transfer dialog share.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from jutella.accounts import audit
from jutella.channels import AGENTS_CHANNEL, dept_channel
from jutella.runtime import Runtime
from jutella.store.models import (
    Conversation,
    Department,
    OfflineMessage,
    OpeningHours,
    StaffAccount,
    StaffDepartment,
    StaffRole,
)

from . import hours
from .errors import ChatError
from .offline import validate_email
from .presence import in_display_order, publish_presence
from .revocation import bump_access_version, publish_access_changed
from .states import ACTIVE

MAX_NAME = 100


# -- who sees what: chat/access.py -------------------------------------------------------
async def channels_for(rt: Runtime, account_id: int, is_admin: bool) -> set[str]:
    """The department queue channels an agent's console subscribes to."""
    async with rt.db.reader() as s:
        if is_admin:
            ids = (await s.execute(select(Department.id))).scalars()
        else:
            ids = (await s.execute(select(StaffDepartment.department_id)
                                   .where(StaffDepartment.account_id == account_id))).scalars()
        return {dept_channel(i) for i in ids}


# -- reads (the widget's choice of departments is read in presence.py) -----------------------
async def list_departments(rt: Runtime) -> list[dict[str, Any]]:
    """Every department with its member ids and whether anyone of it is online."""
    online = rt.presence.online_agents()
    async with rt.db.reader() as s:
        depts = (await s.execute(in_display_order(select(Department)))).scalars().all()
        members: dict[int, list[int]] = {}
        for account_id, department_id in (await s.execute(
                select(StaffDepartment.account_id, StaffDepartment.department_id))).all():
            members.setdefault(department_id, []).append(account_id)
    return [{"id": d.id, "name": d.name, "notify_email": d.notify_email, "position": d.position,
             "members": sorted(members.get(d.id, [])),
             "online": any(a in online for a in members.get(d.id, []))} for d in depts]


def core_department_for_new(conn: Connection, requested: int | None, online: set[int]) -> int | None:
    """The department a new conversation goes to: the visitor's choice when it
    exists, else the only department online, else none (the shared queue).
    Runs inside the write that creates the conversation."""
    if requested is not None:
        found = conn.execute(select(Department.id).where(Department.id == requested)).scalar_one_or_none()
        if found is not None:
            return found
    if not online:
        return None
    ids = list(conn.execute(select(StaffDepartment.department_id).where(
        StaffDepartment.account_id.in_(online)).distinct().limit(2)).scalars())
    return ids[0] if len(ids) == 1 else None


# -- concurrent-chat limits -------------------------------------------------------------------
def limit_of(default: int, max_chats: int | None) -> int:
    """An agent's limit: their own when set, else the setting; 0 = no limit."""
    return default if max_chats is None else max_chats


def core_check_limit(conn: Connection, agent_id: int, default: int) -> None:
    """Refuse (409) when the agent already holds as many active chats as their limit.
    Locking the agent's row (PostgreSQL; SQLite has one writer anyway) makes two
    chats accepted for the same agent at the same moment count one after the other."""
    row = conn.execute(select(StaffAccount.name, StaffAccount.max_chats).where(StaffAccount.id == agent_id)
                       .with_for_update()).first()
    if row is None:
        return
    limit = limit_of(default, row.max_chats)
    if not limit:
        return
    active = conn.execute(select(func.count()).select_from(Conversation).where(
        Conversation.state == ACTIVE, Conversation.agent_id == agent_id)).scalar_one()
    if active >= limit:
        raise ChatError("limit_reached", "{name} has reached their limit of {limit} chats.", 409,
                        name=row.name, limit=limit)


async def agent_load(rt: Runtime, *, only_online: bool = False) -> list[dict[str, Any]]:
    """Each enabled agent: active chats, limit, presence state and departments."""
    default = rt.settings.max_concurrent_chats
    async with rt.db.reader() as s:
        agents = (await s.execute(
            select(StaffAccount.id, StaffAccount.name, StaffAccount.max_chats)
            .join(StaffRole, and_(StaffRole.account_id == StaffAccount.id, StaffRole.role == "agent"))
            .where(StaffAccount.disabled_at.is_(None)).order_by(StaffAccount.name, StaffAccount.id))).all()
        active = dict((await s.execute(select(Conversation.agent_id, func.count()).where(
            Conversation.state == ACTIVE, Conversation.agent_id.is_not(None))
            .group_by(Conversation.agent_id))).all())
        depts: dict[int, list[int]] = {}
        for account_id, department_id in (await s.execute(
                select(StaffDepartment.account_id, StaffDepartment.department_id))).all():
            depts.setdefault(account_id, []).append(department_id)
    out = []
    for agent_id, name, max_chats in agents:
        state = rt.presence.state_of(agent_id)
        if agent_id in rt.presence.online_agents():
            state = "online"
        if only_online and state != "online":
            continue
        out.append({"id": agent_id, "name": name, "state": state, "active": active.get(agent_id, 0),
                    "limit": limit_of(default, max_chats), "max_chats": max_chats,
                    "departments": sorted(depts.get(agent_id, []))})
    return out


# -- actions --------------------------------------------------------------------------------------
def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ChatError("name_required", "Give the department a name.", 400)
    if len(name) > MAX_NAME:
        raise ChatError("name_too_long", "The name is too long (at most {limit} characters).", 400, limit=MAX_NAME)
    return name


def _clean_email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return validate_email(value)
    except Exception:
        raise ChatError("email_invalid", "Enter a valid email address, like name@example.fi.", 400) from None


async def _changed(rt: Runtime, *, access: bool = False, version: int | None = None) -> None:
    """Consoles re-read their department queues; widgets get the new choice.
    ``access``: memberships changed, so who may see what did: the sockets
    re-check what they follow (chat/revocation.py) and then tell the
    console, which reloads its lists as for ``departments_changed``."""
    if access:
        await publish_access_changed(rt, version=version)
    else:
        await rt.hub.publish(AGENTS_CHANNEL, {"type": "departments_changed"})
    await publish_presence(rt)


async def create(rt: Runtime, *, actor_id: int, name: str, notify_email: str | None = None,
                 position: int | None = None) -> Department:
    name, notify_email = _clean_name(name), _clean_email(notify_email)
    now = rt.clock.now()
    try:
        async with rt.db.transaction() as s:
            if position is None:
                position = ((await s.execute(select(func.max(Department.position)))).scalar() or 0) + 1
            dept = Department(name=name, notify_email=notify_email, position=position, created_at=now)
            s.add(dept)
            await s.flush()
            await audit.record(s, now, actor_id=actor_id, action="department.create", target_type="department",
                               target_id=dept.id)
    except IntegrityError:
        raise ChatError("name_taken", "A department with that name already exists.", 409) from None
    await _changed(rt)
    return dept


_UNSET: Any = object()


async def change(rt: Runtime, *, actor_id: int, department_id: int, name: str | None = None,
                 notify_email: Any = _UNSET, position: int | None = None) -> Department:
    """Rename a department, change its notification address or its place in the list."""
    now = rt.clock.now()
    fields: list[str] = []
    try:
        async with rt.db.transaction() as s:
            dept = await s.get(Department, department_id, with_for_update=True)
            if dept is None:
                raise ChatError("not_found", "No such department.", 404)
            if name is not None:
                dept.name = _clean_name(name)
                fields.append("name")
            if notify_email is not _UNSET:
                dept.notify_email = _clean_email(notify_email)
                fields.append("notify_email")
            if position is not None:
                dept.position = position
                fields.append("position")
            await s.flush()
            await audit.record(s, now, actor_id=actor_id, action="department.change", target_type="department",
                               target_id=dept.id, detail={"fields": fields})
    except IntegrityError:
        raise ChatError("name_taken", "A department with that name already exists.", 409) from None
    await _changed(rt)
    return dept


async def remove(rt: Runtime, *, actor_id: int, department_id: int) -> None:
    """Delete a department. Its conversations and offline messages stay, without a
    department (waiting ones move to the shared queue)."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        dept = await s.get(Department, department_id, with_for_update=True)
        if dept is None:
            raise ChatError("not_found", "No such department.", 404)
        # explicit, not only ON DELETE: SQLite without foreign keys in some tools
        await s.execute(update(Conversation).where(Conversation.department_id == department_id)
                        .values(department_id=None))
        await s.execute(update(OfflineMessage).where(OfflineMessage.department_id == department_id)
                        .values(department_id=None))
        await s.execute(delete(StaffDepartment).where(StaffDepartment.department_id == department_id))
        await s.delete(dept)
        await audit.record(s, now, actor_id=actor_id, action="department.delete", target_type="department",
                           target_id=department_id)
        version = await bump_access_version(s)  # last in the transaction (store/access_version.py)
    await _changed(rt, access=True, version=version)


async def set_members(rt: Runtime, *, actor_id: int, department_id: int, account_ids: list[int]) -> list[int]:
    """Replace a department's members (agents only)."""
    now = rt.clock.now()
    wanted = sorted(set(account_ids))
    async with rt.db.transaction() as s:
        dept = await s.get(Department, department_id, with_for_update=True)
        if dept is None:
            raise ChatError("not_found", "No such department.", 404)
        agents = set((await s.execute(select(StaffRole.account_id).where(
            StaffRole.role == "agent", StaffRole.account_id.in_(wanted)))).scalars()) if wanted else set()
        missing = [a for a in wanted if a not in agents]
        if missing:
            raise ChatError("not_agent", "Only agents can belong to a department (not: {ids}).", 400,
                            ids=", ".join(map(str, missing)))
        await s.execute(delete(StaffDepartment).where(StaffDepartment.department_id == department_id))
        for account_id in wanted:
            s.add(StaffDepartment(account_id=account_id, department_id=department_id))
        await audit.record(s, now, actor_id=actor_id, action="department.members", target_type="department",
                           target_id=department_id, detail={"members": wanted})
        version = await bump_access_version(s)  # last in the transaction (store/access_version.py)
    await _changed(rt, access=True, version=version)
    return wanted


async def set_account_departments(rt: Runtime, account_id: int, names: list[str]) -> list[int]:
    """One agent's departments, by name, as the identity provider's groups map
    them (accounts/oidc.py ``DepartmentSync``, docs/sso.md): memberships of
    the named departments only, added and removed as needed; names that are no
    department are left out. A change writes an audit row and, like
    :func:`set_members`, makes open consoles re-check what they may see."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        wanted: set[int] = set()
        if names:
            is_agent = (await s.execute(select(StaffRole.account_id).where(
                StaffRole.account_id == account_id, StaffRole.role == "agent"))).first() is not None
            if is_agent:
                wanted = set((await s.execute(select(Department.id).where(Department.name.in_(names)))).scalars())
        have = set((await s.execute(select(StaffDepartment.department_id)
                                    .where(StaffDepartment.account_id == account_id))).scalars())
        if wanted == have:
            return sorted(have)
        if have - wanted:
            await s.execute(delete(StaffDepartment).where(StaffDepartment.account_id == account_id,
                                                          StaffDepartment.department_id.in_(have - wanted)))
        for department_id in sorted(wanted - have):
            s.add(StaffDepartment(account_id=account_id, department_id=department_id))
        await audit.record(s, now, actor_id=None, action="account.departments", target_type="account",
                           target_id=account_id, detail={"departments": sorted(wanted), "sso": True})
        version = await bump_access_version(s)  # last in the transaction (store/access_version.py)
    await _changed(rt, access=True, version=version)
    return sorted(wanted)


async def set_max_chats(rt: Runtime, *, actor_id: int, account_id: int, max_chats: int | None) -> None:
    """An agent's own concurrent-chat limit (None: the setting's; 0: no limit)."""
    if max_chats is not None and not 0 <= max_chats <= 1000:
        raise ChatError("invalid", "The limit must be between 0 and 1000.", 400)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        account = await s.get(StaffAccount, account_id, with_for_update=True)
        if account is None:
            raise ChatError("not_found", "No such account.", 404)
        account.max_chats = max_chats
        await audit.record(s, now, actor_id=actor_id, action="account.max_chats", target_type="staff_account",
                           target_id=account_id, detail={"max_chats": max_chats})


# -- opening hours (docs/hours.md) --------------------------------------------------------------
async def list_hours(rt: Runtime) -> list[dict[str, Any]]:
    """Every stored schedule: the service-wide one (department_id None) and the departments' own."""
    async with rt.db.reader() as s:
        rows = (await s.execute(select(OpeningHours).order_by(OpeningHours.key))).scalars().all()
    return [{"department_id": r.department_id, "weekly": r.weekly, "exceptions": r.exceptions} for r in rows]


async def set_hours(rt: Runtime, *, actor_id: int, department_id: int | None, weekly: Any,
                    exceptions: Any) -> dict[str, Any]:
    """Replace the opening hours of a department (None: of the whole service).
    Nothing at all (no weekly hours, no exceptions) removes them: always open.
    Refused with ``hours_invalid`` and what is wrong (chat/hours.py ``parse``)."""
    weekly, exceptions = hours.parse(weekly, exceptions)
    now = rt.clock.now()
    key = "service" if department_id is None else f"dept:{department_id}"
    async with rt.db.transaction() as s:
        if department_id is not None and await s.get(Department, department_id) is None:
            raise ChatError("not_found", "No such department.", 404)
        row = await s.get(OpeningHours, key, with_for_update=True)
        if not weekly and not exceptions:
            if row is not None:
                await s.delete(row)
        elif row is None:
            s.add(OpeningHours(key=key, department_id=department_id, weekly=weekly, exceptions=exceptions,
                               updated_at=now))
        else:
            row.weekly, row.exceptions, row.updated_at = weekly, exceptions, now
        await audit.record(s, now, actor_id=actor_id, action="hours.change", target_type="department",
                           target_id=department_id, detail={"scope": key, "days": sorted(weekly),
                                                            "exceptions": len(exceptions)})
    await publish_presence(rt)  # the widgets follow at once (every worker's housekeeping does within 2 s)
    return {"department_id": department_id, "weekly": weekly, "exceptions": exceptions}
