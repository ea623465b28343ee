"""Labels: administrators define the set (a name and a colour from a fixed
palette); any agent puts labels on, and takes them off, the conversations
they may see. The console filters the list and the history search by them.

A label on a conversation says something about the visitor's matter, so the
access copy lists a conversation's labels, and erasure and retention remove
the links with the conversation (ON DELETE CASCADE, and explicitly)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from jutella.channels import AGENTS_CHANNEL
from jutella.runtime import Runtime
from jutella.store import dialect
from jutella.store.models import Conversation, ConversationLabel, Label, StaffAccount

from .access import Viewer, may_see_conversation
from .actions import ChatError, summary, viewer_of

PALETTE = ("gray", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
MAX_NAME = 40


def _clean(name: str, color: str) -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise ChatError("invalid_name", "A label needs a name.", 422)
    if len(name) > MAX_NAME:
        raise ChatError("invalid_name", "A label name is at most {max} characters.", 422, max=MAX_NAME)
    if color not in PALETTE:
        raise ChatError("invalid_color", "Choose the colour from the palette.", 422)
    return name, color


async def all_labels(rt: Runtime) -> list[Label]:
    async with rt.db.reader() as s:
        return list((await s.execute(select(Label).order_by(Label.name))).scalars())


async def create(rt: Runtime, *, name: str, color: str) -> Label:
    name, color = _clean(name, color)
    try:
        async with rt.db.transaction() as s:
            if (await s.execute(select(Label.id).where(Label.name == name))).first() is not None:
                raise ChatError("duplicate", "There is already a label called {name}.", 409, name=name)
            label = Label(name=name, color=color, created_at=rt.clock.now())
            s.add(label)
            await s.flush()
    except IntegrityError:
        raise ChatError("duplicate", "There is already a label called {name}.", 409, name=name) from None
    return label


async def update(rt: Runtime, *, label_id: int, name: str, color: str) -> Label:
    name, color = _clean(name, color)
    try:
        async with rt.db.transaction() as s:
            label = await s.get(Label, label_id, with_for_update=True)
            if label is None:
                raise ChatError("not_found", "No such label.", 404)
            if (await s.execute(select(Label.id).where(Label.name == name, Label.id != label_id))).first():
                raise ChatError("duplicate", "There is already a label called {name}.", 409, name=name)
            label.name, label.color = name, color
    except IntegrityError:
        raise ChatError("duplicate", "There is already a label called {name}.", 409, name=name) from None
    return label


async def delete_label(rt: Runtime, *, label_id: int) -> None:
    async with rt.db.transaction() as s:
        label = await s.get(Label, label_id)
        if label is None:
            raise ChatError("not_found", "No such label.", 404)
        await s.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label_id))
        await s.delete(label)


async def set_label(rt: Runtime, *, agent_id: int, conversation_id: int, label_id: int, on: bool,
                    viewer: Viewer | None = None) -> None:
    """Put a label on a conversation or take it off (both idempotent). The
    consoles hear of it through a ``conversation`` frame, which makes them
    read the list again. A conversation ``viewer`` (loaded from ``agent_id``
    when not given) may not see is "not found", asked in this transaction."""
    viewer = await viewer_of(rt, viewer, agent_id)
    async with rt.db.transaction() as s:
        conv = await s.get(Conversation, conversation_id)
        if conv is None or not await may_see_conversation(s, viewer, conversation_id):
            raise ChatError("not_found", "No such conversation.", 404)
        if await s.get(Label, label_id) is None:
            raise ChatError("not_found", "No such label.", 404)
        # one statement each way, so that two agents doing the same at once both succeed and one
        # of them changes something (an ORM add or delete raced: a duplicate key, a delete of 0 rows)
        link = ConversationLabel.__table__
        if on:
            changed = (await s.execute(dialect.insert(s.get_bind(), link).values(
                conversation_id=conversation_id, label_id=label_id, added_by=agent_id, added_at=rt.clock.now(),
            ).on_conflict_do_nothing().returning(link.c.label_id))).first()
        else:
            changed = (await s.execute(delete(link).where(
                link.c.conversation_id == conversation_id, link.c.label_id == label_id,
            ).returning(link.c.label_id))).first()
        if changed is None:
            return
        name = (await s.execute(select(StaffAccount.name).where(StaffAccount.id == conv.agent_id))
                ).scalar_one_or_none() if conv.agent_id else None
    await rt.hub.publish(AGENTS_CHANNEL, {"type": "conversation", "conversation": summary(conv, name),
                                          "labels_changed": True})


async def labels_of(s, conversation_ids: list[int]) -> dict[int, list[Label]]:
    """conversation id -> its labels, by name."""
    out: dict[int, list[Label]] = {i: [] for i in conversation_ids}
    if not conversation_ids:
        return out
    rows = (await s.execute(select(ConversationLabel.conversation_id, Label).join(
        Label, Label.id == ConversationLabel.label_id).where(
        ConversationLabel.conversation_id.in_(conversation_ids)).order_by(Label.name))).all()
    for conv_id, label in rows:
        out[conv_id].append(label)
    return out
