"""The hub's channel names. Chat and mail publish on them, the sockets
(realtime/) subscribe to them, so they sit below every subsystem. Which
channel an event goes to is the publisher's business (chat/actions.py
``queue_channel``, ``list_channel``)."""

from __future__ import annotations

AGENTS_CHANNEL = "agents"  # conversation list updates for every console
PRESENCE_CHANNEL = "presence"  # "is anyone online?" for every widget


def agent_channel(agent_id: int) -> str:
    """One agent's consoles: list updates about the conversations they handle."""
    return f"agent:{agent_id}"


def dept_channel(department_id: int) -> str:
    """The waiting queue of one department: its members' consoles (and admins')."""
    return f"dept:{department_id}"


def conv_channel(conversation_id: int) -> str:
    """One conversation's events: its visitor's widget and the consoles that follow it."""
    return f"conv:{conversation_id}"


def waiting_channel(department_id: int | None) -> str:
    """Where a queue's order is told to the sockets of the visitors waiting in
    it (chat/queue.py): ``waiting:<department id>``, ``waiting:0`` for the
    shared queue of chats without a department."""
    return f"waiting:{department_id or 0}"
