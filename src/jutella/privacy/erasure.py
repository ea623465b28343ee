"""The erase action: exactly the selection, and a receipt of exactly what went.

One action (Zulip style) used by the console's register view (HTTP) and by
``jutella subject erase``: every change happens in one transaction; the
events (consoles drop the erased chats) and the scrub of the database files
come after the commit. The bytes of the attachments and of the files of
replies by email are in the file store (store/files.py), deleted in the same transaction as their rows, so a rolled
back erasure keeps everything, files included, and a committed one leaves
them on no host. (An S3-compatible object store cannot join the transaction:
there the files are written down as due for deletion in it and deleted right
after the commit, or by the housekeeper once the store answers; the
receipt's ``files_pending`` names those not gone yet.)

What goes:

- each selected conversation with everything that hangs on it: its events
  (messages, state lines, attachment lines) and internal notes, its label
  links, attachments (rows and their bytes), rating and comment, automatic
  metadata, emailed-transcript addresses and the transcript mails;
- each selected offline message with its replies, the visitor's replies by
  email and their attachments (rows and their bytes), metadata, the mails about
  it (the emailed replies) and their reply addresses;
- each selected mail, and the transcript address kept with it;
- a visitor, once none of their conversations and offline messages remain
  (a person erased whole leaves no visitor row); restriction flags that named
  a removed visitor or offline message go with it (an objection, kept by email
  fingerprint, stays: it must outlive the erasure).

Nothing else: a person's offline message that was not selected is kept, even
when it was left from an erased chat (its link to the chat is cleared and the
receipt says so), and so are their other chats.

The receipt maps each kind to the sorted ids removed (``ids``) and their
number (``counts``). Kinds whose content lives in a row that goes anyway
(``ratings``, ``metadata``) name the rows that held it, so the person is told.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, or_, select, text, update

from . import ledger
from jutella.accounts import audit
from jutella.chat.attachments import delete_files_after, delete_files_in
from jutella.chat.revocation import publish_access_changed
from jutella.runtime import Runtime
from jutella.store.models import (Attachment, ChatEvent, Conversation, ConversationLabel, EmailReply, EmailReplyFile,
                                  MailOutbox, OfflineMessage, OfflineReply, ReplyToken, SubjectFlag,
                                  TranscriptRequest, Visitor)

#: every kind a receipt names, in the order shown to people
KINDS = ("conversations", "messages", "notes", "label_links", "attachments", "attachment_files", "ratings",
         "transcript_emails", "offline_messages", "offline_replies", "email_replies", "email_reply_files",
         "reply_addresses", "metadata", "emails", "visitors", "flags", "offline_messages_unlinked",
         "offline_replies_unlinked")


def receipt_of(ids: dict[str, Any]) -> dict[str, Any]:
    ids = {k: sorted(ids.get(k, ())) for k in KINDS}
    return {"counts": {k: len(v) for k, v in ids.items()}, "ids": ids}


def _has_metadata(row) -> bool:
    return any(getattr(row, c, None) is not None for c in ("browser", "browser_version", "os", "os_version", "referrer",
                                                     "page_url", "current_page", "language"))


async def erase(rt: Runtime, sel, *, actor_id: int | None) -> dict[str, Any]:
    """Erase exactly ``sel`` (a ``subjects.Selection``) and return the receipt."""
    conv_ids = set(sel.conversations)
    offline_ids = set(sel.offline_messages)
    mail_ids = set(sel.emails)
    ids: dict[str, set] = {k: set() for k in KINDS}
    async with rt.db.transaction() as s:
        # the erasure ledger first, before any row goes (docs/privacy.md "Backups that forget")
        await ledger.record(s, sel, rt.clock.now())
        # -- what the selection holds (only rows that exist) ------------------------------------
        convs = (await s.execute(select(Conversation).where(Conversation.id.in_(conv_ids)))).scalars().all() \
            if conv_ids else []
        conv_ids = {c.id for c in convs}
        offs = (await s.execute(select(OfflineMessage).where(OfflineMessage.id.in_(offline_ids)))
                ).scalars().all() if offline_ids else []
        offline_ids = {m.id for m in offs}
        visitors = {c.visitor_id for c in convs} | {m.visitor_id for m in offs if m.visitor_id is not None}
        ids["conversations"] = set(conv_ids)
        ids["offline_messages"] = set(offline_ids)
        ids["ratings"] = {c.id for c in convs if c.rating is not None or c.rating_comment is not None}
        ids["metadata"] = {f"conversation:{c.id}" for c in convs if _has_metadata(c)} | {
            f"offline_message:{m.id}" for m in offs if _has_metadata(m)}
        if conv_ids:
            for ev_id, kind in (await s.execute(select(ChatEvent.id, ChatEvent.kind).where(
                    ChatEvent.conversation_id.in_(conv_ids)))).all():
                ids["notes" if kind == "note" else "messages"].add(ev_id)
            ids["label_links"] = {f"{c}:{lab}" for c, lab in (await s.execute(select(
                ConversationLabel.conversation_id, ConversationLabel.label_id).where(
                ConversationLabel.conversation_id.in_(conv_ids)))).all()}
            for att_id, name in (await s.execute(select(Attachment.id, Attachment.storage_name).where(
                    Attachment.conversation_id.in_(conv_ids)))).all():
                ids["attachments"].add(att_id)
                ids["attachment_files"].add(name)
            for t_id, outbox_id in (await s.execute(select(TranscriptRequest.id, TranscriptRequest.outbox_id).where(
                    TranscriptRequest.conversation_id.in_(conv_ids)))).all():
                ids["transcript_emails"].add(t_id)
                if outbox_id is not None:
                    mail_ids.add(outbox_id)
        if mail_ids:  # a transcript mail chosen on its own: the address kept with it goes too
            ids["transcript_emails"] |= set((await s.execute(select(TranscriptRequest.id).where(
                TranscriptRequest.outbox_id.in_(mail_ids)))).scalars())
        if offline_ids:
            ids["offline_replies"] = set((await s.execute(select(OfflineReply.id).where(
                OfflineReply.offline_message_id.in_(offline_ids)))).scalars())
            mail_ids |= set((await s.execute(select(MailOutbox.id).where(
                MailOutbox.offline_message_id.in_(offline_ids)))).scalars())
        if offline_ids:  # the visitor's replies by email, their files and the threads' reply addresses
            ids["email_replies"] = set((await s.execute(select(EmailReply.id).where(
                EmailReply.offline_message_id.in_(offline_ids)))).scalars())
            for f_id, name in (await s.execute(select(EmailReplyFile.id, EmailReplyFile.storage_name).where(
                    EmailReplyFile.offline_message_id.in_(offline_ids)))).all():
                ids["email_reply_files"].add(f_id)
                ids["attachment_files"].add(name)
        ids["emails"] = set((await s.execute(select(MailOutbox.id).where(MailOutbox.id.in_(mail_ids))))
                            .scalars()) if mail_ids else set()
        if offline_ids or conv_ids or ids["emails"]:  # a mail's reply address goes with its thread or the mail
            ids["reply_addresses"] = set((await s.execute(select(ReplyToken.id).where(or_(
                ReplyToken.offline_message_id.in_(offline_ids) if offline_ids else False,
                ReplyToken.conversation_id.in_(conv_ids) if conv_ids else False,
                ReplyToken.outbox_id.in_(ids["emails"]) if ids["emails"] else False)))).scalars())
        # kept records that pointed at erased ones lose the pointer (said in the receipt)
        if conv_ids:
            ids["offline_messages_unlinked"] = set((await s.execute(select(OfflineMessage.id).where(
                OfflineMessage.conversation_id.in_(conv_ids), OfflineMessage.id.notin_(offline_ids)))).scalars())
        if ids["emails"]:
            ids["offline_replies_unlinked"] = set((await s.execute(select(OfflineReply.id).where(
                OfflineReply.outbox_id.in_(ids["emails"]),
                OfflineReply.id.notin_(ids["offline_replies"]) if ids["offline_replies"] else True))).scalars())
        # a visitor goes once nothing of theirs is left outside the selection. The row lock
        # (PostgreSQL; SQLite's writes are serialised anyway) makes a chat or form the visitor
        # starts meanwhile wait for the commit, so it is never taken by the visitor's deletion
        if visitors:
            await s.execute(select(Visitor.id).where(Visitor.id.in_(visitors)).with_for_update())
        for v in visitors:
            other_chats = (await s.execute(select(func.count()).select_from(Conversation).where(
                Conversation.visitor_id == v, Conversation.id.notin_(conv_ids) if conv_ids else True))).scalar_one()
            other_forms = (await s.execute(select(func.count()).select_from(OfflineMessage).where(
                OfflineMessage.visitor_id == v,
                OfflineMessage.id.notin_(offline_ids) if offline_ids else True))).scalar_one()
            if not other_chats and not other_forms:
                ids["visitors"].add(v)
        if ids["visitors"] or offline_ids:
            ids["flags"] = set((await s.execute(select(SubjectFlag.id).where(or_(
                SubjectFlag.visitor_id.in_(ids["visitors"]) if ids["visitors"] else False,
                SubjectFlag.offline_message_id.in_(offline_ids) if offline_ids else False)))).scalars())

        # -- the deletions: children first, each explicit (no cascade does anything unseen) -------
        if ids["offline_messages_unlinked"]:
            await s.execute(update(OfflineMessage).where(OfflineMessage.id.in_(ids["offline_messages_unlinked"]))
                            .values(conversation_id=None))
        if ids["offline_replies_unlinked"]:
            await s.execute(update(OfflineReply).where(OfflineReply.id.in_(ids["offline_replies_unlinked"]))
                            .values(outbox_id=None))
        if ids["flags"]:
            await s.execute(delete(SubjectFlag).where(SubjectFlag.id.in_(ids["flags"])))
        if ids["transcript_emails"]:
            await s.execute(delete(TranscriptRequest).where(TranscriptRequest.id.in_(ids["transcript_emails"])))
        if ids["reply_addresses"]:
            await s.execute(delete(ReplyToken).where(ReplyToken.id.in_(ids["reply_addresses"])))
        if ids["email_reply_files"]:
            await s.execute(delete(EmailReplyFile).where(EmailReplyFile.id.in_(ids["email_reply_files"])))
        if ids["email_replies"]:
            await s.execute(delete(EmailReply).where(EmailReply.id.in_(ids["email_replies"])))
        if ids["offline_replies"]:
            await s.execute(delete(OfflineReply).where(OfflineReply.id.in_(ids["offline_replies"])))
        if ids["emails"]:
            await s.execute(delete(MailOutbox).where(MailOutbox.id.in_(ids["emails"])))
        if offline_ids:
            await s.execute(delete(OfflineMessage).where(OfflineMessage.id.in_(offline_ids)))
        if conv_ids:
            await s.execute(delete(Attachment).where(Attachment.conversation_id.in_(conv_ids)))
            # events one by one through DELETE so the FTS triggers drop their index entries
            await s.execute(delete(ChatEvent).where(ChatEvent.conversation_id.in_(conv_ids)))
            await s.execute(delete(ConversationLabel).where(ConversationLabel.conversation_id.in_(conv_ids)))
            await s.execute(delete(Conversation).where(Conversation.id.in_(conv_ids)))
        if ids["visitors"]:
            await s.execute(delete(Visitor).where(Visitor.id.in_(ids["visitors"])))
        # the bytes of the chats' attachments and of the replies' files, with their rows
        await delete_files_in(rt, s, sorted(ids["attachment_files"]))

        receipt = receipt_of(ids)
        # ---- the receipt is final here, inside the erasing transaction: whatever must be
        # ---- recorded with the erasure (the backups' erasure ledger) is written at this point
        await audit.record(s, rt.clock.now(), actor_id=actor_id, action="subject.erase",
                           detail={k: n for k, n in receipt["counts"].items() if n})
    # -- after the commit: events, files, the database files ---------------------------------------
    if conv_ids:  # consoles that follow them drop them from their lists and views
        await publish_access_changed(rt, conversations=conv_ids)
    # an object store's files (nothing to do for the database's): those it did not take now stay due for
    # deletion, the housekeeper deletes them when it answers, and the receipt says which they are
    receipt["files_pending"] = await delete_files_after(rt, sorted(ids["attachment_files"]))
    # PostgreSQL: the tables whose VACUUM had to keep the erased rows' old versions (a session older
    # than the erasure stayed open past Database.vacuum's wait); always empty on SQLite
    receipt["tables_pending_vacuum"] = await scrub(rt)
    return receipt


async def scrub(rt: Runtime) -> list[str]:
    """After deleting personal data: rebuild the SQLite full-text index segments
    and fold the WAL into the (secure_delete'd) main file; VACUUM on PostgreSQL
    so dead row versions do not linger in the table files (waiting, bounded,
    for older sessions to end: Database.vacuum). Returns the tables that still
    hold dead row versions (empty: none)."""
    if rt.db.dialect == "sqlite":
        async with rt.db.transaction() as s:  # the process's write lock, as every write
            await s.execute(text("INSERT INTO chat_event_fts(chat_event_fts) VALUES ('optimize')"))
        await rt.db.checkpoint()
        return []
    return await rt.db.vacuum(("chat_event", "conversation", "visitor", "offline_message", "offline_reply",
                               "mail_outbox", "attachment", "attachment_blob", "transcript_request",
                               "conversation_label", "subject_flag", "email_reply", "email_reply_file",
                               "reply_token"))
