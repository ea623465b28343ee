"""One record in full for the register (the console's Register view, where
the privacy role rectifies): a conversation's messages and notes, or an
offline message with its replies, each with the ids rectification names and
the flags that apply. Restricted people included (the register is for the
privacy role, chat/access.py ``may_use_register``); every view is audited
(``subject.view``) here, not in the route."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from jutella.accounts import audit
from jutella.accounts.errors import AccountError
from jutella.chat import access
from jutella.runtime import Runtime
from jutella.store.models import (ChatEvent, Conversation, MailOutbox, OfflineMessage, OfflineReply, SubjectFlag,
                                  TranscriptRequest, Visitor)

from .subjects import email_hash


async def _viewed(rt: Runtime, actor_id: int | None, target_type: str, target_id: int) -> None:
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=actor_id, action="subject.view", target_type=target_type,
                           target_id=target_id)


async def conversation(rt: Runtime, *, actor_id: int | None, conversation_id: int) -> dict[str, Any]:
    """A conversation's messages and notes with their ids (``chat_event`` for
    rectify) and whether the person is restricted."""
    async with rt.db.reader() as s:
        row = (await s.execute(select(Conversation, Visitor.public_id).join(Visitor).where(
            Conversation.id == conversation_id))).first()
        if row is None:
            raise AccountError("not_found", "No such record.", 404)
        conv, pub = row
        events = (await s.execute(select(ChatEvent).where(
            ChatEvent.conversation_id == conv.id, ChatEvent.kind.in_(("message", "note")))
            .order_by(ChatEvent.seq))).scalars().all()
        restricted = (await s.execute(select(access.conversation_restricted()).where(
            Conversation.id == conv.id))).scalar()
        transcripts = (await s.execute(select(TranscriptRequest, MailOutbox.state).outerjoin(
            MailOutbox, MailOutbox.id == TranscriptRequest.outbox_id).where(
            TranscriptRequest.conversation_id == conv.id).order_by(TranscriptRequest.id))).all()
    await _viewed(rt, actor_id, "conversation", conv.id)
    return {"id": conv.id, "visitor": pub, "state": conv.state, "started_at": conv.created_at,
            "restricted": bool(restricted),
            "events": [{"id": e.id, "seq": e.seq, "at": e.created_at, "author": e.author, "kind": e.kind,
                        "body": e.body} for e in events],
            # each emailed transcript with its mail's true state (mail/outbox.py DELIVERY_STATES)
            "transcript_emails": [{"id": t.id, "to": t.email, "at": t.created_at, "delivery": state or "not_sent"}
                                  for t, state in transcripts]}


async def offline_message(rt: Runtime, *, actor_id: int | None, message_id: int) -> dict[str, Any]:
    """An offline message with its replies' ids (``offline_reply`` for
    rectify) and the flags that apply to it."""
    async with rt.db.reader() as s:
        m = await s.get(OfflineMessage, message_id)
        if m is None:
            raise AccountError("not_found", "No such record.", 404)
        replies = (await s.execute(select(OfflineReply, MailOutbox.state).outerjoin(
            MailOutbox, MailOutbox.id == OfflineReply.outbox_id).where(OfflineReply.offline_message_id == m.id)
            .order_by(OfflineReply.id))).all()
        digest = email_hash(m.email)
        # a restriction by the form, its visitor or the email (chat/access.py); an objection by email only
        restricted = bool((await s.execute(select(access.offline_restricted()).where(
            OfflineMessage.id == m.id))).scalar())
        objection = (await s.execute(select(SubjectFlag.id).where(
            SubjectFlag.kind == "objection", SubjectFlag.email_hash == digest).limit(1))).first() is not None
    await _viewed(rt, actor_id, "offline_message", m.id)
    return {"id": m.id, "received_at": m.created_at, "name": m.name, "email": m.email, "body": m.body,
            "state": m.state, "conversation_id": m.conversation_id, "objection": objection,
            "restricted": restricted,
            "replies": [{"id": r.id, "at": r.created_at, "body": r.body, "delivery": state or "not_sent"}
                        for r, state in replies]}
