"""The throttle's counters in Redis: one limit for every worker, nothing in
the clear, and sign-in refused (not unlimited) while Redis is away."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from jutella.accounts.throttle import Limit, ThrottleUnavailable
from jutella.realtime.redis_throttle import RedisThrottle
from tests.chat_clients import visitor
from tests.conftest import REDIS_URL, free_port, need, redis_reachable, run_async
from tests.helpers import PASSWORD, add_staff, error_code
from tests.integration.test_redis import private_redis  # noqa: F401  (a fixture)

pytestmark = pytest.mark.redis
SECRET = b"s" * 32


class Now:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def prefix():
    need(redis_reachable(), "Redis is not reachable on 127.0.0.1:6379")
    return f"jt-{uuid.uuid4().hex[:10]}"


def test_two_workers_share_one_limit_and_redis_holds_nothing_in_the_clear(prefix):
    now = Now()
    workers = [RedisThrottle(REDIS_URL, prefix, now, SECRET) for _ in range(2)]

    async def go():
        limit = Limit(workers[0].key("login-client", "192.0.2.77"), 900, 10)
        assert workers[1].key("login-client", "192.0.2.77") == limit.key  # the same secret, the same key

        async def attempt(i: int):
            reservation = await workers[i % 2].reserve(limit, strict=True)
            await asyncio.sleep(0.01)  # the password check
            return reservation

        results = await asyncio.gather(*(attempt(i) for i in range(40)))
        ok = [r for r in results if r]
        assert len(ok) == 10
        refused = next(r for r in results if not r)
        assert refused.refused == 0 and 899 <= refused.retry_after <= 900
        assert await workers[1].count(limit.key, 900) == 10
        await workers[0].release(ok[0])  # a right password given back, by the other worker's reservation
        assert await workers[1].count(limit.key, 900) == 9
        assert await workers[1].reserve(limit) and not await workers[0].reserve(limit)
        now.t += 901
        assert await workers[0].count(limit.key, 900) == 0 and await workers[0].retry_after(limit.key, 900) == 0

        raw = aioredis.from_url(REDIS_URL)
        try:
            names = [k.decode() async for k in raw.scan_iter(f"{prefix}:*")]
            assert names == [f"{prefix}:throttle:{limit.key}"]
            assert "192.0.2.77" not in names[0]
            members = await raw.zrange(names[0], 0, -1)
            assert members and all(b"192.0.2" not in m for m in members)
            assert 0 < await raw.pttl(names[0]) <= 900_000  # forgotten with its window
        finally:
            await raw.delete(*[n.encode() for n in names])
            await raw.aclose()
            for w in workers:
                await w.close()

    run_async(go())


def test_all_or_nothing_and_hit_in_redis(prefix):
    now = Now()
    th = RedisThrottle(REDIS_URL, prefix, now, SECRET)

    async def go():
        a, b = th.key("offline-client", "x"), th.key("offline-all", "-")
        for _ in range(3):
            assert await th.hit(b, 60) >= 1  # the old hit-then-check callers
        now.t += 5
        r = await th.reserve(Limit(a, 60, 5), Limit(b, 60, 3))
        assert not r and r.refused == 1 and r.retry_after == 55.0
        assert await th.count(a, 60) == 0  # nothing counted under the limit that had room
        assert await th.hit(b, 60) == 4
        await th.reset(b)
        assert await th.count(b, 60) == 0 and await th.reserve(Limit(a, 60, 5), Limit(b, 60, 3))
        await th.reset(a)
        await th.close()

    run_async(go())


def test_unreachable_redis_refuses_strict_limits_and_keeps_others_per_worker():
    now = Now()
    th = RedisThrottle(f"redis://127.0.0.1:{free_port()}/0", "jt-down", now, SECRET)

    async def go():
        key = th.key("login-account", "aino@example.org")
        with pytest.raises(ThrottleUnavailable):
            await th.reserve(Limit(key, 900, 10), strict=True)
        # a chat limit goes on in this worker's memory: still a limit
        chats = th.key("visitor-conversations", "7")
        assert all([await th.reserve(Limit(chats, 3600, 2)) for _ in range(2)])
        assert not await th.reserve(Limit(chats, 3600, 2))
        assert await th.hit(chats, 3600) == 3 and await th.count(chats, 3600) == 3
        await th.close()

    run_async(go())


@pytest.fixture
def settings_overrides(private_redis):  # noqa: F811
    return {"redis_url": f"redis://127.0.0.1:{private_redis.port}/0"}


def test_sign_in_answers_503_while_redis_is_down_and_chat_goes_on(live, private_redis):  # noqa: F811
    add_staff(live, "aino@example.org", ["agent"])
    http = live.client()
    login = {"email": "aino@example.org", "password": PASSWORD}
    assert http.post("/api/v1/public/staff/login", json=login).status_code == 200
    private_redis.stop()
    r = http.post("/api/v1/public/staff/login", json=login)
    assert r.status_code == 503 and error_code(r) == "throttle_unavailable" and r.headers["Retry-After"] == "30"
    v, _ = visitor(live)  # a visitor's limits fall back to this worker's counters
    v.message("hello while redis is down")
    assert v.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"
    private_redis.start()
    assert http.post("/api/v1/public/staff/login", json=login).status_code == 200
