"""Retention: delete what the settings say is past its time.

- chat histories: conversations whose last activity is older than
  ``retention.chat_days`` (and visitors left with nothing);
- offline messages, their replies and mail, the visitor's replies by email
  and their files (rows and bytes, as attachments below): when the thread's last activity (``updated_at``, which a
  reply by email moves) is older than ``offline_days``; reply addresses
  (``reply_token``) when they expire (``offline_days`` after their mail) or
  their thread goes;
- automatic metadata (browser, OS, referrer, page, language) of conversations
  and offline messages: blanked after ``metadata_days``;
- attachments (rows and their bytes in the file store, in the same
  transaction) and emailed-transcript addresses: with their conversation;
  stored files without a row are swept, and files an older jutella left on
  this host's disk are moved into the store (chat/attachments.py ``sweep``);
- **restricted people are kept** (GDPR 18(1)(c): a restriction may be kept
  for a legal claim): a conversation or offline message whose person is
  restricted (chat/access.py ``conversation_restricted``,
  ``offline_restricted``: by visitor, form or email) is neither deleted nor
  blanked, nor is a visitor a restriction names, until the restriction is
  lifted; the next run after that deletes what is then past its time. They
  stay hidden from staff without the privacy role meanwhile (the access rule);
- the audit log: rows older than ``audit_days``, through ``audit.prune``,
  which leaves a keyed "pruned up to here" row that verification starts from.

Safe to run twice and on several workers at once: each step is a set-based
DELETE/UPDATE of rows past the cut-off, so a second run finds nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, exists, not_, or_, select, update

from jutella.accounts import audit
from jutella.chat import access
from jutella.chat.attachments import delete_files_after, delete_files_in, sweep
from jutella.runtime import Runtime
from jutella.store.models import (Attachment, ChatEvent, Conversation, ConversationLabel, EmailReply, EmailReplyFile,
                                  MailOutbox, OfflineMessage, OfflineReply, ReplyToken, SubjectFlag,
                                  TranscriptRequest, Visitor)

from . import ledger
from .erasure import scrub


async def run(rt: Runtime, *, actor_id: int | None = None) -> dict[str, int]:
    r = rt.settings.retention
    now = rt.clock.now()
    chat_cut = now - timedelta(days=r.chat_days)
    offline_cut = now - timedelta(days=r.offline_days)
    meta_cut = now - timedelta(days=r.metadata_days)
    audit_cut = now - timedelta(days=r.audit_days)
    counts: dict[str, int] = {}
    async with rt.db.transaction() as s:
        # restricted people are kept until the restriction is lifted (module docstring)
        kept_conv = not_(access.conversation_restricted())
        kept_off = not_(access.offline_restricted())
        old = select(Conversation.id).where(Conversation.last_activity_at < chat_cut, kept_conv).scalar_subquery()
        # reply addresses (chat/reply_tokens.py) past their expiry, or of a chat that goes now
        counts["reply_addresses"] = (await s.execute(delete(ReplyToken).where(or_(
            ReplyToken.expires_at < now, ReplyToken.conversation_id.in_(old))))).rowcount or 0
        # attachments (rows and bytes, in this transaction) and emailed transcripts go with their chat
        files = list((await s.execute(select(Attachment.storage_name).where(
            Attachment.conversation_id.in_(old)))).scalars())
        counts["attachments"] = (await s.execute(delete(Attachment).where(Attachment.conversation_id.in_(old)))
                                 ).rowcount or 0
        await delete_files_in(rt, s, files)
        transcript_mail = select(TranscriptRequest.outbox_id).where(
            TranscriptRequest.conversation_id.in_(old), TranscriptRequest.outbox_id.isnot(None)).scalar_subquery()
        counts["emails"] = (await s.execute(delete(MailOutbox).where(MailOutbox.id.in_(transcript_mail)))
                            ).rowcount or 0
        counts["transcript_emails"] = (await s.execute(delete(TranscriptRequest).where(
            TranscriptRequest.conversation_id.in_(old)))).rowcount or 0
        counts["messages"] = (await s.execute(delete(ChatEvent).where(ChatEvent.conversation_id.in_(old)))
                              ).rowcount or 0
        await s.execute(delete(ConversationLabel).where(ConversationLabel.conversation_id.in_(old)))
        counts["conversations"] = (await s.execute(delete(Conversation).where(
            Conversation.id.in_(old)))).rowcount or 0
        old_off = select(OfflineMessage.id).where(OfflineMessage.updated_at < offline_cut, kept_off).scalar_subquery()
        # the visitor's replies by email and their files (rows and bytes, in this transaction)
        reply_files = list((await s.execute(select(EmailReplyFile.storage_name).where(
            EmailReplyFile.offline_message_id.in_(old_off)))).scalars())
        counts["email_reply_files"] = (await s.execute(delete(EmailReplyFile).where(
            EmailReplyFile.offline_message_id.in_(old_off)))).rowcount or 0
        await delete_files_in(rt, s, reply_files)
        files += reply_files
        counts["email_replies"] = (await s.execute(delete(EmailReply).where(
            EmailReply.offline_message_id.in_(old_off)))).rowcount or 0
        counts["reply_addresses"] += (await s.execute(delete(ReplyToken).where(
            ReplyToken.offline_message_id.in_(old_off)))).rowcount or 0
        counts["offline_replies"] = (await s.execute(delete(OfflineReply).where(
            OfflineReply.offline_message_id.in_(old_off)))).rowcount or 0
        counts["emails"] += (await s.execute(delete(MailOutbox).where(or_(
            MailOutbox.offline_message_id.in_(old_off),
            and_(MailOutbox.offline_message_id.is_(None), MailOutbox.created_at < offline_cut,
                 ~exists().where(TranscriptRequest.outbox_id == MailOutbox.id,  # a kept chat's transcript mail
                                 TranscriptRequest.conversation_id == Conversation.id,
                                 access.conversation_restricted())))))).rowcount or 0
        counts["offline_messages"] = (await s.execute(delete(OfflineMessage).where(
            OfflineMessage.id.in_(old_off)))).rowcount or 0
        counts["visitors"] = (await s.execute(delete(Visitor).where(
            Visitor.last_seen_at < chat_cut,
            ~exists().where(Conversation.visitor_id == Visitor.id),
            ~exists().where(OfflineMessage.visitor_id == Visitor.id),
            ~exists().where(SubjectFlag.visitor_id == Visitor.id)))).rowcount or 0
        blank = dict(browser=None, browser_version=None, os=None, os_version=None, referrer=None, page_url=None,
                     language=None)
        counts["metadata"] = (await s.execute(update(Conversation).where(
            Conversation.created_at < meta_cut, Conversation.metadata_erased_at.is_(None), kept_conv).values(
            metadata_erased_at=now, current_page=None, **blank))).rowcount or 0
        counts["metadata"] += (await s.execute(update(OfflineMessage).where(
            OfflineMessage.created_at < meta_cut, kept_off, or_(OfflineMessage.browser.isnot(None),
                                                      OfflineMessage.referrer.isnot(None),
                                                      OfflineMessage.page_url.isnot(None),
                                                      OfflineMessage.os.isnot(None))).values(**blank))).rowcount or 0
        # the oldest audit rows, leaving a keyed "pruned up to here" link (accounts/audit.py)
        counts["audit_rows"] = await audit.prune(s, now, audit_cut)
        counts["erasure_ledger"] = await ledger.prune(s, now - timedelta(days=r.backups_days))  # privacy/backup.py
        if any(counts.values()):
            await audit.record(s, now, actor_id=actor_id, action="retention.run", detail=counts)
    if pending := await delete_files_after(rt, files):  # an object store's files (not the database's)
        counts["files_pending"] = len(pending)  # due for deletion: the housekeeper deletes them when it answers
    counts["orphan_files"] = await sweep(rt)
    if any(v for k, v in counts.items() if k not in ("audit_rows", "erasure_ledger")):
        if kept := await scrub(rt):  # PostgreSQL: an older session kept old row versions (logged with names)
            counts["tables_pending_vacuum"] = len(kept)
    return counts
