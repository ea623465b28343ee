"""A closed-loop measurement of CPU per message (docs/performance.md, "The
cost of a message"): ``python -m jutella.bench.closed --senders 8`` starts its
own server like ``jutella bench``, opens the visitors and agents, then each of
K senders sends a visitor message and waits for its ack before sending the
next, for S seconds. The batches the server commits depend on K, not on how
much of a shared machine the server gets, so two versions run alternately
can be compared on a loaded machine where open-loop CPU per message moves
with latency. Prints one JSON line: messages a second and CPU per delivered
message by process group (bench/procs.py)."""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import orjson

from . import run as R
from .load import Load, Stats
from .procs import Processes, per_message


async def _measure(server: R.Server, cookies: list[str], args) -> dict:
    load = Load(f"ws://127.0.0.1:{server.port}", server.url, cookies)
    await load.connect_all(args.visitors, args.agents, lambda n, total: None)
    procs = Processes(server.proc.pid, "jutella")
    await asyncio.sleep(min(2.0, args.duration / 2))  # the connections settle (1 s for a 2 s smoke run)
    load.stats = stats = Stats()
    loop = asyncio.get_running_loop()
    end = loop.time() + args.duration
    pick = random.Random(1)  # which visitor sends next, not a secret  # nosec B311

    async def sender() -> None:
        while loop.time() < end:
            visitor = pick.choice(load.visitors)
            mid = f"c-{next(load.ids)}"
            acked = loop.create_future()
            visitor.waiters[mid] = acked
            stats.pending[mid] = time.perf_counter()
            stats.sent += 1
            await visitor.send({"type": "message", "client_id": mid, "body": f"b:{mid}"})
            await asyncio.wait_for(acked, 30)

    before, t0 = procs.snapshot(), time.time()
    await asyncio.gather(*(sender() for _ in range(args.senders)))
    for _ in range(100):  # the last events and the agents' answers
        if not stats.pending:
            break
        await asyncio.sleep(0.05)
    cpu = per_message(before, procs.snapshot(), stats.delivered, time.time() - t0)
    wall = time.time() - t0
    await load.close()
    return {"senders": args.senders, "workers": args.workers, "delivered": stats.delivered,
            "lost": len(stats.pending), "duplicated": stats.duplicated, "rate_mps": round(stats.delivered / wall),
            **cpu, "load": Path("/proc/loadavg").read_text().split()[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m jutella.bench.closed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    R.raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="jutella-closed-") as tmp:
        server = R.start_jutella(args.workers, Path(tmp))
        try:
            cookies = asyncio.run(R.make_agents(args.agents, Path(tmp), server.port))
            out = asyncio.run(_measure(server, cookies, args))
        finally:
            server.stop()
    print(orjson.dumps(out).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
