"""argon2id hashing and the password policy: 12 to 256 characters, no
composition rules, not on the bundled list of common passwords (NIST SP 800-63B)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import AccountError

if TYPE_CHECKING:
    from jutella.settings import Settings

MIN_LENGTH = 12
MAX_LENGTH = 256
# argon2id parameters by the setting password_hash_profile. "standard" is the
# library's current recommendation (RFC 9106's low-memory profile: 3 passes
# over 64 MiB, 4 lanes), about 0.1 s of CPU a hash. "fast-for-tests" (1 pass
# over 8 KiB) lets the test suite create and sign in thousands of accounts;
# hashes that cheap are cheap to guess, so never in production. A hash carries
# its own parameters: either hasher verifies the other's hashes.
HASHERS = {
    "standard": PasswordHasher(),
    "fast-for-tests": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}


def _hasher(settings: "Settings") -> PasswordHasher:
    return HASHERS[settings.password_hash_profile]


@lru_cache(maxsize=None)
def _dummy_hash(profile: str) -> str:
    """A real hash to verify against when the account does not exist, so that
    the response time does not tell which emails have accounts (made with the
    same parameters as the real ones, which is what makes the times equal)."""
    return HASHERS[profile].hash("jutella-dummy-password-for-timing")


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    path = Path(__file__).with_name("common-passwords.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise AccountError("password_too_short", "Password must be at least 12 characters.")
    if len(password) > MAX_LENGTH:
        raise AccountError("password_too_long", "Password must be at most 256 characters.")
    if password.casefold() in _common() or len(set(password)) <= 2:
        raise AccountError("password_common", "This password is too common. Choose another one.")


def hash_password(settings: "Settings", password: str) -> str:
    return _hasher(settings).hash(password)


def verify_password(settings: "Settings", stored: str | None, password: str) -> bool:
    try:
        return (_hasher(settings).verify(stored or _dummy_hash(settings.password_hash_profile), password)
                and stored is not None)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(settings: "Settings", stored: str) -> bool:
    return _hasher(settings).check_needs_rehash(stored)
