"""The sans-I/O protocol: frames in, commands and frames out. No sockets, no asyncio."""

from __future__ import annotations

import json
from collections import deque
from typing import Any
from unittest.mock import patch

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jutella.realtime import protocol as protocol_module
from jutella.realtime.protocol import (
    DEAD_AFTER,
    HELLO_TIMEOUT,
    MAX_BODY_CHARS,
    MAX_CLIENT_ID,
    MAX_FRAME_BYTES,
    MAX_FRUITLESS_FETCHES,
    MAX_SUBSCRIPTIONS,
    PING_INTERVAL,
    REPLAY_BUFFER_LIMIT,
    Accept,
    AgentHello,
    Close,
    EndChat,
    HIDDEN,
    FetchSince,
    PostNote,
    Protocol,
    Seen,
    SendMessage,
    SetPresence,
    Subscribe,
    Typing,
    Unsubscribe,
    VisitorHello,
)

CONV = 17


# ----------------------------------------------------------------------------- helpers


def frames(p: Protocol) -> list[dict[str, Any]]:
    out = p.data_to_send()
    assert all(isinstance(b, bytes) for b in out)
    return [orjson.loads(b) for b in out]


def send(p: Protocol, obj: Any, now: float = 1.0) -> list:
    return p.receive(orjson.dumps(obj), now)


def opened(role: str = "visitor", now: float = 0.0) -> Protocol:
    p = Protocol(role, now)
    hello = {"type": "hello", "token": None, "last_seq": 0} if role == "visitor" else {"type": "hello"}
    assert send(p, hello, now)
    p.welcome(ok=True)
    p.data_to_send()
    return p


def following(last_seq: int = 0) -> Protocol:
    """A visitor connection following CONV with the given watermark."""
    p = opened("visitor")
    p.follow(CONV, last_seq)
    return p


def ev(seq: int) -> dict[str, Any]:
    return {"type": "event", "kind": "message", "author": "visitor", "body": f"m{seq}", "client_id": None}


def event_seqs(p: Protocol, conversation: int = CONV) -> list[int]:
    out = []
    for f in frames(p):
        assert f["type"] == "event"
        if f["conversation"] == conversation:
            out.append(f["seq"])
    return out


def only_error(p: Protocol) -> dict[str, Any]:
    out = frames(p)
    assert len(out) == 1 and out[0]["type"] == "error", out
    return out[0]


# ------------------------------------------------------------------------------- hello


def test_visitor_hello_yields_command_and_welcome_opens():
    p = Protocol("visitor", 0.0)
    assert p.state == "awaiting_hello"
    cmds = send(p, {"type": "hello", "token": "tok", "last_seq": 4, "lang": "fi",
                    "page": "https://example.org/p", "referrer": "", "extra": [1, 2]})
    assert cmds == [VisitorHello(token="tok", last_seq=4, lang="fi", page="https://example.org/p", referrer=None)]
    assert p.data_to_send() == []
    assert p.state == "awaiting_hello"  # until the endpoint welcomes
    p.welcome(token="tok", conversation=None, agents_online=True, last_seq=0)
    assert p.state == "open"
    assert frames(p) == [{"type": "welcome", "token": "tok", "conversation": None, "agents_online": True, "last_seq": 0}]


def test_visitor_hello_defaults_and_lenient_text_fields():
    p = Protocol("visitor", 0.0)
    cmds = send(p, {"type": "hello", "lang": "x" * 100, "page": "https://e.org/" + "a" * 5000})
    (hello,) = cmds
    assert hello.token is None and hello.last_seq == 0 and hello.referrer is None
    assert hello.lang is None  # absurdly long language tags are ignored
    assert len(hello.page) == protocol_module.MAX_URL_CHARS  # long URLs are truncated, not refused


def test_agent_hello_registers_subscriptions_and_asks_for_fetches():
    p = Protocol("agent", 0.0)
    cmds = send(p, {"type": "hello", "subscriptions": {"17": 3, "4": 0}})
    assert cmds == [AgentHello({17: 3, 4: 0}), FetchSince(17, 3), FetchSince(4, 0)]
    assert p.delivered(17) == 3 and p.is_replaying(17) and p.is_replaying(4)
    assert send(Protocol("agent", 0.0), {"type": "hello"}) == [AgentHello({})]


def test_frames_before_hello_are_not_ready_but_ping_pong_work():
    p = Protocol("visitor", 0.0)
    assert send(p, {"type": "message", "client_id": "c1", "body": "hi"}) == []
    assert only_error(p)["code"] == "not_ready"
    assert send(p, {"type": "whatever"}) == []
    assert only_error(p)["code"] == "not_ready"
    assert send(p, {"type": "ping"}) == []
    assert frames(p) == [{"type": "pong"}]
    assert send(p, {"type": "pong"}) == []
    assert frames(p) == []
    assert p.state == "awaiting_hello"


def test_frames_between_hello_and_welcome_are_not_ready():
    p = Protocol("visitor", 0.0)
    send(p, {"type": "hello"})
    send(p, {"type": "typing", "active": True})
    assert only_error(p)["code"] == "not_ready"


def test_second_hello_is_malformed_and_changes_nothing():
    p = opened("agent")
    assert send(p, {"type": "hello", "subscriptions": {"9": 0}}) == []
    assert only_error(p)["code"] == "malformed"
    assert not p.is_tracking(9)
    assert p.state == "open"


def test_invalid_hello_can_be_retried():
    p = Protocol("visitor", 0.0)
    assert send(p, {"type": "hello", "last_seq": -1}) == []
    assert only_error(p)["code"] == "malformed"
    assert send(p, {"type": "hello", "last_seq": 1}) == [VisitorHello(None, 1, None, None, None)]


def test_welcome_misuse_raises():
    p = Protocol("visitor", 0.0)
    with pytest.raises(RuntimeError):
        p.welcome()
    send(p, {"type": "hello"})
    p.welcome()
    with pytest.raises(RuntimeError):
        p.welcome()


# ------------------------------------------------------------------------ valid frames


def test_visitor_commands():
    p = opened("visitor")
    assert send(p, {"type": "message", "client_id": "c1", "body": "  hei  ", "conversation": 99}) == [
        SendMessage("c1", "hei", None)  # a visitor cannot pick a conversation
    ]
    assert send(p, {"type": "typing", "active": False}) == [Typing(False, None)]
    assert send(p, {"type": "seen", "seq": 12}) == [Seen(12, None)]
    assert send(p, {"type": "end"}) == [EndChat()]
    assert frames(p) == []


def test_agent_commands():
    p = opened("agent")
    assert send(p, {"type": "message", "conversation": 5, "client_id": "a", "body": "x"}) == [SendMessage("a", "x", 5)]
    assert send(p, {"type": "typing", "conversation": 5, "active": True}) == [Typing(True, 5)]
    assert send(p, {"type": "seen", "conversation": 5, "seq": 0}) == [Seen(0, 5)]
    assert send(p, {"type": "accept", "conversation": 5}) == [Accept(5)]
    assert send(p, {"type": "close", "conversation": 5}) == [Close(5)]
    for state in ("online", "away", "offline"):
        assert send(p, {"type": "presence", "state": state}) == [SetPresence(state)]
    assert send(p, {"type": "subscribe", "conversation": 5, "last_seq": 2}) == [Subscribe(5, 2), FetchSince(5, 2)]
    assert p.is_tracking(5) and p.is_replaying(5)
    assert send(p, {"type": "unsubscribe", "conversation": 5}) == [Unsubscribe(5)]
    assert not p.is_tracking(5) and not p.is_replaying(5)
    assert frames(p) == []


def test_agent_note_command_and_its_errors():
    p = opened("agent")
    assert send(p, {"type": "note", "conversation": 5, "client_id": "n1", "body": "  asked about rent  "}) == [
        PostNote("n1", "asked about rent", 5)]
    assert frames(p) == []
    assert send(p, {"type": "note", "conversation": 5, "client_id": "n2", "body": "   "}) == []
    assert only_error(p) == {"type": "error", "code": "empty", "message": "the message is empty", "client_id": "n2"}
    assert send(p, {"type": "note", "client_id": "n3", "body": "x"}) == []  # agents name the conversation
    err = only_error(p)
    assert err["code"] == "malformed" and err["client_id"] == "n3"
    assert send(p, {"type": "note", "conversation": 5, "client_id": "n4", "body": "x" * (MAX_BODY_CHARS + 1)}) == []
    assert only_error(p)["code"] == "too_long"
    p.ack("n1", 5, 9)
    assert frames(p) == [{"type": "ack", "client_id": "n1", "conversation": 5, "seq": 9}]


def test_hidden_note_moves_a_visitor_past_it_without_a_frame():
    p = following(1)
    p.event(CONV, 2, HIDDEN, live=True)
    p.event(CONV, 3, ev(3), live=True)
    assert event_seqs(p) == [3] and p.delivered(CONV) == 3


def test_same_client_id_passes_twice():
    """Idempotency is the endpoint's job; the protocol must let resends through."""
    p = opened("visitor")
    msg = {"type": "message", "client_id": "same", "body": "hello"}
    assert send(p, msg) == [SendMessage("same", "hello", None)]
    assert send(p, msg) == [SendMessage("same", "hello", None)]
    assert frames(p) == []


def test_body_limits():
    p = opened("visitor")
    body = "x" * MAX_BODY_CHARS
    assert send(p, {"type": "message", "client_id": "c", "body": f"\n {body} \t"}) == [SendMessage("c", body, None)]
    assert send(p, {"type": "message", "client_id": "c" * MAX_CLIENT_ID, "body": "ä"}) == [
        SendMessage("c" * MAX_CLIENT_ID, "ä", None)
    ]


# ------------------------------------------------------------------------ error frames


@pytest.mark.parametrize(
    ("role", "raw"),
    [
        ("visitor", b"not json"),
        ("visitor", b"\xff\xfe\x00"),  # not UTF-8
        ("visitor", "\ud800"),  # lone surrogate in a str
        ("visitor", b"\xef\xbb\xbf{}"),  # BOM
        ("visitor", b""),
        ("visitor", b"[]"),  # not an object
        ("visitor", b'"message"'),
        ("visitor", b"null"),
        ("visitor", b"{}"),  # no type
        ("visitor", b'{"type": 5}'),
        ("visitor", b'{"type": ["message"]}'),
        ("visitor", b"[" * 3000 + b"]" * 3000),  # deeply nested
        ("visitor", b'{"type": "seen", "seq": NaN}'),
        ("visitor", b'{"type": "seen", "seq": 1e999}'),
        ("visitor", b'{"type": "seen", "seq": 123456789012345678901234567890}'),
        ("visitor", b'{"type": "seen", "seq": 18446744073709551615}'),  # beyond BIGINT
        ("visitor", b'{"type": "seen", "seq": true}'),  # bool is not an int
        ("visitor", b'{"type": "seen", "seq": 1.0}'),
        ("visitor", b'{"type": "seen", "seq": -1}'),
        ("visitor", b'{"type": "seen", "seq": "3"}'),
        ("visitor", b'{"type": "seen"}'),
        ("visitor", b'{"type": "typing", "active": 1}'),
        ("visitor", b'{"type": "typing"}'),
        ("visitor", b'{"type": "message", "body": "hi"}'),  # no client_id
        ("visitor", b'{"type": "message", "client_id": "", "body": "hi"}'),
        ("visitor", b'{"type": "message", "client_id": 7, "body": "hi"}'),
        ("visitor", ('{"type": "message", "client_id": "%s", "body": "hi"}' % ("c" * 65)).encode()),
        ("visitor", b'{"type": "message", "client_id": "c\\u0000", "body": "hi"}'),
        ("agent", b'{"type": "accept", "conversation": 0}'),
        ("agent", b'{"type": "accept", "conversation": true}'),
        ("agent", b'{"type": "accept", "conversation": "17"}'),
        ("agent", b'{"type": "accept"}'),
        ("agent", b'{"type": "close", "conversation": -3}'),
        ("agent", b'{"type": "message", "client_id": "c", "body": "hi"}'),  # agent needs a conversation
        ("agent", b'{"type": "presence", "state": "busy"}'),
        ("agent", b'{"type": "presence", "state": null}'),
        ("agent", b'{"type": "subscribe", "conversation": 3, "last_seq": false}'),
        ("agent", b'{"type": "unsubscribe", "conversation": 2.5}'),
    ],
)
def test_malformed(role, raw):
    p = opened(role)
    assert p.receive(raw, 1.0) == []
    err = only_error(p)
    assert err["code"] == "malformed" and err["message"]
    assert p.state == "open"  # an error frame never closes the connection


@pytest.mark.parametrize(
    "hello",
    [
        {"type": "hello", "token": 5},
        {"type": "hello", "token": ""},
        {"type": "hello", "token": "t" * 1000},
        {"type": "hello", "last_seq": "0"},
        {"type": "hello", "last_seq": True},
        {"type": "hello", "lang": 3},
        {"type": "hello", "page": ["x"]},
        {"type": "hello", "referrer": {"a": 1}},
    ],
)
def test_malformed_visitor_hello(hello):
    p = Protocol("visitor", 0.0)
    assert send(p, hello) == []
    assert only_error(p)["code"] == "malformed"
    assert p.state == "awaiting_hello"


@pytest.mark.parametrize(
    "subscriptions",
    [[17], {"abc": 1}, {"017": 1}, {"0": 1}, {"-1": 0}, {"١٧": 0}, {"17": -1}, {"17": True}, {"17": "3"},
     {"99999999999999999999": 0}, "x"],
)
def test_malformed_agent_hello(subscriptions):
    p = Protocol("agent", 0.0)
    assert send(p, {"type": "hello", "subscriptions": subscriptions}) == []
    assert only_error(p)["code"] == "malformed"
    assert not p.is_tracking(17)


def test_message_errors_carry_client_id():
    p = opened("visitor")
    assert send(p, {"type": "message", "client_id": "c1", "body": " \n\t "}) == []
    assert only_error(p) == {"type": "error", "code": "empty", "message": "the message is empty", "client_id": "c1"}
    assert send(p, {"type": "message", "client_id": "c2", "body": "x" * (MAX_BODY_CHARS + 1)}) == []
    err = only_error(p)
    assert err["code"] == "too_long" and err["client_id"] == "c2"
    assert send(p, {"type": "message", "client_id": "c3", "body": 5}) == []
    err = only_error(p)
    assert err["code"] == "malformed" and err["client_id"] == "c3"
    q = opened("agent")
    assert send(q, {"type": "message", "client_id": "c4", "conversation": "x", "body": "hi"}) == []
    err = only_error(q)
    assert err["code"] == "malformed" and err["client_id"] == "c4"


def test_errors_without_client_id_have_no_such_field():
    p = opened("visitor")
    p.receive(b"nope", 1.0)
    assert "client_id" not in only_error(p)


@pytest.mark.parametrize(
    ("role", "kind"),
    [("visitor", "nope"), ("agent", "nope"), ("visitor", "accept"), ("visitor", "close"), ("visitor", "presence"),
     ("visitor", "subscribe"), ("visitor", "unsubscribe"), ("agent", "end"), ("visitor", "welcome"),
     ("visitor", "event"), ("agent", "ack"), ("visitor", "note")],
)
def test_unknown_or_role_forbidden_type(role, kind):
    p = opened(role)
    assert send(p, {"type": kind, "conversation": 3, "state": "online", "last_seq": 0}) == []
    assert only_error(p)["code"] == "unknown_type"


def test_too_large_refused_without_parsing():
    p = opened("visitor")
    big = b'{"type":"ping","pad":"' + b"x" * MAX_FRAME_BYTES + b'"}'
    assert p.receive(big, 1.0) == []
    assert only_error(p)["code"] == "too_large"
    assert p.receive(big.decode(), 1.0) == []
    assert only_error(p)["code"] == "too_large"
    assert p.receive(b"x" * (MAX_FRAME_BYTES + 1), 1.0) == []  # not JSON, but never parsed
    assert only_error(p)["code"] == "too_large"
    # Fewer characters than the limit but more bytes once encoded.
    wide = '{"type":"ping","pad":"' + "ä" * (MAX_FRAME_BYTES // 2) + '"}'
    assert len(wide) < MAX_FRAME_BYTES < len(wide.encode())
    assert p.receive(wide, 1.0) == []
    assert only_error(p)["code"] == "too_large"


def test_frame_of_exactly_the_limit_is_parsed():
    p = opened("visitor")
    prefix, suffix = b'{"type":"ping","pad":"', b'"}'
    exact = prefix + b"x" * (MAX_FRAME_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(exact) == MAX_FRAME_BYTES
    assert p.receive(exact, 1.0) == []
    assert frames(p) == [{"type": "pong"}]


def test_too_many_subscriptions_forbidden():
    p = opened("agent")
    for conv in range(1, MAX_SUBSCRIPTIONS + 1):
        assert send(p, {"type": "subscribe", "conversation": conv})[0] == Subscribe(conv, 0)
    assert send(p, {"type": "subscribe", "conversation": MAX_SUBSCRIPTIONS + 1}) == []
    assert only_error(p)["code"] == "forbidden"
    # Re-subscribing one already followed is fine.
    assert send(p, {"type": "subscribe", "conversation": 1})[0] == Subscribe(1, 0)


def test_server_frames():
    p = opened("visitor")
    p.ack("c1", CONV, 5)
    p.error("rate_limited", "slow down")
    p.send({"type": "typing", "conversation": CONV, "author": "agent", "active": True})
    assert frames(p) == [
        {"type": "ack", "client_id": "c1", "conversation": CONV, "seq": 5},
        {"type": "error", "code": "rate_limited", "message": "slow down"},
        {"type": "typing", "conversation": CONV, "author": "agent", "active": True},
    ]
    with pytest.raises(ValueError):
        p.error("no_such_code", "x")
    with pytest.raises(ValueError):
        p.send({"type": "event", "conversation": CONV, "seq": 99})  # would bypass the watermark
    with pytest.raises(ValueError):
        p.send({"no": "type"})


# ----------------------------------------------------------------------------- events


def test_event_output_is_exactly_what_was_fed():
    p = following(0)
    fed = [dict(ev(1), at="2026-11-27T10:00:00+00:00"), {"kind": "state", "state": "active", "author": "system"}]
    originals = [dict(f) for f in fed]
    p.event(CONV, 1, fed[0], live=True)
    p.event(CONV, 2, fed[1])
    assert frames(p) == [
        {**originals[0], "type": "event", "conversation": CONV, "seq": 1},
        {**originals[1], "type": "event", "conversation": CONV, "seq": 2},
    ]
    assert fed == originals  # the hub's dicts are shared between connections: never mutated
    p.event(CONV, 2, ev(2), live=True)
    p.event(CONV, 1, ev(1))
    assert frames(p) == [] and p.pending_commands() == []


def test_resume_replays_only_what_the_client_lacks():
    p = following(5)
    p.begin_replay(CONV)
    for seq in range(3, 9):
        p.event(CONV, seq, ev(seq))
    p.end_replay(CONV)
    assert event_seqs(p) == [6, 7, 8]
    assert p.delivered(CONV) == 8 and not p.is_replaying(CONV)
    assert p.pending_commands() == []


def test_live_events_during_replay_are_buffered_and_flushed_in_order_once():
    p = following(5)
    p.begin_replay(CONV)
    for seq in (10, 8, 9, 10):  # live, ahead of the replay, out of order, repeated
        p.event(CONV, seq, ev(seq), live=True)
    assert frames(p) == []
    p.event(CONV, 6, ev(6))
    assert event_seqs(p) == [6]
    p.event(CONV, 7, ev(7))  # 8, 9, 10 now follow the watermark
    assert event_seqs(p) == [7, 8, 9, 10]
    p.event(CONV, 8, ev(8))  # the replay's own copies are duplicates
    p.event(CONV, 9, ev(9))
    p.event(CONV, 11, ev(11))  # replay reached beyond the buffer
    p.event(CONV, 12, ev(12), live=True)
    p.end_replay(CONV)
    assert event_seqs(p) == [11, 12]
    assert p.pending_commands() == []


def test_buffered_events_flush_at_end_replay():
    p = following(0)
    p.begin_replay(CONV)
    p.event(CONV, 3, ev(3), live=True)
    p.event(CONV, 2, ev(2), live=True)
    p.event(CONV, 1, ev(1))
    assert event_seqs(p) == [1, 2, 3]
    p.begin_replay(CONV)
    p.event(CONV, 5, ev(5), live=True)
    p.event(CONV, 4, ev(4))
    p.end_replay(CONV)
    assert event_seqs(p) == [4, 5]
    assert not p.is_replaying(CONV)


def test_live_event_right_after_the_watermark_passes_through_during_replay():
    p = following(5)
    p.begin_replay(CONV)
    p.event(CONV, 6, ev(6), live=True)
    assert event_seqs(p) == [6]
    p.event(CONV, 6, ev(6))
    p.event(CONV, 7, ev(7))
    p.end_replay(CONV)
    assert event_seqs(p) == [7]


def test_live_gap_asks_for_a_fetch():
    p = following(5)
    p.event(CONV, 6, ev(6), live=True)
    assert event_seqs(p) == [6]
    p.event(CONV, 9, ev(9), live=True)
    assert frames(p) == []
    assert p.pending_commands() == [FetchSince(CONV, 6)]
    assert p.is_replaying(CONV)
    p.event(CONV, 10, ev(10), live=True)  # already fetching: no second request
    assert p.pending_commands() == []
    for seq in (7, 8, 9):  # the endpoint answers from the database
        p.event(CONV, seq, ev(seq))
    p.end_replay(CONV)
    assert event_seqs(p) == [7, 8, 9, 10]
    assert p.pending_commands() == [] and not p.is_replaying(CONV)


def test_out_of_order_live_delivery_yields_each_once_in_order():
    p = following(5)
    p.event(CONV, 7, ev(7), live=True)
    p.event(CONV, 6, ev(6), live=True)
    assert event_seqs(p) == [6, 7]
    (fetch,) = p.pending_commands()
    assert fetch == FetchSince(CONV, 5)
    for seq in (6, 7):  # the fetch answered late: all duplicates now
        p.event(CONV, seq, ev(seq))
    p.end_replay(CONV)
    assert frames(p) == [] and p.pending_commands() == []
    assert p.delivered(CONV) == 7


def test_hidden_events_move_the_watermark_without_a_frame_or_a_fetch():
    """A staff-only note in a visitor's conversation: the visitor gets no frame
    for it, and the next message after it is not mistaken for a gap."""
    p = following(5)
    p.event(CONV, 6, HIDDEN, live=True)
    assert frames(p) == [] and p.delivered(CONV) == 6
    p.event(CONV, 8, ev(8), live=True)  # 7 hidden too, but its notification is late
    assert frames(p) == [] and p.pending_commands() == [FetchSince(CONV, 6)]
    p.event(CONV, 7, HIDDEN)  # the database replay marks 7 as hidden
    p.event(CONV, 8, ev(8))
    p.end_replay(CONV)
    assert event_seqs(p) == [8] and p.delivered(CONV) == 8
    p.event(CONV, 9, HIDDEN, live=True)
    p.event(CONV, 10, ev(10), live=True)
    assert event_seqs(p) == [10] and p.pending_commands() == []


def test_duplicates_dropped():
    p = following(0)
    for seq in (1, 1, 2, 1, 2):
        p.event(CONV, seq, ev(seq), live=True)
    p.event(CONV, 2, ev(2))
    assert event_seqs(p) == [1, 2]


def test_gap_left_after_replay_asks_again_then_gives_up():
    p = following(5)
    p.event(CONV, 9, ev(9), live=True)
    assert p.pending_commands() == [FetchSince(CONV, 5)]
    p.event(CONV, 6, ev(6))  # the database had only 6 so far
    p.end_replay(CONV)
    assert event_seqs(p) == [6]
    assert p.pending_commands() == [FetchSince(CONV, 6)]  # progress was made: ask again
    for _ in range(MAX_FRUITLESS_FETCHES - 1):  # the database keeps returning nothing new
        p.end_replay(CONV)
        assert p.pending_commands() == [FetchSince(CONV, 6)]
    p.end_replay(CONV)
    assert p.pending_commands() == [] and not p.is_replaying(CONV)
    assert frames(p) == []  # 9 was dropped, never sent out of order
    p.event(CONV, 10, ev(10), live=True)  # the next live event re-checks
    assert p.pending_commands() == [FetchSince(CONV, 6)]


def test_replayed_rows_are_authoritative_about_holes():
    """A replayed row may skip seqs (an erased event): the database is the truth."""
    p = following(2)
    p.begin_replay(CONV)
    p.event(CONV, 3, ev(3))
    p.event(CONV, 5, ev(5))
    p.end_replay(CONV)
    assert event_seqs(p) == [3, 5]


def test_replay_buffer_is_bounded():
    p = following(0)
    p.event(CONV, 1, ev(1), live=True)
    frames(p)
    for seq in range(3, 3 + REPLAY_BUFFER_LIMIT + 50):  # event 2 lost by the hub
        p.event(CONV, seq, ev(seq), live=True)
    assert p.pending_commands() == [FetchSince(CONV, 1)]
    assert frames(p) == []
    p.event(CONV, 2, ev(2))  # the first fetch, read before the flood
    p.end_replay(CONV)
    assert event_seqs(p) == [2]
    assert p.pending_commands() == [FetchSince(CONV, 2)]  # the buffer overflowed: read again
    last = 2 + REPLAY_BUFFER_LIMIT + 50
    for seq in range(3, last + 1):
        p.event(CONV, seq, ev(seq))
    p.end_replay(CONV)
    assert event_seqs(p) == list(range(3, last + 1))
    assert p.pending_commands() == [] and not p.is_replaying(CONV)


def test_untracked_conversations_are_dropped():
    p = opened("visitor")
    p.event(CONV, 1, ev(1), live=True)
    p.begin_replay(CONV)
    p.end_replay(CONV)
    assert frames(p) == [] and p.pending_commands() == []
    assert p.conversation is None and p.delivered(CONV) == 0


def test_visitor_follows_one_conversation_at_a_time():
    p = following(0)
    assert p.conversation == CONV
    p.event(CONV, 3, ev(3), live=True)  # gap: fetch requested
    p.follow(CONV + 1, 0)  # the visitor started a new chat
    assert p.conversation == CONV + 1 and not p.is_tracking(CONV)
    assert p.pending_commands() == []  # the stale fetch is withdrawn
    p.event(CONV, 1, ev(1), live=True)
    p.event(CONV + 1, 1, ev(1), live=True)
    assert [(f["conversation"], f["seq"]) for f in frames(p)] == [(CONV + 1, 1)]
    p.follow(CONV + 1, 0)  # following the same one again never lowers the watermark
    assert p.delivered(CONV + 1) == 1
    with pytest.raises(RuntimeError):
        opened("agent").follow(CONV, 0)


def test_agent_conversations_are_independent():
    p = opened("agent")
    send(p, {"type": "subscribe", "conversation": 1, "last_seq": 0})
    send(p, {"type": "subscribe", "conversation": 2, "last_seq": 4})
    p.end_replay(1)
    p.event(1, 1, ev(1), live=True)
    p.event(2, 5, ev(5), live=True)  # still replaying 2: 5 follows its watermark, goes out
    p.event(2, 7, ev(7), live=True)  # buffered
    p.event(2, 6, ev(6))
    p.end_replay(2)
    assert [(f["conversation"], f["seq"]) for f in frames(p)] == [(1, 1), (2, 5), (2, 6), (2, 7)]


def test_resubscribe_keeps_the_higher_watermark_and_unsubscribe_forgets():
    p = opened("agent")
    send(p, {"type": "subscribe", "conversation": 1, "last_seq": 0})
    p.event(1, 1, ev(1))
    p.event(1, 2, ev(2))
    p.end_replay(1)
    frames(p)
    assert send(p, {"type": "subscribe", "conversation": 1, "last_seq": 0}) == [Subscribe(1, 0), FetchSince(1, 2)]
    p.event(1, 1, ev(1))
    p.end_replay(1)
    assert frames(p) == []
    p.event(1, 5, ev(5), live=True)  # gap -> fetch queued
    send(p, {"type": "unsubscribe", "conversation": 1})
    assert p.pending_commands() == []
    p.event(1, 3, ev(3), live=True)
    assert frames(p) == [] and p.delivered(1) == 0


# ------------------------------------------------------------------------- heartbeats


def test_ping_after_silence_then_dead_close():
    p = opened("visitor", now=0.0)
    p.tick(PING_INTERVAL - 0.1)
    assert frames(p) == []
    p.tick(PING_INTERVAL)
    assert frames(p) == [{"type": "ping"}]
    p.tick(PING_INTERVAL + 1)
    assert frames(p) == []  # one ping per interval
    p.tick(2 * PING_INTERVAL)
    assert frames(p) == [{"type": "ping"}]
    assert p.state == "open"
    p.tick(DEAD_AFTER)
    assert p.state == "closed" and p.close_code == 4000
    assert frames(p) == []


def test_a_peer_is_not_judged_dead_while_our_frames_still_wait_to_reach_it():
    """Found by the 10,000-visitor benchmark: consoles taking in ten thousand
    queue updates had not yet read the server's ping, stayed silent for
    DEAD_AFTER and were all closed as dead."""
    p = opened("agent", now=0.0)
    p.tick(PING_INTERVAL)
    assert frames(p) == [{"type": "ping"}]
    p.tick(DEAD_AFTER, backlog=True)
    p.tick(DEAD_AFTER * 3, backlog=True)
    assert p.state == "open"
    p.tick(DEAD_AFTER * 3 + 1)  # the backlog has drained and still nothing came back
    assert p.state == "closed" and p.close_code == 4000


def test_any_frame_counts_as_life():
    p = opened("visitor", now=0.0)
    p.receive(b"garbage", 50.0)  # invalid, but alive
    frames(p)
    p.tick(69.0)
    assert frames(p) == [] and p.state == "open"
    p.tick(70.0)
    assert frames(p) == [{"type": "ping"}]
    p.receive(b'{"type":"pong"}', 75.0)
    p.tick(94.9)
    assert frames(p) == []
    p.tick(134.9)
    assert p.state == "open"
    p.tick(135.0)
    assert p.close_code == 4000


def test_hello_timeout():
    p = Protocol("visitor", 100.0)
    p.receive(b'{"type":"ping"}', 105.0)  # a ping is not a hello
    p.tick(100.0 + HELLO_TIMEOUT - 0.01)
    assert p.state == "awaiting_hello"
    p.tick(100.0 + HELLO_TIMEOUT)
    assert p.state == "closed" and p.close_code == 4408 and p.close_reason
    q = Protocol("agent", 100.0)
    send(q, {"type": "hello"}, now=109.0)
    q.tick(100.0 + HELLO_TIMEOUT + 5)
    assert q.state == "awaiting_hello" and q.close_code is None  # hello came; welcome pending


def test_next_deadline():
    p = Protocol("visitor", 0.0)
    assert p.next_deadline() == HELLO_TIMEOUT
    send(p, {"type": "hello"}, now=1.0)
    assert p.next_deadline() == 1.0 + PING_INTERVAL
    p.tick(1.0 + PING_INTERVAL)
    assert p.next_deadline() == 1.0 + 2 * PING_INTERVAL


def test_closed_protocol_is_inert():
    p = opened("agent")
    send(p, {"type": "subscribe", "conversation": 1})
    p.error("forbidden", "bye")
    p.close(4401, "session ended")
    p.close(4000, "later decisions do not win")
    assert (p.state, p.close_code, p.close_reason) == ("closed", 4401, "session ended")
    assert send(p, {"type": "accept", "conversation": 1}) == []
    p.event(1, 1, ev(1), live=True)
    p.ack("c", 1, 1)
    p.tick(1000.0)
    assert [f["type"] for f in frames(p)] == ["error"]  # what was queued before closing
    assert p.pending_commands() == []


# ------------------------------------------------------------------ property: delivery


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_interleaving_delivers_each_event_once_in_order(data):
    """A model endpoint: events 1..N commit in order; the hub delivers each committed
    event at least once, in any order, possibly repeatedly; FetchSince is answered
    from a database snapshot whose rows are fed one at a time, interleaved with live
    deliveries. Whatever happens, the client sees last+1..N, each once, in order."""
    role = data.draw(st.sampled_from(["visitor", "agent"]), label="role")
    n = data.draw(st.integers(1, 25), label="n")
    last = data.draw(st.integers(0, n), label="last_seq")
    limit = data.draw(st.sampled_from([2, 3, REPLAY_BUFFER_LIMIT]), label="buffer limit")
    committed = data.draw(st.integers(last, n), label="committed at connect")
    hub: list[int] = []  # live notifications in flight
    fetches: deque[int] = deque()  # after_seq of FetchSince not yet answered
    active: deque[int] | None = None  # rows of the snapshot being fed
    sent: list[int] = []

    with patch.object(protocol_module, "REPLAY_BUFFER_LIMIT", limit):
        p = opened(role)
        if role == "visitor":
            p.follow(CONV, last)
            p.begin_replay(CONV)
            fetches.append(last)
        else:
            cmds = send(p, {"type": "subscribe", "conversation": CONV, "last_seq": last})
            fetches.extend(c.after_seq for c in cmds if isinstance(c, FetchSince))

        def collect() -> None:
            for c in p.pending_commands():
                assert isinstance(c, FetchSince) and c.conversation == CONV
                assert c.after_seq == p.delivered(CONV)
                fetches.append(c.after_seq)
            sent.extend(event_seqs(p))

        def step(action: str) -> None:
            nonlocal committed, active
            if action == "commit":
                committed += 1
                hub.append(committed)
            elif action == "deliver":
                i = data.draw(st.integers(0, len(hub) - 1), label="which")
                seq = hub[i] if data.draw(st.booleans(), label="again later") else hub.pop(i)
                p.event(CONV, seq, ev(seq), live=True)
            elif action == "fetch":
                after = fetches.popleft()
                active = deque(range(after + 1, committed + 1))  # snapshot now
            elif action == "feed":
                if active:
                    seq = active.popleft()
                    p.event(CONV, seq, ev(seq))
                else:
                    active = None
                    p.end_replay(CONV)
            elif action == "resubscribe":
                cmds = send(p, {"type": "subscribe", "conversation": CONV,
                                "last_seq": data.draw(st.integers(0, p.delivered(CONV)), label="resub")})
                fetches.extend(c.after_seq for c in cmds if isinstance(c, FetchSince))
            collect()

        for _ in range(data.draw(st.integers(0, 6 * n + 10), label="steps")):
            choices = []
            if committed < n:
                choices.append("commit")
            if hub:
                choices.append("deliver")
            if active is None and fetches:
                choices.append("fetch")
            if active is not None:
                choices.append("feed")
            if role == "agent":
                choices.append("resubscribe")
            if not choices:
                break
            step(data.draw(st.sampled_from(choices), label="action"))

        # Let everything settle: the rest commits, the hub delivers what it still
        # holds (at-least-once), and the endpoint answers every fetch.
        while committed < n:
            step("commit")
        while hub:
            seq = hub.pop()
            p.event(CONV, seq, ev(seq), live=True)
            collect()
        while active is not None or fetches:
            step("feed" if active is not None else "fetch")

    assert sent == list(range(last + 1, n + 1))
    assert not p.is_replaying(CONV)


# ---------------------------------------------------------------------- property: fuzz

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_types = st.sampled_from(
    ["hello", "message", "typing", "seen", "end", "accept", "close", "presence", "subscribe", "unsubscribe",
     "ping", "pong", "event", "welcome"]
) | st.text(max_size=8)
_fields = st.sampled_from(
    ["token", "last_seq", "lang", "page", "referrer", "subscriptions", "client_id", "body", "conversation",
     "active", "seq", "state"]
)
_frames_as_objects = st.dictionaries(_fields, _json_values, max_size=5).flatmap(
    lambda fields: _types.map(lambda t: {**fields, "type": t}) | st.just(fields)
)
_raw_frames = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    _json_values.map(json.dumps),
    _frames_as_objects.map(json.dumps),  # stdlib json writes NaN, Infinity and huge ints
    _frames_as_objects.map(lambda f: json.dumps(f).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(role=st.sampled_from(["visitor", "agent"]), welcomed=st.booleans(),
       inputs=st.lists(_raw_frames, max_size=6))
def test_receive_never_raises(role, welcomed, inputs):
    p = Protocol(role, 0.0)
    if welcomed:
        send(p, {"type": "hello"})
        p.welcome()
        p.data_to_send()
    for raw in inputs:
        cmds = p.receive(raw, 1.0)
        assert isinstance(cmds, list)
        for out in frames(p):
            assert isinstance(out, dict) and out["type"] in ("error", "pong")
            if out["type"] == "error":
                assert out["code"] in protocol_module.ERROR_CODES
                assert not cmds  # an error frame means no command
        assert p.state != "closed"


# ------------------------------------------------------------ one encoding per event


def test_an_event_is_encoded_once_for_every_connection_it_reaches():
    """The hub hands every subscriber the same dict: the visitor's tab and two
    consoles send the same bytes, encoded once, and each client reads the
    event with its conversation and seq; the same dict at another seq or
    conversation (a replay's row object is never shared, but nothing relies
    on that) is encoded again."""
    visitor = following()
    console_a, console_b = opened("agent"), opened("agent")
    for console in (console_a, console_b):
        assert send(console, {"type": "subscribe", "conversation": CONV, "last_seq": 0})
        console.end_replay(CONV)
        console.pending_commands()
    shared = ev(1)
    with patch.object(protocol_module.orjson, "dumps", wraps=orjson.dumps) as dumps:
        for p in (visitor, console_a, console_b):
            p.event(CONV, 1, shared, live=True)
        assert dumps.call_count == 1
    out = [p.data_to_send() for p in (visitor, console_a, console_b)]
    assert out[0] == out[1] == out[2] and out[0][0] is out[1][0] is out[2][0]
    assert orjson.loads(out[0][0]) == {**shared, "type": "event", "conversation": CONV, "seq": 1}
    assert shared == ev(1)  # the hub's dict is left as it was

    other = opened("agent")
    assert send(other, {"type": "subscribe", "conversation": CONV + 1, "last_seq": 0})
    other.end_replay(CONV + 1)
    other.event(CONV + 1, 1, shared, live=True)
    assert frames(other) == [{**shared, "type": "event", "conversation": CONV + 1, "seq": 1}]
    late = following(1)
    late.event(CONV, 2, shared, live=True)
    assert frames(late) == [{**shared, "type": "event", "conversation": CONV, "seq": 2}]
