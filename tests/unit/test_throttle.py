"""The in-process rate-limit counters: sliding windows that forget."""

from jutella.accounts.throttle import MemoryThrottle

from tests.conftest import run_async


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_window_slides_and_refuses_exactly_at_the_limit():
    now = Now()
    th = MemoryThrottle(now)

    async def go():
        key = th.key("visitor-messages", "7")
        for _ in range(3):
            await th.hit(key, 60)
            now.t += 10
        assert await th.count(key, 60) == 3
        assert await th.retry_after(key, 60) == 30.0  # the first hit leaves the window 60 s after it
        now.t += 31  # the first hit (t=1000) is now out of the window
        assert await th.count(key, 60) == 2
        now.t += 100
        assert await th.count(key, 60) == 0
        assert await th.retry_after(key, 60) == 0.0

    run_async(go())


def test_reading_an_unknown_key_keeps_nothing_and_expired_keys_are_swept():
    now = Now()
    th = MemoryThrottle(now)

    async def go():
        assert await th.count(th.key("login", "a@example.org"), 900) == 0
        assert th._hits == {}  # a read alone stores nothing
        await th.hit(th.key("login", "a@example.org"), 900)
        await th.hit(th.key("login", "b@example.org"), 900)
        now.t += 3600
        await th.hit(th.key("login", "b@example.org"), 900)
        assert th.sweep(longest_window_s=1800) == 1  # a's last hit is an hour old
        assert await th.count(th.key("login", "b@example.org"), 900) == 1
        assert await th.count(th.key("login", "a@example.org"), 900) == 0

    run_async(go())
