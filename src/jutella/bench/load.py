"""The load driver: real WebSocket clients speaking the real protocol.

V visitors each start a conversation; the conversations are shared out among
A agents, who subscribe to and accept them. Then visitors send at an aggregate
rate R; each message carries its id, and the agent it reaches answers every
fifth one. Latency is measured end to end (send -> the other side's event) in
this one process; a message counts as delivered when its event reaches the
other side, lost when it never does, duplicated when it arrives twice.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import connect

REPLY_EVERY = 5


@dataclass
class Stats:
    sent: int = 0
    delivered: int = 0
    duplicated: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    pending: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def received(self, body: str) -> bool:
        """Record a message event; True when it is one of this run's, first time."""
        if not body.startswith("b:"):
            return False
        mid = body[2:]
        if mid in self.seen:
            self.duplicated += 1
            return False
        sent_at = self.pending.pop(mid, None)
        if sent_at is None:
            return False  # a previous step's straggler
        self.seen.add(mid)
        self.delivered += 1
        self.latencies.append(time.perf_counter() - sent_at)
        return True


class Peer:
    """One connection, visitor or agent."""

    def __init__(self, ws, role: str):
        self.ws = ws
        self.role = role
        self.conversations: list[int] = []
        self.task: asyncio.Task | None = None
        self.waiters: dict[str, asyncio.Future] = {}

    async def send(self, frame: dict) -> None:
        await self.ws.send(orjson.dumps(frame).decode())


class Load:
    def __init__(self, ws_base: str, origin: str, cookies: list[str] | None):
        self.ws_base = ws_base
        self.origin = origin
        self.cookies = cookies
        self.visitors: list[Peer] = []
        self.agents: list[Peer] = []
        self.stats = Stats()
        self.ids = itertools.count()
        self.owner: dict[int, Peer] = {}  # conversation -> agent
        self.setup_complete = True

    async def _open(self, path: str, role: str, cookie: str | None = None) -> Peer:
        headers = {"Cookie": cookie} if cookie else None
        for attempt in range(5):
            try:
                ws = await connect(self.ws_base + path, origin=self.origin, additional_headers=headers,
                                   compression=None, max_size=2**20, ping_interval=None, open_timeout=30)
                break
            except OSError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        peer = Peer(ws, role)
        peer.task = asyncio.create_task(self._read(peer))
        return peer

    async def _read(self, peer: Peer) -> None:
        try:
            async for raw in peer.ws:
                stats = self.stats  # each step has its own
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "event":
                    if frame.get("kind") == "message" and frame.get("author") != peer.role:
                        if stats.received(frame.get("body") or "") and peer.role == "agent":
                            n = int(frame["body"].rsplit(":", 1)[-1].split("-")[-1])
                            if n % REPLY_EVERY == 0:
                                asyncio.get_running_loop().create_task(
                                    self._send_message(peer, frame["conversation"]))
                elif kind == "ack":
                    fut = peer.waiters.pop(frame["client_id"], None)
                    if fut and not fut.done():
                        fut.set_result(frame)
                elif kind == "welcome":
                    fut = peer.waiters.pop("welcome", None)
                    if fut and not fut.done():
                        fut.set_result(frame)
                elif kind == "ping":
                    await peer.send({"type": "pong"})
                elif kind == "pong":
                    fut = peer.waiters.pop("pong", None)
                    if fut and not fut.done():
                        fut.set_result(frame)
                elif kind == "error":
                    stats.errors += 1
        except Exception:  # a reader ends when its connection does  # nosec B110
            pass

    async def _hello(self, peer: Peer, frame: dict) -> dict:
        fut = asyncio.get_running_loop().create_future()
        peer.waiters["welcome"] = fut
        await peer.send(frame)
        return await asyncio.wait_for(fut, 30)

    async def connect_all(self, visitors: int, agents: int, progress) -> None:
        for i in range(agents):
            cookie = self.cookies[i % len(self.cookies)] if self.cookies else None
            peer = await self._open("/ws/agent", "agent", cookie)
            await self._hello(peer, {"type": "hello", "subscriptions": {}})
            self.agents.append(peer)
        sem = asyncio.Semaphore(200)

        async def one(i: int) -> None:
            async with sem:
                peer = await self._open("/ws/visitor", "visitor")
                hello = {"type": "hello", "last_seq": 0, "lang": "fi", "page": "https://bench.example/",
                         "referrer": ""}
                hello["token"] = None  # a new visitor
                await self._hello(peer, hello)
                cid = f"start-{i}"
                fut = asyncio.get_running_loop().create_future()
                peer.waiters[cid] = fut
                await peer.send({"type": "message", "client_id": cid, "body": "hello"})
                ack = await asyncio.wait_for(fut, 60)
                peer.conversations.append(ack["conversation"])
                self.visitors.append(peer)
                progress(len(self.visitors), visitors)

        await asyncio.gather(*(one(i) for i in range(visitors)))
        # share the conversations out; each agent subscribes and accepts
        for n, visitor in enumerate(self.visitors):
            agent = self.agents[n % len(self.agents)]
            conv = visitor.conversations[0]
            agent.conversations.append(conv)
            self.owner[conv] = agent
            await agent.send({"type": "subscribe", "conversation": conv, "last_seq": 0})
            await agent.send({"type": "accept", "conversation": conv})
        # A connection handles its frames in order: its pong means the server
        # has done every subscribe and accept before it. Measure only after that.
        waits = []
        for agent in self.agents:
            fut = asyncio.get_running_loop().create_future()
            agent.waiters["pong"] = fut
            await agent.send({"type": "ping"})
            waits.append(fut)
        # the set-up is not what is measured, but it must finish: allow 180 s,
        # or 30 ms a conversation when there are more than 6,000
        done, pending = await asyncio.wait(waits, timeout=max(180.0, 0.03 * len(self.visitors)))
        self.setup_complete = not pending
        await asyncio.sleep(0.5)

    async def _send_message(self, peer: Peer, conversation: int | None) -> None:
        mid = f"{id(self) % 1000}-{next(self.ids)}"
        self.stats.pending[mid] = time.perf_counter()
        self.stats.sent += 1
        frame = {"type": "message", "client_id": mid, "body": f"b:{mid}"}
        if conversation is not None:
            frame["conversation"] = conversation
        try:
            await peer.send(frame)
        except Exception:
            self.stats.errors += 1

    async def drive(self, rate: float, duration: float, progress) -> Stats:
        """Send at ``rate`` messages a second for ``duration`` seconds, then wait
        for stragglers (up to 5 s) and return this step's statistics."""
        self.stats = Stats()
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(rate * duration)
        order = list(range(len(self.visitors)))
        random.shuffle(order)
        for i in range(total):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            visitor = self.visitors[order[i % len(order)]]
            loop.create_task(self._send_message(visitor, None))
            if i % max(1, int(rate / 4)) == 0:
                progress(loop.time() - start, duration, self.stats)
        deadline = loop.time() + 5
        while self.stats.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        progress(duration, duration, self.stats)
        return self.stats

    async def close(self) -> None:
        for peer in self.visitors + self.agents:
            try:
                await peer.ws.close()
            except Exception:  # closing what may already be closed  # nosec B110
                pass
            if peer.task:
                peer.task.cancel()


def percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    data = sorted(latencies)

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 2)

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": round(data[-1] * 1000, 2)}


def bar(done: float, total: float, width: int = 30) -> str:
    frac = 0 if total <= 0 else min(1.0, done / total)
    filled = int(frac * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {frac * 100:5.1f}%"


_last_stage: list[str | None] = [None]  # the stage status() last reported (one bench run per process)


def status(text: str, *, stage: str | None = None, last: bool = False, stream=None) -> None:
    """Progress on stderr. On a terminal: one line, redrawn in place (``\r``).
    To a file or a pipe: whole lines, one when a ``stage`` begins and one
    when it ends (``last``), and every report that names no stage; the
    reports in between (a bar's every step) are not written at all, so a log
    gets a line per stage rather than thousands of carriage returns."""
    out = stream or sys.stderr
    if out.isatty():
        out.write("\r" + text[:150].ljust(150))
    elif stage is None or stage != _last_stage[0] or last:
        out.write(text + "\n")
    _last_stage[0] = stage
    out.flush()


def status_end(stream=None) -> None:
    """End the redrawn line before other output (on a terminal only)."""
    out = stream or sys.stderr
    if out.isatty():
        out.write("\n")
        out.flush()
