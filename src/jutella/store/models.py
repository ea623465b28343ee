"""The tables. Every subsystem's rows live here so that migrations see one
metadata; the subsystems own the code that reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, ForeignKey, Index, Integer, LargeBinary, String, Table,
                        Text, UniqueConstraint, exists, false, func, text, true)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from .types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


# -- accounts ---------------------------------------------------------------
class StaffAccount(Base):
    __tablename__ = "staff_account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # refuses a replayed code
    language: Mapped[str | None] = mapped_column(String(8))
    max_chats: Mapped[int | None] = mapped_column(Integer)  # concurrent-chat limit; None: the setting's

    roles: Mapped[list[StaffRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="StaffRole.role"
    )

    @property
    def role_names(self) -> list[str]:
        return [r.role for r in self.roles]


class StaffRole(Base):
    __tablename__ = "staff_role"

    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class RecoveryCode(Base):
    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class StaffSession(Base):
    """A signed-in browser. The primary key is the SHA-256 of the cookie's token,
    so a copy of the database does not hand out live sessions."""

    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # signed in by single sign-on without the second factor the account's roles need (admin,
    # privacy; docs/sso.md): until the account turns two-factor sign-in on, only its own
    # account's routes answer (accounts/guard.py)
    needs_totp: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class OneTimeToken(Base):
    """Set-up and invitation links: the SHA-256 of the token, its kind, expiry and use."""

    __tablename__ = "one_time_token"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SystemSetting(Base):
    """Settings an administrator changes at run time (e.g. "require 2FA")."""

    __tablename__ = "system_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


# -- audit ------------------------------------------------------------------
class AuditHead(Base):
    """One row: the chain's length and last hash. Updating it first serialises
    audit writers on SQLite and PostgreSQL alike."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    last_hash: Mapped[str] = mapped_column(String(64))
    # False while the newest rows were hashed without the key (an upgrade from
    # before 0008): the next row written seals them with an ``audit.keyed`` row
    keyed: Mapped[bool] = mapped_column(Boolean, server_default=true())


class AuditEntry(Base):
    """Append-only. Names records by id, never by their personal content."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(BigId, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)


# -- chat -------------------------------------------------------------------------
class Visitor(Base):
    """A browser that opened the chat. Known only by a random token (the
    database keeps its SHA-256) and a random public id staff can quote; no IP
    address, no fingerprint."""

    __tablename__ = "visitor"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class Conversation(Base):
    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitor.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # waiting | active | closed
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    accepted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(16))  # agent | visitor | idle
    last_activity_at: Mapped[datetime]
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    agent_seen_seq: Mapped[int] = mapped_column(Integer, default=0)
    visitor_seen_seq: Mapped[int] = mapped_column(Integer, default=0)
    # automatic metadata, taken once when the conversation starts (no raw user agent, no IP)
    browser: Mapped[str | None] = mapped_column(String(64))
    browser_version: Mapped[str | None] = mapped_column(String(16))
    os: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(32))
    referrer: Mapped[str | None] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    # the page the visitor is on now, while the chat is open (issue 17, migration 0014; clean_url's shape)
    current_page: Mapped[str | None] = mapped_column(Text)
    metadata_erased_at: Mapped[datetime | None]
    # the visitor's rating at close (issue 8, migration 0007)
    rating: Mapped[int | None] = mapped_column(Integer)  # 1-5
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None]
    # what the visitor gave on the site's pre-chat form (chat/prechat.py, migration 0018): personal data
    prechat_name: Mapped[str | None] = mapped_column(String(100))
    prechat_email: Mapped[str | None] = mapped_column(String(254))
    prechat_topic: Mapped[str | None] = mapped_column(String(100))  # the topic's label as the visitor saw it

    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"), index=True)
    # added to the reports' daily aggregates (chat/reports.py, migration 0016): a close counts once
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the site whose page the chat began on (chat/sites.py site_of, migration 0017); None: the default profile
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"), index=True)


class ChatEvent(Base):
    """Everything that happens in a conversation, numbered by ``seq``: messages
    and state changes. ``client_id`` makes a resent message idempotent."""

    __tablename__ = "chat_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # message | state
    author: Mapped[str] = mapped_column(String(16))  # visitor | agent | system
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    body: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_chat_event_seq"),
        UniqueConstraint("conversation_id", "client_id", name="uq_chat_event_client_id"),
    )


# -- offline messages and mail ----------------------------------------------------------
class OfflineMessage(Base):
    """A message left through the widget's email form when nobody was on duty."""

    __tablename__ = "offline_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitor.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), index=True)
    body: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))  # no_agent | wait_timeout | agents_left
    state: Mapped[str] = mapped_column(String(16), index=True)  # new | answered | closed
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    browser: Mapped[str | None] = mapped_column(String(64))
    browser_version: Mapped[str | None] = mapped_column(String(16))
    os: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(32))
    referrer: Mapped[str | None] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"))
    # the site whose page the form was sent from (migration 0017); None: the default profile
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"), index=True)
    # consent to marketing email (the form's unticked box, when [register.marketing] is on):
    # the version of the wording shown and when it was given; None: no consent (docs/privacy.md)
    marketing_consent_version: Mapped[str | None] = mapped_column(String(32))
    marketing_consent_at: Mapped[datetime | None]


class OfflineReply(Base):
    __tablename__ = "offline_reply"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offline_message_id: Mapped[int] = mapped_column(ForeignKey("offline_message.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"))


class MailOutbox(Base):
    """Mail to send, committed before any attempt (see docs/mail.md).

    queued (claimed by one worker while it connects) -> sending (only from just
    before the message data goes out) -> sent; a failed attempt goes back to
    queued with a later ``next_attempt_at``, a permanent (5xx) refusal to
    refused, too many failed attempts to failed. A connection lost after the
    sending mark makes it uncertain at once. A
    row found in ``sending`` at start-up becomes ``uncertain``: it may have
    been delivered just before a crash, so it is not sent again without a
    person deciding."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # reply | notification
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    to_addr: Mapped[str] = mapped_column(String(320), index=True)
    to_name: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    reply_to: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    claim_token: Mapped[str | None] = mapped_column(String(32))  # the worker connecting to SMTP for it
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    offline_message_id: Mapped[int | None] = mapped_column(ForeignKey("offline_message.id", ondelete="CASCADE"))


# -- the register: data-subject flags and requests -----------------------------------------
class SubjectFlag(Base):
    """An objection to direct marketing or a restriction of processing.

    The person is named by the SHA-256 of their normalised email (so the flag
    itself adds no readable personal data and survives an erasure) and/or by a
    visitor id."""

    __tablename__ = "subject_flag"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # objection | restriction
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitor.id", ondelete="CASCADE"), index=True)
    offline_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("offline_message.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("subject_request.id", ondelete="SET NULL"))


class SubjectRequest(Base):
    """The request log: each data-subject request with its one-month deadline."""

    __tablename__ = "subject_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | rectification | objection | restriction | erasure | portability
    received_at: Mapped[datetime]
    deadline: Mapped[datetime] = mapped_column(index=True)
    verified_how: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | done | refused
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


# -- departments, transfers and concurrent-chat limits (issue 8, migration 0005) -------------
class Department(Base):
    """A team that answers some chats ("Jäsenyys", "Tekniikka"). Names are
    staff-given labels, not personal data; ``notify_email`` is the team's
    address for offline messages (None: the general one)."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    notify_email: Mapped[str | None] = mapped_column(String(320))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class OpeningHours(Base):
    """Opening hours (docs/hours.md): one row per department with hours of its
    own, and one for the whole service (``department_id`` NULL, key
    ``service``). ``weekly``: {"0": [["09:00", "16:00"]], ...} (Monday = 0);
    ``exceptions``: [{"date", "hours", "note"}], ``hours`` empty = closed.
    No row: always open."""

    __tablename__ = "opening_hours"

    key: Mapped[str] = mapped_column(String(24), primary_key=True)  # "service" or "dept:<id>"
    department_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("department.id", ondelete="CASCADE"))
    weekly: Mapped[dict[str, Any]] = mapped_column(JSON)
    exceptions: Mapped[list[Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class StaffDepartment(Base):
    """An agent's membership of a department."""

    __tablename__ = "staff_department"

    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"), primary_key=True,
                                               index=True)


# -- canned responses, internal notes and labels (issue 8, migration 0006) ---------------------
class CannedResponse(Base):
    """A saved reply an agent inserts with "/shortcut". ``owner_id`` NULL: shared
    (administrators manage those); otherwise one agent's own. Internal notes are
    ChatEvents of kind "note" (chat/notes.py), not a table of their own."""

    __tablename__ = "canned_response"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), index=True)
    shortcut: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))  # fi | en | sv
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("owner_id", "shortcut", "language", name="uq_canned_owner_shortcut_lang"),)


class Label(Base):
    """A label administrators define and agents put on conversations."""

    __tablename__ = "label"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    color: Mapped[str] = mapped_column(String(16))  # one of chat.labels.PALETTE
    created_at: Mapped[datetime]


class ConversationLabel(Base):
    __tablename__ = "conversation_label"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"), primary_key=True, index=True)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    added_at: Mapped[datetime]



# -- attachments, transcripts and ratings (issue 8, migration 0007) ----------------------------
class Attachment(Base):
    """An image or PDF sent in a chat. Its bytes are in the file store
    (store/files.py) under ``storage_name``; ``public_id`` (256 random bits)
    names it in URLs. ``filename`` is sanitised and only ever displayed."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int | None] = mapped_column(Integer)  # the chat event that shows it
    uploader: Mapped[str] = mapped_column(String(16))  # visitor | agent
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)


# The attachments' bytes (issue 20, migration 0022): a table of their own, so
# that reading attachment rows (lists, exports, erasure's selection) never loads
# a file. Keyed by ``attachment.storage_name`` (and ``email_reply_file.storage_name``:
# the files of replies by email share the store); store/files.py is its only user.
AttachmentBlob = Table(
    "attachment_blob", Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


class TranscriptRequest(Base):
    """A transcript sent by email: the address typed in becomes part of the
    register (found, exported and erased with the conversation)."""

    __tablename__ = "transcript_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    requested_by: Mapped[str] = mapped_column(String(16))  # visitor | agent
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="SET NULL"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


# -- the erasure ledger (privacy/ledger.py, docs/privacy.md "Backups that forget") ----------------
class ErasureLedger(Base):
    """One erased record or identifier, as a keyed hash (no personal data):
    what ``jutella restore`` erases again in an older backup. ``batch`` names
    the erasure it belongs to; ``key_id`` which key made ``digest``."""

    __tablename__ = "erasure_ledger"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # conversation | offline_message | email | visitor | address
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    erased_at: Mapped[datetime] = mapped_column(index=True)


# -- the sites that embed the widget (chat/sites.py, docs/sites.md) ------------------------------
class Site(Base):
    """A site allowed to embed the widget, added by an admin in the console's
    Embed page. ``origin`` is ``scheme://host[:port]``, lower-case. A later
    issue adds per-site profiles (greeting, department, colours) to this row."""

    __tablename__ = "site"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    origin: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]


# -- the pre-chat form per site (chat/prechat.py, docs/prechat.md, migration 0018) -------------------
class PrechatForm(Base):
    """A site's pre-chat form: each field off, optional or required, and the
    topics offered (``[{"key", "labels": {"en", "fi", "sv"}, "department_id"}]``).
    ``origin`` is a site's origin as chat/sites.py writes it, or '' for the
    default of every site without its own row."""

    __tablename__ = "prechat_form"

    origin: Mapped[str] = mapped_column(String(300), primary_key=True)
    name_mode: Mapped[str] = mapped_column(String(8), default="off")
    email_mode: Mapped[str] = mapped_column(String(8), default="off")
    topic_mode: Mapped[str] = mapped_column(String(8), default="off")
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class SiteProfile(Base):
    """How the widget looks and greets on a site (docs/sites.md): one row per
    site with a profile of its own (key ``site:<id>``) and one for the default
    (key ``default``, ``site_id`` NULL) used by the setting's origins and by
    sites without their own. An empty field falls back to the default's, and
    the default's to the built-in look and texts. ``texts``: {"launcher" |
    "header" | "greeting" | "offline": {"fi" | "en" | "sv": text}};
    ``departments``: the department ids offered (empty: all). ``logo``: a PNG
    re-encoded in the upload pool (chat/filework.py ``logo``), served at
    /widget/logo/<key>?v=<logo_hash>."""

    __tablename__ = "site_profile"

    key: Mapped[str] = mapped_column(String(24), primary_key=True)  # "default" or "site:<id>"
    site_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("site.id", ondelete="CASCADE"), unique=True)
    colour: Mapped[str | None] = mapped_column(String(7))
    position: Mapped[str | None] = mapped_column(String(8))  # "right" | "left"
    # outside the hours: "form" (the offline form) | "hide" (no launcher); NULL: the default's (migration 0023)
    when_closed: Mapped[str | None] = mapped_column(String(8))
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    departments: Mapped[list[Any]] = mapped_column(JSON)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


# -- email replies back into the thread (chat/email_replies.py, docs/mail.md "Replies by email", migration 0021) --
class ReplyToken(Base):
    """The reply address ``reply+TOKEN@<reply_domain>`` of one mail jutella
    sent (an answer to an offline message, a transcript): the SHA-256 of the
    token, the thread a reply to it joins (the offline message; a transcript's
    conversation until its first reply makes an offline message of it), the
    address the mail went to (a reply from another one is flagged) and when it
    stops being accepted. Goes with its thread (erasure, retention)."""

    __tablename__ = "reply_token"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the token
    offline_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("offline_message.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"),
                                                        index=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class EmailReply(Base):
    """A visitor's reply by email, received over LMTP: its new text (quoted
    history removed), who sent it and whether that differs from the thread's
    address, and the attachments refused (name and reason)."""

    __tablename__ = "email_reply"
    __table_args__ = (UniqueConstraint("offline_message_id", "message_id", name="uq_email_reply_message_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offline_message_id: Mapped[int] = mapped_column(ForeignKey("offline_message.id", ondelete="CASCADE"), index=True)
    from_addr: Mapped[str] = mapped_column(String(320), index=True)
    from_name: Mapped[str | None] = mapped_column(String(200))
    sender_differs: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)
    refused: Mapped[list[Any]] = mapped_column(JSON, default=list)
    message_id: Mapped[str | None] = mapped_column(String(200))  # the mail's Message-ID: a redelivery is one reply
    created_at: Mapped[datetime]


class EmailReplyFile(Base):
    """An attachment of an email reply that passed the upload checks; its
    bytes are in the file store (store/files.py) beside the chat's
    attachments, under ``storage_name``."""

    __tablename__ = "email_reply_file"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    email_reply_id: Mapped[int] = mapped_column(ForeignKey("email_reply.id", ondelete="CASCADE"), index=True)
    offline_message_id: Mapped[int] = mapped_column(ForeignKey("offline_message.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


# -- reports: daily aggregates without personal data (chat/reports.py, docs/reports.md, migration 0016) --
# Histogram buckets of a time (time to first answer, chat duration): bucket i holds
# the values up to REPORT_BOUNDS[i] seconds (the last one: over an hour).
REPORT_BOUNDS = (15, 30, 60, 120, 300, 600, 1200, 3600)
REPORT_BUCKETS = len(REPORT_BOUNDS) + 1


def _counts(prefix: str, n: int) -> list[Column]:
    return [Column(f"{prefix}{i}", Integer, nullable=False, default=0, server_default=text("0")) for i in range(n)]


# One row per cell: (day in the register's time zone, hour of day, site, department). Counts
# only: no id of a person or a conversation, no text. site_id and department_id are plain
# numbers, not foreign keys: the aggregates outlive sites and departments too.
ReportDaily = Table(
    "report_daily", Base.metadata,
    Column("id", BigId, primary_key=True),
    Column("day", Date, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("site_id", Integer, nullable=True),
    Column("department_id", Integer, nullable=True),
    *[Column(name, Integer, nullable=False, default=0, server_default=text("0"))
      for name in ("chats", "missed", "offline_messages", "messages")],
    *[Column(f"rating_{i}", Integer, nullable=False, default=0, server_default=text("0")) for i in range(1, 6)],
    *_counts("first_answer_", REPORT_BUCKETS),
    *_counts("duration_", REPORT_BUCKETS),
)
Index("uq_report_daily_cell", ReportDaily.c.day, ReportDaily.c.hour, func.coalesce(ReportDaily.c.site_id, 0),
      func.coalesce(ReportDaily.c.department_id, 0), unique=True)

# Per-agent figures (admin only; off with the setting reports_per_agent): staff data, which
# goes with the account.
ReportAgentDaily = Table(
    "report_agent_daily", Base.metadata,
    Column("id", BigId, primary_key=True),
    Column("day", Date, nullable=False),
    Column("agent_id", BigId, ForeignKey("staff_account.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("chats_answered", Integer, nullable=False, default=0, server_default=text("0")),
    *_counts("first_answer_", REPORT_BUCKETS),
    UniqueConstraint("day", "agent_id", name="uq_report_agent_day"),
)



# -- API tokens (accounts/apitokens.py, docs/api.md, migration 0019) ------------------------------
class ApiToken(Base):
    """A bearer token for the ``/api/v1/`` routes of its scopes (accounts/scopes.py).
    Only the SHA-256 of the token is kept (``token_hash``): a copy of the
    database hands out no working token. ``created_by`` NULL: made by the
    operator on the command line; otherwise the token acts as that account,
    narrowed to its scopes, and goes with it."""

    __tablename__ = "api_token"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


# -- webhooks (mail/webhooks.py, docs/webhooks.md, migration 0020) -------------------------------
class WebHook(Base):
    """A receiver an admin added: where events are POSTed, signed with
    ``secret`` (made by jutella, shown to admins). ``events``: the event names
    it gets; ``personal``: which personal fields (``name``, ``email``,
    ``text``) its payloads carry; none: ids, site, department and times only.
    A hook with personal fields is a recipient in the notice and the record."""

    __tablename__ = "webhook"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[Any]] = mapped_column(JSON)
    personal: Mapped[list[Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event for one hook: a job of the durable queue, written in the
    transaction of the change it tells of. ``delivery_id`` is stable across
    attempts and redeliveries (``X-Jutella-Delivery``; receivers dedupe by it);
    ``body`` is the exact JSON sent each time. queued -> delivered, or failed
    when ``expires_at`` passes (24 h of retries). Goes with its conversation or
    offline message (erasure, retention) and with its hook."""

    __tablename__ = "webhook_delivery"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(String(300))  # incl. a short snippet of the answer
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"),
                                                        index=True)
    offline_message_id: Mapped[int | None] = mapped_column(ForeignKey("offline_message.id", ondelete="CASCADE"),
                                                           index=True)


# Ids are never given twice (issue 16): an erased person's conversation,
# visitor or message id must not come back on someone else while audit rows
# still name it. PostgreSQL's sequences never reuse; on SQLite these tables are
# AUTOINCREMENT (migration 0009 rebuilt them; keep the two lists equal).
NEVER_REUSED_IDS = ("staff_account", "recovery_code", "audit_log", "visitor", "conversation", "chat_event",
                    "offline_message", "offline_reply", "mail_outbox", "subject_flag", "subject_request", "department",
                    "canned_response", "label", "attachment", "transcript_request")
for _name in NEVER_REUSED_IDS:
    Base.metadata.tables[_name].dialect_kwargs["sqlite_autoincrement"] = True


# -- single sign-on (accounts/oidc.py, docs/sso.md, migration 0024) -----------------------------
class OidcIdentity(Base):
    """A staff account's identity at the OpenID Connect provider: the
    issuer and its ``sub`` (never reassigned by the provider, unlike an email
    address). ``disabled_by_sso``: jutella disabled the account because the
    provider's groups no longer map it; a later sign-in that maps it again
    enables it (an account an administrator disabled stays disabled)."""

    __tablename__ = "oidc_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_oidc_identity_issuer_subject"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]
    disabled_by_sso: Mapped[bool] = mapped_column(Boolean, default=False)


class OidcLogin(Base):
    """A single sign-on under way, for at most ten minutes: the SHA-256 of
    the ``state`` sent to the provider, the SHA-256 of the random cookie that
    ties it to the browser that started it, the ``nonce`` and the PKCE
    ``code_verifier``. ``stage`` ``sent``: waiting for the provider's answer;
    ``totp``: the provider answered for ``account_id``, whose roles need
    jutella's own two-factor code before a session opens."""

    __tablename__ = "oidc_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


# whether an account signs in through the identity provider (it has an identity there): read with
# the account, one indexed EXISTS (the console's account lists show it; docs/sso.md)
StaffAccount.sso = column_property(  # type: ignore[attr-defined]
    exists().where(OidcIdentity.account_id == StaffAccount.id).correlate_except(OidcIdentity))
