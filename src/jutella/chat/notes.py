"""Internal notes: staff-only remarks inside a conversation.

A note is a ChatEvent of kind "note" (author "agent"), so it takes its place
in the conversation's seq order and reaches every console that follows the
conversation like any event. It never reaches the visitor: "note" is in
``actions.STAFF_ONLY_KINDS``, a visitor's live connection moves past it
silently (protocol.HIDDEN) and visitor-facing reads use
``events_since(..., for_visitor=True)``. It *is* personal data about the
visitor, so the access copy includes it (privacy/subjects.collect labels it
an internal note) and erasure and retention remove it with the conversation.

A note does not count as conversation activity: ``last_activity_at`` is left
alone, so a note neither keeps an idle chat open nor moves its retention
(``actions.core_append(..., activity=False)``, the one append every event
goes through). Nor does it take a waiting chat: any agent who may see the
conversation may note in it, in any state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from jutella.runtime import Runtime

from .access import Viewer
from .actions import (STAFF, ChatError, Posted, _core_existing, conv_channel, core_append, core_lock_for, event_frame,
                      viewer_of)

MAX_BODY = 4_000


async def post_note(rt: Runtime, *, agent_id: int, conversation_id: int, body: str, client_id: str,
                    data: dict[str, Any] | None = None, viewer: Viewer | None = None) -> Posted:
    """Store an internal note (any state, closed included); idempotent on
    ``client_id``. Published on the conversation's channel after the commit.
    A conversation ``viewer`` (loaded from ``agent_id`` when not given) may
    not see is "not found", decided inside the write."""
    body = (body or "").strip()
    if not body:
        raise ChatError("empty", "The note is empty.", 422)
    if len(body) > MAX_BODY:
        raise ChatError("too_long", "The note is over {max} characters.", 422, max=MAX_BODY)
    now = rt.clock.now()
    viewer = await viewer_of(rt, viewer, agent_id)

    def work(conn: Connection) -> tuple[Posted, str | None]:
        conv = core_lock_for(conn, viewer, conversation_id)
        name = conn.execute(select(STAFF.c.name).where(STAFF.c.id == agent_id)).scalar_one_or_none()
        dup = _core_existing(conn, conv.id, client_id)
        if dup is not None:
            if dup.kind != "note":
                raise ChatError("conflict", "That client_id was already used for a message.", 409)
            return Posted(conv, dup, new=False), name
        ev = core_append(conn, conv.id, now, kind="note", author="agent", agent_id=agent_id, body=body,
                         client_id=client_id, data=data, activity=False)
        conv.last_seq = ev.seq
        return Posted(conv, ev, new=True), name

    for attempt in range(3):
        try:
            posted, name = await rt.db.write_core(work, lock=conversation_id)
            break
        except IntegrityError:  # the same client_id raced in on another connection
            if attempt == 2:
                raise
    if posted.new:
        await rt.hub.publish(conv_channel(conversation_id), event_frame(posted.event, name))
    return posted
