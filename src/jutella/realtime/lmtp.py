"""The LMTP server that receives visitors' replies (docs/mail.md "Replies by email").

``JUTELLA_LMTP_LISTEN`` (``host:port``) names where; the site's mail server
delivers the reply domain into it (a Postfix transport line in docs/mail.md).
aiosmtpd's ``LMTP`` speaks the protocol; the handler here only moves bytes
and asks chat/email_replies.py:

- RCPT: a live ``reply+TOKEN@<reply domain>`` address is taken (250); any
  other, or an expired one, is refused for good (``550 5.1.1``). One
  recipient per transaction (a second gets ``452 4.5.3``, which a mail
  server answers by delivering it in a transaction of its own), so the one
  reply to DATA is that recipient's, as LMTP wants.
- DATA: at most ``MAX_MAIL_BYTES`` (aiosmtpd answers ``552`` above it); the
  mail is parsed and its attachments checked in the upload pool's processes
  (jutella/cpu.py); a full pool or an unreachable database is a passing
  failure (``451 4.3.0``: the mail server tries again), a mail without any
  sender a permanent one (``550 5.6.0``).

Several workers: every worker of ``jutella serve`` binds the address with
``SO_REUSEPORT`` and the kernel gives each new connection to one of them, so
any worker may receive a reply (each delivery is one transaction of its own;
a redelivered mail is recognised by its Message-ID), and the address keeps
answering while a worker restarts.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiosmtpd.lmtp import LMTP

from jutella.chat import email_replies
from jutella.cpu import Busy
from jutella.mail.inbound import Unreadable
from jutella.runtime import Runtime
from jutella.store.db import storage_fault

log = logging.getLogger("jutella.mail")


class ReplyHandler:
    """aiosmtpd's handler hooks, in front of chat/email_replies.py."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd hook
        if envelope.rcpt_tos:
            return "452 4.5.3 One recipient per transaction"
        try:
            ok = await email_replies.accepts(self.rt, address)
        except Exception as exc:
            if storage_fault(exc) is None:
                log.exception("lmtp: recipient check failed")
            return "451 4.3.0 Try again later"
        if not ok:
            return "550 5.1.1 Unknown or expired reply address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            done = await email_replies.receive(self.rt, envelope.rcpt_tos[0], raw, envelope.mail_from)
        except email_replies.Refused:
            return "550 5.1.1 Unknown or expired reply address"
        except Unreadable:
            return "550 5.6.0 The message has no sender"
        except Busy:
            return "451 4.3.0 Busy, try again later"
        except Exception as exc:
            if storage_fault(exc) is None:
                log.exception("lmtp: storing a reply failed")
            return "451 4.3.0 Try again later"
        log.info("lmtp: reply %s stored in offline message %s%s", done.reply.id, done.message.id,
                 " (again: ignored)" if done.duplicate else "")
        return "250 2.0.0 OK"


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


async def start(rt: Runtime) -> asyncio.AbstractServer | None:
    """Listen on ``JUTELLA_LMTP_LISTEN`` (None when unset), with SO_REUSEPORT
    so every worker of one server may bind it."""
    if not rt.settings.lmtp_listen:
        return None
    host, port = parse_listen(rt.settings.lmtp_listen)
    handler = ReplyHandler(rt)
    loop = asyncio.get_running_loop()
    name = rt.settings.reply_domain or "jutella"

    def factory() -> LMTP:
        return LMTP(handler, data_size_limit=email_replies.MAX_MAIL_BYTES, enable_SMTPUTF8=True, hostname=name,
                    ident="jutella LMTP", timeout=60, loop=loop)

    server = await loop.create_server(factory, host, port, reuse_port=hasattr(socket, "SO_REUSEPORT"),
                                      reuse_address=True)
    log.info("lmtp: receiving replies on %s", rt.settings.lmtp_listen)
    return server
