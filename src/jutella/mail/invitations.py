"""Invitation mails (docs/accounts.md, "Getting in").

With SMTP configured, an admin's invitation is also mailed to the new member
of staff, through the outbox like every other mail (durable, retried, its
state visible: the Accounts page shows it, and the copy-link fallback when it
is not sent). The mail is queued in the same transaction as the account and
its one-time link (``accounts.actions.create_account(mailer=...)``), so an
invitation and its mail exist together or not at all.

The link rides in the body, so the outbox row holds it until the mail is
sent; once the server has taken it, the worker blanks the link from the
stored copy (mail/outbox.py ``LINK_REMOVED``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.accounts.actions import InvitationMailer
from jutella.i18n import gettext
from jutella.runtime import Runtime
from jutella.store.models import MailOutbox, StaffAccount

from . import outbox
from .compose import _env

KIND = "invitation"


def invitation_mail(*, lang: str, name: str, org: str, inviter: str, link: str, hours: int) -> tuple[str, str, str]:
    """(subject, text, html) of an invitation, in ``lang``."""
    subject = gettext(lang, "You are invited to the {org} chat console", org=org)
    lines = [
        gettext(lang, "Hello {name},", name=name),
        gettext(lang, "{inviter} has invited you to answer chats for {org} in jutella.", inviter=inviter, org=org),
        gettext(lang, "Choose your password with this link. It works once, for {hours} hours:", hours=hours),
        link,
        gettext(lang, "If you did not expect this invitation, you can ignore this mail."),
    ]
    text = "\n\n".join(lines[:3]) + "\n" + link + "\n\n" + lines[4] + "\n\n-- \n" + org + "\n"
    html = _env.get_template("invitation.html").render(lang=lang, subject=subject, greeting=lines[0],
                                                       intro=lines[1], how=lines[2], link=link, ignore=lines[4],
                                                       org=org)
    return subject, text, html


def mailer(rt: Runtime, *, lang: str, inviter: str) -> InvitationMailer | None:
    """The hook that queues the invitation mail, or None when SMTP is not
    configured (the admin copies the link, as before)."""
    if not rt.settings.smtp_configured:
        return None

    async def queue(s: AsyncSession, account: StaffAccount, link: str) -> int:
        subject, text, html = invitation_mail(lang=lang, name=account.name, org=rt.settings.notice.controller.name,
                                              inviter=inviter, link=link, hours=rt.settings.invitation_hours)
        row = outbox.enqueue(s, rt, kind=KIND, to_addr=account.email, to_name=account.name, subject=subject,
                             body_text=text, body_html=html)
        await s.flush()
        return row.id

    return queue


async def deliveries(rt: Runtime, emails: list[str]) -> dict[str, str]:
    """The state of the latest invitation mail to each address (for the
    Accounts page: mailed, sent, or refused and so the link to copy)."""
    if not emails:
        return {}
    async with rt.db.reader() as s:
        rows = (await s.execute(select(MailOutbox.to_addr, MailOutbox.state).where(
            MailOutbox.kind == KIND, MailOutbox.to_addr.in_(emails)).order_by(MailOutbox.id))).all()
    return {to: state for to, state in rows}  # the latest wins


def kick(rt: Runtime) -> None:
    if rt.outbox is not None:
        rt.outbox.kick()

