"""The ``queue`` frame (docs/protocol.md): a waiting visitor's place in the
queue and the typical wait, queued by the protocol state machine only for the
conversation the connection follows, once per change."""

from __future__ import annotations

import pytest

from jutella.realtime.protocol import Protocol

from tests.unit.test_protocol import CONV, following, frames, opened


def state_event(state: str) -> dict:
    return {"type": "event", "kind": "state", "state": state, "author": "system", "body": "…"}


def test_a_waiting_visitor_is_told_the_place_and_the_typical_wait():
    p = following()
    p.queue(CONV, 2, 180)
    assert frames(p) == [{"type": "queue", "conversation": CONV, "position": 2, "typical_wait_s": 180}]
    p.queue(CONV, 1, None)  # too few recent chats to say
    assert frames(p) == [{"type": "queue", "conversation": CONV, "position": 1, "typical_wait_s": None}]


def test_the_same_place_again_is_not_news_until_the_state_changes():
    p = following()
    p.queue(CONV, 2, 180)
    p.queue(CONV, 2, 180)  # another queue's visitor moved; this one did not
    assert len(frames(p)) == 1
    p.event(CONV, 1, state_event("active"), live=True)
    p.event(CONV, 2, state_event("waiting"), live=True)  # passed on to a department's queue
    frames(p)
    p.queue(CONV, 2, 180)
    assert frames(p) == [{"type": "queue", "conversation": CONV, "position": 2, "typical_wait_s": 180}]


def test_only_the_followed_conversation_and_only_after_welcome():
    p = following()
    p.queue(CONV + 1, 1, 60)  # a late word about another conversation
    assert frames(p) == []
    p.follow(CONV + 1)
    p.queue(CONV, 1, 60)  # the previous one, after following a new one
    assert frames(p) == []
    p.queue(CONV + 1, 3, 60)
    assert frames(p)[0]["position"] == 3

    early = Protocol("visitor", 0.0)
    early.receive(b'{"type":"hello","token":null}', 0.0)
    early.queue(CONV, 1, 60)  # no welcome yet
    assert frames(early) == []
    p.close(4000)
    p.queue(CONV + 1, 1, 60)
    assert frames(p) == []


def test_misuse_raises():
    with pytest.raises(RuntimeError):
        opened("agent").queue(CONV, 1, 60)
    p = following()
    for bad in [(0, 1, None), (CONV, 0, None), (CONV, True, None), (CONV, 1, -1), (CONV, 1, 1.5), ("17", 1, None)]:
        with pytest.raises(ValueError):
            p.queue(*bad)
    assert frames(p) == []
