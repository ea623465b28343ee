"""Who counts as on duty (chat/presence.py), including the remembered answer
that every visitor message asks for: it must change the moment presence does,
and when a reload's grace period runs out."""

from jutella.chat.presence import Presence
from jutella.clock import FakeClock
from tests.conftest import run_async


def test_online_follows_connections_choices_and_the_grace_period():
    clock = FakeClock()
    p = Presence(clock)
    assert p.online_agents() == set()
    p.connect(1, "tab-a", "online")
    p.connect(2, "tab-b", "away")
    assert p.online_agents() == {1}
    p.set_state(2, "tab-b", "online")
    assert p.online_agents() == {1, 2}
    p.disconnect(1, "tab-a")  # a reload: still on duty for the grace period
    clock.advance(seconds=119)
    assert p.online_agents() == {1, 2}
    clock.advance(seconds=2)
    assert p.online_agents() == {2}
    p.connect(1, "tab-c", "online")
    assert p.online_agents() == {1, 2}
    p.forget(2)  # disabled: offline at once
    assert p.online_agents() == {1}
    p.set_state(1, "tab-c", "offline")
    assert p.online_agents() == set() and not p.any_online()


def test_two_grace_periods_end_each_at_its_own_time():
    clock = FakeClock()
    p = Presence(clock)
    p.connect(1, "a", "online")
    p.connect(2, "b", "online")
    p.disconnect(1, "a")
    clock.advance(seconds=60)
    p.disconnect(2, "b")
    assert p.online_agents() == {1, 2}
    clock.advance(seconds=61)
    assert p.online_agents() == {2}
    clock.advance(seconds=60)
    assert p.online_agents() == set()


def test_a_slow_publish_never_overwrites_a_newer_one(monkeypatch):
    """Two publishes overlap (an agent connects while another publish still
    reads the departments): the widgets must end up told the newer answer. Out of
    order, a new widget got ``departments: []`` though two were online."""
    import asyncio
    from types import SimpleNamespace

    from jutella.chat import presence as presence_mod

    delivered: list[dict] = []
    rt = SimpleNamespace(presence=Presence(FakeClock()), settings=None,
                         hub=SimpleNamespace(deliver_local=lambda channel, frame: delivered.append(frame)))
    gate = asyncio.Event()
    calls = 0

    async def offer(_rt):
        nonlocal calls
        calls += 1
        if calls == 1:  # the first publish read the old state, then waits on the database
            snapshot: dict = {"agents_online": True, "departments": []}
            await gate.wait()
            return snapshot
        return {"agents_online": True, "departments": [{"id": 1, "name": "Sales"}, {"id": 2, "name": "Housing"}]}

    monkeypatch.setattr(presence_mod, "widget_offer", offer)

    async def scenario():
        rt.presence.connect(7, "tab", "online")
        first = asyncio.ensure_future(presence_mod.publish_presence(rt))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(presence_mod.publish_presence(rt))
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, second)

    run_async(scenario())
    assert rt.presence.published == {"agents_online": True,
                                     "departments": [{"id": 1, "name": "Sales"}, {"id": 2, "name": "Housing"}]}
    assert delivered[-1]["departments"] == [{"id": 1, "name": "Sales"}, {"id": 2, "name": "Housing"}]
