"""Abuse limits answer clearly and hurt nobody else."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.chat_clients import visitor


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings_overrides():
    return {"max_connections_per_client": 3, "max_messages_per_minute": 5, "max_conversations_per_hour": 2}


def test_too_many_connections_from_one_address_get_429(live):
    open_ = [visitor(live)[0] for _ in range(3)]
    with pytest.raises(InvalidStatus) as info:
        visitor(live)
    assert info.value.response.status_code == 429
    assert b"Too many chat connections" in info.value.response.body
    open_[0].close()
    import time
    for _ in range(50):
        try:
            visitor(live, source="127.0.0.1")
            break
        except InvalidStatus:
            time.sleep(0.05)
    else:
        raise AssertionError("a closed connection did not free its place")


def test_message_flood_gets_an_error_frame_and_other_visitors_are_unaffected(live):
    v, _ = visitor(live)
    for n in range(5):
        v.message(f"m{n}")
        v.until(lambda f: f["type"] == "ack")
    v.message("one too many", client_id="x6")
    err = v.until(lambda f: f["type"] == "error")
    assert err["code"] == "rate_limited" and err["client_id"] == "x6" and "too fast" in err["message"]
    other, _ = visitor(live)
    other.message("hello")
    assert other.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"


def test_new_conversations_per_browser_are_limited(live, clock):
    v, w = visitor(live)
    for n in range(2):
        v.message(f"chat {n}")
        v.until(lambda f: f["type"] == "ack")
        v.send(type="end")
        v.until(lambda f: f["type"] == "event" and f.get("state") == "closed")
    v.message("third chat", client_id="c3")
    err = v.until(lambda f: f["type"] == "error")
    assert err["code"] == "rate_limited" and "Too many new chats" in err["message"]
    clock.advance(hours=1, minutes=1)
    v.message("later", client_id="c4")
    assert v.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"
