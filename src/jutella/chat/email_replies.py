"""A visitor's reply by email joins its thread (docs/mail.md "Replies by email").

The LMTP server (realtime/lmtp.py) asks :func:`accepts` at RCPT and hands
the message to :func:`receive` after DATA. The reply address names its
thread through ``reply_token`` (chat/reply_tokens.py):

- an answer to an offline message: the reply joins that message's thread;
- a transcript mail: the first reply opens an offline message (reason
  ``transcript_reply``) linked to the conversation, for the chat itself is
  over and the visitor is reachable by email only; later replies to any of
  that conversation's transcript mails join the same message.

Either way the reply is an ``email_reply`` row: its new text (quoted history
removed, mail/inbound.py), the sender, whether the sender's address differs
from the one the mail went to (flagged to the agent), and its attachments,
checked and cleaned exactly as uploads are (chat/attachments.py ``prepare``:
type from the content, images re-encoded, PDFs scanned, the size limit);
an attachment refused is kept by name and reason only. The files' bytes go
into the same file store as the chat's attachments (store/files.py, through
chat/attachments.py ``with_new_files``) in the transaction that writes their
rows, so a mail refused, rolled back or delivered again stores nothing more,
and every host serves them. The message is reopened (state ``new``) and the
agents are told as of a new message (the ``offline`` event with ``new``). The parsing and the file work run in the
upload pool's processes (jutella/cpu.py), never on the event loop.

Replies belong to their offline message: the same access rule, access copy,
erasure, restriction and retention (privacy/).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from jutella.accounts import audit
from jutella.channels import AGENTS_CHANNEL
from jutella.mail import inbound
from jutella.runtime import Runtime
from jutella.store.models import Conversation, EmailReply, EmailReplyFile, OfflineMessage, ReplyToken

from . import access
from .attachments import AttachmentError, Opened, files, prepare, put_new_files, with_new_files
from .errors import ChatError
from .offline import NEW, summary
from .reply_tokens import token_hash, token_of

TRANSCRIPT_REPLY = "transcript_reply"  # an offline message's reason: opened by a reply to a transcript mail
MAX_MAIL_BYTES = 30 * 1024 * 1024  # the LMTP server's DATA limit (realtime/lmtp.py)


class Refused(Exception):
    """Not a reply address jutella knows (or it has expired): LMTP 550."""


@dataclass
class Received:
    reply: EmailReply
    message: OfflineMessage
    duplicate: bool = False


async def _live_token(rt: Runtime, recipient: str) -> ReplyToken | None:
    token = token_of(rt, recipient)
    if token is None:
        return None
    async with rt.db.reader() as s:
        row = await s.get(ReplyToken, token_hash(token))
    if row is None or row.expires_at <= rt.clock.now():
        return None
    if row.offline_message_id is None and row.conversation_id is None:
        return None  # its thread was erased
    return row


async def accepts(rt: Runtime, recipient: str) -> bool:
    """Whether ``recipient`` is a live reply address (asked at RCPT)."""
    return await _live_token(rt, recipient) is not None


def same_address(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.strip().casefold() == b.strip().casefold()


async def receive(rt: Runtime, recipient: str, raw: bytes, envelope_from: str | None = None) -> Received:
    """Store one received mail as a reply in its thread. Raises
    :class:`Refused` for an unknown or expired address, ``inbound.Unreadable``
    for a mail without a sender, ``cpu.Busy`` when the upload pool is full
    (the mail server tries again later)."""
    token = await _live_token(rt, recipient)
    if token is None:
        raise Refused(recipient)
    parsed = await rt.cpu.uploads.run(inbound.extract, raw, envelope_from)
    # attachments: the upload checks, in the same pool (chat/attachments.py prepare)
    accepted: list[tuple[bytes, str, str]] = []
    refused: list[dict[str, str]] = [{"name": name, "code": "not_a_file"} for name in parsed["skipped"]]
    for name, data in parsed["files"]:
        try:
            accepted.append(await prepare(rt, data, name))
        except AttachmentError as exc:
            refused.append({"name": name[:200], "code": exc.code})
    now = rt.clock.now()
    new_files = []
    for stored, content_type, name in accepted:
        new_files.append(dict(public_id=secrets.token_urlsafe(32), content_type=content_type, size=len(stored),
                              filename=name, storage_name=secrets.token_hex(24), created_at=now, data=stored))
    text = parsed["text"] + ("\n[…]" if parsed["cut"] else "")
    # the bytes into the file store with their rows, exactly as a chat's upload (a redelivery keeps none)
    done = await with_new_files(rt, {f["storage_name"]: f["data"] for f in new_files},
                                lambda: _store(rt, token.id, parsed, text, refused, new_files),
                                kept=lambda r: not r.duplicate)
    if not done.duplicate:
        await rt.hub.publish(AGENTS_CHANNEL, {"type": "offline", "message": summary(done.message), "new": True})
    return done


async def _store(rt: Runtime, token_id: str, parsed: dict[str, Any], text: str, refused: list[dict[str, str]],
                 new_files: list[dict[str, Any]]) -> Received:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        token = await s.get(ReplyToken, token_id, with_for_update=True)
        if token is None or token.expires_at <= now:
            raise Refused(token_id)
        if token.offline_message_id is None:
            conv = await s.get(Conversation, token.conversation_id, with_for_update=True) \
                if token.conversation_id else None
            if conv is None:
                raise Refused(token_id)
            await s.refresh(token)  # another reply to this chat's transcripts may have opened the message meanwhile
        if token.offline_message_id is not None:
            m = await s.get(OfflineMessage, token.offline_message_id, with_for_update=True)
            if m is None:
                raise Refused(token_id)
        else:
            m = await _open_from_transcript(s, rt, token, conv, parsed)
        if parsed["message_id"]:
            seen = (await s.execute(select(EmailReply).where(
                EmailReply.offline_message_id == m.id, EmailReply.message_id == parsed["message_id"]))
                    ).scalar_one_or_none()
            if seen is not None:  # the mail server delivered it again: one reply
                return Received(seen, m, duplicate=True)
        reply = EmailReply(offline_message_id=m.id, from_addr=parsed["from"], from_name=parsed["from_name"],
                           sender_differs=not same_address(parsed["from"], token.email), body=text,
                           refused=refused, message_id=parsed["message_id"], created_at=now)
        s.add(reply)
        await s.flush()
        for f in new_files:
            s.add(EmailReplyFile(email_reply_id=reply.id, offline_message_id=m.id,
                                 **{k: v for k, v in f.items() if k != "data"}))
        if new_files:  # the bytes commit or roll back with these rows
            store, new = files(rt), {f["storage_name"]: f["data"] for f in new_files}
            await s.run_sync(lambda sync: put_new_files(store, sync.connection(), new, now))
        # reopened: back among the new ones, for the agents to answer
        m.state, m.closed_at, m.updated_at = NEW, None, now
        await s.flush()
    return Received(reply, m)


async def _open_from_transcript(s, rt: Runtime, token: ReplyToken, conv: Conversation,
                                parsed: dict[str, Any]) -> OfflineMessage:
    """The first reply to a conversation's transcript mails: an offline
    message linked to the chat, in its department and language, addressed
    to where the transcript went; every transcript token of the chat now
    names it."""
    name = parsed["from_name"] if same_address(parsed["from"], token.email) and parsed["from_name"] else None
    now = rt.clock.now()
    m = OfflineMessage(visitor_id=conv.visitor_id, conversation_id=conv.id, name=name or token.email,
                       email=token.email, body="", reason=TRANSCRIPT_REPLY, state=NEW, created_at=now,
                       updated_at=now, language=conv.language, department_id=conv.department_id)
    s.add(m)
    await s.flush()
    await s.execute(update(ReplyToken).where(ReplyToken.conversation_id == conv.id,
                                             ReplyToken.offline_message_id.is_(None))
                    .values(offline_message_id=m.id))
    return m


# -- the files, for the console -------------------------------------------------------------------
async def open_file(rt: Runtime, *, viewer: access.Viewer, message_id: int, public_id: str) -> EmailReplyFile:
    """A reply's file for ``viewer`` if they may see its message (the access
    rule); audited as a view (``attachment.view``)."""
    async with rt.db.transaction() as s:
        f = (await s.execute(select(EmailReplyFile).where(
            EmailReplyFile.public_id == public_id[:64], EmailReplyFile.offline_message_id == message_id))
             ).scalar_one_or_none()
        if f is None or not await access.may_see_offline(s, viewer, message_id):
            raise ChatError("not_found", "No such file.", 404)
        await audit.record(s, rt.clock.now(), actor_id=viewer.account_id, action="attachment.view",
                           target_type="email_reply_file", target_id=f.id)
    return f


async def file_bytes(rt: Runtime, f: EmailReplyFile) -> Opened | None:
    """The file's bytes to stream from the file store (None: gone, a 404)."""
    return await files(rt).open(f.storage_name)
