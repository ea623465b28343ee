"""API tokens (docs/api.md): made, listed and revoked here, and checked on
every use by :func:`use` (called by accounts/guard.py ``authorize_token``, the
bearer half of the one guard).

A token is ``jut_`` and 43 URL-safe characters (256 random bits); the prefix
lets secret scanners find a leaked one. It is shown once, when made; the
database keeps only its SHA-256 (``accounts/tokens.py`` ``hash_token``, as
for sessions: a fast hash is right for a high-entropy secret), looked up by
that hash and compared again in constant time. No token is ever logged or
written into an audit row; rows name the token by its id.

Who a token acts as:

* made in the console by an administrator: as that account, live, narrowed
  to the token's scopes. The account must hold, at creation, a role that
  carries each scope (accounts/scopes.py), and at each use the role the
  route asks for; the ``privacy`` role never comes along (no token sees a
  person whose processing is restricted). When the account is disabled the
  token stops working (401) until it is enabled again; when the account
  goes, its tokens go with it.
* made on the command line by the operator (``created_by`` NULL): as an
  administrator and agent without the privacy role (accounts/scopes.py
  ``OPERATOR_ROLES``), narrowed to its scopes; it has no account id (audit
  rows it causes have no actor, and name the token).

Nothing is cached: each request reads the token row, so a revocation, an
expiry or a disabled creator stops the very next request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from jutella.runtime import Runtime
from jutella.store.models import ApiToken, StaffAccount, StaffRole

from . import audit
from .errors import AccountError
from .roles import PRIVACY
from .scopes import OPERATOR_ROLES, ScopeError, check_scopes
from .tokens import hash_token

PREFIX = "jut_"
MAX_NAME = 100
MAX_DAYS = 3650
OPERATOR_ID = 0  # the account id an operator's token acts with: no account (audit rows: no actor)

INVALID = "token_invalid"
REVOKED = "token_revoked"
EXPIRED = "token_expired"
INACTIVE = "token_inactive"
SCOPE = "token_scope"


def new_secret() -> tuple[str, str]:
    """A new token and the hash the database keeps."""
    token = PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX) and 20 <= len(value) <= 100 and value.isascii()


def clean_token_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise AccountError("token_name_required", "Give the token a name.")
    if len(name) > MAX_NAME:
        raise AccountError("token_name_too_long", "The name is too long (at most 100 characters).")
    return name


@dataclass
class Made:
    token: str  # shown once
    row: ApiToken


async def create(rt: Runtime, *, actor_id: int | None, name: str, scopes: list[str],
                 expires_days: int | None = None) -> Made:
    """Make a token. ``actor_id`` None: the operator (command line); otherwise
    the signed-in member of staff, whose roles must carry every scope."""
    name = clean_token_name(name)
    if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
        raise AccountError("token_expiry_invalid", "The expiry must be between 1 and 3650 days.")
    now = rt.clock.now()
    token, digest = new_secret()
    async with rt.db.transaction() as s:
        creator_roles = None
        if actor_id is not None:
            creator = await s.get(StaffAccount, actor_id)
            if creator is None or creator.disabled_at is not None:
                raise AccountError("account_disabled", "This account is disabled.", 403)
            creator_roles = creator.role_names
        try:
            scopes = check_scopes(scopes, creator_roles)
        except ScopeError as exc:
            if exc.unknown:
                raise AccountError("token_scope_invalid", "There is no scope {scope}.", scope=exc.scope) from None
            raise AccountError("token_scope_not_yours", "Your roles do not carry the scope {scope}, so you cannot "
                               "give it to a token.", 403, scope=exc.scope) from None
        if not scopes:
            raise AccountError("token_scope_required", "Choose at least one scope.")
        row = ApiToken(name=name, token_hash=digest, scopes=scopes, created_by=actor_id, created_at=now,
                       expires_at=now + timedelta(days=expires_days) if expires_days else None)
        s.add(row)
        await s.flush()
        await audit.record(s, now, actor_id=actor_id, action="token.create", target_type="api_token",
                           target_id=row.id, detail={"scopes": scopes, "expires_days": expires_days})
    return Made(token, row)


async def list_tokens(rt: Runtime) -> list[tuple[ApiToken, str | None]]:
    """Every token, newest first, with its creator's name (None: the operator)."""
    async with rt.db.reader() as s:
        rows = (await s.execute(select(ApiToken, StaffAccount.name)
                                .outerjoin(StaffAccount, StaffAccount.id == ApiToken.created_by)
                                .order_by(ApiToken.id.desc()))).all()
    return [(t, n) for t, n in rows]


def state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


async def find(rt: Runtime, ref: str) -> ApiToken:
    """A token by its id or, failing that, its name (the command line's
    ``token revoke NAME|ID``); several active tokens of one name: give the id."""
    async with rt.db.reader() as s:
        if ref.isdigit():
            row = await s.get(ApiToken, int(ref))
            if row is not None:
                return row
        rows = list((await s.execute(select(ApiToken).where(ApiToken.name == " ".join(ref.split()))
                                     .order_by(ApiToken.id))).scalars())
    live = [r for r in rows if r.revoked_at is None] or rows
    if not live:
        raise AccountError("token_not_found", "No such token.", 404)
    if len(live) > 1:
        raise AccountError("token_ambiguous", "Several tokens have this name; give the id instead.", 409)
    return live[0]


async def revoke(rt: Runtime, *, actor_id: int | None, token_id: int) -> ApiToken:
    """Revoke at once: the next request with the token is refused (401)."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await s.get(ApiToken, token_id)
        if row is None:
            raise AccountError("token_not_found", "No such token.", 404)
        if row.revoked_at is None:
            row.revoked_at = now
            await audit.record(s, now, actor_id=actor_id, action="token.revoke", target_type="api_token",
                               target_id=row.id)
    return row


# -- use ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bearer:
    """A token allowed in: who it acts as, with which roles."""

    token_id: int
    name: str
    account: StaffAccount  # the creator, or a transient stand-in (id 0) for an operator's token
    roles: frozenset[str]


def _operator(row: ApiToken) -> StaffAccount:
    return StaffAccount(id=OPERATOR_ID, email="", name=row.name, password_hash=None, created_at=row.created_at,
                        totp_enabled=False, roles=[StaffRole(role=r) for r in OPERATOR_ROLES])


async def use(rt: Runtime, token: str, *, scope: str | None, roles: tuple[str, ...], route: str) -> Bearer:
    """The one check of a bearer token, on every request: 401 for an unknown,
    revoked or expired token or a disabled creator; 403 (``token_scope``)
    when the route needs a scope the token lacks (or names none: no token
    may use it); 403 (``forbidden``) when the roles it acts with do not
    include one the route asks for. Every use of a known token writes an
    audit row (``token.use``, or ``token.refused`` with the reason) and its
    last use; refusals of unknown tokens write nothing."""
    now = rt.clock.now()
    if not looks_like_token(token):
        raise AccountError(INVALID, "This API token is not valid.", 401)
    digest = hash_token(token)
    async with rt.db.reader() as s:
        row = (await s.execute(select(ApiToken).where(ApiToken.token_hash == digest))).scalar_one_or_none()
        if row is None or not secrets.compare_digest(row.token_hash.encode(), digest.encode()):
            raise AccountError(INVALID, "This API token is not valid.", 401)
        creator = await s.get(StaffAccount, row.created_by) if row.created_by is not None else None
    refusal: AccountError | None = None
    if row.revoked_at is not None:
        refusal = AccountError(REVOKED, "This API token has been revoked.", 401)
    elif row.expires_at is not None and row.expires_at <= now:
        refusal = AccountError(EXPIRED, "This API token has expired.", 401)
    elif row.created_by is not None and (creator is None or creator.disabled_at is not None):
        refusal = AccountError(INACTIVE, "The account that made this API token is disabled.", 401)
    account = creator if creator is not None else _operator(row)
    acting = frozenset(account.role_names) - {PRIVACY}
    if refusal is None and (scope is None or scope not in row.scopes):
        refusal = AccountError(SCOPE, "This API token may not be used here: it lacks the scope this needs.", 403)
    elif refusal is None and roles and not set(roles) & acting:
        refusal = AccountError("forbidden", "Your account does not have the role needed for this.", 403)
    async with rt.db.transaction() as s:
        live = await s.get(ApiToken, row.id)
        if live is not None and refusal is None:
            live.last_used_at = now
        detail: dict[str, object] = {"route": route}
        if refusal is not None:
            detail["reason"] = refusal.code
        await audit.record(s, now, actor_id=row.created_by, action="token.refused" if refusal else "token.use",
                           target_type="api_token", target_id=row.id, detail=detail)
    if refusal is not None:
        raise refusal
    return Bearer(row.id, row.name, account, acting)
