"""Orchestrates ``jutella bench``: starts its own server (and the bare relay
for --baseline) on free ports, runs the load, measures the server's memory and
CPU from /proc, and prints a table and, as its last line, one JSON object."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess  # the benchmark starts its own server and relay  # nosec B404
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from .load import Load, bar, percentiles, status, status_end
from .procs import Processes, breakdown, database_name, per_message

PASSWORD = "throwaway-load-test-passphrase"  # throwaway accounts in the benchmark's temporary database  # nosec B105
P99_LIMIT_MS = 50.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                pids += process_tree(int(entry.name))
    return pids


def rss_kib(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    kind: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"jutella bench: the server exited (status {proc.returncode})")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("jutella bench: the server did not become healthy")


def start_jutella(workers: int, data_dir: Path) -> Server:
    port = free_port()
    env = {**os.environ, "JUTELLA_PORT": str(port), "JUTELLA_HOST": "127.0.0.1", "JUTELLA_DATA_DIR": str(data_dir),
           "JUTELLA_PUBLIC_URL": f"http://127.0.0.1:{port}", "JUTELLA_LOG_LEVEL": "warning",
           "JUTELLA_MAX_CONNECTIONS_PER_CLIENT": "0", "JUTELLA_MAX_MESSAGES_PER_MINUTE": "0",
           # hundreds of conversations per bench agent: no staffing limit, no rate limits
           "JUTELLA_MAX_CONCURRENT_CHATS": "0", "JUTELLA_MAX_CONVERSATIONS_PER_HOUR": "0",
           # every visitor comes from 127.0.0.1: no cap on new conversations per address (the 31st
           # visitor was refused and the set-up waited for its ack for ever)
           "JUTELLA_MAX_CONVERSATIONS_PER_CLIENT": "0",
           # every client is 127.0.0.1 and up to 200 connect at once: no cap on those waiting for headers
           "JUTELLA_MAX_WAITING_CONNECTIONS_PER_ADDRESS": "0"}
    # a fixed argv: this Python, this package; `jutella serve` itself, so the server measured is
    # tuned as in production (cli.served_app -> tuning.tune_process in each worker)
    log = open(os.environ["JUTELLA_BENCH_SERVER_LOG"], "ab") if os.environ.get("JUTELLA_BENCH_SERVER_LOG") \
        else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "jutella.cli", "serve", "--workers", str(workers)],  # nosec B603
                            env=env, stdout=log, stderr=log)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return Server(proc, port, "jutella")


def start_relay() -> Server:
    port = free_port()
    # a fixed argv: this Python, this package; `jutella serve` itself, so the server measured is
    # tuned as in production (cli.served_app -> tuning.tune_process in each worker)
    proc = subprocess.Popen([sys.executable, "-m", "jutella.bench.relay", str(port)],  # nosec B603
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        raise SystemExit("jutella bench: the relay did not start")
    return Server(proc, port, "relay")


async def make_agents(n: int, data_dir: Path, port: int) -> list[str]:
    """Agent accounts, made directly in the database, then signed in over HTTP."""
    from jutella.accounts import actions
    from jutella.services import build_runtime
    from jutella.settings import load_settings

    os.environ["JUTELLA_DATA_DIR"] = str(data_dir)
    rt = build_runtime(load_settings())
    try:
        existing = {a.email for a in await actions.list_accounts(rt)}
        for i in range(n):
            email = f"bench-agent-{i}@bench.invalid"
            if email not in existing:
                await actions.create_account(rt, actor_id=None, email=email, name=f"Agent {i}", roles=["agent"],
                                             password=PASSWORD)
    finally:
        await rt.db.dispose()
    cookies = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for i in range(n):
            r = await http.post("/api/v1/public/staff/login",
                                json={"email": f"bench-agent-{i}@bench.invalid", "password": PASSWORD})
            r.raise_for_status()
            cookies.append(f"jutella_session={r.cookies['jutella_session']}")
    return cookies


async def analyze() -> None:
    """PostgreSQL: gather the planner's statistics once the conversations are
    open, before anything is measured. A fresh database has none (every
    table's ``reltuples`` is -1 until autovacuum analyzes it, about a minute
    in), and without them PostgreSQL found an agent's conversation by
    scanning the index on ``state`` through all 500 active conversations
    instead of by its primary key: an agent's message cost 228 us of
    statement time instead of 125. A ramp would switch from those plans to
    the right ones at whichever step autovacuum happened to reach the tables;
    a server in use has its statistics. SQLite: nothing (its measurements
    have always run without ``ANALYZE``)."""
    if database_name() is None:
        return
    from sqlalchemy import text

    from jutella.settings import load_settings
    from jutella.store.db import Database

    db = Database(load_settings().sqlalchemy_url, pool_size=1)
    try:
        async with db.connection() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    finally:
        await db.dispose()


REFINE_STEPS = 3  # halvings of the gap after the ramp's first failure
IDLE_WINDOW_S = 2.0  # CPU measured with nothing connected (at most; a short run measures for less)
OPEN_WINDOW_S = 5.0  # CPU measured with every connection open and nothing sent (likewise)
SETTLE_S = 5.0  # a pause after a failed step before the next


def next_rate(rate: float, passed: float | None, failed: float | None, refine: int) -> float | None:
    """The ramp's next step, or None when it is done: up by half until a
    step fails (down by half while none has passed yet), then halve the gap
    between the highest pass and the lowest failure ``refine`` more times
    (the sustainable rate to within about a tenth of the last step)."""
    if failed is None:
        return float(round(rate * 1.5))
    if passed is None:
        return float(round(failed / 2)) if failed >= 2 else None
    if refine <= 0:
        return None
    return float(round((passed + failed) / 2))


def step_result(stats, rate: float, duration: float) -> dict[str, Any]:
    lost = len(stats.pending)
    out = {"rate": rate, "sent": stats.sent, "delivered": stats.delivered, "lost": lost,
           "duplicated": stats.duplicated, "errors": stats.errors, **percentiles(stats.latencies),
           "throughput_mps": round(stats.delivered / duration, 1)}
    out["ok"] = lost == 0 and stats.duplicated == 0 and stats.errors == 0 and out["p99_ms"] <= P99_LIMIT_MS
    return out


async def run_load(server: Server, args, cookies: list[str] | None, label: str) -> dict[str, Any]:
    ws_base = f"ws://127.0.0.1:{server.port}"
    load = Load(ws_base, server.url, cookies)
    rss_idle = rss_kib(server.proc.pid)
    procs = Processes(server.proc.pid, server.kind)
    # the two quiet windows scale with --duration: the default 10 s step measures 2 s and 5 s, a 2 s smoke run
    # 1 s and 2 s (the same fields, from a shorter sample)
    idle_window, open_window = min(IDLE_WINDOW_S, args.duration / 2), min(OPEN_WINDOW_S, args.duration)
    cpu_idle, t_idle = procs.snapshot(), time.time()
    await asyncio.sleep(idle_window)  # what the server spends with nothing connected
    cpu_idle = per_message(cpu_idle, procs.snapshot(), 1, time.time() - t_idle)
    t0 = time.time()
    await load.connect_all(args.visitors, args.agents,
                           lambda n, total: status(f"{label}: connecting {bar(n, total)} {n}/{total}",
                                                   stage=f"{label}:connect", last=n >= total))
    if server.kind == "jutella":
        await analyze()
    rss_loaded = rss_kib(server.proc.pid)
    connections = args.visitors + args.agents
    setup_s = round(time.time() - t0, 1)
    status(f"{label}: {connections} connections open and conversations accepted in {setup_s} s")
    # what the open connections cost with nothing sent (heartbeats, presence, timers)
    snap, t_open = procs.snapshot(), time.time()
    await asyncio.sleep(open_window)
    cpu_open = per_message(snap, procs.snapshot(), 1, time.time() - t_open)
    steps = []
    rate = float(args.rate)
    passed, failed, refine = None, None, REFINE_STEPS if args.ramp else 0
    for step in range(12 + REFINE_STEPS if args.ramp else 1):
        cpu0, w0 = cpu_seconds(server.proc.pid), time.time()
        snap0 = procs.snapshot()

        def progress(done, total, stats, rate=rate, step=step):
            status(f"{label}: {rate:.0f}/s {bar(done, total)} sent={stats.sent} delivered={stats.delivered}",
                   stage=f"{label}:{step}", last=done >= total)

        stats = await load.drive(rate, args.duration, progress)
        result = step_result(stats, rate, args.duration)
        result["server_cpu_percent"] = round(100 * (cpu_seconds(server.proc.pid) - cpu0) / (time.time() - w0), 1)
        result.update(per_message(snap0, procs.snapshot(), stats.delivered, time.time() - w0))
        steps.append(result)
        if not args.ramp:
            break
        if result["ok"]:
            passed = rate
        else:
            failed = rate
        following = next_rate(rate, passed, failed, refine)
        if following is None or any(s["rate"] == following for s in steps):
            break  # done, or the gap is too narrow for another rate (2/s passed, 3/s failed: 2/s again)
        if passed is not None and failed is not None:
            refine -= 1
        rate = following
        if not result["ok"]:
            await asyncio.sleep(SETTLE_S)  # what the failed step left queued drains first
    rss_end = rss_kib(server.proc.pid)
    await load.close()
    first = steps[0]
    passing = [s["rate"] for s in steps if s["ok"]]
    idle_pct = {r["process"]: r["cpu_percent"] for r in cpu_idle["cpu_by_process"]}
    open_pct = {r["process"]: r["cpu_percent"] for r in cpu_open["cpu_by_process"]}
    server_idle = sum(v for k, v in idle_pct.items() if k.startswith(server.kind))
    server_open = sum(v for k, v in open_pct.items() if k.startswith(server.kind))
    return {"steps": steps, "first": first, "sustainable_mps": max(passing) if passing else 0.0,
            "server_cpu_percent_idle": round(server_idle, 1),
            "server_cpu_percent_connected": round(server_open, 1),
            # CPU of an open connection with nothing said: the growth from no connection to all of them open
            "cpu_us_per_connection_s": round(10_000 * max(0.0, server_open - server_idle) / max(1, connections), 3),
            "setup_complete": load.setup_complete, "setup_s": setup_s,
            "server_rss_mib": round(max(rss_loaded, rss_end) / 1024, 1),
            "rss_per_connection_kib": round((rss_loaded - rss_idle) / max(1, connections), 2)}


def table(rows: list[dict[str, Any]], label: str) -> str:
    head = f"{'':8} {'rate/s':>8} {'sent':>8} {'deliv.':>8} {'lost':>5} {'dup':>4} {'p50':>7} {'p95':>7} " \
           f"{'p99':>7} {'max':>8} {'cpu%':>6} {'srv ms':>7} {'pg ms':>6} {'rds ms':>6} {'tot ms':>6}"
    lines = [head]
    for r in rows:
        lines.append(f"{label:8} {r['rate']:>8.0f} {r['sent']:>8} {r['delivered']:>8} {r['lost']:>5} "
                     f"{r['duplicated']:>4} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                     f"{r['max_ms']:>8.2f} {r.get('server_cpu_percent', 0):>6.1f}"
                     + _ms_columns(r.get("cpu_ms_per_message")))
    return "\n".join(lines)


def _ms_columns(ms: dict | None) -> str:
    """CPU ms per delivered message: the server's processes, PostgreSQL, Redis, their total."""
    if not ms:
        return ""
    return f" {ms['server']:>7.3f} {ms['postgres']:>6.3f} {ms['redis']:>6.3f} {ms['total']:>6.3f}"


def best_step(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest-rate step that passed (the first step when none did)."""
    passing = [s for s in steps if s["ok"]]
    return max(passing, key=lambda s: s["rate"]) if passing else steps[0]


def main(args) -> int:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="jutella-bench-") as tmp:
        data_dir = Path(tmp)
        server = start_jutella(args.workers, data_dir)
        try:
            cookies = asyncio.run(make_agents(args.agents, data_dir, server.port))
            result = asyncio.run(run_load(server, args, cookies, "jutella"))
        finally:
            server.stop()
        first = result["first"]
        out = {"visitors": args.visitors, "agents": args.agents, "rate": args.rate, "duration_s": args.duration,
               "workers": args.workers,
               "database": "postgresql" if (os.environ.get("JUTELLA_DATABASE_URL") or "").startswith("postgres")
               else "sqlite",
               **{k: first[k] for k in ("sent", "delivered", "lost", "duplicated", "errors", "p50_ms", "p95_ms", "p99_ms",
                                        "max_ms", "throughput_mps")},
               "server_cpu_percent": first["server_cpu_percent"],
               "cpu_ms_per_message": first["cpu_ms_per_message"], "cpu_by_process": first["cpu_by_process"],
               "server_cpu_percent_idle": result["server_cpu_percent_idle"],
               "server_cpu_percent_connected": result["server_cpu_percent_connected"],
               "cpu_us_per_connection_s": result["cpu_us_per_connection_s"],
               "server_rss_mib": result["server_rss_mib"], "rss_per_connection_kib": result["rss_per_connection_kib"],
               "setup_complete": result["setup_complete"], "setup_s": result["setup_s"]}
        if args.ramp:
            out["sustainable_mps"] = result["sustainable_mps"]
            out["lost"] = sum(s["lost"] for s in result["steps"] if s["ok"]) + first["lost"]
            out["steps"] = result["steps"]
            out["cpu_ms_per_message_at_sustainable"] = best_step(result["steps"])["cpu_ms_per_message"]
        status_end()
        print(table(result["steps"], "jutella"))
        print(breakdown(first, "jutella"))
        if args.ramp and best_step(result["steps"]) is not first:
            print(breakdown(best_step(result["steps"]), "jutella, highest passing step"))
        print(f"open connections with nothing sent: server {result['server_cpu_percent_connected']}% CPU "
              f"({result['server_cpu_percent_idle']}% with none), {result['cpu_us_per_connection_s']} us "
              f"of CPU per connection per second")
        if args.baseline:
            relay = start_relay()
            try:
                base = asyncio.run(run_load(relay, args, None, "relay"))
            finally:
                relay.stop()
            status_end()
            print(table(base["steps"], "relay"))
            print(breakdown(base["first"], "relay"))
            out["baseline_cpu_ms_per_message"] = base["first"]["cpu_ms_per_message"]["server"]
            out["baseline_p99_ms"] = base["first"]["p99_ms"]
            out["baseline_sustainable_mps"] = base["sustainable_mps"] if args.ramp else (
                args.rate if base["first"]["ok"] else 0.0)
            mine = out.get("sustainable_mps", args.rate if first["ok"] else 0.0)
            out["ratio"] = round(mine / out["baseline_sustainable_mps"], 3) if out["baseline_sustainable_mps"] else None
            out["baseline_rss_per_connection_kib"] = base["rss_per_connection_kib"]
    print(orjson.dumps(out).decode())
    return 0
