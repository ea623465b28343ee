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


# -- reserve: counted and checked in one step ---------------------------------------------
def test_parallel_reservations_pass_at_most_the_limit():
    """40 tasks that each reserve, then do slow work (an await) before any
    of them could count afterwards: exactly the limit get through."""
    import asyncio

    from jutella.accounts.throttle import Limit

    now = Now()
    th = MemoryThrottle(now)
    limit = Limit(th.key("login-account", "aino@example.org"), 900, 10)
    checked: list[int] = []

    async def attempt(i: int) -> bool:
        reservation = await th.reserve(limit)
        if not reservation:
            return False
        await asyncio.sleep(0)  # the password check, during which the others run
        checked.append(i)
        return True

    async def go():
        return await asyncio.gather(*(attempt(i) for i in range(40)))

    results = run_async(go())
    assert results.count(True) == 10 and len(checked) == 10


def test_a_reservation_is_all_or_nothing_and_can_be_given_back():
    from jutella.accounts.throttle import Limit

    now = Now()
    th = MemoryThrottle(now)
    account, client = th.key("login-account", "a@example.org"), th.key("login-client", "192.0.2.1")

    async def go():
        for _ in range(2):
            assert await th.reserve(Limit(client, 60, 2))
        now.t += 10
        refused = await th.reserve(Limit(account, 60, 5), Limit(client, 60, 2))
        assert not refused and refused.refused == 1
        assert refused.retry_after == 50.0  # the first client hit leaves the window at t=1060
        assert await th.count(account, 60) == 0  # the account's limit had room but counted nothing
        await th.release(refused)  # harmless
        now.t += 51  # t=1061: both client hits have left the window
        first = await th.reserve(Limit(account, 60, 5), Limit(client, 60, 2))
        ok = await th.reserve(Limit(account, 60, 5), Limit(client, 60, 2))
        assert first and ok and await th.count(account, 60) == 2 and await th.count(client, 60) == 2
        await th.release(ok)  # a right password: the attempt does not count
        assert await th.count(account, 60) == 1 and await th.count(client, 60) == 1
        await th.release(ok)  # twice is once
        assert await th.count(account, 60) == 1 and await th.count(client, 60) == 1

    run_async(go())


def test_retry_after_of_a_full_window_is_when_one_more_fits():
    """hit() may push a key past its limit (hit-then-check callers count
    refused ones too): the wait is until the count is below the limit."""
    from jutella.accounts.throttle import Limit

    now = Now()
    th = MemoryThrottle(now)
    key = th.key("x", "y")

    async def go():
        for _ in range(4):
            assert await th.hit(key, 100) >= 1
            now.t += 1
        refused = await th.reserve(Limit(key, 100, 2))  # hits at 1000..1003, now 1004
        assert not refused and refused.retry_after == 98.0  # the hit of t=1002 leaves at 1102: one remains
        assert await th.hit(key, 100) == 5 and await th.reserve(Limit(key, 100, 10))

    run_async(go())


def test_the_shared_secret_is_made_once_and_kept(tmp_path):
    from jutella.accounts.throttle import shared_secret

    first = shared_secret(tmp_path / "data")
    assert len(first) == 32 and shared_secret(tmp_path / "data") == first
    assert oct((tmp_path / "data" / "throttle.key").stat().st_mode & 0o777) == "0o600"
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "throttle.key"]  # no temporary left
    assert shared_secret(tmp_path / "other", "from settings") == shared_secret(tmp_path / "x", "from settings")
    a, b = MemoryThrottle(Now(), first), MemoryThrottle(Now(), shared_secret(tmp_path / "data"))
    assert a.key("login-client", "192.0.2.1") == b.key("login-client", "192.0.2.1")
    assert "192.0.2.1" not in a.key("login-client", "192.0.2.1")
