"""Where the CPU of a benchmark step went, per process the benchmark can see.

Read from ``/proc`` (no dependency): the server's own process tree (the
``jutella serve`` supervisor and its workers, or the relay), the PostgreSQL
backends serving the benchmark's database and the cluster's own background
processes (WAL writer, checkpointer, ...), ``redis-server``, and this client.
A step's figure for a process is its user+system CPU over the step divided by
the messages delivered in it: CPU milliseconds per delivered message.

PostgreSQL and Redis are shared with whatever else runs on the machine: their
background processes and Redis are counted whole, so on a busy machine they
include other work; the backends are only those whose process title names the
benchmark's database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TICKS = os.sysconf("SC_CLK_TCK")

# groups, in the order they are shown; "total" is the service: everything but the client
GROUPS = ("server", "postgres", "redis")


@dataclass(frozen=True)
class Proc:
    pid: int
    group: str  # server | postgres | redis | client
    name: str  # what the table shows


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, user CPU seconds, system CPU seconds) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[11]) / TICKS, int(fields[12]) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def database_name() -> str | None:
    """The PostgreSQL database the benchmark's server uses, or None on SQLite."""
    url = os.environ.get("JUTELLA_DATABASE_URL") or ""
    if not url.startswith("postgres"):
        return None
    return urlsplit(url).path.lstrip("/") or None


class Processes:
    """The processes of one benchmark run, found again at every snapshot (the
    PostgreSQL pool opens backends as it needs them)."""

    def __init__(self, server_pid: int, server_kind: str):
        self.server_pid = server_pid
        self.server_kind = server_kind  # "jutella" or "relay"
        self.database = database_name() if server_kind == "jutella" else None
        self.redis = bool(os.environ.get("JUTELLA_REDIS_URL")) and server_kind == "jutella"

    def find(self) -> list[Proc]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                st = _stat(int(entry.name))
                if st is not None:
                    parents[int(entry.name)] = st[0]
        found = [Proc(self.server_pid, "server", f"{self.server_kind} {'serve' if self.server_kind == 'jutella' else ''}"
                      .strip())]
        tree = {self.server_pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
                    # multiprocessing's resource tracker sits beside uvicorn's spawned workers
                    kind = "helper" if "resource_tracker" in _title(pid) else "worker"
                    found.append(Proc(pid, "server", f"{self.server_kind} {kind}"))
        if len(found) == 1 and self.server_kind == "jutella":
            found[0] = Proc(self.server_pid, "server", "jutella worker")  # one worker: serve is the worker
        found.append(Proc(os.getpid(), "client", "bench client"))
        for pid in parents:
            if pid in tree:
                continue
            comm = _comm(pid)
            if self.database and comm == "postgres":
                title = _title(pid)
                if f" {self.database} " in f"{title} ":
                    found.append(Proc(pid, "postgres", f"postgres backend ({self.database})"))
                elif not any(mark in title for mark in ("(", "[local]")):
                    found.append(Proc(pid, "postgres", "postgres (cluster)"))
            elif self.redis and comm == "redis-server":
                found.append(Proc(pid, "redis", "redis-server"))
        return found

    def snapshot(self) -> dict[Proc, tuple[float, float]]:
        """(user, system) CPU seconds of each process found."""
        out = {}
        for proc in self.find():
            st = _stat(proc.pid)
            if st is not None:
                out[proc] = (st[1], st[2])
        return out


def per_message(before: dict[Proc, tuple[float, float]], after: dict[Proc, tuple[float, float]], delivered: int,
                wall_s: float) -> dict:
    """CPU ms per delivered message by group and by process, between two snapshots.
    A process that appeared in between counts from its start."""
    n = max(1, delivered)
    by_group: dict[str, float] = {}
    rows: list[dict] = []
    merged: dict[str, dict] = {}  # a group's many processes of one kind (PostgreSQL backends) on one row
    for proc, (user, system) in after.items():
        user0, system0 = before.get(proc, (0.0, 0.0))
        used_user, used_system = max(0.0, user - user0), max(0.0, system - system0)
        used = used_user + used_system
        by_group[proc.group] = by_group.get(proc.group, 0.0) + used
        key = f"{proc.name} {proc.pid}" if proc.name.endswith(("worker", "helper", "serve", "relay")) else proc.name
        row = merged.setdefault(key, {"process": proc.name, "pids": [], "cpu_s": 0.0, "system_s": 0.0})
        row["pids"].append(proc.pid)
        row["cpu_s"] += used
        row["system_s"] += used_system
    for row in merged.values():
        rows.append({"process": row["process"], "pids": sorted(row["pids"]),
                     "cpu_ms_per_message": round(1000 * row["cpu_s"] / n, 3),
                     "cpu_percent": round(100 * row["cpu_s"] / max(wall_s, 1e-9), 1),
                     # the kernel's share (system calls: socket reads and writes, fsync, epoll)
                     "system_share": round(row["system_s"] / row["cpu_s"], 2) if row["cpu_s"] else 0.0})
    groups = {g: round(1000 * by_group.get(g, 0.0) / n, 3) for g in GROUPS}
    groups["total"] = round(1000 * sum(by_group.get(g, 0.0) for g in GROUPS) / n, 3)
    groups["client"] = round(1000 * by_group.get("client", 0.0) / n, 3)
    order = {"server": 0, "postgres": 1, "redis": 2, "client": 3}
    kinds = {r.name: r.group for r in after}
    rows.sort(key=lambda r: (order.get(kinds.get(r["process"], "client"), 9), r["process"], r["pids"]))
    return {"cpu_ms_per_message": groups, "cpu_by_process": rows}


def breakdown(step: dict, label: str) -> str:
    """One human line per process for a step."""
    lines = [f"CPU per delivered message at {step['rate']:.0f}/s ({label}, {step['delivered']} delivered):"]
    for row in step["cpu_by_process"]:
        pids = ",".join(str(p) for p in row["pids"][:6]) + (",..." if len(row["pids"]) > 6 else "")
        lines.append(f"  {row['process']:32} {row['cpu_ms_per_message']:>8.3f} ms {row['cpu_percent']:>6.1f}%  "
                     f"(kernel {100 * row['system_share']:.0f}%)  pid {pids}")
    g = step["cpu_ms_per_message"]
    lines.append(f"  {'total (server, postgres, redis)':32} {g['total']:>8.3f} ms   (client not counted: "
                 f"{g['client']:.3f} ms)")
    return "\n".join(lines)
