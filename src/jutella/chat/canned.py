"""Canned responses: saved replies an agent inserts by typing "/" and a
shortcut in the reply box. Shared ones (``owner_id`` NULL) are managed by
administrators; every agent manages their own. Placeholders ({visitor_name},
{agent_name}) are stored as written and filled in by the console when the
reply is inserted, so the stored text stays neutral.

Every change goes through one function here, in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select

from jutella.runtime import Runtime
from jutella.store.models import CannedResponse

from .actions import ChatError

LANGUAGES = ("fi", "en", "sv")
SHORTCUT = re.compile(r"[\w-]{1,32}")
MAX_BODY = 4_000
PLACEHOLDERS = ("visitor_name", "agent_name")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


@dataclass(frozen=True)
class CannedInput:
    shortcut: str
    language: str
    body: str


def clean(shortcut: str, language: str, body: str) -> CannedInput:
    """Validate what a person typed; a clear error names what is wrong."""
    shortcut = (shortcut or "").strip().lstrip("/").casefold()
    if not SHORTCUT.fullmatch(shortcut):
        raise ChatError("invalid_shortcut", "A shortcut is 1 to 32 letters, digits, - or _, without spaces.", 422)
    if language not in LANGUAGES:
        raise ChatError("invalid_language", "The language must be fi, en or sv.", 422)
    body = (body or "").strip()
    if not body:
        raise ChatError("empty", "The response text is empty.", 422)
    if len(body) > MAX_BODY:
        raise ChatError("too_long", "The response text is over {max} characters.", 422, max=MAX_BODY)
    for name in _PLACEHOLDER.findall(body):
        if name not in PLACEHOLDERS:
            raise ChatError("invalid_placeholder", "Unknown placeholder {name}. The placeholders are "
                            "visitor_name and agent_name, in curly brackets.", 422, name="{" + name + "}")
    return CannedInput(shortcut, language, body)


async def visible_to(rt: Runtime, agent_id: int) -> list[CannedResponse]:
    """An agent's own responses and the shared ones."""
    async with rt.db.reader() as s:
        return list((await s.execute(select(CannedResponse).where(
            or_(CannedResponse.owner_id.is_(None), CannedResponse.owner_id == agent_id))
            .order_by(CannedResponse.shortcut, CannedResponse.language, CannedResponse.owner_id))).scalars())


async def _clash(s, owner_id: int | None, data: CannedInput, except_id: int | None = None) -> None:
    # the unique constraint does not cover shared ones (NULL owners never clash in SQL)
    where = [CannedResponse.shortcut == data.shortcut, CannedResponse.language == data.language,
             CannedResponse.owner_id.is_(None) if owner_id is None else CannedResponse.owner_id == owner_id]
    if except_id is not None:
        where.append(CannedResponse.id != except_id)
    if (await s.execute(select(CannedResponse.id).where(*where))).first() is not None:
        raise ChatError("duplicate", "There is already a response /{shortcut} in this language.", 409,
                        shortcut=data.shortcut)


async def create(rt: Runtime, *, owner_id: int | None, data: CannedInput) -> CannedResponse:
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        await _clash(s, owner_id, data)
        row = CannedResponse(owner_id=owner_id, shortcut=data.shortcut, language=data.language, body=data.body,
                             created_at=now, updated_at=now)
        s.add(row)
        await s.flush()
    return row


def _may_change(row: CannedResponse, actor_id: int, is_admin: bool) -> bool:
    return row.owner_id == actor_id if row.owner_id is not None else is_admin


async def _editable(s, canned_id: int, actor_id: int, is_admin: bool) -> CannedResponse:
    """The response, locked, if this member of staff may change it: another
    agent's personal response does not exist for them (404); a shared one
    needs an administrator (403)."""
    row = await s.get(CannedResponse, canned_id, with_for_update=True)
    if row is None or (row.owner_id is not None and row.owner_id != actor_id):
        raise ChatError("not_found", "No such canned response.", 404)
    if not _may_change(row, actor_id, is_admin):
        raise ChatError("forbidden", "Only an administrator can change shared responses.", 403)
    return row


async def update(rt: Runtime, *, canned_id: int, actor_id: int, is_admin: bool, data: CannedInput) -> CannedResponse:
    async with rt.db.transaction() as s:
        row = await _editable(s, canned_id, actor_id, is_admin)
        await _clash(s, row.owner_id, data, except_id=row.id)
        row.shortcut, row.language, row.body, row.updated_at = data.shortcut, data.language, data.body, rt.clock.now()
    return row


async def delete(rt: Runtime, *, canned_id: int, actor_id: int, is_admin: bool) -> None:
    async with rt.db.transaction() as s:
        row = await _editable(s, canned_id, actor_id, is_admin)
        await s.delete(row)
