"""Every change to staff accounts and sessions goes through one function here.

Each action writes the database in one transaction (audit row included) and,
after the commit, publishes what connected clients must learn (for example
that an account's sessions have ended, so its open WebSockets close at once).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.runtime import Runtime
from jutella.store.access_version import bump_access_version
from jutella.store.models import OneTimeToken, RecoveryCode, StaffAccount, StaffRole, StaffSession, SystemSetting

from . import attempts, audit
from .errors import AccountError
from .hashing import hash_password, verify_password
from .passwords import check_policy, needs_rehash
from .roles import ADMIN, check_roles
from .tokens import hash_token, new_token

SETUP = "setup"
# The hub event after which an account's open consoles re-check what they may
# see (chat/revocation.py; published here on the account's own channel, since
# accounts/ imports nothing of chat/).
ACCESS_CHANGED = "access_changed"
INVITE = "invite"
TOTP_ISSUER = "jutella"
SESSION_COOKIE = "jutella_session"  # carries the session token: HTTP (web/auth.py) and the console's socket


def normalise_email(email: str) -> str:
    email = email.strip()
    if "@" not in email or len(email) > 320 or any(c.isspace() or ord(c) < 32 for c in email):
        raise AccountError("email_invalid", "Enter a valid email address.")
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise AccountError("email_invalid", "Enter a valid email address.")
    return f"{local}@{domain.lower()}"


def clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise AccountError("name_required", "Enter a name.")
    if len(name) > 200:
        raise AccountError("name_too_long", "The name is too long (at most 200 characters).")
    return name


def _roles(roles: list[str]) -> list[str]:
    try:
        return check_roles(roles)
    except ValueError as exc:
        raise AccountError("role_invalid", str(exc)) from None


# -- reading -----------------------------------------------------------------
async def count_accounts(rt: Runtime) -> int:
    async with rt.db.reader() as s:
        return (await s.execute(select(func.count()).select_from(StaffAccount))).scalar_one()


async def list_accounts(rt: Runtime) -> list[StaffAccount]:
    async with rt.db.reader() as s:
        return list((await s.execute(select(StaffAccount).order_by(StaffAccount.email))).scalars())


async def list_agents(rt: Runtime) -> list[tuple[int, str]]:
    """(id, name) of every account with the agent role, by name: the console's agent filter."""
    async with rt.db.reader() as s:
        return [(i, n) for i, n in (await s.execute(
            select(StaffAccount.id, StaffAccount.name).join(StaffRole, StaffRole.account_id == StaffAccount.id)
            .where(StaffRole.role == "agent").order_by(StaffAccount.name))).all()]


async def get_account(s: AsyncSession, account_id: int) -> StaffAccount:
    account = await s.get(StaffAccount, account_id)
    if account is None:
        raise AccountError("account_not_found", "No such account.", 404)
    return account


async def find_account(s: AsyncSession, email: str) -> StaffAccount | None:
    return (await s.execute(select(StaffAccount).where(StaffAccount.email == email))).scalar_one_or_none()


async def require_totp_for_all(rt: Runtime) -> bool:
    async with rt.db.reader() as s:
        row = await s.get(SystemSetting, "require_totp")
    return bool(row.value.get("value")) if row else rt.settings.require_totp


# -- one-time links ------------------------------------------------------------
def link(rt: Runtime, kind: str, token: str) -> str:
    # The token rides in the fragment: browsers never send it to the server in
    # the request line, so it cannot end up in any access log.
    return f"{rt.settings.effective_public_url}/console/{kind}#token={token}"


async def ensure_setup_link(rt: Runtime) -> str | None:
    """With no staff account yet, make a fresh one-time set-up link (earlier
    unused ones stop working). Returns None once an account exists."""
    now = rt.clock.now()
    token, digest = new_token()
    async with rt.db.transaction() as s:
        if (await s.execute(select(func.count()).select_from(StaffAccount))).scalar_one():
            return None
        await s.execute(delete(OneTimeToken).where(OneTimeToken.kind == SETUP))
        s.add(OneTimeToken(id=digest, kind=SETUP, account_id=None, created_at=now,
                           expires_at=now + timedelta(hours=rt.settings.setup_link_hours)))
    return link(rt, "setup", token)


async def _take_token(s: AsyncSession, rt: Runtime, token: str, kind: str) -> OneTimeToken:
    row = await s.get(OneTimeToken, hash_token(token), with_for_update=True)
    if row is None or row.kind != kind:
        raise AccountError("link_invalid", "This link is not valid. Ask for a new one.", 400)
    if row.used_at is not None:
        raise AccountError("link_used", "This link has already been used. Ask for a new one.", 410)
    if row.expires_at <= rt.clock.now():
        raise AccountError("link_expired", "This link has expired. Ask for a new one.", 410)
    return row


async def check_link(rt: Runtime, token: str, kind: str) -> StaffAccount | None:
    """Validate a link without using it; returns the invited account, if any."""
    async with rt.db.reader() as s:
        row = await _take_token(s, rt, token, kind)
        return await s.get(StaffAccount, row.account_id) if row.account_id else None


async def complete_setup(rt: Runtime, token: str, *, email: str, name: str, password: str) -> SignedIn:
    """The first administrator's account, signed in at once (:func:`open_session`)."""
    email, name = normalise_email(email), clean_name(name)
    check_policy(password, email=email, name=name)
    await check_link(rt, token, SETUP)  # a made-up or used link costs no hash; the write checks again
    pw_hash = await hash_password(rt, password)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await _take_token(s, rt, token, SETUP)
        if (await s.execute(select(func.count()).select_from(StaffAccount))).scalar_one():
            raise AccountError("link_used", "This link has already been used. Ask for a new one.", 410)
        row.used_at = now
        account = StaffAccount(email=email, name=name, password_hash=pw_hash, created_at=now,
                               password_changed_at=now, totp_enabled=False,
                               roles=[StaffRole(role=r) for r in (ADMIN, "agent", "privacy")])
        s.add(account)
        await s.flush()
        await audit.record(s, now, actor_id=account.id, action="account.setup",
                           target_type="account", target_id=account.id, detail={"roles": account.role_names})
        session_token, sess = await open_session(s, now, account, {"second_factor": False, "via": "setup"})
    return SignedIn(session_token, sess, account)


# -- accounts ----------------------------------------------------------------
@dataclass
class Created:
    account: StaffAccount
    invitation_link: str | None
    invitation_mail: int | None = None  # the outbox row of the invitation mail, when one was queued


#: queues the invitation mail inside the account's transaction (mail/invitations.py; accounts/ cannot
#: import mail/): called with (session, account, link), returns the outbox row's id
InvitationMailer = Callable[[AsyncSession, StaffAccount, str], Awaitable[int]]


async def create_account(rt: Runtime, *, actor_id: int | None, email: str, name: str, roles: list[str],
                         password: str | None = None, mailer: InvitationMailer | None = None) -> Created:
    """Create an individual account. Without a password, the new member of
    staff gets an invitation link to choose their own; with a ``mailer``, the
    link is also mailed (queued in the same transaction)."""
    email, name, roles = normalise_email(email), clean_name(name), _roles(roles)
    pw_hash = None
    if password is not None:
        check_policy(password, email=email, name=name)
        async with rt.db.reader() as s:
            if await find_account(s, email):  # before the hash; the write checks again
                raise AccountError("email_taken", "An account with this email already exists.", 409)
        pw_hash = await hash_password(rt, password)
    now = rt.clock.now()
    token = None
    async with rt.db.transaction() as s:
        if await find_account(s, email):
            raise AccountError("email_taken", "An account with this email already exists.", 409)
        account = StaffAccount(email=email, name=name, password_hash=pw_hash, created_at=now,
                               password_changed_at=now if pw_hash else None, totp_enabled=False,
                               roles=[StaffRole(role=r) for r in roles])
        s.add(account)
        await s.flush()
        if pw_hash is None:
            token, digest = new_token()
            s.add(OneTimeToken(id=digest, kind=INVITE, account_id=account.id, created_at=now,
                               expires_at=now + timedelta(hours=rt.settings.invitation_hours)))
        mail_id = await mailer(s, account, link(rt, "invite", token)) if token and mailer else None
        await audit.record(s, now, actor_id=actor_id, action="account.create", target_type="account",
                           target_id=account.id, detail={"roles": roles, "invited": token is not None,
                                                         "mailed": mail_id is not None})
    return Created(account, link(rt, "invite", token) if token else None, mail_id)


async def reinvite(rt: Runtime, *, actor_id: int, account_id: int,
                   mailer: InvitationMailer | None = None) -> Created:
    """A new invitation link (the old one stops working), mailed too with a ``mailer``."""
    now = rt.clock.now()
    token, digest = new_token()
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        if account.password_hash is not None:
            raise AccountError("already_active", "This account has already chosen a password.", 409)
        await s.execute(delete(OneTimeToken).where(OneTimeToken.account_id == account_id,
                                                   OneTimeToken.kind == INVITE))
        s.add(OneTimeToken(id=digest, kind=INVITE, account_id=account_id, created_at=now,
                           expires_at=now + timedelta(hours=rt.settings.invitation_hours)))
        mail_id = await mailer(s, account, link(rt, "invite", token)) if mailer else None
        await audit.record(s, now, actor_id=actor_id, action="account.reinvite", target_type="account",
                           target_id=account_id, detail={"mailed": mail_id is not None})
    return Created(account, link(rt, "invite", token), mail_id)


async def accept_invitation(rt: Runtime, token: str, *, password: str) -> SignedIn:
    """The invited person's password is set and they are signed in at once
    (:func:`open_session`)."""
    # a made-up or used link costs no hash (the write checks again); whose
    # password: it may not hold their name or email
    invited = await check_link(rt, token, INVITE)
    if invited is not None and not password_sign_in_open(rt, invited.email):
        raise AccountError("sso_only", "Sign-in with a password is turned off here. Use single sign-on.", 403)
    check_policy(password, email=invited.email if invited else None, name=invited.name if invited else None)
    pw_hash = await hash_password(rt, password)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await _take_token(s, rt, token, INVITE)
        account = await get_account(s, row.account_id)  # type: ignore[arg-type]
        if account.disabled_at is not None:
            raise AccountError("account_disabled", "This account is disabled.", 403)
        row.used_at = now
        account.password_hash = pw_hash
        account.password_changed_at = now
        await audit.record(s, now, actor_id=account.id, action="account.invitation_accepted",
                           target_type="account", target_id=account.id)
        session_token, sess = await open_session(s, now, account, {"second_factor": bool(account.totp_enabled),
                                                                   "via": "invitation"})
    return SignedIn(session_token, sess, account)


async def update_account(rt: Runtime, *, actor_id: int | None, account_id: int, name: str | None = None,
                         roles: list[str] | None = None, note: dict[str, object] | None = None) -> StaffAccount:
    """Rename, or change the roles (the account's open consoles re-check what
    they may see). ``note``: more for the audit row (``{"sso": True}``: the
    identity provider's groups changed it, accounts/oidc.py)."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        changed: dict[str, object] = {}
        if name is not None and clean_name(name) != account.name:
            account.name = clean_name(name)
            changed["name"] = True
        if roles is not None:
            roles = _roles(roles)
            if ADMIN in account.role_names and ADMIN not in roles:
                await _keep_an_admin(s, account_id)
            if roles != account.role_names:
                account.roles = [StaffRole(role=r) for r in roles]
                changed["roles"] = roles
        if changed:
            await audit.record(s, now, actor_id=actor_id, action="account.update", target_type="account",
                               target_id=account_id, detail={**changed, **(note or {})})
        if "roles" in changed:
            version = await bump_access_version(s)  # last in the transaction (store/access_version.py)
    if "roles" in changed:  # the account's open consoles re-check what they follow (chat/revocation.py)
        await rt.hub.publish(f"account:{account_id}", {"type": ACCESS_CHANGED, "version": version})
    return account


async def _keep_an_admin(s: AsyncSession, account_id: int) -> None:
    others = (await s.execute(
        select(func.count()).select_from(StaffRole).join(StaffAccount)
        .where(StaffRole.role == ADMIN, StaffAccount.id != account_id, StaffAccount.disabled_at.is_(None))
    )).scalar_one()
    if not others:
        raise AccountError("last_admin", "This is the last active administrator; appoint another one first.", 409)


async def set_disabled(rt: Runtime, *, actor_id: int | None, account_id: int, disabled: bool,
                       note: dict[str, object] | None = None) -> StaffAccount:
    """Disable (ending every session at once, open WebSockets included) or
    re-enable. ``note``: more for the audit row (as in :func:`update_account`)."""
    now = rt.clock.now()
    flipped = True
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        if disabled and account.disabled_at is None:
            if ADMIN in account.role_names:
                await _keep_an_admin(s, account_id)
            account.disabled_at = now
            ended = await _end_sessions(s, account_id)
            await audit.record(s, now, actor_id=actor_id, action="account.disable", target_type="account",
                               target_id=account_id, detail={"sessions_ended": ended, **(note or {})})
        elif not disabled and account.disabled_at is not None:
            account.disabled_at = None
            await audit.record(s, now, actor_id=actor_id, action="account.enable", target_type="account",
                               target_id=account_id, detail=note)
        else:
            flipped = False
        if flipped:
            version = await bump_access_version(s)  # last in the transaction (store/access_version.py)
    if disabled:
        await rt.hub.publish(f"account:{account_id}", {"type": "sessions_ended", "keep": None})
    if flipped:
        await rt.hub.publish(f"account:{account_id}", {"type": ACCESS_CHANGED, "version": version})
    return account


async def disable_by_email(rt: Runtime, email: str, *, actor_id: int | None = None) -> StaffAccount:
    async with rt.db.reader() as s:
        account = await find_account(s, normalise_email(email))
    if account is None:
        raise AccountError("account_not_found", "No account with that email.", 404)
    return await set_disabled(rt, actor_id=actor_id, account_id=account.id, disabled=True)


async def _end_sessions(s: AsyncSession, account_id: int, keep: str | None = None) -> int:
    stmt = delete(StaffSession).where(StaffSession.account_id == account_id)
    if keep:
        stmt = stmt.where(StaffSession.id != keep)
    return (await s.execute(stmt)).rowcount or 0


# -- signing in ------------------------------------------------------------------
def password_sign_in_open(rt: Runtime, email: str) -> bool:
    """Whether this account may sign in with its password: always, unless
    single sign-on only is on (``JUTELLA_OIDC_SSO_ONLY``), when only the
    emergency administrator (``JUTELLA_OIDC_EMERGENCY_ADMIN``) may (docs/sso.md)."""
    settings = rt.settings
    return not settings.oidc_sso_only or email == settings.oidc_emergency_admin


@dataclass
class SignedIn:
    token: str
    session: StaffSession
    account: StaffAccount


async def login(rt: Runtime, *, email: str, password: str, totp: str | None, client: str) -> SignedIn:
    # the attempt is counted before the password is checked (accounts/attempts.py)
    async with attempts.guess(rt, email=email, client=client) as attempt:
        now = rt.clock.now()
        try:
            norm = normalise_email(email)
        except AccountError:
            norm = ""
        async with rt.db.reader() as s:
            account = await find_account(s, norm) if norm else None
        ok = await verify_password(rt, account.password_hash if account else None, password)
        reason = None
        if not ok:
            reason = "password"
        elif account is None or account.disabled_at is not None:
            reason = "disabled"
        elif not password_sign_in_open(rt, account.email):
            reason = "sso_only"  # a right password, after the check: the answer tells a guesser nothing
        step = None
        if reason is None and account and account.totp_enabled:
            if not totp:
                raise AccountError("totp_required", "Enter the code from your authenticator app.", 401)
            step = await check_second_factor(rt, account, totp)
            if step is False:
                reason = "totp"
        if reason is not None:
            attempt.failed = reason != "sso_only"
            async with rt.db.transaction() as s:
                await audit.record(s, now, actor_id=account.id if account else None, action="login.failed",
                                   target_type="account" if account else None,
                                   target_id=account.id if account else None, detail={"reason": reason})
            if reason == "disabled":
                raise AccountError("account_disabled", "This account is disabled.", 403)
            if reason == "totp":
                raise AccountError("totp_invalid", "That code is not valid. Try the newest code.", 401)
            if reason == "sso_only":
                raise AccountError("sso_only", "Sign-in with a password is turned off here. Use single sign-on.",
                                   403)
            raise AccountError("login_invalid", "Wrong email or password.", 401)
    if account is None:  # unreachable: reason is set when the account is missing
        raise AccountError("login_invalid", "Wrong email or password.", 401)
    # a hash made with older parameters is made again, in the pool, before the write
    rehashed = (await hash_password(rt, password)
                if account.password_hash and needs_rehash(rt.settings, account.password_hash) else None)
    async with rt.db.transaction() as s:
        acc = await get_account(s, account.id)
        if isinstance(step, int) and not isinstance(step, bool):  # True: a recovery code, no time step
            acc.totp_last_step = step
        if rehashed is not None and acc.password_hash == account.password_hash:
            acc.password_hash = rehashed
        token, sess = await open_session(s, now, account, {"second_factor": bool(account.totp_enabled)})
    return SignedIn(token, sess, account)


async def open_session(s: AsyncSession, now: datetime, account: StaffAccount,
                       detail: dict[str, object], *, needs_totp: bool = False) -> tuple[str, StaffSession]:
    """The one way a staff session begins (sign-in, single sign-on, and right
    after set-up or an accepted invitation): a new random token (the cookie;
    only its hash is stored), its own CSRF token, and a ``login`` audit row,
    in the caller's transaction. ``needs_totp``: signed in without the second
    factor the account's roles need (accounts/oidc.py); only its own
    account's routes answer until two-factor sign-in is on (accounts/guard.py)."""
    token, digest = new_token()
    sess = StaffSession(id=digest, account_id=account.id, csrf_token=secrets.token_urlsafe(32),
                        created_at=now, last_seen_at=now, needs_totp=needs_totp)
    s.add(sess)
    await audit.record(s, now, actor_id=account.id, action="login", target_type="account",
                       target_id=account.id, detail=detail)
    return token, sess


def _verify_totp(account: StaffAccount, code: str, now: datetime) -> int | None:
    """The time step of a valid, not yet used TOTP code (one step of drift
    either way), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6 and account.totp_secret):
        return None
    totp = pyotp.TOTP(account.totp_secret)
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=30 * drift)
        step = totp.timecode(at)
        if secrets.compare_digest(totp.at(at), code) and step > (account.totp_last_step or -1):
            return step
    return None


async def check_second_factor(rt: Runtime, account: StaffAccount, code: str) -> int | bool:
    """A TOTP code (returns its time step, refusing a replay) or an unused
    recovery code (returns True and uses it up). False when neither.
    Opens its own transaction: never call it inside one."""
    code = code.strip().replace(" ", "")
    if code.isdigit():
        step = _verify_totp(account, code, rt.clock.now())
        return False if step is None else step
    digest = hash_token(code.lower())
    async with rt.db.transaction() as s:
        row = (await s.execute(select(RecoveryCode).where(
            RecoveryCode.account_id == account.id, RecoveryCode.code_hash == digest,
            RecoveryCode.used_at.is_(None)))).scalar_one_or_none()
        if row is None:
            return False
        row.used_at = rt.clock.now()
        await audit.record(s, rt.clock.now(), actor_id=account.id, action="totp.recovery_code_used",
                           target_type="account", target_id=account.id)
    return True


async def authenticate(rt: Runtime, token: str | None, *,
                       touch: bool = True) -> tuple[StaffAccount, StaffSession] | None:
    """The account behind a session cookie, or None when it is unknown, ended,
    idle too long, too old, or the account is disabled. ``touch=False``: the
    caller decides first whether the request may use the session at all, then
    calls ``keep_alive`` (accounts/guard.py: a refused CSRF check writes nothing)."""
    if not token or len(token) > 100:
        return None
    now = rt.clock.now()
    digest = hash_token(token)
    async with rt.db.reader() as s:
        sess = await s.get(StaffSession, digest)
        if sess is None:
            return None
        account = await s.get(StaffAccount, sess.account_id)
    idle = timedelta(minutes=rt.settings.session_idle_minutes)
    absolute = timedelta(hours=rt.settings.session_absolute_hours)
    if account is None or account.disabled_at is not None or now - sess.last_seen_at >= idle \
            or now - sess.created_at >= absolute:
        async with rt.db.transaction() as s:
            await s.execute(delete(StaffSession).where(StaffSession.id == digest))
        return None
    if touch:
        await keep_alive(rt, sess)
    return account, sess


async def keep_alive(rt: Runtime, sess: StaffSession) -> None:
    """Record that a session is in use (its idle timeout starts again): one
    write a half-minute, not per request."""
    now = rt.clock.now()
    if now - sess.last_seen_at >= timedelta(seconds=30):
        async with rt.db.transaction() as s:
            live = await s.get(StaffSession, sess.id)
            if live is not None:
                live.last_seen_at = now
        sess.last_seen_at = now


async def touch(rt: Runtime, session_id: str) -> bool:
    """Keep a session alive while its console is in use over a WebSocket.
    Returns False when the session has ended meanwhile."""
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        sess = await s.get(StaffSession, session_id)
        if sess is None:
            return False
        if now - sess.created_at >= timedelta(hours=rt.settings.session_absolute_hours):
            await s.delete(sess)
            return False
        sess.last_seen_at = now
    return True


async def logout(rt: Runtime, session: StaffSession) -> None:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        await s.execute(delete(StaffSession).where(StaffSession.id == session.id))
        await audit.record(s, now, actor_id=session.account_id, action="logout", target_type="account",
                           target_id=session.account_id)
    await rt.hub.publish(f"account:{session.account_id}", {"type": "session_ended", "session": session.id})


REAUTH_THROTTLED = "Too many wrong passwords. Try again in {minutes} minutes."


async def change_password(rt: Runtime, *, account_id: int, session_id: str | None, current: str,
                          new: str, client: str = "-") -> None:
    """Change one's own password; every other session of the account ends.
    A wrong current password spends the account's sign-in budget
    (accounts/attempts.py): a stolen session cannot guess it unthrottled."""
    async with rt.db.reader() as s:
        account = await get_account(s, account_id)
    check_policy(new, email=account.email, name=account.name)
    async with attempts.guess(rt, email=account.email, client=client, message=REAUTH_THROTTLED) as attempt:
        if not await verify_password(rt, account.password_hash, current):
            attempt.failed = True
            raise AccountError("password_wrong", "The current password is wrong.", 400)
    pw_hash = await hash_password(rt, new)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        account.password_hash = pw_hash
        account.password_changed_at = now
        ended = await _end_sessions(s, account_id, keep=session_id)
        await audit.record(s, now, actor_id=account_id, action="account.password_change",
                           target_type="account", target_id=account_id, detail={"sessions_ended": ended})
    await rt.hub.publish(f"account:{account_id}", {"type": "sessions_ended", "keep": session_id})


# -- two-factor ---------------------------------------------------------------------
async def begin_totp(rt: Runtime, *, account_id: int) -> tuple[str, str]:
    """A new secret, kept unconfirmed until a code from it is entered. Returns
    the secret and the otpauth:// URI for the QR code."""
    secret = pyotp.random_base32()
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        if account.totp_enabled:
            raise AccountError("totp_already", "Two-factor sign-in is already on.", 409)
        account.totp_secret = secret
        email = account.email
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)
    return secret, uri


def _recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(10)]


async def confirm_totp(rt: Runtime, *, account_id: int, code: str) -> list[str]:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        if account.totp_enabled:
            raise AccountError("totp_already", "Two-factor sign-in is already on.", 409)
        if not account.totp_secret:
            raise AccountError("totp_not_started", "Start the set-up again.", 400)
        step = _verify_totp(account, code, now)
        if step is None:
            raise AccountError("totp_invalid", "That code is not valid. Try the newest code.", 400)
        account.totp_enabled = True
        account.totp_last_step = step
        codes = _recovery_codes()
        await s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
        for c in codes:
            s.add(RecoveryCode(account_id=account_id, code_hash=hash_token(c)))
        await audit.record(s, now, actor_id=account_id, action="totp.enable", target_type="account",
                           target_id=account_id)
    return codes


async def disable_totp(rt: Runtime, *, actor_id: int, account_id: int, password: str | None,
                       client: str = "-") -> None:
    """Turn two-factor off: one's own (with the password) or, for an admin, a
    colleague's who lost their device."""
    now = rt.clock.now()
    if actor_id == account_id:  # one's own: the password first, counted like a sign-in (accounts/attempts.py)
        async with rt.db.reader() as s:
            account = await get_account(s, account_id)
        async with attempts.guess(rt, email=account.email, client=client, message=REAUTH_THROTTLED) as attempt:
            if not await verify_password(rt, account.password_hash, password or ""):
                attempt.failed = True
                raise AccountError("password_wrong", "The current password is wrong.", 400)
    async with rt.db.transaction() as s:
        account = await get_account(s, account_id)
        account.totp_enabled = False
        account.totp_secret = None
        account.totp_last_step = None
        await s.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
        await audit.record(s, now, actor_id=actor_id, action="totp.disable", target_type="account",
                           target_id=account_id)


async def set_require_totp(rt: Runtime, *, actor_id: int, value: bool) -> None:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        row = await s.get(SystemSetting, "require_totp")
        if row is None:
            s.add(SystemSetting(key="require_totp", value={"value": value}))
        else:
            row.value = {"value": value}
        await audit.record(s, now, actor_id=actor_id, action="settings.require_totp",
                           detail={"value": value})


async def set_language(rt: Runtime, *, account_id: int, language: str) -> None:
    async with rt.db.transaction() as s:
        (await get_account(s, account_id)).language = language


def utcnow_iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None
