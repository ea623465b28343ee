"""Handing a conversation to another agent or department (docs/departments.md).

To an online agent: the conversation becomes theirs at once and the visitor
sees "<name> joined the chat." To a department: it goes back to waiting in
that department's queue and the visitor sees that it was passed on. An
optional note to the receiver is stored in the same transaction as a
staff-only ``note`` event. The history stays whole: nothing is copied or moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select, update

from jutella.accounts import audit
from jutella.channels import dept_channel
from jutella.runtime import Runtime
from jutella.store.models import Department, StaffRole

from .access import Viewer
from .queue import queue_changed
from .actions import (
    _STAFF_NAME,
    ACTIVE,
    CLOSED,
    CONV,
    STAFF,
    WAITING,
    ChatError,
    agent_channel,
    auto_assign,
    conv_channel,
    core_append,
    core_hand_to,
    core_lock_for,
    event_frame,
    queue_channel,
    summary,
    viewer_of,
)

MAX_NOTE = 4000


@dataclass
class Transferred:
    conversation: SimpleNamespace  # as it is now
    event: SimpleNamespace  # "<name> joined the chat." or "passed on to <department>"
    note: SimpleNamespace | None  # the note to the receiver (staff-only)
    sender: str | None
    receiver: str | None  # the receiving agent's name
    from_agent: int | None
    from_queue: str
    waited_in: tuple[int | None] | None = None  # (the department,) of the queue it waited in before, if it did


def core_transfer(conn: Connection, conv: SimpleNamespace, now: datetime, *, agent_id: int,
                  to_agent_id: int | None, to_department_id: int | None, note: str | None, is_admin: bool,
                  online: set[int], limit: int) -> Transferred:
    """THE one place a conversation changes hands. ``conv``: its row, read FOR
    UPDATE in this write (updated in place). To an agent: the step of taking
    a chat (actions.core_hand_to: their concurrent-chat limit, "joined");
    to a department: back to waiting in its queue. The note, if any, is a
    staff-only event right after (actions.core_append, like every event)."""
    if conv.state == CLOSED:
        raise ChatError("closed", "This conversation is closed.", 409)
    if not is_admin and conv.agent_id != agent_id:
        raise ChatError("forbidden", "Only the agent handling this conversation or an administrator can "
                                     "transfer it.", 403)
    sender = _STAFF_NAME.scalar(conn, {"b_agent": agent_id})
    from_agent, from_queue = conv.agent_id, queue_channel(conv)
    waited_in = (conv.department_id,) if conv.state == WAITING else None
    receiver = None
    if to_agent_id is not None:
        target = conn.execute(select(STAFF.c.name, STAFF.c.disabled_at).where(STAFF.c.id == to_agent_id)).first()
        is_agent = conn.execute(select(StaffRole.account_id).where(
            StaffRole.account_id == to_agent_id, StaffRole.role == "agent")).first() is not None
        if target is None or target.disabled_at is not None or not is_agent:
            raise ChatError("not_found", "No such agent.", 404)
        if conv.state == ACTIVE and conv.agent_id == to_agent_id:
            raise ChatError("conflict", "{name} already has this conversation.", 409, name=target.name)
        if to_agent_id not in online:
            raise ChatError("not_online", "{name} is not online.", 409, name=target.name)
        receiver = target.name
        ev = core_hand_to(conn, conv, to_agent_id, now, limit=limit, name=target.name)
    else:
        dept = conn.execute(select(Department.id, Department.name).where(Department.id == to_department_id)).first()
        if dept is None:
            raise ChatError("not_found", "No such department.", 404)
        conn.execute(update(CONV).where(CONV.c.id == conv.id).values(state=WAITING, agent_id=None,
                                                                      department_id=dept.id))
        conv.state, conv.agent_id, conv.department_id = WAITING, None, dept.id
        ev = core_append(conn, conv.id, now, kind="state", author="system", agent_id=agent_id,
                         data={"state": WAITING, "key": "transferred", "name": dept.name})
    note_ev = None
    if note:
        note_ev = core_append(conn, conv.id, now, kind="note", author="agent", agent_id=agent_id, body=note,
                              data={"key": "transfer_note", "to_agent": to_agent_id,
                                    "to_department": to_department_id}, activity=False)
    conv.last_seq, conv.last_activity_at = (note_ev or ev).seq, now
    return Transferred(conv, ev, note_ev, sender, receiver, from_agent, from_queue, waited_in)


async def transfer(rt: Runtime, *, agent_id: int, conversation_id: int, to_agent_id: int | None = None,
                   to_department_id: int | None = None, note: str | None = None,
                   is_admin: bool = False, viewer: Viewer | None = None) -> SimpleNamespace:
    """Transfer a conversation (:func:`core_transfer`), audited in the same
    transaction. Only its current agent or an administrator may, and only one
    ``viewer`` (loaded from ``agent_id`` when not given) may see: decided
    inside the write, before the request itself is judged, so a hidden
    conversation answers "not found" whatever was asked."""
    note = (note or "").strip() or None
    now = rt.clock.now()
    online = rt.presence.online_agents()
    viewer = await viewer_of(rt, viewer, agent_id)

    def work(conn: Connection) -> Transferred:
        conv = core_lock_for(conn, viewer, conversation_id)
        if (to_agent_id is None) == (to_department_id is None):
            raise ChatError("invalid", "Choose one agent or one department to transfer to.", 400)
        if note is not None and (len(note) > MAX_NOTE or "\x00" in note):
            raise ChatError("too_long", "The note is too long (at most 4000 characters).", 400)
        return core_transfer(conn, conv, now, agent_id=agent_id, to_agent_id=to_agent_id,
                             to_department_id=to_department_id, note=note, is_admin=is_admin, online=online,
                             limit=rt.settings.max_concurrent_chats)

    async with rt.db.transaction() as s:
        done = await s.run_sync(lambda session: work(session.connection()))
        conv = done.conversation
        await audit.record(s, now, actor_id=agent_id, action="conversation.transfer", target_type="conversation",
                           target_id=conv.id, subject=f"visitor:{conv.visitor_id}",
                           detail={"from_agent": done.from_agent, "to_agent": to_agent_id,
                                   "to_department": to_department_id, "note": done.note is not None})
    await rt.hub.publish(conv_channel(conv.id), event_frame(done.event, done.receiver))
    if done.note is not None:
        await rt.hub.publish(conv_channel(conv.id), event_frame(done.note, done.sender))
    base: dict[str, Any] = {"type": "conversation", "conversation": summary(conv, done.receiver)}
    told = {to_agent_id and agent_channel(to_agent_id), to_department_id and dept_channel(to_department_id)} - {None, 0}
    for channel in told:  # the receiver: with who sent it and the note
        await rt.hub.publish(channel, {**base, "transfer": {"from_agent_id": agent_id, "from_name": done.sender,
                                                            "note": note}})
    for channel in {done.from_queue, done.from_agent and agent_channel(done.from_agent)} - told - {None, 0}:
        await rt.hub.publish(channel, base)  # where it was: it left the list (or changed hands)
    if done.waited_in is not None:  # it left the queue it waited in
        queue_changed(rt, done.waited_in[0])
    if to_department_id is not None:  # it waits in the department's queue now
        queue_changed(rt, to_department_id)
    if to_department_id is not None and rt.settings.auto_assign:
        await auto_assign(rt, conv.id)
    return conv
