"""Two servers on PostgreSQL + Redis: Redis restarting mid-conversation loses nothing."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.chat_clients import agent, visitor
from tests.conftest import free_port, need, run_async
from tests.helpers import add_staff, sign_in


@pytest.fixture
def backend():
    return "pg+redis"


class PrivateRedis:
    """A redis-server of this test's own, so stopping it disturbs nobody else."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.proc = None
        self.options = list(options)  # more redis-server options (a password, a Unix socket)

    def start(self) -> "PrivateRedis":
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", *self.options], stdout=subprocess.DEVNULL)
        import socket
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis():
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    r = PrivateRedis().start()
    yield r
    r.stop()


@pytest.fixture
def settings_overrides(private_redis):
    return {"redis_url": f"redis://127.0.0.1:{private_redis.port}/0"}


def events(client, n, timeout=15):
    return [client.until(lambda f: f["type"] == "event", timeout=timeout)["seq"] for _ in range(n)]


def wait_health(live, status, timeout=15):
    for _ in range(int(timeout * 20)):
        body = live.client().get("/healthz").json()
        if body["status"] == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"/healthz never said {status}: {body}")


def test_redis_restart_mid_conversation_loses_nothing(live, private_redis):
    assert live.peer is not None
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    v, w = visitor(live)  # on server A
    v.message("before")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a, _ = agent(live, http, subscriptions={conv: 0})  # on server B
    a.send(type="accept", conversation=conv)
    assert events(a, 2) == [1, 2]
    assert events(v, 2) == [1, 2]

    private_redis.stop()
    # the chat goes on (200), the body names what is down (docs/deployment.md)
    assert wait_health(live, "degraded") == {"status": "degraded", "redis": "unavailable"}
    assert live.client().get("/healthz").status_code == 200
    # both sides keep writing: each write is committed and acked meanwhile
    v.message("during 1")
    a.message("during 2", conversation=conv)
    acks = [v.until(lambda f: f["type"] == "ack")["seq"], a.until(lambda f: f["type"] == "ack")["seq"]]
    assert sorted(acks) == [3, 4]

    private_redis.start()
    assert wait_health(live, "ok") == {"status": "ok"}
    assert wait_health(live.peer, "ok") == {"status": "ok"}
    v.message("after")
    # every side ends with 1..5 exactly once, in order
    assert events(v, 3) == [3, 4, 5]
    assert events(a, 3) == [3, 4, 5]


def test_two_workers_do_not_bounce_presence_announcements(live, private_redis):
    """Found by the 2-worker benchmark: each worker answered the other's
    presence announcement with one of its own, for ever, and read the
    database each time (two workers at 130% CPU with nothing to do). Now a
    worker announces only its own changes and its 2-second heartbeat."""
    import redis

    assert live.peer is not None
    add_staff(live, "aino@example.org", ["agent"])
    a, _ = agent(live, sign_in(live, "aino@example.org"))  # on server B: a presence change to announce
    v, welcome = visitor(live)  # on server A: learns of it through Redis
    assert welcome["agents_online"] is True
    client = redis.Redis(port=private_redis.port)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(live.rt.hub.channel.rsplit(":", 1)[0] + ":*")  # every worker's channel
    announcements = 0
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message and b'"_presence"' in message["data"]:
            announcements += 1
    pubsub.close()
    client.close()
    # two workers, a heartbeat each every 2 s: a handful in 4 s, not thousands
    assert 2 <= announcements <= 8, announcements


def test_a_workers_publishes_reach_the_other_not_itself_also_after_redis_drops_its_connection(private_redis):
    """A worker's batches reach the other worker and not itself (it is not
    woken for them). Its publishing connection has Redis's replies turned
    off (realtime/redis_hub.py ``_publish_data``), so no reply ever tells it
    that Redis closed it: the closing must still be noticed before the next
    PUBLISH, or that batch would vanish into a dead socket. Two hubs (two
    workers) on a real Redis: everything A publishes reaches B in order,
    before and after Redis kills A's publishing connection."""
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from jutella.realtime.redis_hub import RedisHub

    url = f"redis://127.0.0.1:{private_redis.port}/0"

    async def scenario():
        prefix = f"jt-{uuid.uuid4().hex[:10]}"
        a, b = RedisHub(url, prefix), RedisHub(url, prefix)
        await a.start()
        await b.start()
        admin = aioredis.from_url(url)
        got: list[int] = []
        try:
            heard_by_a: list[bytes] = []
            dispatch = a._dispatch
            a._dispatch = lambda data: (heard_by_a.append(data[:16]), dispatch(data))
            async with b.subscribe(["conversation:1"], lambda: None) as sub:
                async def publish_and_wait(seqs):
                    for seq in seqs:
                        await a.publish("conversation:1", {"seq": seq})
                        await asyncio.sleep(0)
                    for _ in range(200):
                        got.extend(event["seq"] for _channel, event in sub.take(1000))
                        if got and got[-1] == seqs[-1]:
                            return
                        await asyncio.sleep(0.01)

                await publish_and_wait([0])
                opened = (await admin.info("stats"))["total_connections_received"]
                await publish_and_wait(list(range(1, 101)))
                # and keeps it: one connection for all its PUBLISHes, not one each
                assert (await admin.info("stats"))["total_connections_received"] == opened
                publishers = [c for c in await admin.client_list() if c["cmd"] == "publish"]
                assert len(publishers) == 1, publishers  # one connection of A's own publishes
                await admin.client_kill_filter(_id=publishers[0]["id"])
                await asyncio.sleep(0.1)  # Redis has closed it
                await publish_and_wait(list(range(101, 201)))
        finally:
            await admin.aclose()
            await a.stop()
            await b.stop()
        return got, heard_by_a, a.origin.encode()

    got, heard_by_a, origin = run_async(scenario())
    assert got == list(range(201))
    assert origin not in heard_by_a  # A is not woken for its own batches


def test_a_worker_hears_every_other_worker_once_and_never_itself(private_redis):
    """A worker listens with one pattern per character of its origin id
    (realtime/redis_hub.py ``others``): Redis itself says how many listeners
    each PUBLISH reached: exactly one for the channel of any other id, none
    for the worker's own; glob characters in the prefix match only
    themselves."""
    import secrets

    import redis

    from jutella.realtime.redis_hub import others

    client = redis.Redis(port=private_redis.port)
    pubsub = client.pubsub()
    prefix = "jt-[a]*"
    mine = secrets.token_hex(8)
    pubsub.psubscribe(*others(prefix, mine))
    try:
        assert client.publish(f"{prefix}:hub:{mine}", b"x") == 0
        for _ in range(300):
            theirs = secrets.token_hex(8)
            assert client.publish(f"{prefix}:hub:{theirs}", b"x") == 1, theirs
        for near in (mine[:-1] + ("0" if mine[-1] != "0" else "1"), ("0" if mine[0] != "0" else "1") + mine[1:]):
            assert client.publish(f"{prefix}:hub:{near}", b"x") == 1, near
        assert client.publish(f"jt-a-x:hub:{secrets.token_hex(8)}", b"x") == 0  # [a]* in the prefix is not a glob
    finally:
        pubsub.close()
        client.close()


def _exchange(url_a: str, url_b: str, prefix: str):
    """Two hubs on the given URLs: what each publishes, the other hears."""
    import asyncio

    from jutella.realtime.redis_hub import RedisHub

    async def scenario():
        a, b = RedisHub(url_a, prefix), RedisHub(url_b, prefix)
        await a.start()
        await b.start()
        heard: dict[str, list[int]] = {"a": [], "b": []}
        try:
            async with a.subscribe(["conv:1"], lambda: None) as sub_a, \
                    b.subscribe(["conv:1"], lambda: None) as sub_b:
                for n in range(20):
                    await a.publish("conv:1", {"from": "a", "n": n})
                    await b.publish("conv:1", {"from": "b", "n": n})
                for _ in range(300):
                    heard["a"] += [e["n"] for _c, e in sub_a.take(1000) if e["from"] == "b"]
                    heard["b"] += [e["n"] for _c, e in sub_b.take(1000) if e["from"] == "a"]
                    if len(heard["a"]) == len(heard["b"]) == 20:
                        break
                    await asyncio.sleep(0.01)
            return a.healthy, b.healthy, heard
        finally:
            await a.stop()
            await b.stop()

    return run_async(scenario())


def test_hubs_sign_in_with_the_urls_password_over_tcp_and_a_unix_socket(tmp_path):
    """The hub's own connections (realtime/redis_link.py) read the URL as
    redis-py does: a password in a ``redis://`` URL and in a ``unix://`` one
    is sent with AUTH, and the two hubs hear each other in order. A wrong
    password leaves a hub unhealthy, and what it logs does not contain the
    password."""
    import logging
    import uuid

    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    sock = tmp_path / "redis.sock"
    server = PrivateRedis("--requirepass", "s3cret-pw", "--unixsocket", str(sock), "--unixsocketperm", "700").start()
    try:
        prefix = f"jt-{uuid.uuid4().hex[:10]}"
        tcp = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
        unix = f"unix://{sock}?password=s3cret-pw"
        healthy_a, healthy_b, heard = _exchange(tcp, unix, prefix)
        assert healthy_a and healthy_b
        assert heard == {"a": list(range(20)), "b": list(range(20))}

        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logging.getLogger("jutella.redis").addHandler(handler)
        try:
            import asyncio

            from jutella.realtime.redis_hub import RedisHub

            async def wrong():
                hub = RedisHub(f"redis://:not-the-pw@127.0.0.1:{server.port}/0", prefix)
                await hub.start()  # waits up to a second for the subscription
                await asyncio.sleep(0.3)
                healthy = hub.healthy
                await hub.publish("conv:1", {"n": 1})  # a publish that cannot go out is dropped, not raised
                await asyncio.sleep(0.1)
                await hub.stop()
                return healthy

            assert run_async(wrong()) is False
        finally:
            logging.getLogger("jutella.redis").removeHandler(handler)
        logged = " ".join(r.getMessage() for r in records)
        assert "redis publish failed" in logged  # the failure is told ...
        assert "not-the-pw" not in logged and "s3cret-pw" not in logged  # ... without the password
    finally:
        server.stop()


def test_a_listener_whose_redis_stops_answering_reconnects_and_resynchronises(monkeypatch):
    """Redis that hangs (here: ``DEBUG SLEEP``) sends no RST: the listening
    link is pinged after PING_EVERY seconds of silence and dropped after
    twice that, the hub says it is degraded meanwhile, and once Redis answers
    again its local clients are told to resynchronise from the database."""
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from jutella.realtime import redis_hub
    from jutella.realtime.redis_hub import RedisHub

    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    monkeypatch.setattr(redis_hub, "PING_EVERY", 0.2)
    server = PrivateRedis("--enable-debug-command", "yes").start()
    url = f"redis://127.0.0.1:{server.port}/0"

    async def scenario():
        hub = RedisHub(url, f"jt-{uuid.uuid4().hex[:10]}")
        await hub.start()
        admin = aioredis.from_url(url)
        seen_unhealthy = False
        try:
            async with hub.subscribe(["conv:1"], lambda: None) as sub:
                assert hub.healthy
                sleeper = asyncio.create_task(admin.execute_command("DEBUG", "SLEEP", "1.5"))
                for _ in range(300):
                    seen_unhealthy = seen_unhealthy or not hub.healthy
                    if seen_unhealthy and hub.healthy:
                        break
                    await asyncio.sleep(0.01)
                await sleeper
                return seen_unhealthy, hub.healthy, [e for _c, e in sub.take(1000)]
        finally:
            await admin.aclose()
            await hub.stop()

    try:
        seen_unhealthy, healthy, events_ = run_async(scenario())
    finally:
        server.stop()
    assert seen_unhealthy and healthy
    assert {"type": "_resync"} in events_
