"""Messages left through the widget's email form when nobody is on duty, and
staff's answers to them by email. Same action rules as the chat: one
transaction (message, reply, outbox row, audit row), then publish."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select

from jutella.accounts import audit
from jutella.accounts.errors import AccountError
from jutella.channels import AGENTS_CHANNEL
from jutella.mail import compose, limits, outbox, webhooks
from jutella.runtime import Runtime
from jutella.store.db import email_hash
from jutella.store.models import (ChatEvent, Conversation, Department, EmailReply, EmailReplyFile, MailOutbox,
                                   OfflineMessage, OfflineReply, StaffAccount, Visitor)

from . import access, reply_tokens, reports
from .errors import ChatError
from .flags import objection_hashes
from .metadata import Metadata

NEW, ANSWERED, CLOSED = "new", "answered", "closed"
REASONS = ("no_agent", "wait_timeout", "agents_left")
MAX_MESSAGE = 4000
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class FormError(AccountError):
    """A refused form field: ``field`` names it so the widget can show the
    message beside it."""

    def __init__(self, field: str, code: str, message: str, **params: object):
        super().__init__(code, message, 400, **params)
        self.field = field


def validate_email(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise FormError("email", "email_required", "Enter your email address.")
    local, at, domain = value.rpartition("@")
    problem = FormError("email", "email_invalid", "Enter a valid email address, like name@example.fi.")
    if not at or not local or len(value) > 254 or len(local) > 64 or not _LOCAL.match(local):
        raise problem
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise problem from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not re.match(
            r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$", labels[-1]):
        raise problem
    return f"{local}@{domain.lower()}"


def validate_name(value: str) -> str:
    if any(c in (value or "") for c in "\r\n") or any(ord(c) < 32 or ord(c) == 127 for c in value or ""):
        raise FormError("name", "name_invalid", "The name cannot contain line breaks or control characters.")
    value = " ".join((value or "").split())
    if not value:
        raise FormError("name", "name_required", "Enter your name.")
    if len(value) > 200:
        raise FormError("name", "name_too_long", "The name is too long (at most 200 characters).")
    return value


def validate_message(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise FormError("message", "message_required", "Write a message.")
    if len(value) > MAX_MESSAGE:
        raise FormError("message", "message_too_long", "The message is too long (at most 4,000 characters).")
    if "\x00" in value:
        raise FormError("message", "message_invalid", "The message contains characters that cannot be stored.")
    return value


def summary(m: OfflineMessage, agent_name: str | None = None, suppressed: bool = False) -> dict[str, Any]:
    return {"id": m.id, "state": m.state, "name": m.name, "email": m.email, "preview": m.body[:140],
            "created_at": m.created_at.isoformat(), "assigned_agent_id": m.assigned_agent_id,
            "assigned_agent_name": agent_name, "reason": m.reason, "language": m.language, "site_id": m.site_id}


@dataclass
class Submitted:
    message: OfflineMessage


def consent_given(rt: Runtime, consent_version: str | None) -> str | None:
    """The wording version to store as the sender's consent to marketing
    email: only when the feature is on (``[register.marketing]``) and the
    form showed the current wording (a box ticked under another wording, or
    none at all, is no consent)."""
    m = rt.settings.notice.marketing
    return m.consent_version if m.enabled and consent_version == m.consent_version else None


async def submit(rt: Runtime, *, name: str, email: str, message: str, reason: str, meta: Metadata,
                 visitor_id: int | None = None, department_id: int | None = None, client: str | None = None,
                 browser_key: str | None = None, consent_version: str | None = None,
                 site_id: int | None = None) -> Submitted:
    """Store a message from the email form. When it comes from a chat
    (waited too long, the last agent left), the conversation is linked and its
    text is attached below the visitor's message. The department (the
    visitor's choice, else the linked chat's) picks the notification address.
    ``client`` (the client address; None: staff or a test acting directly) and
    ``browser_key`` are counted against mail/limits.py once the fields are
    valid (a typo costs the visitor nothing). ``consent_version``: the consent
    box was ticked under that wording."""
    name, email, message = validate_name(name), validate_email(email), validate_message(message)
    if client is not None:
        await limits.reserve_offline(rt, client=client, browser=browser_key)
    reason = reason if reason in REASONS else "no_agent"
    now = rt.clock.now()
    consent = consent_given(rt, consent_version)
    async with rt.db.transaction() as s:
        conv = None
        if visitor_id is not None:
            conv = (await s.execute(select(Conversation).where(Conversation.visitor_id == visitor_id)
                                    .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()
        body = message
        if conv is not None and reason != "no_agent":
            lines = [f"[{e.created_at:%H:%M}] {e.author}: {e.body}" for e in (await s.execute(
                select(ChatEvent).where(ChatEvent.conversation_id == conv.id, ChatEvent.kind == "message")
                .order_by(ChatEvent.seq))).scalars()]
            if lines:
                body = f"{message}\n\n--- {len(lines)} earlier chat message(s) ---\n" + "\n".join(lines)
        m = OfflineMessage(
            visitor_id=visitor_id, conversation_id=conv.id if conv else None, name=name, email=email, body=body,
            reason=reason, state=NEW, created_at=now, updated_at=now, language=meta.language,
            browser=meta.browser, browser_version=meta.browser_version, os=meta.os, os_version=meta.os_version,
            referrer=meta.referrer, page_url=meta.page_url, site_id=site_id,
            marketing_consent_version=consent, marketing_consent_at=now if consent else None)
        dept = await s.get(Department, department_id) if department_id else None
        if dept is None and conv is not None and conv.department_id:
            dept = await s.get(Department, conv.department_id)
        m.department_id = dept.id if dept else None
        s.add(m)
        await s.flush()
        # counted in the reports' aggregates in this same transaction (chat/reports.py)
        tz, department = rt.settings.time_zone, m.department_id
        await s.run_sync(lambda sync: reports.core_count_offline(sync.connection(), now, department, time_zone=tz,
                                                                 site_id=site_id))
        # the hooks that take it, queued in this same transaction (mail/webhooks.py); personal fields only
        # for those that ticked them, and for nobody while the person's processing is restricted
        restricted = bool((await s.execute(select(access.offline_restricted()).where(
            OfflineMessage.id == m.id))).scalar())
        await webhooks.emit(s, now, "offline_message.created", {
            "offline_message_id": m.id, "conversation_id": m.conversation_id, "site_id": getattr(m, "site_id", None),
            "department_id": m.department_id, "reason": m.reason, "language": m.language,
            "created_at": now.isoformat()}, {"name": m.name, "email": m.email, "text": m.body},
            offline_message_id=m.id, withhold_personal=restricted)
        notify = (dept.notify_email if dept else None) or rt.settings.offline_notify_to
        if notify:
            subject, text = compose.notification_mail(lang="fi", console_url=
                                                      f"{rt.settings.effective_public_url}/console#/offline")
            outbox.enqueue(s, rt, kind="notification", to_addr=notify, to_name=None, subject=subject,
                           body_text=text, body_html=None)
    if notify and rt.outbox is not None:
        rt.outbox.kick()
    webhooks.kick(rt)
    await rt.hub.publish(AGENTS_CHANNEL, {"type": "offline", "message": summary(m), "new": True})
    return Submitted(m)


async def _get(s, message_id: int, viewer: access.Viewer, *, lock: bool = True) -> OfflineMessage:
    """The message, if ``viewer`` may see it (asked inside the action's own
    transaction); otherwise "not found", as if it did not exist."""
    m = await s.get(OfflineMessage, message_id, with_for_update=lock)
    if m is None or not await access.may_see_offline(s, viewer, m.id):
        raise ChatError("not_found", "No such message.", 404)
    return m


async def view(rt: Runtime, *, viewer: access.Viewer, message_id: int) -> dict[str, Any]:
    """The message with its metadata, replies and their delivery state; writes the audit row."""
    agent_id = viewer.account_id
    async with rt.db.transaction() as s:
        m = await _get(s, message_id, viewer, lock=False)
        replies = (await s.execute(
            select(OfflineReply, StaffAccount.name, MailOutbox.state, MailOutbox.last_error, MailOutbox.id)
            .outerjoin(StaffAccount, StaffAccount.id == OfflineReply.agent_id)
            .outerjoin(MailOutbox, MailOutbox.id == OfflineReply.outbox_id)
            .where(OfflineReply.offline_message_id == m.id).order_by(OfflineReply.id))).all()
        assigned = await s.get(StaffAccount, m.assigned_agent_id) if m.assigned_agent_id else None
        visitor_pub = (await s.get(Visitor, m.visitor_id)).public_id if m.visitor_id else None
        objection = email_hash(m.email) in await objection_hashes(s)
        by_email = await email_replies_of(s, m.id)
        await audit.record(s, rt.clock.now(), actor_id=agent_id, action="offline_message.view",
                           target_type="offline_message", target_id=m.id)
    out = summary(m, assigned.name if assigned else None)
    out.update(body=m.body, browser=m.browser, browser_version=m.browser_version, os=m.os, os_version=m.os_version,
               referrer=m.referrer, page_url=m.page_url, conversation_id=m.conversation_id, visitor=visitor_pub,
               objection=objection, email_replies=by_email,
               replies=[{"id": r.id, "body": r.body, "agent_name": name, "created_at": r.created_at.isoformat(),
                         "delivery": state or "not_sent", "error": err, "outbox_id": oid}
                        for r, name, state, err, oid in replies])
    return out


async def email_replies_of(s, message_id: int) -> list[dict[str, Any]]:
    """The email replies of an offline message, oldest first, each with its
    files (a URL under the message) and the attachments refused."""
    replies = (await s.execute(select(EmailReply).where(EmailReply.offline_message_id == message_id)
                               .order_by(EmailReply.id))).scalars().all()
    files = (await s.execute(select(EmailReplyFile).where(EmailReplyFile.offline_message_id == message_id)
                             .order_by(EmailReplyFile.id))).scalars().all()
    out = []
    for r in replies:
        out.append({"id": r.id, "body": r.body, "from": r.from_addr, "from_name": r.from_name,
                    "sender_differs": r.sender_differs, "created_at": r.created_at.isoformat(),
                    "refused": list(r.refused or []),
                    "files": [{"id": f.public_id, "name": f.filename, "type": f.content_type, "size": f.size,
                               "url": f"/api/v1/offline-messages/{message_id}/files/{f.public_id}"}
                              for f in files if f.email_reply_id == r.id]})
    return out


async def assign(rt: Runtime, *, viewer: access.Viewer, message_id: int, agent_id: int | None) -> OfflineMessage:
    actor_id = viewer.account_id
    async with rt.db.transaction() as s:
        m = await _get(s, message_id, viewer)
        if agent_id is not None:
            target = await s.get(StaffAccount, agent_id)
            if target is None or "agent" not in target.role_names or target.disabled_at:
                raise ChatError("not_found", "No such agent.", 404)
        m.assigned_agent_id, m.updated_at = agent_id, rt.clock.now()
        await audit.record(s, rt.clock.now(), actor_id=actor_id, action="offline_message.assign",
                           target_type="offline_message", target_id=m.id, detail={"agent": agent_id})
        name = (await s.get(StaffAccount, agent_id)).name if agent_id else None
    await rt.hub.publish(AGENTS_CHANNEL, {"type": "offline", "message": summary(m, name)})
    return m


async def reply(rt: Runtime, *, viewer: access.Viewer, message_id: int, body: str) -> OfflineReply:
    """Answer by email: the reply and its outbox row commit together; the
    worker sends it afterwards."""
    body = (body or "").strip()
    if not body:
        raise FormError("body", "reply_required", "Write a reply.")
    if len(body) > 20_000:
        raise FormError("body", "reply_too_long", "The reply is too long (at most 20,000 characters).")
    now, agent_id = rt.clock.now(), viewer.account_id
    async with rt.db.transaction() as s:
        m = await _get(s, message_id, viewer)
        if m.state == CLOSED:
            raise ChatError("closed", "This message is closed. Reopen it to answer.", 409)
        agent = await s.get(StaffAccount, agent_id)
        org = rt.settings.notice.controller.name
        lang = m.language if m.language in ("fi", "en", "sv") else "fi"
        # the answer quotes what the visitor wrote last: their latest reply by email, else the form's message
        latest = (await s.execute(select(EmailReply).where(EmailReply.offline_message_id == m.id)
                                  .order_by(EmailReply.id.desc()).limit(1))).scalar_one_or_none()
        original, original_at = (latest.body, latest.created_at) if latest else (m.body.split("\n\n--- ")[0],
                                                                               m.created_at)
        subject, text, html = compose.reply_mail(lang=lang, org=org, agent_name=agent.name if agent else org,
                                                 reply=body, original=original, original_at=original_at,
                                                 settings=rt.settings)
        row = outbox.enqueue(s, rt, kind="reply", to_addr=m.email, to_name=m.name, subject=subject,
                             body_text=text, body_html=html, offline_message_id=m.id)
        await s.flush()
        # its own reply address: the visitor's answer comes back into this thread (chat/email_replies.py)
        reply_tokens.issue(s, rt, row, email=m.email, offline_message_id=m.id)
        r = OfflineReply(offline_message_id=m.id, agent_id=agent_id, body=body, created_at=now, outbox_id=row.id)
        s.add(r)
        m.state, m.updated_at = ANSWERED, now
        if m.assigned_agent_id is None:
            m.assigned_agent_id = agent_id
        await s.flush()
        await audit.record(s, now, actor_id=agent_id, action="offline_message.reply",
                           target_type="offline_message", target_id=m.id, detail={"reply": r.id})
    if rt.outbox is not None:
        rt.outbox.kick()
    await rt.hub.publish(AGENTS_CHANNEL, {"type": "offline", "message": summary(m)})
    return r


async def set_state(rt: Runtime, *, viewer: access.Viewer, message_id: int, closed: bool) -> OfflineMessage:
    now, agent_id = rt.clock.now(), viewer.account_id
    async with rt.db.transaction() as s:
        m = await _get(s, message_id, viewer)
        if closed:
            m.state, m.closed_at = CLOSED, now
        else:
            has_reply = (await s.execute(select(OfflineReply.id).where(
                OfflineReply.offline_message_id == m.id).limit(1))).scalar_one_or_none()
            m.state, m.closed_at = (ANSWERED if has_reply else NEW), None
        m.updated_at = now
        await audit.record(s, now, actor_id=agent_id, action="offline_message.close" if closed
                           else "offline_message.reopen", target_type="offline_message", target_id=m.id)
    await rt.hub.publish(AGENTS_CHANNEL, {"type": "offline", "message": summary(m)})
    return m


# -- the inbox and the contacts export ---------------------------------------------------------
async def inbox(rt: Runtime, *, viewer: access.Viewer, state: str | None, limit: int,
                site: int | None = None) -> list[tuple[OfflineMessage, str | None, bool]]:
    """The messages ``viewer`` sees (chat/access.py ``offline_clause``):
    (message, assigned agent's name, whether the person objected to direct
    marketing), new ones first, then newest first. ``state`` "open": not closed.
    Names and emails are shown: audited (``offline_message.list``, the ids)."""
    where = access.offline_clause(viewer)
    if state == "open":
        where.append(OfflineMessage.state != CLOSED)
    elif state:
        where.append(OfflineMessage.state == state)
    if site is not None:  # a stored site's id; 0: the default profile's (no site)
        where.append(OfflineMessage.site_id.is_(None) if site == 0 else OfflineMessage.site_id == site)
    async with rt.db.reader() as s:
        objected = await objection_hashes(s)
        rows = (await s.execute(
            select(OfflineMessage, StaffAccount.name).outerjoin(
                StaffAccount, StaffAccount.id == OfflineMessage.assigned_agent_id).where(*where)
            .order_by(case((OfflineMessage.state == NEW, 0), else_=1), OfflineMessage.created_at.desc())
            .limit(limit))).all()
    await audit.record_shown(rt, actor_id=viewer.account_id, action="offline_message.list",
                             shown={"offline_messages": [m.id for m, _ in rows]})
    return [(m, name, email_hash(m.email) in objected) for m, name in rows]


async def contacts(rt: Runtime, *, actor_id: int | None) -> list[tuple[str, str, str, datetime]]:
    """Marketing contacts: (name, email, consent wording version, consent
    time) of the people who ticked the form's consent box, one per address
    (its latest consent). Nobody when the feature is off
    (``[register.marketing] enabled``); people who objected to direct
    marketing (which withdraws the consent) and restricted people
    (``contacts_clause``, whoever asks) are left out, and an erased form is
    gone. Audited (``contacts.export``, with the number of contacts)."""
    rows: list = []
    if rt.settings.notice.marketing.enabled:
        async with rt.db.reader() as s:
            objected = await objection_hashes(s)
            rows = (await s.execute(select(
                OfflineMessage.name, OfflineMessage.email, OfflineMessage.marketing_consent_version,
                OfflineMessage.marketing_consent_at).where(
                OfflineMessage.marketing_consent_at.isnot(None), *access.contacts_clause())
                .order_by(OfflineMessage.marketing_consent_at.desc(), OfflineMessage.id.desc()))).all()
    out: list[tuple[str, str, str, datetime]] = []
    seen: set[str] = set()
    for name, email, version, at in rows:
        key = email.casefold()
        if key in seen or email_hash(email) in objected:
            continue
        seen.add(key)
        out.append((name, email, version, at))
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=actor_id, action="contacts.export",
                           detail={"contacts": len(seen)})
    return out
