"""Per-thread reply addresses (docs/mail.md "Replies by email").

Each answer to an offline message and each transcript mail gets its own
address ``reply+TOKEN@<JUTELLA_REPLY_DOMAIN>`` as ``Reply-To``: TOKEN is 160
random bits in lower-case base32 (mail servers may fold the case of a local
part), the database keeps only its SHA-256 (``reply_token.id``), with the
thread a reply to it joins, the address the mail went to and an expiry (the
offline messages' retention period). The address itself is in the mail's
outbox row, as the rest of that mail is. No reply domain set: no tokens, and
mails carry ``JUTELLA_SMTP_REPLY_TO`` as before.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from jutella.runtime import Runtime
from jutella.store.models import MailOutbox, ReplyToken

LOCAL_PART = "reply"
_TOKEN = re.compile(r"^[a-z2-7]{32}$")


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def address(rt: Runtime, token: str) -> str:
    return f"{LOCAL_PART}+{token}@{rt.settings.reply_domain}"


def token_of(rt: Runtime, recipient: str) -> str | None:
    """The token of a recipient address ``reply+TOKEN@<reply domain>`` (case
    folded), or None when it is not one of ours."""
    local, at, domain = (recipient or "").strip().strip("<>").rpartition("@")
    if not at or not rt.settings.reply_domain or domain.lower().rstrip(".") != rt.settings.reply_domain:
        return None
    prefix, plus, token = local.lower().partition("+")
    if prefix != LOCAL_PART or not plus or not _TOKEN.match(token):
        return None
    return token


def issue(s: AsyncSession, rt: Runtime, row: MailOutbox, *, email: str, offline_message_id: int | None = None,
          conversation_id: int | None = None) -> str | None:
    """Inside the transaction that enqueues ``row`` (flushed: it has an id):
    give the mail its own reply address as Reply-To. Returns the address, or
    None when no reply domain is configured."""
    if not rt.settings.reply_domain:
        return None
    token = new_token()
    now = rt.clock.now()
    s.add(ReplyToken(id=token_hash(token), offline_message_id=offline_message_id, conversation_id=conversation_id,
                     outbox_id=row.id, email=email, created_at=now,
                     expires_at=now + timedelta(days=rt.settings.retention.offline_days)))
    row.reply_to = address(rt, token)
    return row.reply_to
