"""Single sign-on with OpenID Connect (docs/sso.md).

The authorisation code flow with PKCE (S256), ``state`` and ``nonce``, as a
confidential client of one provider (``JUTELLA_OIDC_ISSUER``), built on
Authlib's protocol pieces: discovery metadata validated by
``authlib.oidc.discovery.OpenIDProviderMetadata``, the authorisation URL by
``prepare_grant_uri``, the token request by ``prepare_token_request`` and
``ClientAuth``, the PKCE challenge by ``create_s256_code_challenge``, and the
ID token's claims by ``authlib.oidc.core.CodeIDToken`` after its signature is
checked against the provider's JWKS with joserfc (Authlib's JOSE library).
The HTTP calls are jutella's own ``httpx.AsyncClient`` (Authlib's httpx
integration is being moved to another package).

1. :func:`begin` stores the sign-in under way (the SHA-256 of ``state``, the
   ``nonce``, the PKCE verifier, the SHA-256 of a random cookie that ties it
   to this browser; ten minutes) and returns the provider's URL.
2. :func:`complete` takes that row once (a replayed or foreign ``state``
   finds nothing), trades the code for tokens, verifies the ID token
   (signature, ``iss``, ``aud``, ``exp``, ``nonce``, ``at_hash``) on the
   CPU pool, and maps the ``groups`` claim onto roles and departments:
   no mapping, no account (and a linked account is disabled); otherwise the
   account is made, or its roles, name and departments are brought in line
   through the same account actions an administrator's change uses, so open
   consoles re-check what they may see (chat/revocation.py).
3. The admin and privacy roles need a second factor: the provider's, when
   the ID token's ``amr`` or ``acr`` asserts one (``JUTELLA_OIDC_MFA_AMR``,
   ``JUTELLA_OIDC_MFA_ACR``); else jutella's own TOTP code, when the account
   has it on (:func:`complete_totp`, the sign-in page's code step); else the
   session opens marked ``needs_totp`` and answers nothing but the account's
   own page until two-factor sign-in is turned on (accounts/guard.py).

Every step writes an audit row naming accounts by id only: ``login`` with
``via: sso``, ``login.failed`` with the reason, ``account.create`` /
``account.update`` / ``account.disable`` / ``account.enable`` with
``sso: true``, ``sso.link`` when an existing account is tied to its
identity.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select, update

from jutella import outbound
from jutella.runtime import Runtime
from jutella.settings import Settings
from jutella.store.models import OidcIdentity, OidcLogin, StaffAccount, StaffRole

from . import actions, attempts, audit
from .errors import AccountError
from .roles import ADMIN, AGENT, PRIVACY, check_roles
from .tokens import hash_token, new_token

log = logging.getLogger("jutella.sso")

COOKIE = "jutella_sso"  # ties a sign-in under way to the browser that started it (web/routes_sso.py)
CALLBACK_PATH = "/console/sso/callback"
LOGIN_MINUTES = 10  # from the start to the provider's answer
TOTP_MINUTES = 5  # from the provider's answer to jutella's own code
CACHE_SECONDS = 3600  # discovery metadata and keys; unknown keys are fetched at once
HTTP_TIMEOUT_SECONDS = 10.0
LEEWAY_SECONDS = 60  # clock skew between jutella and the provider
STARTS_PER_CLIENT = 30  # sign-ins started from one address in ten minutes
STARTS_WINDOW_SECONDS = 600
# asymmetric signatures only: a key the provider publishes, never the client secret, never "none"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SECOND_FACTOR_ROLES = frozenset({ADMIN, PRIVACY})
META_KEY = "oidc:metadata"
KEYS_KEY = "oidc:jwks"

# What the sign-in page says after a refused single sign-on (web/routes_sso.py passes the code in
# the address; only these codes are shown, each with its own English msgid).
REFUSALS: dict[str, str] = {
    "sso_unmapped": "Your account at the identity provider is not in any group that may use jutella. "
                    "Ask your administrator to add you to one.",
    "sso_failed": "Single sign-on did not succeed. Try again.",
    "sso_expired": "The sign-in took too long or was started in another browser. Try again.",
    "sso_unavailable": "The identity provider cannot be reached right now. Try again in a moment.",
    "sso_denied": "The identity provider did not sign you in.",
    "sso_email": "An account with your email address exists, but the identity provider has not confirmed "
                 "that the address is yours. Ask an administrator.",
    "sso_no_email": "The identity provider did not tell jutella your email address. Ask your administrator.",
    "sso_busy": "Too many sign-ins were started from here. Try again in a few minutes.",
    "account_disabled": "This account is disabled.",
    "last_admin": "This is the last active administrator; appoint another one first.",
}

#: Brings an account's department memberships in line with the mapping (chat/departments.py
#: ``set_account_departments``; accounts/ cannot import chat/): called with (rt, account id,
#: department names); names that are no department are left out.
DepartmentSync = Callable[[Runtime, int, list[str]], Awaitable[None]]


class SsoError(AccountError):
    """A refused single sign-on; ``code`` is one of :data:`REFUSALS`."""

    def __init__(self, code: str, status: int = 403):
        super().__init__(code, REFUSALS[code], status)


def configured(settings: Settings) -> bool:
    return settings.oidc_configured


def redirect_uri(rt: Runtime) -> str:
    return f"{rt.settings.effective_public_url}{CALLBACK_PATH}"


# -- the mapping -------------------------------------------------------------------
def resolve(settings: Settings, groups: list[str]) -> tuple[list[str], list[str]]:
    """The roles and department names the person's groups give (the union
    over every listed group); departments only with the agent role."""
    roles: set[str] = set()
    departments: set[str] = set()
    for group in groups:
        entry = settings.oidc_groups.get(group)
        if entry is not None:
            roles.update(entry.roles)
            departments.update(entry.departments)
    if not roles:
        return [], []
    return check_roles(sorted(roles)), sorted(departments) if AGENT in roles else []


@dataclass
class Identity:
    """Who the provider says signed in (the verified ID token, and its
    userinfo when the groups are only there)."""

    subject: str
    email: str | None  # normalised (accounts/actions.py normalise_email); None when missing or unusable
    email_verified: bool
    name: str | None
    groups: list[str]
    amr: list[str] = field(default_factory=list)
    acr: str | None = None


def second_factor_asserted(settings: Settings, identity: Identity) -> bool:
    """The provider says it used a second factor: one of the ``amr`` values
    or the ``acr`` value the settings trust."""
    return bool(set(identity.amr) & set(settings.oidc_mfa_amr)) or (
        identity.acr is not None and identity.acr in settings.oidc_mfa_acr)


# -- talking to the provider -----------------------------------------------------------
async def _get_json(url: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with await outbound.client(HTTP_TIMEOUT_SECONDS) as client:
        response = await client.get(url, headers={"Accept": "application/json", **(headers or {})})
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _cached(rt: Runtime, key: str) -> Any:
    entry = rt.caches.get(key)
    if entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS:
        return entry[1]
    return None


async def metadata(rt: Runtime) -> OpenIDProviderMetadata:
    """The provider's discovery document (``/.well-known/openid-configuration``
    under the issuer), validated, its issuer the configured one; kept an hour."""
    meta = _cached(rt, META_KEY)
    if meta is not None:
        return meta
    issuer = rt.settings.oidc_issuer or ""
    try:
        meta = OpenIDProviderMetadata(await _get_json(f"{issuer}/.well-known/openid-configuration"))
        meta.validate()
    except (httpx.HTTPError, OSError, ValueError) as exc:
        log.warning("single sign-on: the provider's discovery document could not be read (%s)", type(exc).__name__)
        raise SsoError("sso_unavailable", 503) from None
    if str(meta["issuer"]).rstrip("/") != issuer:
        log.warning("single sign-on: the discovery document names another issuer than JUTELLA_OIDC_ISSUER")
        raise SsoError("sso_unavailable", 503)
    rt.caches[META_KEY] = (time.monotonic(), meta)
    return meta


async def _keys(rt: Runtime, meta: OpenIDProviderMetadata, *, fresh: bool = False) -> KeySet:
    keys = None if fresh else _cached(rt, KEYS_KEY)
    if keys is not None:
        return keys
    try:
        keys = KeySet.import_key_set(await _get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
    except (httpx.HTTPError, OSError, ValueError, JoseError) as exc:
        log.warning("single sign-on: the provider's keys could not be read (%s)", type(exc).__name__)
        raise SsoError("sso_unavailable", 503) from None
    rt.caches[KEYS_KEY] = (time.monotonic(), keys)
    return keys


def _auth_method(rt: Runtime, meta: OpenIDProviderMetadata) -> str:
    if rt.settings.oidc_client_secret is None:
        return "none"  # a public client: PKCE alone
    supported = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"


async def _exchange(rt: Runtime, meta: OpenIDProviderMetadata, code: str, verifier: str) -> dict[str, Any]:
    """The code for tokens at the token endpoint (PKCE's verifier with it)."""
    secret = rt.settings.oidc_client_secret
    auth = ClientAuth(rt.settings.oidc_client_id, secret.get_secret_value() if secret else None,
                      _auth_method(rt, meta))
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri(rt),
                                 code_verifier=verifier,
                                 **({"client_id": rt.settings.oidc_client_id} if secret is None else {}))
    uri, headers, body = auth.prepare("POST", meta["token_endpoint"], {
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}, body)
    try:
        async with await outbound.client(HTTP_TIMEOUT_SECONDS) as client:
            response = await client.post(uri, headers=headers, content=body)
        data = response.json()
    except (httpx.HTTPError, OSError, ValueError) as exc:
        log.warning("single sign-on: the token request failed (%s)", type(exc).__name__)
        raise SsoError("sso_unavailable", 503) from None
    if response.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
        error = data.get("error") if isinstance(data, dict) else None
        log.warning("single sign-on: the provider refused the code (%s, %s)", response.status_code,
                    error if isinstance(error, str) and error.replace("_", "").isalnum() else "-")
        raise SsoError("sso_failed")
    return data


def verify_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                    access_token: str | None, now: int, algorithms: list[str]) -> dict[str, Any]:
    """The ID token's claims once its signature (one of the provider's keys,
    an asymmetric algorithm) and claims hold: ``iss`` the provider, ``aud``
    this client, not expired, the ``nonce`` of this sign-in, ``at_hash``
    matching the access token. Plain function: runs on the CPU pool."""
    token = jwt.decode(id_token, keys, algorithms=algorithms)
    claims = CodeIDToken(token.claims, token.header, {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }, {"nonce": nonce, "client_id": client_id, **({"access_token": access_token} if access_token else {})})
    claims.validate(now=now, leeway=LEEWAY_SECONDS)
    return dict(claims)


async def _verify(rt: Runtime, meta: OpenIDProviderMetadata, tokens: dict[str, Any], nonce: str) -> dict[str, Any]:
    offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in ALGORITHMS if a in offered] or ["RS256"]
    access_token = tokens.get("access_token") if isinstance(tokens.get("access_token"), str) else None
    now = int(rt.clock.now().timestamp())
    for fresh in (False, True):  # a key the cached set lacks: the provider rotated them, ask once more
        keys = await _keys(rt, meta, fresh=fresh)
        try:
            return await rt.cpu.passwords.run(
                lambda: verify_id_token(tokens["id_token"], keys, issuer=str(meta["issuer"]),
                                        client_id=rt.settings.oidc_client_id or "", nonce=nonce,
                                        access_token=access_token, now=now, algorithms=algorithms))
        except JoseError as exc:
            unknown_key = type(exc).__name__ in ("InvalidKeyIdError", "MissingKeyError")
            if unknown_key and not fresh:
                continue
            log.warning("single sign-on: the ID token was refused (%s)", type(exc).__name__)
            raise SsoError("sso_failed") from None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("single sign-on: the ID token was refused (%s)", type(exc).__name__)
            raise SsoError("sso_failed") from None
    raise SsoError("sso_failed")  # pragma: no cover - the loop returns or raises


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def _identity(rt: Runtime, meta: OpenIDProviderMetadata, claims: dict[str, Any],
                    tokens: dict[str, Any]) -> Identity:
    """The person of the verified claims; the groups (and a missing email or
    name) from the userinfo endpoint when the ID token does not carry them."""
    if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:  # OpenID Connect Core 2
        log.warning("single sign-on: the ID token's sub is not 1 to 255 characters")
        raise SsoError("sso_failed")
    claim = rt.settings.oidc_groups_claim
    info: dict[str, Any] = dict(claims)
    access_token = tokens.get("access_token")
    wants_more = claim not in claims or not claims.get("email")
    if wants_more and meta.get("userinfo_endpoint") and isinstance(access_token, str):
        try:
            extra = await _get_json(str(meta["userinfo_endpoint"]), headers={"Authorization": f"Bearer {access_token}"})
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("single sign-on: userinfo could not be read (%s)", type(exc).__name__)
            extra = {}
        if extra.get("sub") == claims["sub"]:  # OpenID Connect Core 5.3.2: else it is not this person's
            info = {**extra, **{k: v for k, v in claims.items() if v not in (None, "", [])}}
    email = None
    if isinstance(info.get("email"), str):
        try:
            email = actions.normalise_email(info["email"])
        except AccountError:  # not an address jutella can keep: as if none was given
            email = None
    name = info.get("name") or info.get("preferred_username")
    return Identity(subject=str(claims["sub"]), email=email, email_verified=info.get("email_verified") is True,
                    name=name if isinstance(name, str) else None, groups=_strings(info.get(claim)),
                    amr=_strings(claims.get("amr")),
                    acr=claims.get("acr") if isinstance(claims.get("acr"), str) else None)


# -- the flow -----------------------------------------------------------------------
async def begin(rt: Runtime, *, client: str) -> tuple[str, str]:
    """Start a sign-in: the provider's authorisation URL and the cookie's
    value that ties the answer to this browser."""
    if not configured(rt.settings):
        raise AccountError("sso_off", "Single sign-on is not configured.", 404)
    if await rt.throttle.hit(rt.throttle.key("sso-start", client), STARTS_WINDOW_SECONDS) > STARTS_PER_CLIENT:
        raise SsoError("sso_busy", 429)
    meta = await metadata(rt)
    now = rt.clock.now()
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = generate_token(64)  # RFC 7636: 43 to 128 unreserved characters
    browser, browser_hash = new_token()
    async with rt.db.transaction() as s:
        await s.execute(delete(OidcLogin).where(OidcLogin.expires_at <= now))
        s.add(OidcLogin(id=hash_token(state), browser_hash=browser_hash, nonce=nonce, code_verifier=verifier,
                        stage="sent", created_at=now, expires_at=now + timedelta(minutes=LOGIN_MINUTES)))
    scopes = rt.settings.oidc_scopes.split()
    url = prepare_grant_uri(str(meta["authorization_endpoint"]), rt.settings.oidc_client_id, "code",
                            redirect_uri=redirect_uri(rt),
                            scope=" ".join(["openid", *[x for x in scopes if x != "openid"]]),
                            state=state, nonce=nonce, code_challenge=create_s256_code_challenge(verifier),
                            code_challenge_method="S256")
    return url, browser


async def _failed(rt: Runtime, reason: str, account_id: int | None = None) -> None:
    async with rt.db.transaction() as s:
        await audit.record(s, rt.clock.now(), actor_id=account_id, action="login.failed",
                           target_type="account" if account_id else None, target_id=account_id,
                           detail={"reason": reason, "via": "sso"})


async def complete(rt: Runtime, *, state: str | None, code: str | None, error: str | None, browser: str | None,
                   sync_departments: DepartmentSync) -> actions.SignedIn | None:
    """The provider's answer at the callback: a session (``SignedIn``), or
    None when jutella's own two-factor code is asked next
    (:func:`complete_totp`), or an :class:`SsoError`."""
    if not configured(rt.settings):
        raise AccountError("sso_off", "Single sign-on is not configured.", 404)
    now = rt.clock.now()
    if not state or not browser or len(state) > 200 or len(browser) > 100:
        raise SsoError("sso_expired", 400)
    async with rt.db.transaction() as s:
        row = await s.get(OidcLogin, hash_token(state), with_for_update=True)
        if row is None or row.stage != "sent" or row.expires_at <= now \
                or not secrets.compare_digest(row.browser_hash, hash_token(browser)):
            raise SsoError("sso_expired", 400)
        await s.delete(row)  # one answer per sign-in: a replayed state finds nothing
        nonce, verifier, browser_hash = row.nonce, row.code_verifier, row.browser_hash
    if error or not code:
        await _failed(rt, "sso_denied")
        raise SsoError("sso_denied")
    try:
        meta = await metadata(rt)
        tokens = await _exchange(rt, meta, code[:2000], verifier)
        claims = await _verify(rt, meta, tokens, nonce)
        identity = await _identity(rt, meta, claims, tokens)
    except SsoError as exc:
        await _failed(rt, "sso_invalid" if exc.code == "sso_failed" else exc.code)
        raise
    return await sign_in(rt, identity, browser_hash=browser_hash, sync_departments=sync_departments)


async def _find(rt: Runtime, identity: Identity) -> tuple[OidcIdentity | None, StaffAccount | None,
                                                            StaffAccount | None]:
    issuer = rt.settings.oidc_issuer
    async with rt.db.reader() as s:
        linked = (await s.execute(select(OidcIdentity).where(
            OidcIdentity.issuer == issuer, OidcIdentity.subject == identity.subject))).scalar_one_or_none()
        account = await s.get(StaffAccount, linked.account_id) if linked else None
        same_email = None
        if linked is None and identity.email:
            same_email = await actions.find_account(s, identity.email)
    return linked, account, same_email


async def _set_flag(rt: Runtime, identity_id: int, value: bool) -> None:
    async with rt.db.transaction() as s:
        row = await s.get(OidcIdentity, identity_id)
        if row is not None:
            row.disabled_by_sso = value


async def _create(rt: Runtime, identity: Identity, roles: list[str]) -> StaffAccount:
    """The account of a first sign-in that a group maps: no password (it
    signs in through the provider only), tied to its identity."""
    email = identity.email or ""
    given = identity.name if identity.name and identity.name.strip() else email.split("@")[0]
    name = actions.clean_name(given[:200])
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        if await actions.find_account(s, email):
            raise SsoError("sso_email")
        account = StaffAccount(email=email, name=name, password_hash=None, created_at=now, password_changed_at=None,
                               totp_enabled=False, roles=[StaffRole(role=r) for r in roles])
        s.add(account)
        await s.flush()
        s.add(OidcIdentity(issuer=rt.settings.oidc_issuer, subject=identity.subject, account_id=account.id,
                           created_at=now, disabled_by_sso=False))
        await audit.record(s, now, actor_id=None, action="account.create", target_type="account",
                           target_id=account.id, detail={"roles": roles, "sso": True})
    return account


async def _link(rt: Runtime, identity: Identity, account: StaffAccount) -> OidcIdentity:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        linked = OidcIdentity(issuer=rt.settings.oidc_issuer, subject=identity.subject, account_id=account.id,
                              created_at=now, disabled_by_sso=False)
        s.add(linked)
        await s.flush()
        await audit.record(s, now, actor_id=None, action="sso.link", target_type="account", target_id=account.id)
    return linked


async def sign_in(rt: Runtime, identity: Identity, *, browser_hash: str,
                  sync_departments: DepartmentSync) -> actions.SignedIn | None:
    """The verified identity in: refused, made, re-synced, disabled or
    enabled by the mapping; then a session, or the TOTP step (None)."""
    roles, departments = resolve(rt.settings, identity.groups)
    linked, account, same_email = await _find(rt, identity)
    if not roles:
        if account is not None and account.disabled_at is None:
            try:
                await actions.set_disabled(rt, actor_id=None, account_id=account.id, disabled=True,
                                           note={"sso": True})
                await _set_flag(rt, linked.id, True)  # type: ignore[union-attr]
            except AccountError as exc:  # the last active administrator stays, refused all the same
                log.warning("single sign-on: an account no group maps was kept (%s)", exc.code)
        await _failed(rt, "unmapped", account.id if account else None)
        raise SsoError("sso_unmapped")
    if account is None:
        if same_email is not None:
            if not identity.email_verified:
                await _failed(rt, "unverified", same_email.id)
                raise SsoError("sso_email")
            linked, account = await _link(rt, identity, same_email), same_email
        else:
            if not identity.email:
                await _failed(rt, "no_email")
                raise SsoError("sso_no_email")
            account = await _create(rt, identity, roles)
    if account.disabled_at is not None:
        if linked is not None and linked.disabled_by_sso:
            await actions.set_disabled(rt, actor_id=None, account_id=account.id, disabled=False, note={"sso": True})
            await _set_flag(rt, linked.id, False)
        else:
            await _failed(rt, "disabled", account.id)
            raise SsoError("account_disabled")
    name = actions.clean_name(identity.name[:200]) if identity.name and identity.name.strip() else None
    if roles != account.role_names or (name and name != account.name):
        try:
            await actions.update_account(rt, actor_id=None, account_id=account.id, roles=roles,
                                         name=name if name and name != account.name else None, note={"sso": True})
        except AccountError as exc:  # the last administrator losing the role: refused, nothing changed
            await _failed(rt, exc.code, account.id)
            raise SsoError("last_admin" if exc.code == "last_admin" else "sso_failed") from None
    await sync_departments(rt, account.id, departments)
    return await _open(rt, identity, account.id, roles, browser_hash)


async def _open(rt: Runtime, identity: Identity, account_id: int, roles: list[str],
                browser_hash: str) -> actions.SignedIn | None:
    now = rt.clock.now()
    provider_mfa = second_factor_asserted(rt.settings, identity)
    needs_second = bool(SECOND_FACTOR_ROLES & set(roles)) and not provider_mfa
    async with rt.db.transaction() as s:
        account = await actions.get_account(s, account_id)
        await s.execute(update(OidcIdentity).where(
            OidcIdentity.account_id == account_id, OidcIdentity.issuer == rt.settings.oidc_issuer,
            OidcIdentity.subject == identity.subject).values(last_sign_in_at=now))
        if needs_second and account.totp_enabled:  # jutella's own code next, from this browser only
            s.add(OidcLogin(id=hash_token(secrets.token_urlsafe(32)), browser_hash=browser_hash, nonce="",
                            code_verifier="", stage="totp", account_id=account_id, created_at=now,
                            expires_at=now + timedelta(minutes=TOTP_MINUTES)))
            return None
        token, sess = await actions.open_session(
            s, now, account, {"second_factor": provider_mfa, "via": "sso"}, needs_totp=needs_second)
    return actions.SignedIn(token, sess, account)


async def pending_totp(rt: Runtime, browser: str | None) -> bool:
    """Whether this browser has a sign-in waiting for its two-factor code."""
    return await _pending(rt, browser) is not None


async def _pending(rt: Runtime, browser: str | None) -> OidcLogin | None:
    if not browser or len(browser) > 100:
        return None
    async with rt.db.reader() as s:
        return (await s.execute(select(OidcLogin).where(
            OidcLogin.browser_hash == hash_token(browser), OidcLogin.stage == "totp",
            OidcLogin.expires_at > rt.clock.now()).order_by(OidcLogin.created_at.desc()).limit(1))).scalar_one_or_none()


async def complete_totp(rt: Runtime, *, browser: str | None, code: str, client: str) -> actions.SignedIn:
    """jutella's own two-factor code after the provider's answer (the
    account's TOTP or a recovery code, counted like a sign-in's guesses)."""
    row = await _pending(rt, browser)
    if row is None or row.account_id is None:
        raise SsoError("sso_expired", 400)
    async with rt.db.reader() as s:
        account = await actions.get_account(s, row.account_id)
    async with attempts.guess(rt, email=account.email, client=client) as attempt:
        step = await actions.check_second_factor(rt, account, code)
        if step is False:
            attempt.failed = True
    if step is False:
        await _failed(rt, "totp", account.id)
        raise AccountError("totp_invalid", "That code is not valid. Try the newest code.", 401)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        taken = await s.get(OidcLogin, row.id, with_for_update=True)
        if taken is None:  # used meanwhile by a parallel request
            raise SsoError("sso_expired", 400)
        await s.delete(taken)
        account = await actions.get_account(s, row.account_id)
        if account.disabled_at is not None:
            raise SsoError("account_disabled")
        if isinstance(step, int) and not isinstance(step, bool):
            account.totp_last_step = step
        token, sess = await actions.open_session(s, now, account, {"second_factor": True, "via": "sso"})
    return actions.SignedIn(token, sess, account)


def refusal(code: str | None) -> str | None:
    """The English message of a refusal code from the address, or None."""
    return REFUSALS.get(code or "")

