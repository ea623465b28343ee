"""A worker drops, undecoded, what another worker published on a channel no
connection of its own follows (realtime/redis_hub.py ``_followed_here``), and
still delivers everything it follows, presence, and any channel name it
cannot read from the first bytes."""

from __future__ import annotations

import orjson

from jutella.realtime.redis_hub import RedisHub

OTHER = b"0123456789abcdef"  # another worker's 16-byte origin


def hub_with(channels):
    hub = RedisHub("redis://127.0.0.1:1/0")
    got = []
    hub.deliver_local = lambda channel, event: got.append((channel, event))
    presence = []
    hub.on_presence = lambda origin, online: presence.append(online)
    for channel in channels:
        hub._subs[channel] = {object()}
    return hub, got, presence


def test_followed_channels_arrive_and_others_are_dropped():
    hub, got, presence = hub_with(["conversation:5", 'odd"name'])
    hub._dispatch(OTHER + orjson.dumps(["conversation:5", {"seq": 1}]))
    hub._dispatch(OTHER + orjson.dumps(["conversation:6", {"seq": 1}]))  # nobody here follows it
    hub._dispatch(OTHER + orjson.dumps(['odd"name', {"seq": 2}]))  # escaped: decoded, then delivered
    hub._dispatch(OTHER + orjson.dumps(["_presence", [3, 4]]))
    hub._dispatch(hub._tag + orjson.dumps(["conversation:5", {"seq": 9}]))  # our own: delivered when published
    assert got == [("conversation:5", {"seq": 1}), ('odd"name', {"seq": 2})]
    assert presence == [[3, 4]]


def test_garbage_is_ignored():
    hub, got, _ = hub_with(["conversation:5"])
    for data in (OTHER + b'["conversation:5"', OTHER + b"not json", OTHER, b""):
        hub._dispatch(data)
    assert got == []
