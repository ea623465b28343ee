"""An agent console's list updates held and sent together
(realtime/coalesce.py), on a fake loop clock: no server, no sleeps."""

from __future__ import annotations

from jutella.realtime.coalesce import LIST_UPDATE_INTERVAL, ListUpdates


class FakeLoop:
    """The two things ListUpdates asks of a loop: the time and a timer."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[list] = []  # [when, callback, cancelled]

    def time(self) -> float:
        return self.now

    def call_at(self, when, callback):
        timer = [when, callback, False]
        self.timers.append(timer)

        class Handle:
            def cancel(self_inner) -> None:
                timer[2] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in [t for t in self.timers if t[0] <= self.now and not t[2]]:
            self.timers.remove(timer)
            timer[1]()


def update(conv: int, state: str = "waiting", **extra) -> dict:
    return {"type": "conversation", "conversation": {"id": conv, "state": state}, **extra}


def make():
    loop, woken = FakeLoop(), []
    return loop, woken, ListUpdates(loop, lambda: woken.append(loop.time()))  # type: ignore[arg-type]


def test_the_first_update_after_a_quiet_spell_goes_at_once_without_the_server_flag():
    loop, woken, lists = make()
    assert lists.take() is None  # nothing held
    lists.hold(update(1, restricted=False))
    assert lists.take() == update(1)  # one update: as it is, without "restricted"
    assert lists.take() is None and not loop.timers


def test_updates_within_the_interval_go_together_newest_of_each_conversation_in_order():
    loop, woken, lists = make()
    lists.hold(update(1))
    assert lists.take() == update(1)
    loop.advance(LIST_UPDATE_INTERVAL / 4)
    lists.hold(update(2))
    lists.hold(update(1, "active"))
    lists.hold(update(3))
    assert lists.take() is None  # too soon after the last: held, with a timer
    assert lists.take() is None and len(loop.timers) == 1  # one timer, not one a call
    lists.hold(update(2, "active"))
    loop.advance(LIST_UPDATE_INTERVAL)
    assert woken == [loop.time()]  # the connection is woken when they fall due
    assert lists.take() == {"type": "conversations",
                            "items": [update(1, "active"), update(3), update(2, "active")]}
    assert lists.take() is None


def test_new_survives_a_later_update_and_a_dropped_conversation_is_not_sent():
    loop, woken, lists = make()
    lists.hold(update(5, new=True))
    lists.hold(update(5, "active"))
    lists.hold(update(6))
    lists.drop(6)  # this console may no longer see it
    assert lists.take() == update(5, "active", new=True)


def test_a_transfer_survives_a_later_update_of_the_same_conversation():
    # the receiver hears of it on its own channel, then on the queue it left
    # (or from an auto-assignment): the console must still learn it was a transfer
    loop, woken, lists = make()
    note = {"from_agent_id": 1, "from_name": "Aino", "note": None}
    lists.hold(update(7, "active", transfer=note))
    lists.hold(update(7, "active"))
    assert lists.take() == update(7, "active", transfer=note)


def test_cancel_leaves_no_timer_behind():
    loop, woken, lists = make()
    lists.hold(update(1))
    lists.take()
    lists.hold(update(2))
    assert lists.take() is None and loop.timers
    lists.cancel()
    loop.advance(1)
    assert woken == []
