"""Password hashing and verification on the runtime's password pool (jutella/cpu.py),
never on the event loop: argon2id at the standard profile is ~0.1 s of CPU
and 64 MiB a hash. The pool is bounded; when it is full the caller gets
``cpu.Busy`` (503 with Retry-After). Callers do every cheap check first (a
link's token, the account's existence where that tells nothing) so that a
made-up request costs no hash."""

from __future__ import annotations

from jutella.runtime import Runtime

from . import passwords


async def hash_password(rt: Runtime, password: str) -> str:
    return await rt.cpu.passwords.run(passwords.hash_password, rt.settings, password)


async def verify_password(rt: Runtime, stored: str | None, password: str) -> bool:
    return await rt.cpu.passwords.run(passwords.verify_password, rt.settings, stored, password)
