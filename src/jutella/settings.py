"""Configuration: ``JUTELLA_*`` environment variables and the TOML file named by
``JUTELLA_CONFIG``.

Environment variables win over the TOML file; the file's keys are the setting
names without the prefix (``port = 8000``), plus the ``[register]`` and
``[retention]`` tables. A wrong value raises :class:`SettingsError` with one line
that names the setting, and start-up stops there.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from jutella.clientaddr import Network, parse_networks


# an object store's prefix (JUTELLA_S3_PREFIX): empty, or folders of safe names, each ending in "/"
S3_PREFIX = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}/){0,8}")


class SettingsError(Exception):
    """A configuration value is wrong; the message is one line naming it."""


class Address(BaseModel):
    name: str
    street: str = ""
    postcode: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""


class Processor(BaseModel):
    """A recipient of the register's data: a processor working for the
    controller (``[[register.processors]]``, docs/privacy.md)."""

    name: str
    # hosting: runs the server and its database; mail: the SMTP relay that
    # carries replies and transcripts; other: described in ``service``
    kind: Literal["hosting", "mail", "other"] = "other"
    service: str = ""  # what they do, in the register's words (shown as is in every language)
    location: str = ""  # where the data is (a country), shown after the name


class MarketingSettings(BaseModel):
    """Marketing contacts with consent (``[register.marketing]``): off by
    default. When on, the widget's email form shows an unticked consent box
    with ``consent_*`` as its wording; only people who tick it are in
    ``contacts.csv``, with the wording's ``consent_version`` and the time
    stored. Change the version whenever the wording changes."""

    enabled: bool = False
    consent_version: str = Field("1", min_length=1, max_length=32)
    consent_fi: str = "Saa lähettää minulle sähköpostilla tietoa palveluista ja tapahtumista."
    consent_en: str = "You may send me information about services and events by email."
    consent_sv: str = "Ni får skicka mig information om tjänster och evenemang per e-post."
    purpose_fi: str = "Tiedottaminen palveluista ja tapahtumista sähköpostilla niille, jotka ovat antaneet siihen " \
                      "suostumuksensa."
    purpose_en: str = "Sending information about services and events by email to those who have consented to it."
    purpose_sv: str = "Information om tjänster och evenemang per e-post till dem som har samtyckt till det."


class RegisterSettings(BaseModel):
    """The register's own details. Defaults reproduce the seed register notice."""

    controller: Address = Address(
        name="Jyväskylän Ammattikorkeakoulun Opiskelijakunta JAMKO",
        street="Rajakatu 35",
        postcode="40200",
        city="Jyväskylä",
        phone="+358 50 3361 385",
    )
    contact: Address = Address(
        name="Hallituksen puheenjohtaja / Chair of the Board",
        street="Rajakatu 35",
        postcode="40200",
        city="Jyväskylä",
        phone="+358 44 3211 500",
        email="puheenjohtaja@jamko.fi",
    )
    name_fi: str = "JAMKO Online -palvelun live-chatin asiakasrekisteri"
    name_en: str = "Customer register of the JAMKO Online live chat"
    purpose_fi: str = "Henkilötietoja käytetään JAMKO Online -palvelun asiakkaiden palvelemiseksi paremmin."
    purpose_en: str = "Personal data is used to give the customers of the JAMKO Online service better service."
    legal_basis_fi: str = ("Rekisterinpitäjän oikeutettu etu (EU:n yleinen tietosuoja-asetus, 6 artiklan 1 kohdan "
                           "f alakohta): asiakkaiden kysymyksiin vastaaminen ja palvelun tarjoaminen.")
    legal_basis_en: str = ("The controller's legitimate interest (GDPR Article 6(1)(f)): answering the questions "
                           "customers ask and providing the service.")
    legal_basis_sv: str = ("Den personuppgiftsansvariges berättigade intresse (artikel 6.1 f i dataskyddsförordningen): "
                           "att besvara kundernas frågor och tillhandahålla tjänsten.")
    name_sv: str = "Kundregistret för JAMKO Online-tjänstens livechatt"
    purpose_sv: str = "Personuppgifterna används för att ge kunderna i JAMKO Online-tjänsten bättre service."
    transfers_outside_eea: bool = False
    # -- the notice's completeness (issue 16, docs/privacy.md) --
    # the data-protection officer, if one is designated (Article 37); unset: the notice names none
    dpo: Address | None = None
    # processors that receive data (hosting provider, SMTP relay, ...); empty: none
    processors: list[Processor] = []
    marketing: MarketingSettings = MarketingSettings()
    # the notice's and the article 30 record's version and date: change them when you change [register]
    version: str = Field("2", min_length=1, max_length=32)
    updated: date = date(2026, 12, 6)


class RetentionSettings(BaseModel):
    """Retention periods in days, per kind of record."""

    chat_days: int = Field(365, ge=1)
    offline_days: int = Field(365, ge=1)
    metadata_days: int = Field(90, ge=1)
    audit_days: int = Field(730, ge=1)
    # how long a backup (`jutella backup`) is kept before the operator deletes it; stated in the
    # notice, and how long the erasure ledger keeps what restore must erase again
    backups_days: int = Field(30, ge=1)


class OidcGroup(BaseModel):
    """What one group of the identity provider gives (``JUTELLA_OIDC_GROUPS``,
    docs/sso.md): jutella roles and departments (by name). A person gets the
    union over every group of theirs that is listed; departments count only
    for the agent role."""

    model_config = {"extra": "forbid"}

    roles: list[Literal["admin", "agent", "privacy"]] = []
    departments: list[str] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JUTELLA_", extra="ignore", case_sensitive=False, validate_default=True,
        populate_by_name=True
    )

    data_dir: Path = Path("./jutella-data")
    database_url: str | None = None
    # SQLite: how long a write waits for another process's write lock (a
    # backup, a CLI command) before it is refused with a clear "busy" error
    sqlite_busy_timeout_ms: int = Field(10_000, ge=0, le=600_000)
    # PostgreSQL: how long to wait for a connection before a request is
    # refused (503) and /healthz says "unavailable"
    database_timeout_seconds: float = Field(5.0, gt=0, le=120)
    # /healthz says "degraded" (mail: "delayed") when a queued mail has waited this long
    mail_delay_alert_minutes: int = Field(15, ge=1)
    redis_url: str | None = None
    redis_prefix: str = Field("jutella", pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # several installations on one Redis
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # the worker processes `jutella serve --workers N` runs on this host; serve sets it for its
    # workers (PostgreSQL's write batches in flight are shared among them: store/db.py batches_in_flight)
    host_workers: int = Field(1, ge=1, le=1024)
    public_url: str | None = None
    allowed_origins: Annotated[list[str], NoDecode] = []

    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_reply_to: str | None = None  # Reply-To of answers sent to visitors (default: the From address)
    # replies by email back into the thread (chat/email_replies.py, docs/mail.md "Replies by email"):
    # where jutella receives them over LMTP ("host:port"; unset: off) and the domain of the
    # per-thread reply addresses reply+TOKEN@<reply_domain> (unset: mails carry smtp_reply_to)
    lmtp_listen: str | None = None
    reply_domain: str | None = None
    offline_notify_to: str | None = None  # told of each new offline message (no personal data in that mail)
    offline_wait_seconds: int = Field(180, ge=10)  # a waiting chat not accepted this long offers the email form
    # No mail relay (docs/security.md "No mail relay", mail/limits.py): the
    # widget's email form and visitor-asked transcript mails, per client
    # address an hour first, then for everyone together an hour; a global cap
    # reached turns /healthz "degraded" and writes one log line
    offline_per_client_hour: int = Field(6, ge=1)
    offline_global_hour: int = Field(300, ge=1)
    transcript_email_per_client_hour: int = Field(3, ge=1)
    transcript_email_global_hour: int = Field(100, ge=1)

    session_idle_minutes: int = Field(30, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    setup_link_hours: int = Field(24, ge=1)
    invitation_hours: int = Field(72, ge=1)
    login_max_failures: int = Field(10, ge=1)
    login_window_minutes: int = Field(15, ge=1)
    require_totp: bool = False
    # For tests only: "fast-for-tests" hashes staff passwords with argon2id at
    # 1 pass over 8 KiB instead of 3 over 64 MiB; such hashes are cheap to guess
    # (accounts/passwords.py, docs/configuration.md).
    password_hash_profile: Literal["standard", "fast-for-tests"] = "standard"
    chat_idle_close_minutes: int = Field(30, ge=1)  # an open conversation with no activity this long is closed
    # agents see a returning browser's earlier chats beside the open one (chat/reads.py);
    # false: they do not, and the privacy notice says so
    returning_visitor_history: bool = True
    auto_assign: bool = False  # give new chats to the least busy online agent instead of the shared queue
    # departments (docs/departments.md)
    widget_department_choice: bool = True  # the widget offers a choice when more than one department is online
    # opening hours (docs/hours.md), wall-clock times in time_zone: whether agents online
    # outside the hours still get chats (false) or not (true)
    hours_strict: bool = True
    max_concurrent_chats: int = Field(5, ge=0)  # active chats per agent (0 = no limit); staff_account.max_chats overrides
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # the register's time zone: times in transcripts, mails and the access copy (i18n.local_time),
    # and the opening hours (docs/hours.md)
    time_zone: str = "Europe/Helsinki"
    # per-agent figures in the reports (chats answered, first-answer times), admins only; false:
    # neither written nor shown (docs/reports.md)
    reports_per_agent: bool = True
    # webhooks (mail/webhooks.py, docs/webhooks.md): hooks may point at private, loopback,
    # link-local and other non-public addresses, and use plain http (a receiver inside
    # your own network; the tests); off: public https addresses only
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)  # one delivery attempt
    # single sign-on with OpenID Connect (accounts/oidc.py, docs/sso.md); no issuer: local accounts only
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"  # asked of the provider (space-separated; openid always)
    oidc_groups_claim: str = Field("groups", min_length=1, max_length=100)  # the claim listing the person's groups
    # provider group -> roles and departments; a person none of whose groups is listed here gets no account
    oidc_groups: dict[str, OidcGroup] = {}
    # the ID token's amr values that count as two-factor sign-in at the provider (RFC 8176), and acr values
    # that do; the admin and privacy roles need one of them, or jutella's own code (docs/sso.md)
    oidc_mfa_amr: Annotated[list[str], NoDecode] = ["mfa", "otp", "hwk", "sc"]
    oidc_mfa_acr: Annotated[list[str], NoDecode] = []
    # the local account that may still sign in with a password when sso_only is on
    oidc_emergency_admin: str | None = None
    oidc_sso_only: bool = False  # password sign-in refused for everyone but oidc_emergency_admin
    # abuse limits (0 = no limit); counters live in memory, keyed by HMACs
    max_connections_per_client: int = Field(100, ge=0)  # open widget sockets from one address
    max_messages_per_minute: int = Field(30, ge=0)  # one visitor's messages
    max_conversations_per_hour: int = Field(10, ge=0)  # conversations one browser may start
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024)  # one uploaded file (images, PDFs)
    # reverse proxies whose X-Forwarded-For is believed (clientaddr.py); empty: none
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    # slow clients (realtime/slowclients.py): a request's headers must arrive within this many
    # seconds, and at most this many connections from one address may be waiting for theirs (0 = no cap)
    request_header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    max_waiting_connections_per_address: int = Field(50, ge=0)
    # shared throttles (docs/security.md "Throttles that cannot be raced"): new
    # conversations an hour from one client address (many visitors may share one)
    max_conversations_per_client: int = Field(30, ge=0)
    # the HMAC secret of throttle keys when workers on several hosts share one
    # Redis; by default <data_dir>/throttle.key, made on first start
    throttle_secret: SecretStr | None = None
    # the audit log's HMAC key (docs/security.md, "The audit log"); unset: the
    # file audit.key in the data dir, made on first use. At least 32 characters.
    audit_key: SecretStr | None = None
    # CPU-heavy work off the event loop (jutella/cpu.py, docs/security.md "CPU-heavy requests"):
    # workers and queue places of each pool; a job finding both full is refused (503, Retry-After)
    password_workers: int = Field(2, ge=1, le=64)  # threads hashing and verifying passwords
    password_queue: int = Field(16, ge=0, le=10_000)
    upload_workers: int = Field(1, ge=1, le=64)  # processes decoding and re-encoding images, scanning PDFs
    upload_queue: int = Field(8, ge=0, le=10_000)  # each waiting upload holds its bytes (10 MiB at most)
    max_uploads_per_client: int = Field(100, ge=0)  # visitors' uploads from one address per 10 minutes
    # GET /metrics answers loopback clients, and others that send this as
    # "Authorization: Bearer ..." (unset: loopback only); web/pages.py
    metrics_token: SecretStr | None = None
    # the key of `jutella backup` / `jutella restore` (privacy/backup.py); or --key-file. Keep it apart
    # from the backups. At least 32 characters (`jutella backup --make-key FILE` makes one).
    backup_key: SecretStr | None = None

    # where the attachments' bytes are (store/files.py, docs/attachments.md "Where the bytes are"):
    # "database" (the default: every host serves every file, backups hold them) or "s3", an
    # S3-compatible object store (store/s3files.py; needs the extra jutella[s3], i.e. boto3)
    file_store: Literal["database", "s3"] = "database"
    s3_endpoint_url: str | None = None  # e.g. https://minio.example.org:9000; unset: AWS S3 of s3_region
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None  # unset: boto3's own chain (AWS_* variables, an instance's role)
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""  # the objects' names begin with it: "" or folders ending in "/", e.g. "jutella/"
    s3_timeout_seconds: float = Field(10.0, gt=0, le=120)  # connecting, and each read, of one request

    # ``register`` in the TOML file; named ``notice`` here because BaseSettings
    # has a ``register`` attribute of its own.
    notice: RegisterSettings = Field(RegisterSettings(), alias="register")
    retention: RetentionSettings = RetentionSettings()

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            out = []
            for origin in value:
                parts = urlsplit(str(origin))
                if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                    raise ValueError(f"{origin!r} is not an origin like https://example.org")
                out.append(f"{parts.scheme}://{parts.netloc}".lower())
            return out
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: Any) -> Any:
        if isinstance(value, (str, list, tuple)):
            return parse_networks(value)
    @field_validator("audit_key", "backup_key")
    @classmethod
    def _check_audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError("must be at least 32 characters (e.g. the output of `openssl rand -hex 32`)")
        return value

    @field_validator("lmtp_listen")
    @classmethod
    def _check_lmtp_listen(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port like 127.0.0.1:2424")
        return value.strip()

    @field_validator("reply_domain")
    @classmethod
    def _check_reply_domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower().rstrip(".")
        try:
            ascii_domain = value.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{value!r} is not a domain like reply.example.org") from None
        labels = ascii_domain.split(".")
        if len(labels) < 2 or not all(label and len(label) <= 63 and label.replace("-", "").isalnum()
                                      for label in labels):
            raise ValueError(f"{value!r} is not a domain like reply.example.org")
        return ascii_domain

    @field_validator("oidc_issuer")
    @classmethod
    def _check_oidc_issuer(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if not parts.netloc or parts.query or parts.fragment or not (
                parts.scheme == "https" or (parts.scheme == "http" and loopback)):
            raise ValueError("must be the provider's https:// URL, like https://id.example.org/realms/staff")
        return value

    @field_validator("oidc_mfa_amr", "oidc_mfa_acr", mode="before")
    @classmethod
    def _split_values(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oidc_emergency_admin")
    @classmethod
    def _check_emergency_admin(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        local, at, domain = value.strip().rpartition("@")
        if not at or not local or "." not in domain:
            raise ValueError(f"{value!r} is not an email address")
        return f"{local}@{domain.lower()}"

    @field_validator("oidc_sso_only")
    @classmethod
    def _check_sso_only(cls, value: bool, info: Any) -> bool:
        if value and not info.data.get("oidc_emergency_admin"):
            raise ValueError("needs JUTELLA_OIDC_EMERGENCY_ADMIN, the local administrator who may still "
                             "sign in with a password")
        if value and not info.data.get("oidc_issuer"):
            raise ValueError("needs JUTELLA_OIDC_ISSUER (single sign-on configured)")
        return value

    @field_validator("oidc_client_id")
    @classmethod
    def _check_client_id(cls, value: str | None, info: Any) -> str | None:
        value = value.strip() if value else None
        if info.data.get("oidc_issuer") and not value:
            raise ValueError("needed with JUTELLA_OIDC_ISSUER")
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_s3_endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
            raise ValueError("must be an http:// or https:// URL without credentials in it")
        return value.rstrip("/")

    @field_validator("s3_prefix")
    @classmethod
    def _check_s3_prefix(cls, value: str) -> str:
        if not S3_PREFIX.fullmatch(value or ""):
            raise ValueError("must be empty or folder names of letters, digits, '.', '_' and '-', each ending "
                             "in '/' (e.g. jutella/)")
        return value or ""

    @field_validator("s3_bucket")
    @classmethod
    def _check_s3_bucket(cls, value: str | None, info: Any) -> str | None:
        value = value.strip() if value else None
        if info.data.get("file_store") == "s3" and not value:
            raise ValueError("needed with JUTELLA_FILE_STORE=s3")
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone like Europe/Helsinki") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0]
        if scheme not in ("sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # -- derived values -------------------------------------------------
    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.effective_public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        if url is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'jutella.sqlite3').resolve()}"
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://"):]
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix):]
        return url

    @property
    def oidc_configured(self) -> bool:
        """Single sign-on is on: an issuer and a client id (the secret may be
        empty for a public client)."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file that ``JUTELLA_CONFIG`` names, if any."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = os.environ.get("JUTELLA_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            try:
                with open(path, "rb") as fh:
                    self._data = tomllib.load(fh)
            except FileNotFoundError:
                raise SettingsError(f"setting JUTELLA_CONFIG: no such file: {path}") from None
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"setting JUTELLA_CONFIG: {path} is not valid TOML: {exc}") from None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        known = set(self.settings_cls.model_fields) | {
            f.alias for f in self.settings_cls.model_fields.values() if f.alias
        }
        unknown = sorted(set(self._data) - known)
        if unknown:
            raise SettingsError(f"setting {unknown[0]!r} in {os.environ.get('JUTELLA_CONFIG')}: unknown setting")
        return dict(self._data)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning any validation error into one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        name = loc[0] if loc else "?"
        where = f"JUTELLA_{name.upper()}" if len(loc) == 1 else ".".join(loc) + " (in JUTELLA_CONFIG)"
        msg = err["msg"].removeprefix("Value error, ")
        raise SettingsError(f"setting {where}: {msg}") from None
