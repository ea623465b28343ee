"""Live revocation: after who may see what changes, every open console
re-checks what it follows (docs/protocol.md, "Access changes").

An action that changes access does two things: inside its transaction it
bumps the access version (:func:`bump_access_version`, kept in
``store/access_version.py`` so that ``accounts/`` can bump it too without
importing ``chat/``), and after the commit it publishes one hub event,
``{"type": "access_changed"}``:

* on :data:`~jutella.chat.actions.AGENTS_CHANNEL` (every agent socket on every
  worker, through Redis too) when records or memberships changed:
  :func:`publish_access_changed`. A restriction names the conversations it
  touches (``conversations``), so each socket re-checks those at once,
  before it handles the next hub event;
* on ``account:<id>`` (that account's sockets on every worker) when one
  account's roles changed or it was disabled: ``accounts/actions.py``
  publishes that itself, with :data:`ACCESS_CHANGED` as the type.

The sockets' side is ``realtime/agent.py`` ``AgentConnection.revalidate``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jutella.channels import AGENTS_CHANNEL
from jutella.runtime import Runtime
from jutella.store.access_version import (  # noqa: F401  (re-exported: the one place chat code imports them from)
    bump_access_version,
    core_bump_access_version,
    read_access_version,
)

ACCESS_CHANGED = "access_changed"  # the hub event's type, and the console frame's
# Beyond this many conversations an event names none: every socket then
# re-checks all it follows (the frame stays small; correctness is the same).
MAX_NAMED = 500


def access_changed_event(conversations: Iterable[int] | None = None, version: int | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": ACCESS_CHANGED}
    if version is not None:
        event["version"] = version
    if conversations is not None:
        ids = sorted(set(conversations))
        if len(ids) <= MAX_NAMED:
            event["conversations"] = ids
    return event


async def publish_access_changed(rt: Runtime, *, conversations: Iterable[int] | None = None,
                                 version: int | None = None) -> None:
    """Tell every agent socket of every worker that access changed. Call it
    after the commit. ``conversations``: the only conversations whose
    visibility changed (a restriction, an erasure); None when anything may
    have (memberships). ``version``: what :func:`bump_access_version`
    returned, so a socket that saw the one before knows it missed nothing."""
    await rt.hub.publish(AGENTS_CHANNEL, access_changed_event(conversations, version))
