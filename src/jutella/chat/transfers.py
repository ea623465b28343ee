"""Handing a conversation to another agent or department (docs/departments.md).

To an online agent: the conversation becomes theirs at once and the visitor
sees "<name> joined the chat." To a department: it goes back to waiting in
that department's queue and the visitor sees that it was passed on. An
optional note to the receiver is stored in the same transaction as a
staff-only ``note`` event. The history stays whole: nothing is copied or moved.
"""

from __future__ import annotations

from typing import Any

from jutella.accounts import audit
from jutella.runtime import Runtime
from jutella.store.models import Conversation, Department, StaffAccount

from .actions import (
    ACTIVE,
    CLOSED,
    WAITING,
    ChatError,
    _agent_name,
    _append,
    agent_channel,
    auto_assign,
    conv_channel,
    event_frame,
    queue_channel,
    summary,
)
from .departments import check_limit, dept_channel

MAX_NOTE = 4000


async def transfer(rt: Runtime, *, agent_id: int, conversation_id: int, to_agent_id: int | None = None,
                   to_department_id: int | None = None, note: str | None = None,
                   is_admin: bool = False) -> Conversation:
    """Transfer a conversation. Only its current agent or an administrator may."""
    if (to_agent_id is None) == (to_department_id is None):
        raise ChatError("invalid", "Choose one agent or one department to transfer to.", 400)
    note = (note or "").strip() or None
    if note is not None and (len(note) > MAX_NOTE or "\x00" in note):
        raise ChatError("too_long", "The note is too long (at most 4000 characters).", 400)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        conv = await s.get(Conversation, conversation_id, with_for_update=True)
        if conv is None:
            raise ChatError("not_found", "No such conversation.", 404)
        if conv.state == CLOSED:
            raise ChatError("closed", "This conversation is closed.", 409)
        if not is_admin and conv.agent_id != agent_id:
            raise ChatError("forbidden", "Only the agent handling this conversation or an administrator can "
                                         "transfer it.", 403)
        sender = await _agent_name(s, agent_id)
        before = {"agent_id": conv.agent_id, "queue": queue_channel(conv)}
        if to_agent_id is not None:
            target = await s.get(StaffAccount, to_agent_id)
            if target is None or target.disabled_at is not None or "agent" not in target.role_names:
                raise ChatError("not_found", "No such agent.", 404)
            if conv.state == ACTIVE and conv.agent_id == to_agent_id:
                raise ChatError("conflict", "{name} already has this conversation.", 409, name=target.name)
            if to_agent_id not in rt.presence.online_agents():
                raise ChatError("not_online", "{name} is not online.", 409, name=target.name)
            await check_limit(s, to_agent_id, rt.settings.max_concurrent_chats)
            conv.state, conv.agent_id = ACTIVE, to_agent_id
            if conv.accepted_at is None:
                conv.accepted_at = now
            receiver_name = target.name
            ev = await _append(s, conv.id, now, kind="state", author="system", agent_id=to_agent_id,
                               data={"state": ACTIVE, "key": "agent_joined", "name": target.name})
        else:
            dept = await s.get(Department, to_department_id)
            if dept is None:
                raise ChatError("not_found", "No such department.", 404)
            conv.state, conv.agent_id, conv.department_id = WAITING, None, dept.id
            receiver_name = None
            ev = await _append(s, conv.id, now, kind="state", author="system", agent_id=agent_id,
                               data={"state": WAITING, "key": "transferred", "name": dept.name})
        note_ev = None
        if note:
            note_ev = await _append(s, conv.id, now, kind="note", author="agent", agent_id=agent_id, body=note,
                                    data={"key": "transfer_note", "to_agent": to_agent_id,
                                          "to_department": to_department_id})
        conv.last_seq = (note_ev or ev).seq
        conv.last_activity_at = now
        await audit.record(s, now, actor_id=agent_id, action="conversation.transfer", target_type="conversation",
                           target_id=conv.id, subject=f"visitor:{conv.visitor_id}",
                           detail={"from_agent": before["agent_id"], "to_agent": to_agent_id,
                                   "to_department": to_department_id, "note": note_ev is not None})
    await rt.hub.publish(conv_channel(conv.id), event_frame(ev, receiver_name))
    if note_ev is not None:
        await rt.hub.publish(conv_channel(conv.id), event_frame(note_ev, sender))
    base: dict[str, Any] = {"type": "conversation", "conversation": summary(conv, receiver_name)}
    told = {to_agent_id and agent_channel(to_agent_id), to_department_id and dept_channel(to_department_id)} - {None, 0}
    for channel in told:  # the receiver: with who sent it and the note
        await rt.hub.publish(channel, {**base, "transfer": {"from_agent_id": agent_id, "from_name": sender,
                                                            "note": note}})
    for channel in {before["queue"], before["agent_id"] and agent_channel(before["agent_id"])} - told - {None, 0}:
        await rt.hub.publish(channel, base)  # where it was: it left the list (or changed hands)
    if to_department_id is not None and rt.settings.auto_assign:
        await auto_assign(rt, conv.id)
    return conv
