"""The durable outbox and its SMTP worker.

A mail is a row first: :func:`enqueue` adds it inside the caller's
transaction, so a reply and its mail commit together or not at all. The
worker then claims due rows one by one (``queued`` -> ``sending``, an atomic
UPDATE, so several workers never take the same row), sends with aiosmtplib,
and marks them ``sent``. A failure that may pass (connection refused, 4xx)
puts the row back to ``queued`` with exponential backoff; a permanent refusal
(5xx, at any step: sender, recipient or data) makes it ``refused`` with the
server's reason; too many passing failures make it ``failed`` (never accepted,
given up). A connection lost after the ``sending`` mark makes it
``uncertain`` at once: the server may have taken the data.

The states a person sees (``DELIVERY_STATES``): queued, sending, sent,
refused, failed, uncertain. One rule for them: the state column itself.

Exactly once: a crash before the data goes out leaves the row ``queued``
(sent after restart); a crash between the ``sending`` mark and the ``sent``
mark cannot be told apart from one just after the server accepted the mail,
so at start-up a row still ``sending`` becomes ``uncertain`` and is *not* sent
again by itself: the console shows it and a person decides. Every row has its own Message-ID, so
if it is resent, mail clients recognise the copy. See docs/mail.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.channels import AGENTS_CHANNEL
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.store.models import MailOutbox, TranscriptRequest

log = logging.getLogger("jutella.mail")
MAX_ATTEMPTS = 12
POLL_SECONDS = 1.0
STOP_SECONDS = 3.0  # how long a stopping worker waits for the mail it is sending (within the drain)
#: every state a mail row can be in (docs/mail.md); the access copy and the console show them as they are
DELIVERY_STATES = ("queued", "sending", "sent", "refused", "failed", "uncertain")
#: what a sent invitation's stored body becomes: the one-time link is not kept (mail/invitations.py)
LINK_REMOVED = "[the invitation link was removed from jutella's copy after sending]"


def new_message_id(rt: Runtime) -> str:
    from urllib.parse import urlsplit

    domain = (rt.settings.smtp_from or "").rpartition("@")[2] or urlsplit(
        rt.settings.effective_public_url).hostname or "jutella.invalid"
    return f"<{secrets.token_hex(16)}@{domain}>"


def enqueue(s: AsyncSession, rt: Runtime, *, kind: str, to_addr: str, to_name: str | None, subject: str,
            body_text: str, body_html: str | None, offline_message_id: int | None = None) -> MailOutbox:
    now = rt.clock.now()
    row = MailOutbox(kind=kind, message_id=new_message_id(rt), to_addr=to_addr, to_name=to_name, subject=subject,
                     body_text=body_text, body_html=body_html, reply_to=rt.settings.smtp_reply_to, state="queued",
                     attempts=0, next_attempt_at=now, created_at=now, offline_message_id=offline_message_id)
    s.add(row)
    return row


def build_message(rt: Runtime, row: MailOutbox) -> EmailMessage:
    """The MIME message. EmailMessage refuses CR or LF in any header value, so
    no name or subject can inject a header."""
    msg = EmailMessage()
    msg["From"] = rt.settings.smtp_from or f"jutella@{new_message_id(rt).split('@')[1].rstrip('>')}"
    msg["To"] = formataddr((row.to_name or "", row.to_addr))
    msg["Subject"] = row.subject
    msg["Message-ID"] = row.message_id
    msg["Date"] = format_datetime(row.created_at)
    if row.reply_to:
        msg["Reply-To"] = row.reply_to
    msg["Auto-Submitted"] = "auto-generated" if row.kind == "notification" else "no"
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    return msg


class PermanentFailure(Exception):
    """The server refused the mail for good (5xx): state ``refused``."""


class Uncertain(Exception):
    """The connection was lost after the ``sending`` mark: the server may
    have accepted the data, so the mail is not sent again without a person."""


class LostClaim(Exception):
    """Another worker took the row over (ours was stale); nothing was sent."""


CLAIM_STALE = timedelta(minutes=5)


async def smtp_send(rt: Runtime, msg: EmailMessage, before_data) -> None:
    """Connect, greet, log in, then call ``before_data()`` (which marks the row
    ``sending``) and only then transmit the message."""
    st = rt.settings
    if not st.smtp_host:
        raise ConnectionError("SMTP is not configured (JUTELLA_SMTP_HOST)")
    smtp = aiosmtplib.SMTP(hostname=st.smtp_host, port=st.smtp_port, use_tls=st.smtp_tls == "tls",
                           start_tls=True if st.smtp_tls == "starttls" else False, timeout=30)
    marked = False
    try:
        await smtp.connect()
        if st.smtp_user:
            await smtp.login(st.smtp_user, st.smtp_password.get_secret_value() if st.smtp_password else "")
        if not await before_data():
            raise LostClaim()
        marked = True
        await smtp.send_message(msg)
    except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused at RCPT: an answer, not a loss
        codes = [r.code for r in exc.recipients]
        if codes and all(500 <= c < 600 for c in codes):
            raise PermanentFailure("; ".join(f"{r.code} {r.message}" for r in exc.recipients)[:400]) from None
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            raise PermanentFailure(f"{exc.code} {exc.message}"[:400]) from None
        raise
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        if marked:
            raise Uncertain(f"connection lost while sending ({type(exc).__name__}); "
                            "it may have been delivered") from None
        raise
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except Exception:
                smtp.close()


class OutboxWorker:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def kick(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Let the mail being sent finish (within STOP_SECONDS), send no other."""
        if self._task:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                pass
            self._task.cancel()  # past the bound: a row left "sending" is "uncertain" for the next housekeeper
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        from sqlalchemy import func

        while not self._stopping:
            try:
                # once per cluster: only the housekeeper sends (store/leader.py), and it
                # asks again before each row, so one that stops being it stops at once
                while not self._stopping and self.rt.is_housekeeper() and await self.send_due():
                    pass
                async with self.rt.db.reader() as s:
                    self.rt.metrics.outbox_depth.set((await s.execute(select(func.count()).select_from(
                        MailOutbox).where(MailOutbox.state == "queued"))).scalar_one())
            except Exception as exc:
                if storage_fault(exc) is not None:  # the database is away: one line, the next round retries
                    log.warning("outbox round skipped: %s", storage_fault(exc))
                else:
                    log.exception("outbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def send_due(self) -> bool:
        """Claim and send one due row. Returns False when there was none."""
        rt = self.rt
        now = rt.clock.now()
        free = (MailOutbox.claim_token.is_(None)) | (MailOutbox.claimed_at < now - CLAIM_STALE)
        async with rt.db.reader() as s:
            row_id = (await s.execute(select(MailOutbox.id).where(
                MailOutbox.state == "queued", MailOutbox.next_attempt_at <= now, free)
                .order_by(MailOutbox.next_attempt_at, MailOutbox.id).limit(1))).scalar_one_or_none()
        if row_id is None:
            return False
        token = secrets.token_hex(16)
        async with rt.db.transaction() as s:
            claimed = (await s.execute(update(MailOutbox).where(
                MailOutbox.id == row_id, MailOutbox.state == "queued", free).values(
                claim_token=token, claimed_at=now, attempts=MailOutbox.attempts + 1))).rowcount
            row = await s.get(MailOutbox, row_id) if claimed else None
        if row is None:
            return True  # another worker took it

        async def mark_sending() -> bool:
            # the last moment before the point of no return: from here on a
            # crash leaves the row "sending", i.e. "uncertain" at the next start
            async with rt.db.transaction() as s:
                return bool((await s.execute(update(MailOutbox).where(
                    MailOutbox.id == row.id, MailOutbox.claim_token == token, MailOutbox.state == "queued")
                    .values(state="sending"))).rowcount)

        state, error, next_at = "sent", None, row.next_attempt_at
        try:
            await smtp_send(rt, build_message(rt, row), mark_sending)
        except LostClaim:
            return True
        except PermanentFailure as exc:  # next_attempt_at keeps when it was given up (/healthz, the last hour)
            state, error, next_at = "refused", str(exc), rt.clock.now()
        except Uncertain as exc:
            state, error = "uncertain", str(exc)
        except (aiosmtplib.SMTPException, OSError, ConnectionError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:400]
            if row.attempts >= MAX_ATTEMPTS:
                state, next_at = "failed", rt.clock.now()
            else:
                state = "queued"
                next_at = rt.clock.now() + timedelta(seconds=min(3600, 10 * 2 ** (row.attempts - 1)))
        # a sent invitation's stored copy loses its one-time link (mail/invitations.py)
        forget = {"body_text": LINK_REMOVED, "body_html": None} if state == "sent" and row.kind == "invitation" else {}
        async with rt.db.transaction() as s:
            await s.execute(update(MailOutbox).where(MailOutbox.id == row.id, MailOutbox.claim_token == token)
                            .values(state=state, last_error=error, next_attempt_at=next_at, claim_token=None,
                                    claimed_at=None, sent_at=rt.clock.now() if state == "sent" else None,
                                    **forget))
            # a transcript's mail names its conversation (an id only), so a console showing it follows it
            conversation_id = (await s.execute(select(TranscriptRequest.conversation_id).where(
                TranscriptRequest.outbox_id == row.id))).scalar_one_or_none() if row.kind == "transcript" else None
        if state != "sent":
            log.warning("mail %s not sent (%s): %s", row.id, state, error)
        await rt.hub.publish(AGENTS_CHANNEL, {"type": "outbox", "outbox": {
            "id": row.id, "state": state, "error": error, "offline_message_id": row.offline_message_id,
            "conversation_id": conversation_id}})
        return True


async def mark_uncertain(rt: Runtime) -> int:
    """At start-up, before any worker runs: rows left ``sending`` by a crash may
    have been delivered, so they are not resent blindly. Claims left by a crash
    while connecting are released (nothing was sent for them)."""
    async with rt.db.transaction() as s:
        result = await s.execute(update(MailOutbox).where(MailOutbox.state == "sending").values(
            state="uncertain", claim_token=None,
            last_error="jutella stopped while sending; it may have been delivered"))
        await s.execute(update(MailOutbox).where(MailOutbox.state == "queued", MailOutbox.claim_token.isnot(None))
                        .values(claim_token=None, claimed_at=None))
    return result.rowcount or 0


async def retry(rt: Runtime, outbox_id: int) -> None:
    """A person decided to send an uncertain, refused or failed mail again."""
    async with rt.db.transaction() as s:
        await s.execute(update(MailOutbox).where(
            MailOutbox.id == outbox_id, MailOutbox.state.in_(("uncertain", "refused", "failed"))).values(
            state="queued", next_attempt_at=rt.clock.now(), attempts=0))
