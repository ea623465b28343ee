"""Process tuning (jutella/tuning.py) belongs to what starts a server
process, not to the application factory: ``create_app`` leaves the
interpreter's switch interval and collector thresholds as it found them, and
``jutella serve`` tunes each worker process it starts."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jutella.app import create_app
from jutella.services import build_runtime
from jutella.tuning import GC_THRESHOLDS, SWITCH_INTERVAL

from tests.conftest import run_async


@pytest.mark.parametrize("backend", ["sqlite"])
def test_create_app_leaves_the_process_settings_alone(settings):
    before = sys.getswitchinterval(), gc.get_threshold()
    try:
        sys.setswitchinterval(0.005)  # CPython's defaults, whatever ran before in this process
        gc.set_threshold(700, 10, 10)
        rt = build_runtime(settings)
        try:
            create_app(rt=rt)
            after = sys.getswitchinterval(), gc.get_threshold()
        finally:
            run_async(rt.db.dispose())
    finally:
        sys.setswitchinterval(before[0])
        gc.set_threshold(*before[1])
    assert after == (0.005, (700, 10, 10))


# In a fresh interpreter: `jutella serve`'s own code path up to the point
# where it hands uvicorn the application (migrations, set-up link and all);
# uvicorn.run is replaced by what uvicorn does first in each worker process
# it starts, loading the application from the factory it was given
# (uvicorn.Config.load), and then the process's settings are read. What this
# does not run: uvicorn's spawning of the workers and the serving itself.
SERVE_UNTIL_LOADED = """
import gc, json, sys
import uvicorn
from jutella import cli

seen = {"before": [sys.getswitchinterval(), list(gc.get_threshold())]}

def load_like_a_worker(app, **options):
    config = uvicorn.Config(app, **options)
    config.load()
    # the Database of the worker's Runtime (app.py WithRuntime, the outermost middleware)
    db = next(m.kwargs["rt"].db for m in config.loaded_app.user_middleware if m.cls.__name__ == "WithRuntime")
    seen.update(app=app, factory=options.get("factory"), workers=options.get("workers"),
                loaded=type(config.loaded_app).__name__,
                after=[sys.getswitchinterval(), list(gc.get_threshold())],
                db_workers=db.workers)

uvicorn.run = load_like_a_worker
status = cli.main(["serve", "--workers", sys.argv[1]])
print("RESULT " + json.dumps(dict(seen, status=status)))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_jutella_serve_tunes_the_worker_process_it_starts(tmp_path: Path, workers: int):
    """... and tells each worker how many share the host, which sets its
    PostgreSQL writer's batches in flight (store/db.py batches_in_flight)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUTELLA_")}
    env["JUTELLA_DATA_DIR"] = str(tmp_path / "data")
    if workers > 1:
        env["JUTELLA_REDIS_URL"] = "redis://127.0.0.1:6379/0"  # required by --workers 2; not connected here
    proc = subprocess.run([sys.executable, "-c", SERVE_UNTIL_LOADED, str(workers)], env=env, capture_output=True,
                          text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = json.loads(lines[-1][len("RESULT "):])
    assert seen["status"] == 0 and seen["factory"] is True and seen["workers"] == workers
    assert seen["db_workers"] == workers
    assert seen["before"] != [SWITCH_INTERVAL, list(GC_THRESHOLDS)]  # an untuned interpreter to begin with
    assert seen["after"] == [SWITCH_INTERVAL, list(GC_THRESHOLDS)]
    assert seen["loaded"]  # uvicorn got an application out of the factory
