"""The register's flags as the rest of the product reads them: who objected to
direct marketing (by email) and whose records are restricted (by visitor or
offline message). Privacy sets and lifts the flags (privacy/subjects.py
``set_flag``); chat and the routes above it need to read them, so the reads
live here, below privacy."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.store.models import SubjectFlag


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


async def objection_hashes(s: AsyncSession) -> set[str]:
    return set((await s.execute(select(SubjectFlag.email_hash).where(
        SubjectFlag.kind == "objection", SubjectFlag.email_hash.isnot(None)))).scalars())


def restricted_visitors():
    return select(SubjectFlag.visitor_id).where(SubjectFlag.kind == "restriction", SubjectFlag.visitor_id.isnot(None))


def restricted_offline_messages():
    return select(SubjectFlag.offline_message_id).where(
        SubjectFlag.kind == "restriction", SubjectFlag.offline_message_id.isnot(None))
