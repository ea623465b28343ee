"""Who may see what: the one rule, for every record a member of staff can reach.

Every HTTP route, socket command, hub delivery to an agent and action asks
this module; nothing else decides (docs/access.md). As in Zulip's
``has_message_access`` and its bulk form, each kind of record has its rule
in two forms side by side, built from the same expressions so they cannot
drift apart:

* a clause for lists: ``conversation_clause(v)``, ``offline_clause(v)``,
  ``outbox_clause(v)`` (SQL ``WHERE`` terms);
* a check for one record: ``may_see_conversation(s, v, id)`` (an
  AsyncSession or AsyncConnection), ``core_may_see_conversation(conn, v, id)``
  inside a write already under way (prebuilt statements: an agent's message
  runs it on the hot path), and the same for offline messages and mail.

The rule:

* **Departments.** Administrators see every conversation. Anyone else sees
  conversations without a department, those of the departments they belong
  to (read live from ``staff_department`` by account id, so a stale Viewer
  never widens access) and those assigned to them. Offline messages are one
  shared inbox for all agents, as before: their department only picks the
  notification address (docs/departments.md).
* **Restriction of processing** hides a person from everyone without the
  ``privacy`` role. A person is restricted when a restriction flag names
  their visitor id, one of their offline messages, or the email (by its
  hash) of one of their offline messages, emailed transcripts or pre-chat
  forms; the visitor
  id links a person's chats, forms and transcripts. So a restriction set by
  email alone hides that person's forms and, through the visitor the forms
  name, their chats.
* **Register records** (privacy routes: find, copy, rectify, flags, erase,
  the register views) are for the ``privacy`` role only, restricted people
  included (:func:`may_use_register`); the route guard enforces it.
* Events, notes, labels, attachments and transcripts follow their
  conversation; replies and their mail follow their offline message; a
  transcript mail follows its conversation.

Anything not visible is answered as if it did not exist (404), never 403,
so ids cannot be probed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from jutella.accounts.errors import AccountError
from jutella.runtime import Runtime
from jutella.store.access_version import read_access_version
from jutella.store.models import (Conversation, MailOutbox, OfflineMessage, StaffAccount, StaffDepartment,
                                  SubjectFlag, TranscriptRequest)
from jutella.store.prepared import Prepared

ADMIN, AGENT, PRIVACY = "admin", "agent", "privacy"
REGISTER_ROLES = (PRIVACY,)  # the register's routes are guarded with Staff(*REGISTER_ROLES)


# -- who is looking ------------------------------------------------------------------------
@dataclass(frozen=True)
class Viewer:
    """A member of staff as far as seeing records goes. Built once per request
    or socket and rebuilt when ``version`` (the ``access_version`` setting,
    bumped by every change of roles, memberships, restrictions or disabling)
    moves on."""

    account_id: int
    roles: frozenset[str]
    departments: frozenset[int]
    sees_restricted: bool
    version: int

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles


def viewer_from(account: StaffAccount, departments, version: int, roles: frozenset[str] | None = None) -> Viewer:
    """``roles``: fewer than the account's (an API token's, web/auth.py ``StaffContext.roles``)."""
    roles = frozenset(account.role_names) if roles is None else roles
    return Viewer(account_id=account.id, roles=roles, departments=frozenset(departments),
                  sees_restricted=PRIVACY in roles, version=version)


async def viewer_in(s, account: StaffAccount, roles: frozenset[str] | None = None) -> Viewer:
    """The Viewer of an account already loaded inside session ``s``."""
    depts = (await s.execute(select(StaffDepartment.department_id)
                             .where(StaffDepartment.account_id == account.id))).scalars()
    return viewer_from(account, depts, await read_access_version(s), roles)


async def viewer_for(rt: Runtime, account: StaffAccount, roles: frozenset[str] | None = None) -> Viewer:
    """The Viewer of an account loaded elsewhere (a route's StaffContext,
    whose ``roles`` an API token narrows)."""
    async with rt.db.reader() as s:
        return await viewer_in(s, account, roles)


async def load_viewer(rt: Runtime, account_id: int) -> Viewer | None:
    """A fresh Viewer; None when the account is gone or disabled."""
    async with rt.db.reader() as s:
        account = await s.get(StaffAccount, account_id)
        if account is None or account.disabled_at is not None:
            return None
        return await viewer_in(s, account)


def may_use_register(v: Viewer | None) -> bool:
    """The data-subject register (privacy routes, the CLI's subject commands
    run by the operator): the privacy role, restricted people included."""
    return v is not None and bool(set(REGISTER_ROLES) & v.roles)


class NotFound(AccountError):
    def __init__(self, message: str = "No such record."):
        super().__init__("not_found", message, 404)


# -- restriction ------------------------------------------------------------------------------
class email_hash_sql(FunctionElement):
    """``privacy.subjects.email_hash`` in SQL: SHA-256 (hex) of the trimmed,
    lower-cased address. SQLite: the ``jutella_email_hash`` function every
    connection registers (store/db.py, the same Python code); PostgreSQL:
    built-in ``sha256``. (PostgreSQL's lower() is not Python's casefold() for
    a few non-ASCII letters such as ß; a stored address has an ASCII local
    part and a lower-cased domain, docs/access.md.)"""

    type = String()
    inherit_cache = True
    name = "jutella_email_hash"


@compiles(email_hash_sql)
def _email_hash_default(element, compiler, **kw):
    return "jutella_email_hash(%s)" % compiler.process(element.clauses, **kw)


@compiles(email_hash_sql, "postgresql")
def _email_hash_pg(element, compiler, **kw):
    return "encode(sha256(convert_to(lower(btrim(%s)), 'UTF8')), 'hex')" % compiler.process(element.clauses, **kw)


def _restriction(*where) -> Any:
    return exists().where(SubjectFlag.kind == "restriction", *where)


def email_restricted(column) -> ColumnElement[bool]:
    """An email column whose address a restriction names (by hash). The first
    term is one uncorrelated probe: with no email restriction at all, no row's
    address is hashed."""
    hashes = select(SubjectFlag.email_hash).where(SubjectFlag.kind == "restriction",
                                                  SubjectFlag.email_hash.isnot(None))
    return and_(_restriction(SubjectFlag.email_hash.isnot(None)), email_hash_sql(column).in_(hashes))


def anyone_restricted() -> ColumnElement[bool]:
    """Whether any restriction exists at all: one uncorrelated probe, and
    the first term of :func:`visitor_restricted`. Where it is false, nobody
    is restricted, so the rule of a viewer who does not see restricted people
    is the rule of one who does. PostgreSQL's one-statement messages
    (chat/actions.py) have a cheaper form on that ground, which carries
    ``NOT anyone_restricted()`` in its WHERE: the restriction's eleven
    subplans cost a third of the statement, set up on every execution even
    where the probe in front makes them unneeded."""
    return _restriction()


def visitor_restricted(visitor_id) -> ColumnElement[bool]:
    """True when the person behind ``visitor_id`` (a column or bind parameter)
    is restricted: by visitor, by one of their forms, or by the email of one
    of their forms or emailed transcripts."""
    om = aliased(OfflineMessage)
    conv = aliased(Conversation)
    # The uncorrelated probes in front are computed once per statement: with no
    # restriction at all (the usual case) or none by form or email, a message's
    # hot-path statement pays one index probe, not the joins behind them.
    by_form = or_(_restriction(SubjectFlag.offline_message_id.isnot(None)),
                  _restriction(SubjectFlag.email_hash.isnot(None)))
    return and_(anyone_restricted(), or_(
        _restriction(SubjectFlag.visitor_id == visitor_id),
        and_(by_form, or_(
            exists().where(om.visitor_id == visitor_id,
                           or_(_restriction(SubjectFlag.offline_message_id == om.id), email_restricted(om.email))),
            exists().where(conv.visitor_id == visitor_id, TranscriptRequest.conversation_id == conv.id,
                           email_restricted(TranscriptRequest.email)),
            # the email given on a site's pre-chat form (chat/prechat.py)
            exists().where(conv.visitor_id == visitor_id, conv.prechat_email.isnot(None),
                           email_restricted(conv.prechat_email)))),
    ))


def offline_restricted(message=OfflineMessage) -> ColumnElement[bool]:
    """An offline message whose person is restricted: the form itself, its
    email, or its visitor."""
    return or_(_restriction(SubjectFlag.offline_message_id == message.id), email_restricted(message.email),
               and_(message.visitor_id.isnot(None), visitor_restricted(message.visitor_id)))


def conversation_restricted(conversation=Conversation) -> ColumnElement[bool]:
    return visitor_restricted(conversation.visitor_id)


# -- conversations (and their events, notes, labels, attachments, transcripts) ------------------------
def conversation_rule(is_admin: bool, sees_restricted: bool, account: Any, conv=Conversation) -> list:
    """The rule for conversations as WHERE terms on ``conv`` (the model, an
    alias, or the table an UPDATE writes: an agent's message checks it in
    its one statement, chat/actions.py), for a viewer who is or is not an
    administrator and does or does not see restricted people; ``account``:
    the viewer's account id (a value or a bind parameter)."""
    where: list = []
    if not is_admin:
        mine = select(StaffDepartment.department_id).where(StaffDepartment.account_id == account)
        where.append(or_(conv.department_id.is_(None), conv.department_id.in_(mine), conv.agent_id == account))
    if not sees_restricted:
        where.append(not_(conversation_restricted(conv)))
    return where


def conversation_clause(v: Viewer, conv=Conversation) -> list:
    """WHERE terms: the conversations ``v`` sees (lists, search, counts)."""
    return conversation_rule(v.is_admin, v.sees_restricted, v.account_id, conv)


@functools.cache
def _conversation_statement(is_admin: bool, sees_restricted: bool) -> Prepared:
    # prebuilt with bind parameters: building a statement costs more than
    # running it on SQLite, and it runs for each agent's message
    return Prepared(select(Conversation.id).where(Conversation.id == bindparam("b_id"),
                                                  *conversation_rule(is_admin, sees_restricted,
                                                                      bindparam("b_account"))))


def _params(v: Viewer, record_id: int) -> dict[str, Any]:
    return {"b_id": record_id, "b_account": v.account_id}


async def may_see_conversation(s, v: Viewer, conversation_id: int) -> bool:
    """One conversation (``s``: an AsyncSession or AsyncConnection)."""
    statement = _conversation_statement(v.is_admin, v.sees_restricted).statement
    return (await s.execute(statement, _params(v, conversation_id))).first() is not None


def core_may_see_conversation(conn: Connection, v: Viewer, conversation_id: int) -> bool:
    """One conversation, inside a write already under way."""
    return _conversation_statement(v.is_admin, v.sees_restricted).first(conn, _params(v, conversation_id)) \
        is not None


def decide_conversation(v: Viewer, *, department_id: int | None, agent_id: int | None, restricted: bool) -> bool:
    """The same rule on values already at hand (a hub frame), by the Viewer's
    own memberships."""
    if restricted and not v.sees_restricted:
        return False
    return v.is_admin or department_id is None or department_id in v.departments or agent_id == v.account_id


async def conversation_or_404(rt: Runtime, v: Viewer, conversation_id: int) -> None:
    async with rt.db.connection() as conn:
        if not await may_see_conversation(conn, v, conversation_id):
            raise NotFound("No such conversation.")


async def may_see_attachment(s, v: Viewer, conversation_id: int) -> bool:
    """An attachment's file: the register's contact person hands files listed
    in an access copy to the person (privacy role: every file); agents by
    its conversation."""
    return may_use_register(v) or await may_see_conversation(s, v, conversation_id)


# -- offline messages and their replies ------------------------------------------------------------
def _offline_rule(sees_restricted: bool, message=OfflineMessage) -> list:
    return [] if sees_restricted else [not_(offline_restricted(message))]


def offline_clause(v: Viewer, message=OfflineMessage) -> list:
    """WHERE terms: the offline messages ``v`` sees (one shared inbox; restricted people hidden)."""
    return _offline_rule(v.sees_restricted, message)


def contacts_clause(message=OfflineMessage) -> list:
    """The contacts export is processing for the organisation's own use:
    restricted people are left out whoever asks, the privacy role included."""
    return _offline_rule(False, message)


@functools.cache
def _offline_statement(sees_restricted: bool) -> Prepared:
    return Prepared(select(OfflineMessage.id).where(OfflineMessage.id == bindparam("b_id"),
                                                    *_offline_rule(sees_restricted)))


async def may_see_offline(s, v: Viewer, message_id: int) -> bool:
    return (await s.execute(_offline_statement(v.sees_restricted).statement,
                            {"b_id": message_id})).first() is not None


def core_may_see_offline(conn: Connection, v: Viewer, message_id: int) -> bool:
    return _offline_statement(v.sees_restricted).first(conn, {"b_id": message_id}) is not None


async def offline_or_404(rt: Runtime, v: Viewer, message_id: int) -> None:
    async with rt.db.connection() as conn:
        if not await may_see_offline(conn, v, message_id):
            raise NotFound("No such message.")


# -- mail in the outbox (replies follow their form, transcripts their conversation) ---------------
def _outbox_rule(v: Viewer) -> list:
    if v.is_admin and v.sees_restricted:
        return []
    forms = select(OfflineMessage.id).where(*offline_clause(v))
    chats = select(Conversation.id).where(*conversation_clause(v))
    return [or_(MailOutbox.offline_message_id.is_(None), MailOutbox.offline_message_id.in_(forms)),
            not_(exists().where(TranscriptRequest.outbox_id == MailOutbox.id,
                                TranscriptRequest.conversation_id.notin_(chats)))]


def outbox_clause(v: Viewer) -> list:
    return _outbox_rule(v)


async def may_see_outbox(s, v: Viewer, outbox_id: int) -> bool:
    return (await s.execute(select(MailOutbox.id).where(MailOutbox.id == outbox_id, *_outbox_rule(v)))
            ).first() is not None


async def outbox_or_404(rt: Runtime, v: Viewer, outbox_id: int) -> None:
    async with rt.db.connection() as conn:
        if not await may_see_outbox(conn, v, outbox_id):
            raise NotFound("No such record.")


__all__ = [
    "Viewer", "NotFound", "REGISTER_ROLES", "viewer_from", "viewer_in", "viewer_for", "load_viewer",
    "may_use_register", "email_hash_sql", "email_restricted", "visitor_restricted", "anyone_restricted",
    "offline_restricted",
    "conversation_restricted", "conversation_clause", "may_see_conversation", "core_may_see_conversation",
    "decide_conversation", "conversation_or_404", "may_see_attachment", "offline_clause", "contacts_clause",
    "may_see_offline", "core_may_see_offline", "offline_or_404", "outbox_clause", "may_see_outbox",
    "outbox_or_404",
]
