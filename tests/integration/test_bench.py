"""``jutella bench`` as the contract describes it: a small smoke run (the
benchmark is a tool, not a timed test; these check what it reports, not how
fast anything is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jutella.bench.run import next_rate

CONTRACT_KEYS = {"visitors", "agents", "rate", "duration_s", "sent", "delivered", "lost", "duplicated", "p50_ms",
                 "p95_ms", "p99_ms", "max_ms", "throughput_mps", "server_rss_mib", "rss_per_connection_kib"}


@pytest.fixture
def backend():
    return "sqlite"


def test_a_small_run_against_jutella_and_the_relay_prints_the_contract_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUTELLA_")}  # its own SQLite server
    env["JUTELLA_BENCH_SERVER_LOG"] = str(tmp_path / "server.log")
    run = subprocess.run([sys.executable, "-m", "jutella.cli", "bench", "--visitors", "30", "--agents", "3",
                          "--rate", "30", "--duration", "2", "--baseline"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert CONTRACT_KEYS <= report.keys()
    assert {"baseline_p99_ms", "baseline_sustainable_mps", "ratio"} <= report.keys()
    assert (report["visitors"], report["agents"], report["rate"], report["duration_s"]) == (30, 3, 30.0, 2.0)
    assert report["database"] == "sqlite" and report["setup_complete"] is True
    # 30/s for 2 s, and the agents answer every fifth message: about 70 messages, each delivered once
    assert report["sent"] >= 50
    assert report["delivered"] == report["sent"]
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["errors"] == 0
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["server_rss_mib"] > 10 and report["rss_per_connection_kib"] > 0
    # CPU per delivered message, per process it can see and in total (issue 20)
    assert report["cpu_ms_per_message"]["server"] > 0
    assert {row["process"] for row in report["cpu_by_process"]} >= {"jutella worker", "bench client"}
    assert report["baseline_cpu_ms_per_message"] > 0 and report["cpu_us_per_connection_s"] >= 0
    assert any(line.startswith("CPU per delivered message at 30/s (jutella") for line in lines)
    # the table a person reads, for both servers, before the JSON line
    assert any(line.startswith("jutella ") for line in lines)
    assert any(line.startswith("relay ") for line in lines)
    assert "connections open" in run.stderr  # the progress it shows while it runs
    # stderr is a pipe here, not a terminal: a line per stage, no redrawn bar (issue 17);
    # text=True reads each carriage return as a line end, so a redrawn bar shows as dozens of lines
    progress = run.stderr.splitlines()
    assert len(progress) <= 12, progress
    assert any(line.startswith("jutella: connecting") and "100.0%" in line for line in progress), progress
    assert any(line.startswith("relay: 30/s") and "100.0%" in line for line in progress), progress


def test_the_ramp_rises_by_half_then_narrows_the_gap():
    # no failure yet: up by half
    assert next_rate(500, 500, None, 3) == 750
    # the first failure at 1688 after a pass at 1125: halfway, three times at most
    assert next_rate(1688, 1125, 1688, 3) == 1406
    assert next_rate(1406, 1406, 1688, 2) == 1547
    assert next_rate(1547, 1406, 1547, 1) == 1476
    assert next_rate(1476, 1476, 1547, 0) is None
    # the very first step failed: down by half until one passes, then narrow
    assert next_rate(500, None, 500, 3) == 250
    assert next_rate(250, 250, 500, 3) == 375
    assert next_rate(1, None, 1, 3) is None


def test_the_closed_loop_reports_cpu_per_message_per_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUTELLA_")}  # its own SQLite server
    run = subprocess.run([sys.executable, "-m", "jutella.bench.closed", "--visitors", "20", "--agents", "2",
                          "--senders", "4", "--duration", "2"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["delivered"] > 0 and report["lost"] == 0 and report["duplicated"] == 0
    assert report["cpu_ms_per_message"]["server"] > 0
    assert report["cpu_ms_per_message"]["total"] >= report["cpu_ms_per_message"]["server"]
    assert any(row["process"] == "jutella worker" for row in report["cpu_by_process"])
