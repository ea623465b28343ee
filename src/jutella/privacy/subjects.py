"""Finding a data subject, the access copy, rectification, flags and erasure.

A data subject is found by a query (an email, a name, a student number, a
phone number, a visitor id) matched case-insensitively against every stored
field a person's data can be in: the structured fields (offline forms, sent
mail, visitor ids, transcript addresses), the page addresses and referrers
kept with chats and forms, attachment file names, rating comments, *and* the
text of every message, internal note and reply, since visitors hand over
their details inside chats. Matches are
expanded one step: a matched chat brings its visitor's other chats, a matched
email brings every form and mail with that address. The contact person
confirms which records belong to the person (the console sends an explicit
selection; the command line takes everything the query found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.accounts import audit
from jutella.accounts.errors import AccountError
from jutella.chat.flags import objection_hashes  # noqa: F401  (importable from here as before)
from jutella.chat.labels import labels_of
from jutella.chat.offline import validate_email, validate_name
from jutella.chat.revocation import bump_access_version, publish_access_changed
from jutella.runtime import Runtime
from jutella.store.db import email_hash  # one definition: SQLite's SQL form (chat/access.py) runs it too
from jutella.store.models import (Attachment, ChatEvent, Conversation, Department, EmailReply, EmailReplyFile,
                                  MailOutbox, OfflineMessage, OfflineReply, StaffAccount, SubjectFlag,
                                  SubjectRequest, TranscriptRequest, Visitor)

from . import erasure

MAX_QUERY = 200


def _like(query: str) -> str:
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _ci(column, query: str):
    """Case-insensitive substring match on SQLite and PostgreSQL alike."""
    return func.lower(column).like(_like(query.casefold()), escape="\\")


@dataclass
class Match:
    kind: str  # conversation | offline_message | email
    id: int
    at: datetime
    field: str  # where the query matched (message, note, page, referrer, attachment, transcript_email,
    # rating_comment, name, email, body, reply, visitor, recipient)
    text: str  # the matching text (a window around the match)
    start: int  # the match within ``text``
    end: int
    conversation_id: int | None = None
    visitor: str | None = None
    related: bool = False  # found by expansion (same visitor / same email), not by the query itself

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "at": self.at.isoformat(), "field": self.field,
                "text": self.text, "start": self.start, "end": self.end, "conversation_id": self.conversation_id,
                "visitor": self.visitor, "related": self.related}


def _window(value: str, query: str, width: int = 60) -> tuple[str, int, int]:
    pos = value.casefold().find(query.casefold())
    if pos < 0:
        return value[: 2 * width], 0, 0
    start = max(0, pos - width)
    end = min(len(value), pos + len(query) + width)
    snippet = ("…" if start else "") + value[start:end] + ("…" if end < len(value) else "")
    offset = pos - start + (1 if start else 0)
    return snippet, offset, offset + len(query)


@dataclass
class Selection:
    """The records that belong to one person, confirmed by the contact person."""

    conversations: set[int] = field(default_factory=set)
    offline_messages: set[int] = field(default_factory=set)
    emails: set[int] = field(default_factory=set)  # mail_outbox ids

    def is_empty(self) -> bool:
        return not (self.conversations or self.offline_messages or self.emails)

    def as_dict(self) -> dict[str, list[int]]:
        return {"conversations": sorted(self.conversations), "offline_messages": sorted(self.offline_messages),
                "emails": sorted(self.emails)}


def check_query(query: str) -> str:
    query = " ".join((query or "").split())
    if len(query) < 3:
        raise AccountError("query_too_short", "Search with at least 3 characters.", 400)
    if len(query) > MAX_QUERY:
        raise AccountError("query_too_long", "The search is too long (at most 200 characters).", 400)
    return query


async def find(rt: Runtime, query: str, *, actor_id: int | None) -> list[Match]:
    query = check_query(query)
    matches: list[Match] = []
    async with rt.db.reader() as s:
        # messages in chats
        rows = (await s.execute(
            select(ChatEvent, Visitor.public_id).join(Conversation, Conversation.id == ChatEvent.conversation_id)
            .join(Visitor, Visitor.id == Conversation.visitor_id)
            .where(ChatEvent.body.isnot(None), _ci(ChatEvent.body, query)).order_by(ChatEvent.id).limit(500))).all()
        for ev, pub in rows:  # internal notes are chat events too: they say so
            snippet, a, b = _window(ev.body, query)
            matches.append(Match("conversation", ev.conversation_id, ev.created_at,
                                 "note" if ev.kind == "note" else "message", snippet, a, b, ev.conversation_id, pub))
        # the page addresses and referrers kept with a chat (a site may put anything in a path)
        # and the name and email given on the site's pre-chat form (chat/prechat.py)
        for column, name in ((Conversation.page_url, "page"), (Conversation.current_page, "page"),
                             (Conversation.referrer, "referrer"), (Conversation.prechat_name, "name"),
                             (Conversation.prechat_email, "email")):
            rows = (await s.execute(select(Conversation, Visitor.public_id).join(Visitor)
                                    .where(column.isnot(None), _ci(column, query)).limit(500))).all()
            for conv, pub in rows:
                if column is Conversation.current_page and conv.current_page == conv.page_url:
                    continue  # the same address found once
                snippet, a, b = _window(getattr(conv, column.key), query)
                matches.append(Match("conversation", conv.id, conv.created_at, name, snippet, a, b, conv.id, pub))
        # the names of files sent in a chat
        for att in (await s.execute(select(Attachment).where(_ci(Attachment.filename, query))
                                    .order_by(Attachment.id).limit(500))).scalars():
            snippet, a, b = _window(att.filename, query)
            matches.append(Match("conversation", att.conversation_id, att.created_at, "attachment", snippet, a, b,
                                 att.conversation_id))
        # visitor ids
        rows = (await s.execute(select(Conversation, Visitor.public_id).join(Visitor)
                                .where(_ci(Visitor.public_id, query)).limit(500))).all()
        for conv, pub in rows:
            matches.append(Match("conversation", conv.id, conv.created_at, "visitor", pub, *_window(pub, query)[1:],
                                 conv.id, pub))
        # offline forms: name, email, body; and their replies
        for column, name in ((OfflineMessage.name, "name"), (OfflineMessage.email, "email"),
                             (OfflineMessage.body, "body"), (OfflineMessage.page_url, "page"),
                             (OfflineMessage.referrer, "referrer")):
            for m in (await s.execute(select(OfflineMessage).where(column.isnot(None), _ci(column, query))
                                      .limit(500))).scalars():
                snippet, a, b = _window(getattr(m, column.key), query)
                matches.append(Match("offline_message", m.id, m.created_at, name, snippet, a, b, m.conversation_id))
        for r in (await s.execute(select(OfflineReply).where(_ci(OfflineReply.body, query)).limit(500))).scalars():
            snippet, a, b = _window(r.body, query)
            matches.append(Match("offline_message", r.offline_message_id, r.created_at, "reply", snippet, a, b))
        # the visitor's replies by email (chat/email_replies.py): text, sender, attachment names
        for r in (await s.execute(select(EmailReply).where(or_(
                _ci(EmailReply.body, query), _ci(EmailReply.from_addr, query),
                _ci(func.coalesce(EmailReply.from_name, ""), query))).limit(500))).scalars():
            where, value = ("email_reply", r.body) if query.casefold() in r.body.casefold() else (
                "sender", f"{r.from_name or ''} <{r.from_addr}>".strip())
            snippet, a, b = _window(value, query)
            matches.append(Match("offline_message", r.offline_message_id, r.created_at, where, snippet, a, b))
        for f in (await s.execute(select(EmailReplyFile).where(_ci(EmailReplyFile.filename, query))
                                  .limit(500))).scalars():
            snippet, a, b = _window(f.filename, query)
            matches.append(Match("offline_message", f.offline_message_id, f.created_at, "attachment", snippet, a, b))
        # addresses given for an emailed transcript (and ratings' comments) belong to the conversation
        for t in (await s.execute(select(TranscriptRequest).where(_ci(TranscriptRequest.email, query))
                                  .limit(500))).scalars():
            snippet, a, b = _window(t.email, query)
            matches.append(Match("conversation", t.conversation_id, t.created_at, "transcript_email", snippet, a, b,
                                 t.conversation_id))
        for conv in (await s.execute(select(Conversation).where(
                Conversation.rating_comment.isnot(None), _ci(Conversation.rating_comment, query)).limit(500))).scalars():
            snippet, a, b = _window(conv.rating_comment, query)
            matches.append(Match("conversation", conv.id, conv.rated_at or conv.created_at, "rating_comment", snippet,
                                 a, b, conv.id))
        # mail sent
        for o in (await s.execute(select(MailOutbox).where(
                or_(_ci(MailOutbox.to_addr, query), _ci(MailOutbox.to_name, query),
                    _ci(MailOutbox.body_text, query))).limit(500))).scalars():
            where = "recipient" if query.casefold() in (o.to_addr + " " + (o.to_name or "")).casefold() else "body"
            snippet, a, b = _window(o.to_addr if where == "recipient" else o.body_text, query)
            matches.append(Match("email", o.id, o.created_at, where, snippet, a, b))
        matches += await _related(s, matches)
    sel = selection_of(matches)  # the records the matches show, by id (never the query or the text)
    await audit.record_shown(rt, actor_id=actor_id, action="subject.find", always=True,
                             detail={"results": len(matches)},
                             shown={"conversations": sel.conversations, "offline_messages": sel.offline_messages,
                                    "emails": sel.emails})
    return matches


async def _related(s: AsyncSession, matches: list[Match]) -> list[Match]:
    """One step of expansion: the same visitor's other chats and forms, the
    same email's other forms and mails."""
    conv_ids = {m.id for m in matches if m.kind == "conversation"}
    offline_ids = {m.id for m in matches if m.kind == "offline_message"}
    email_ids = {m.id for m in matches if m.kind == "email"}
    visitors = set((await s.execute(select(Conversation.visitor_id).where(Conversation.id.in_(conv_ids)))).scalars()) \
        if conv_ids else set()
    visitors |= set((await s.execute(select(OfflineMessage.visitor_id).where(
        OfflineMessage.id.in_(offline_ids), OfflineMessage.visitor_id.isnot(None)))).scalars()) if offline_ids else set()
    addresses = set((await s.execute(select(func.lower(OfflineMessage.email)).where(
        OfflineMessage.id.in_(offline_ids)))).scalars()) if offline_ids else set()
    addresses |= set((await s.execute(select(func.lower(MailOutbox.to_addr)).where(
        MailOutbox.id.in_(email_ids), MailOutbox.kind == "reply"))).scalars()) if email_ids else set()
    addresses |= set((await s.execute(select(func.lower(Conversation.prechat_email)).where(
        Conversation.id.in_(conv_ids), Conversation.prechat_email.isnot(None)))).scalars()) if conv_ids else set()
    out: list[Match] = []
    if visitors:
        for conv, pub in (await s.execute(select(Conversation, Visitor.public_id).join(Visitor).where(
                Conversation.visitor_id.in_(visitors), Conversation.id.notin_(conv_ids)))).all():
            out.append(Match("conversation", conv.id, conv.created_at, "visitor", pub, 0, 0, conv.id, pub, True))
            conv_ids.add(conv.id)
        for m in (await s.execute(select(OfflineMessage).where(
                OfflineMessage.visitor_id.in_(visitors), OfflineMessage.id.notin_(offline_ids)))).scalars():
            out.append(Match("offline_message", m.id, m.created_at, "visitor", m.email, 0, 0, m.conversation_id,
                             related=True))
            offline_ids.add(m.id)
            addresses.add(m.email.lower())
    if addresses:
        for conv, pub in (await s.execute(select(Conversation, Visitor.public_id).join(Visitor).where(
                func.lower(Conversation.prechat_email).in_(addresses), Conversation.id.notin_(conv_ids)))).all():
            out.append(Match("conversation", conv.id, conv.created_at, "email", conv.prechat_email, 0, 0, conv.id,
                             pub, True))
            conv_ids.add(conv.id)
        for m in (await s.execute(select(OfflineMessage).where(
                func.lower(OfflineMessage.email).in_(addresses), OfflineMessage.id.notin_(offline_ids)))).scalars():
            out.append(Match("offline_message", m.id, m.created_at, "email", m.email, 0, 0, m.conversation_id,
                             related=True))
            offline_ids.add(m.id)
        for o in (await s.execute(select(MailOutbox).where(
                func.lower(MailOutbox.to_addr).in_(addresses), MailOutbox.id.notin_(email_ids)))).scalars():
            out.append(Match("email", o.id, o.created_at, "recipient", o.to_addr, 0, 0, related=True))
    return out


def selection_of(matches: list[Match]) -> Selection:
    sel = Selection()
    for m in matches:
        {"conversation": sel.conversations, "offline_message": sel.offline_messages, "email": sel.emails}[m.kind].add(m.id)
    return sel


# -- the access copy ------------------------------------------------------------------
async def collect(rt: Runtime, sel: Selection, *, actor_id: int | None, fmt: str) -> dict[str, Any]:
    """Everything held in the selection, as the documented JSON structure
    (docs/privacy.md). Writes the audit row for the export. Internal notes
    are in it (they are about the person), marked ``internal_note``."""
    async with rt.db.reader() as s:
        departments = dict((await s.execute(select(Department.id, Department.name))).all())
        convs = (await s.execute(select(Conversation, Visitor.public_id).join(Visitor).where(
            Conversation.id.in_(sel.conversations)).order_by(Conversation.id))).all() if sel.conversations else []
        conversations = []
        visitor_ids = set()
        for conv, pub in convs:
            visitor_ids.add(conv.visitor_id)
            events = (await s.execute(select(ChatEvent, StaffAccount.name).outerjoin(
                StaffAccount, StaffAccount.id == ChatEvent.agent_id).where(ChatEvent.conversation_id == conv.id)
                .order_by(ChatEvent.seq))).all()
            tags = (await labels_of(s, [conv.id]))[conv.id]
            files = (await s.execute(select(Attachment).where(Attachment.conversation_id == conv.id)
                                     .order_by(Attachment.id))).scalars().all()
            transcripts = (await s.execute(select(TranscriptRequest, MailOutbox.state).outerjoin(
                MailOutbox, MailOutbox.id == TranscriptRequest.outbox_id).where(
                TranscriptRequest.conversation_id == conv.id).order_by(TranscriptRequest.id))).all()
            conversations.append({
                "attachments": [{"seq": f.seq, "at": f.created_at.isoformat(), "author": f.uploader,
                                 "name": f.filename, "type": f.content_type, "size": f.size,
                                 "url": f"/attachments/{f.public_id}"} for f in files],
                "rating": {"rating": conv.rating, "comment": conv.rating_comment,
                           "at": conv.rated_at.isoformat() if conv.rated_at else None} if conv.rating else None,
                # the mail's true state (mail/outbox.py DELIVERY_STATES), not "sent" for every request
                "transcript_emails": [{"to": t.email, "at": t.created_at.isoformat(), "by": t.requested_by,
                                       "state": state} for t, state in transcripts],
                "id": conv.id, "visitor": pub, "state": conv.state, "started_at": conv.created_at.isoformat(),
                "closed_at": conv.closed_at.isoformat() if conv.closed_at else None,
                "department": departments.get(conv.department_id),
                "metadata": {"browser": conv.browser, "browser_version": conv.browser_version, "os": conv.os,
                             "os_version": conv.os_version, "referrer": conv.referrer, "page": conv.page_url,
                             "current_page": conv.current_page, "language": conv.language},
                "messages": [{"seq": e.seq, "at": e.created_at.isoformat(), "author": e.author,
                              "agent": name if e.author == "agent" else None, "kind": e.kind,
                              "text": e.body if e.kind in ("message", "note") else None,
                              "internal_note": e.kind == "note"}
                             for e, name in events if e.kind in ("message", "note")],
                "labels": [x.name for x in tags],
                # what the visitor gave on the site's pre-chat form (docs/prechat.md)
                "prechat": {"name": conv.prechat_name, "email": conv.prechat_email, "topic": conv.prechat_topic}
                if any((conv.prechat_name, conv.prechat_email, conv.prechat_topic)) else None,
            })
        offs = (await s.execute(select(OfflineMessage).where(OfflineMessage.id.in_(sel.offline_messages))
                                .order_by(OfflineMessage.id))).scalars().all() if sel.offline_messages else []
        offline = []
        emails_seen = set()
        for m in offs:
            replies = (await s.execute(select(OfflineReply, StaffAccount.name, MailOutbox.state).outerjoin(
                StaffAccount, StaffAccount.id == OfflineReply.agent_id).outerjoin(
                MailOutbox, MailOutbox.id == OfflineReply.outbox_id).where(
                OfflineReply.offline_message_id == m.id).order_by(OfflineReply.id))).all()
            emails_seen.add(m.email.casefold())
            by_email = (await s.execute(select(EmailReply).where(EmailReply.offline_message_id == m.id)
                                        .order_by(EmailReply.id))).scalars().all()
            reply_files = (await s.execute(select(EmailReplyFile).where(EmailReplyFile.offline_message_id == m.id)
                                           .order_by(EmailReplyFile.id))).scalars().all()
            offline.append({
                "id": m.id, "received_at": m.created_at.isoformat(), "name": m.name, "email": m.email,
                "message": m.body, "state": m.state, "department": departments.get(m.department_id),
                "metadata": {"browser": m.browser, "browser_version": m.browser_version, "os": m.os,
                             "os_version": m.os_version, "referrer": m.referrer, "page": m.page_url,
                             "language": m.language},
                "replies": [{"at": r.created_at.isoformat(), "agent": name, "text": r.body, "email_state": state}
                            for r, name, state in replies],
                # the person's replies by email (docs/mail.md "Replies by email")
                "email_replies": [{"at": r.created_at.isoformat(), "from": r.from_addr, "from_name": r.from_name,
                                   "sender_differs": r.sender_differs, "text": r.body,
                                   "attachments": [{"name": f.filename, "type": f.content_type, "size": f.size}
                                                   for f in reply_files if f.email_reply_id == r.id],
                                   "refused_attachments": [x.get("name") for x in (r.refused or [])]}
                                  for r in by_email],
                "marketing_consent": {"version": m.marketing_consent_version,
                                      "at": m.marketing_consent_at.isoformat()} if m.marketing_consent_at else None,
            })
        mails = (await s.execute(select(MailOutbox).where(MailOutbox.id.in_(sel.emails)).order_by(MailOutbox.id))
                 ).scalars().all() if sel.emails else []
        emails = [{"id": o.id, "to": o.to_addr, "subject": o.subject, "text": o.body_text, "state": o.state,
                   "created_at": o.created_at.isoformat(), "sent_at": o.sent_at.isoformat() if o.sent_at else None}
                  for o in mails]
        emails_seen |= {o.to_addr.casefold() for o in mails if o.kind == "reply"}
        hashes = {email_hash(e) for e in emails_seen}
        flags = (await s.execute(select(SubjectFlag).where(or_(
            SubjectFlag.email_hash.in_(hashes) if hashes else False,
            SubjectFlag.visitor_id.in_(visitor_ids) if visitor_ids else False,
            SubjectFlag.offline_message_id.in_(sel.offline_messages) if sel.offline_messages else False)))
                 ).scalars().all()
    copy = {
        "schema": "jutella.subject-copy/1",
        "generated_at": rt.clock.now().isoformat(),
        "controller": rt.settings.notice.controller.model_dump(),
        "conversations": conversations,
        "offline_messages": offline,
        "emails": emails,
        "flags": {"objection_to_direct_marketing": any(f.kind == "objection" for f in flags),
                  "restriction_of_processing": any(f.kind == "restriction" for f in flags)},
    }
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=actor_id, action="subject.export",
                           detail={"format": fmt, **{k: len(v) for k, v in sel.as_dict().items()}})
    return copy


# -- rectification ---------------------------------------------------------------------
FIELDS = {
    ("offline_message", "name"): (OfflineMessage, "name"),
    ("offline_message", "email"): (OfflineMessage, "email"),
    ("offline_message", "body"): (OfflineMessage, "body"),
    ("offline_reply", "body"): (OfflineReply, "body"),
    ("chat_event", "body"): (ChatEvent, "body"),
    # given on the site's pre-chat form (docs/prechat.md)
    ("conversation", "name"): (Conversation, "prechat_name"),
    ("conversation", "email"): (Conversation, "prechat_email"),
}


async def rectify(rt: Runtime, *, actor_id: int | None, record: str, record_id: int, field_name: str,
                  value: str | None = None, start: int | None = None, end: int | None = None,
                  replacement: str = "[…]") -> str:
    """Correct a field, or correct/redact a span of a text (start..end replaced
    by ``replacement``). The audit row says who, when and which field, never
    the old value. Returns the new value."""
    target = FIELDS.get((record, field_name))
    if target is None:
        raise AccountError("field_invalid", "That field cannot be corrected here.", 400)
    model, attr = target
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await s.get(model, record_id, with_for_update=True)
        if row is None:
            raise AccountError("not_found", "No such record.", 404)
        old = getattr(row, attr) or ""
        if start is not None or end is not None:
            start, end = start or 0, len(old) if end is None else end
            if not 0 <= start <= end <= len(old):
                raise AccountError("span_invalid", "That part of the text does not exist.", 400)
            new = old[:start] + replacement + old[end:]
        else:
            new = value or ""
            if field_name == "email":
                new = validate_email(new)
            elif field_name == "name":
                new = validate_name(new)
                if model is Conversation and len(new) > 100:  # conversation.prechat_name
                    raise AccountError("name_too_long", "The name is too long (at most {limit} characters).", 400,
                                       limit=100)
        setattr(row, attr, new)
        if model is OfflineMessage and field_name in ("name", "email"):
            # the mail records follow the correction: the wrong value is kept nowhere
            column = "to_name" if field_name == "name" else "to_addr"
            await s.execute(update(MailOutbox).where(MailOutbox.offline_message_id == row.id).values(
                {column: new}))
        await audit.record(s, now, actor_id=actor_id, action="subject.rectify", target_type=record,
                           target_id=record_id, detail={"field": field_name,
                                                        "span": start is not None or end is not None})
    return new


# -- flags ---------------------------------------------------------------------------------
async def set_flag(rt: Runtime, *, actor_id: int | None, kind: str, on: bool, email: str | None = None,
                   sel: Selection | None = None, request_id: int | None = None) -> int:
    """Objection (by email) or restriction (by the selection's visitors and
    forms, and the email if given). Returns how many flags now exist/were removed."""
    if kind not in ("objection", "restriction"):
        raise AccountError("flag_invalid", "Unknown flag.", 400)
    now = rt.clock.now()
    changed = 0
    async with rt.db.transaction() as s:
        if request_id is not None and await s.get(SubjectRequest, request_id) is None:
            raise AccountError("not_found", "No such request.", 404)
        targets: list[dict[str, Any]] = []
        if email:
            targets.append({"email_hash": email_hash(email)})
        if sel and kind == "restriction":
            visitors = set((await s.execute(select(Conversation.visitor_id).where(
                Conversation.id.in_(sel.conversations)))).scalars()) if sel.conversations else set()
            targets += [{"visitor_id": v} for v in visitors]
            targets += [{"offline_message_id": m} for m in sel.offline_messages]
        if not targets:
            raise AccountError("flag_target", "Name the person by email or select their records.", 400)
        for t in targets:
            key = [getattr(SubjectFlag, k) == v for k, v in t.items()]
            existing = (await s.execute(select(SubjectFlag).where(SubjectFlag.kind == kind, *key))).scalars().all()
            if on and not existing:
                s.add(SubjectFlag(kind=kind, created_at=now, created_by=actor_id, request_id=request_id, **t))
                changed += 1
            elif not on and existing:
                for f in existing:
                    await s.delete(f)
                changed += len(existing)
        await audit.record(s, now, actor_id=actor_id, action=f"subject.{kind}.{'set' if on else 'lift'}",
                           detail={"records": len(targets)})
        revoke = kind == "restriction" and changed > 0
        if revoke:
            affected = await _conversations_of(s, targets)
            version = await bump_access_version(s)  # last: see store/access_version.py
    if revoke:  # open consoles stop (or resume) following them at once
        await publish_access_changed(rt, conversations=affected, version=version)
    return changed


async def _conversations_of(s: AsyncSession, targets: list[dict[str, Any]]) -> set[int] | None:
    """The conversations a restriction's targets concern: those of its
    visitors, of its forms' visitors and the forms' own chats. None for a
    restriction by email: which chats an address reaches is the access rule's
    business, so every socket then re-checks all it follows. Naming more
    than the rule hides is harmless: each socket re-checks them by its rule."""
    if any("email_hash" in t for t in targets):
        return None
    visitors = {t["visitor_id"] for t in targets if "visitor_id" in t}
    forms = {t["offline_message_id"] for t in targets if "offline_message_id" in t}
    found: set[int] = set()
    if forms:
        for visitor_id, conversation_id in (await s.execute(select(
                OfflineMessage.visitor_id, OfflineMessage.conversation_id).where(OfflineMessage.id.in_(forms)))).all():
            if visitor_id is not None:
                visitors.add(visitor_id)
            if conversation_id is not None:
                found.add(conversation_id)
    if visitors:
        found |= set((await s.execute(select(Conversation.id).where(
            Conversation.visitor_id.in_(visitors)))).scalars())
    return found


# -- erasure: privacy/erasure.py (one action, exactly the selection, with its receipt) --------
erase = erasure.erase
scrub = erasure.scrub
