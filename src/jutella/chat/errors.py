"""The refusal every part of chat raises, kept apart from chat/actions.py so
that the modules actions itself uses (departments, offline) can raise it
without importing actions back (import-linter's acyclic contract)."""

from __future__ import annotations

from jutella.accounts.errors import AccountError


class ChatError(AccountError):
    """An expected refusal inside a chat (maps to an error frame or HTTP status)."""
