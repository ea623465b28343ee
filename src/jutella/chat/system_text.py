"""The lines the system writes into a conversation (an agent joined, the chat
was closed or passed on), stored as a key and shown in the reader's language:
to the visitor and agents by the sockets, in transcripts by chat/transcript.py."""

from __future__ import annotations

from jutella.i18n import gettext

SYSTEM_TEXT = {
    ("agent_joined", "any"): "{name} joined the chat.",
    ("closed_by_agent", "any"): "{name} closed the chat.",
    ("closed_by_visitor", "visitor"): "You ended the chat.",
    ("closed_by_visitor", "agent"): "The visitor ended the chat.",
    ("closed_by_idle", "any"): "The chat was closed after a period of inactivity.",
    ("transferred", "visitor"): "Your chat was passed on to {name}. Someone will be with you shortly.",
    ("transferred", "agent"): "The chat was passed on to {name}.",
}


def system_text(key: str, role: str, lang: str, name: str | None) -> str:
    template = SYSTEM_TEXT.get((key, role)) or SYSTEM_TEXT.get((key, "any")) or key
    return gettext(lang, template, name=name or gettext(lang, "An agent"))
