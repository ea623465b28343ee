"""argon2id hashing and the password policy: 12 to 256 characters, no
composition rules, not on the bundled list of common passwords, not one short
pattern repeated, and not containing the person's own name or email address
(NIST SP 800-63B: "repetitive or sequential characters", "context-specific
words, such as the name of the service, the username")."""

from __future__ import annotations

import re
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


# the shortest part of a name or an email's local part that a password may
# not contain: shorter ones ("Li", "Bo") are inside too many ordinary words
PERSONAL_MIN = 4
_SEPARATORS = re.compile(r"[\s._+\-'@]+")


def repeated_unit(password: str) -> bool:
    """True when the password is one pattern shorter than MIN_LENGTH written
    at least twice over (``abcabcabcabc``, ``abababababab``, ``Summer1Summer1``),
    ignoring case: as strong as the pattern alone."""
    folded = password.casefold()
    for size in range(1, min(MIN_LENGTH - 1, len(folded) // 2) + 1):
        unit = folded[:size]
        if (unit * (len(folded) // size + 1))[:len(folded)] == folded:
            return True
    return False


def personal_parts(email: str | None, name: str | None) -> set[str]:
    """The words of the person's own that their password may not contain:
    the email's local part and its pieces, and the name's parts, each of at
    least PERSONAL_MIN characters, case-folded."""
    parts: set[str] = set()
    local = (email or "").partition("@")[0].casefold()
    for text in (local, *_SEPARATORS.split(local), *_SEPARATORS.split((name or "").casefold())):
        if len(text) >= PERSONAL_MIN:
            parts.add(text)
    return parts


def check_policy(password: str, *, email: str | None = None, name: str | None = None) -> None:
    """Refuse a password a person may not choose, with a message saying why.
    ``email`` and ``name`` are the person's own (each call site passes them)."""
    if len(password) < MIN_LENGTH:
        raise AccountError("password_too_short", "Password must be at least 12 characters.")
    if len(password) > MAX_LENGTH:
        raise AccountError("password_too_long", "Password must be at most 256 characters.")
    if password.casefold() in _common() or len(set(password)) <= 2:
        raise AccountError("password_common", "This password is too common. Choose another one.")
    if repeated_unit(password):
        raise AccountError("password_repeated",
                           "This password is one short pattern repeated. Choose another one.")
    folded = password.casefold()
    if any(part in folded for part in personal_parts(email, name)):
        raise AccountError("password_personal",
                           "This password contains your name or email address. Choose another one.")


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
