"""The Redis hub's wire format (realtime/redis_hub.py): everything a worker
publishes in one turn goes out as one message, in order; another worker
delivers from it what its own connections follow, presence, and nothing
else; its own messages and anything not in the format are ignored."""

from __future__ import annotations

import asyncio

import orjson

from jutella.realtime.redis_hub import BATCH_LIMIT, ORIGIN_BYTES, RedisHub

from tests.conftest import run_async

OTHER = b"0123456789abcdef"  # another worker's 16-byte origin


def hub_with(channels):
    hub = RedisHub("redis://127.0.0.1:1/0")
    got = []
    hub.deliver_local = lambda channel, event: got.append((channel, event))
    presence = []
    hub.on_presence = lambda origin, online: presence.append((origin, online))
    changes = []
    hub.on_presence_change = lambda: changes.append(1)
    for channel in channels:
        hub._subs[channel] = {object()}
    return hub, got, presence, changes


def test_followed_channels_arrive_in_order_and_others_are_dropped():
    hub, got, presence, changes = hub_with(["conversation:5", 'odd"name'])
    hub._dispatch(OTHER + orjson.dumps([
        ["conversation:5", {"seq": 1}],
        ["conversation:6", {"seq": 1}],  # nobody here follows it
        ['odd"name', {"seq": 2}],
        ["_presence", [3, 4]],
        ["conversation:5", {"seq": 2}],
    ]))
    hub._dispatch(hub._tag + orjson.dumps([["conversation:5", {"seq": 9}]]))  # our own: delivered when published
    assert got == [("conversation:5", {"seq": 1}), ('odd"name', {"seq": 2}), ("conversation:5", {"seq": 2})]
    assert presence == [(OTHER.decode(), [3, 4])]
    assert changes == [1]


def test_garbage_and_other_shapes_are_ignored():
    hub, got, presence, _ = hub_with(["conversation:5"])
    for data in (OTHER + b'[["conversation:5"', OTHER + b"not json", OTHER, b"",
                 OTHER + orjson.dumps(["conversation:5", {"seq": 1}]),  # the old one-event format
                 OTHER + orjson.dumps({"conversation:5": 1}),
                 b"\xff" * ORIGIN_BYTES + orjson.dumps([["conversation:5", {"seq": 1}]])):
        hub._dispatch(data)
    hub._dispatch(OTHER + orjson.dumps([["conversation:5"], [5, {}], ["conversation:5", "text"],
                                        ["conversation:5", {"seq": 3}]]))
    assert got == [("conversation:5", {"seq": 3})]
    assert presence == []


def test_what_one_turn_publishes_goes_out_as_one_message_in_order():
    async def scenario():
        hub, got, _, _ = hub_with(["conversation:5"])
        for seq in range(1, 4):
            await hub.publish("conversation:5", {"seq": seq})
        hub.announce_presence([7])
        first = hub._take_batch()
        assert hub._take_batch() is None and not hub._queued.is_set()
        for seq in range(BATCH_LIMIT + 1):
            await hub.publish("queue", {"seq": seq})
        big, rest = hub._take_batch(), hub._take_batch()
        return got, first, big, rest

    got, first, big, rest = run_async(scenario())
    assert got[:3] == [("conversation:5", {"seq": s}) for s in (1, 2, 3)]  # delivered here at once
    assert first[:ORIGIN_BYTES] != OTHER and len(first[:ORIGIN_BYTES]) == ORIGIN_BYTES
    assert orjson.loads(first[ORIGIN_BYTES:]) == [["conversation:5", {"seq": 1}], ["conversation:5", {"seq": 2}],
                                                  ["conversation:5", {"seq": 3}], ["_presence", [7]]]
    assert len(orjson.loads(big[ORIGIN_BYTES:])) == BATCH_LIMIT
    assert orjson.loads(rest[ORIGIN_BYTES:]) == [["queue", {"seq": BATCH_LIMIT}]]


def test_the_publisher_sends_the_first_at_once_and_then_at_most_once_an_interval():
    """Under load a worker's events go out together (one PUBLISH each
    PUBLISH_INTERVAL at most, everything in order); after a quiet spell the
    first goes at once."""
    from jutella.realtime import redis_hub

    async def scenario():
        hub, _, _, _ = hub_with([])
        loop = asyncio.get_running_loop()
        sent: list[tuple[float, list]] = []

        async def publish_data(data):
            sent.append((loop.time(), [event["seq"] for _c, event in orjson.loads(data[ORIGIN_BYTES:])]))

        hub._publish_data = publish_data
        task = asyncio.create_task(hub._publish_loop())
        for burst in range(3):  # a busy spell: three turns of ten events each
            for seq in range(burst * 10, burst * 10 + 10):
                await hub.publish("conversation:5", {"seq": seq})
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)  # then quiet
        again = loop.time()
        await hub.publish("conversation:5", {"seq": 30})
        await asyncio.sleep(0.1)
        task.cancel()
        return again, sent

    again, sent = run_async(scenario())
    assert [seq for _t, seqs in sent for seq in seqs] == list(range(31))  # every event, once, in order
    assert sent[0][1] == list(range(10))  # the first turn's at once
    assert len(sent) <= 4  # the other two turns' together (or each in its interval), then the last
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
    assert redis_hub.PUBLISH_INTERVAL > 0
    assert all(gap >= redis_hub.PUBLISH_INTERVAL * 0.9 for gap in gaps), gaps
    assert sent[-1][1] == [30] and sent[-1][0] - again < 0.1  # after the quiet spell, at once


def _pmessage(pattern: bytes, channel: bytes, data: bytes) -> bytes:
    parts = [b"pmessage", pattern, channel, data]
    return b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def test_batches_pushed_by_redis_reach_dispatch_in_order_however_the_bytes_are_cut():
    """The listening link (realtime/redis_link.py) parses Redis's pushes inside
    ``data_received``: two batches in one read, and a batch cut across three
    reads, reach the hub's subscribers whole and in order; the subscription
    confirmations and a pong are not batches."""
    from jutella.realtime.redis_link import Link

    async def scenario():
        hub, got, _presence, _changes = hub_with(["conv:1"])
        link = Link(hub._on_push)
        hub._subscribed = asyncio.get_running_loop().create_future()
        batches = [OTHER + orjson.dumps([["conv:1", {"seq": n}]]) for n in range(4)]
        wire = b"".join(_pmessage(b"jt:hub:[^a]*", b"jt:hub:" + OTHER, b) for b in batches)
        confirm = b"".join(b"*3\r\n$10\r\npsubscribe\r\n$3\r\np%02d\r\n:%d\r\n" % (i, i + 1) for i in range(16))
        link.data_received(confirm + b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        first_two = len(_pmessage(b"jt:hub:[^a]*", b"jt:hub:" + OTHER, batches[0])) * 2
        link.data_received(wire[:first_two])  # two whole batches in one read
        rest = wire[first_two:]
        for cut in (rest[:7], rest[7:40], rest[40:]):  # the others cut anywhere
            link.data_received(cut)
        return got, hub._subscribed.done()

    got, subscribed = run_async(scenario())
    assert subscribed  # sixteen patterns confirmed
    assert got == [("conv:1", {"seq": n}) for n in range(4)]


def test_a_rediss_url_asks_for_verified_tls_unless_it_says_otherwise():
    import ssl

    from redis.asyncio.connection import parse_url

    from jutella.realtime.redis_link import tls_context

    strict = tls_context(parse_url("rediss://redis.internal:6380/0"))
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    lax = tls_context(parse_url("rediss://redis.internal:6380/0?ssl_cert_reqs=none"))
    assert lax.verify_mode == ssl.CERT_NONE and not lax.check_hostname
