"""The register's objections as the rest of the product reads them: who objected
to direct marketing (by email). Privacy sets and lifts the flags
(privacy/subjects.py ``set_flag``); chat and the routes above it need to read
them, so the read lives here, below privacy. Restrictions are read by the
access rule (chat/access.py), and the email hash is store.db.email_hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jutella.store.models import SubjectFlag


async def objection_hashes(s: AsyncSession) -> set[str]:
    return set((await s.execute(select(SubjectFlag.email_hash).where(
        SubjectFlag.kind == "objection", SubjectFlag.email_hash.isnot(None)))).scalars())
