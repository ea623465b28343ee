"""argon2id hashing and the password policy: 12 to 256 characters, no
composition rules, not on the bundled list of common passwords (NIST SP 800-63B)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import AccountError

MIN_LENGTH = 12
MAX_LENGTH = 256
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A real hash to verify against when the account does not exist, so that the
# response time does not tell which emails have accounts.
_DUMMY_HASH = _hasher.hash("jutella-dummy-password-for-timing")


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


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
