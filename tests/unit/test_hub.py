"""The in-memory hub's subscriptions, without sockets."""

from __future__ import annotations

from jutella.realtime.hub import MemoryHub, Subscription

from tests.conftest import run_async


def test_a_subscriber_far_behind_is_told_to_resynchronise_not_dropped():
    """A console ten thousand queue updates behind (10,000 waiting chats taken
    at once) used to lose what was waiting, silently, and then to be closed;
    now what waits is replaced by one "catch up from the database" marker
    and the events after it, and the connection goes on."""

    async def scenario():
        hub = MemoryHub()
        woken = []
        async with hub.subscribe(["agents"], notify=lambda: woken.append(1)) as sub:
            for n in range(Subscription.LIMIT + 5):
                await hub.publish("agents", {"type": "conversation", "n": n})
            got = [await sub.get() for _ in range(len(sub.pending))]
        return got, len(woken), sub.overflowed

    got, woken, overflowed = run_async(scenario())
    assert overflowed and woken == Subscription.LIMIT + 5
    assert got[0] == ("_hub", {"type": "_resync"})
    assert [e["n"] for _c, e in got[1:]] == list(range(Subscription.LIMIT, Subscription.LIMIT + 5))


def test_events_reach_only_the_channels_subscribed():
    async def scenario():
        hub = MemoryHub()
        async with hub.subscribe(["conv:1"]) as one, hub.subscribe(["conv:2"]) as two:
            await hub.publish("conv:1", {"n": 1})
            two.add("conv:1")
            await hub.publish("conv:1", {"n": 2})
            return list(one.pending), list(two.pending)

    one, two = run_async(scenario())
    assert one == [("conv:1", {"n": 1}), ("conv:1", {"n": 2})]
    assert two == [("conv:1", {"n": 2})]
