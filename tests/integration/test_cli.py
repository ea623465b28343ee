"""The ``jutella`` command as an operator runs it: real exit codes, the output
on stdout and stderr. Each command family is run as a real process at least
once (``jutella_process``: the command line, the interpreter's exit status, no
traceback); the other calls run ``jutella.cli.main`` in this process
(``tests.helpers.run_cli``), the same command without a second of CPU for a
new interpreter each time."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHEAP_HASHING
from tests.helpers import PASSWORD, http_client, run_cli


@pytest.fixture
def backend():
    return "sqlite"


def jutella(*args: str, env: dict[str, str], stdin: str = ""):
    return run_cli(*args, env=env, stdin=stdin)


def jutella_process(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jutella.cli", *args], input=stdin, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # cheap argon2 as for every test server (tests/conftest.py CHEAP_HASHING): each `user add` hashes
    return {"JUTELLA_DATA_DIR": str(tmp_path / "data"),
            **{f"JUTELLA_{k.upper()}": v for k, v in CHEAP_HASHING.items()}}


def test_every_command_has_help(env):
    r = jutella_process("--help", env=env)
    assert r.returncode == 0 and "usage:" in r.stdout
    for args in (["--help"], ["serve", "--help"], ["user", "add", "--help"], ["user", "list", "--help"],
                 ["user", "disable", "--help"], ["audit", "verify", "--help"], ["backup", "--help"],
                 ["restore", "--help"], ["token", "create", "--help"], ["token", "list", "--help"],
                 ["token", "revoke", "--help"]):
        r = jutella(*args, env=env)
        assert r.returncode == 0 and "usage:" in r.stdout, args


def test_user_add_list_disable(env):
    r = jutella_process("user", "add", "aino@example.org", "--name", "Aino Agent", "--role", "agent", "--role",
                        "privacy", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "created aino@example.org (agent, privacy)" in r.stdout
    # (`user list` runs as a process of its own in test_malformed_settings_stop_with_one_line_naming_the_setting)
    r = jutella("user", "list", env=env)
    assert r.stdout.splitlines() == ["aino@example.org\tAino Agent\tagent,privacy\tactive\t-"]
    r = jutella_process("user", "disable", "aino@example.org", env=env)
    assert r.returncode == 0 and "disabled aino@example.org" in r.stdout
    assert "\tdisabled\t" in jutella("user", "list", env=env).stdout


def test_bad_input_gets_one_clear_line_and_nothing_written(env):
    r = jutella("user", "add", "a@example.org", "--name", "A", "--role", "wizard", "--password-stdin", env=env,
                stdin=PASSWORD)
    assert r.returncode == 2 and "invalid choice: 'wizard'" in r.stderr
    r = jutella("user", "add", "a@example.org", "--name", "A", "--role", "agent", "--password-stdin", env=env,
                stdin="short\n")
    assert r.returncode == 1
    assert r.stderr.strip() == "jutella: Password must be at least 12 characters."
    r = jutella("user", "add", "a@example.org", "--name", "A", "--role", "agent", "--password-stdin", env=env,
                stdin="password1234\n")
    assert r.returncode == 1 and "too common" in r.stderr and "Traceback" not in r.stderr
    assert jutella("user", "list", env=env).stdout == ""
    r = jutella("user", "disable", "nobody@example.org", env=env)
    assert r.returncode == 1 and r.stderr.strip() == "jutella: No account with that email."


def test_malformed_settings_stop_with_one_line_naming_the_setting(env, tmp_path):
    r = jutella_process("user", "list", env={**env, "JUTELLA_PORT": "eighty"})
    assert r.returncode == 1
    assert r.stderr.strip().startswith("jutella: setting JUTELLA_PORT:") and len(r.stderr.strip().splitlines()) == 1
    r = jutella_process("serve", env={**env, "JUTELLA_SMTP_TLS": "maybe"})
    assert r.returncode == 1 and "JUTELLA_SMTP_TLS" in r.stderr and "Traceback" not in r.stderr
    r = jutella("serve", env={**env, "JUTELLA_DATABASE_URL": "mysql://x"})
    assert r.returncode == 1 and "JUTELLA_DATABASE_URL" in r.stderr
    config = tmp_path / "jutella.toml"
    config.write_text('porr = 8000\n')
    r = jutella("user", "list", env={**env, "JUTELLA_CONFIG": str(config)})
    assert r.returncode == 1 and "'porr'" in r.stderr and "unknown setting" in r.stderr
    config.write_text('[retention]\nchat_days = 0\n')
    r = jutella("user", "list", env={**env, "JUTELLA_CONFIG": str(config)})
    assert r.returncode == 1 and "retention.chat_days" in r.stderr
    config.write_text('port = [\n')
    r = jutella("user", "list", env={**env, "JUTELLA_CONFIG": str(config)})
    assert r.returncode == 1 and "not valid TOML" in r.stderr
    r = jutella("serve", "--workers", "2", env=env)
    assert r.returncode == 1 and "JUTELLA_REDIS_URL" in r.stderr


def test_the_toml_file_sets_values_and_the_environment_wins(env, tmp_path):
    config = tmp_path / "jutella.toml"
    config.write_text('session_idle_minutes = 5\n[register.controller]\nname = "Testiyhdistys ry"\n')
    from jutella.settings import load_settings
    old = dict(os.environ)
    try:
        os.environ["JUTELLA_CONFIG"] = str(config)
        s = load_settings()
        assert s.session_idle_minutes == 5 and s.notice.controller.name == "Testiyhdistys ry"
        os.environ["JUTELLA_SESSION_IDLE_MINUTES"] = "7"
        assert load_settings().session_idle_minutes == 7
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_audit_verify_catches_an_edited_row(env):
    jutella("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            env=env, stdin=PASSWORD)
    jutella("user", "add", "eero@example.org", "--name", "Eero", "--role", "agent", "--password-stdin",
            env=env, stdin=PASSWORD)
    jutella("user", "disable", "aino@example.org", env=env)
    r = jutella("audit", "verify", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 3 rows checked"

    db = sqlite3.connect(Path(env["JUTELLA_DATA_DIR"]) / "jutella.sqlite3")
    db.execute("UPDATE audit_log SET action = 'account.enable' WHERE seq = 3")
    db.commit()
    r = jutella_process("audit", "verify", env=env)
    assert r.returncode == 1
    assert r.stderr.strip() == ("jutella: audit log broken at row 3: its content does not match its keyed hash "
                                "(edited, or re-hashed without the key) (2 rows before it are intact)")
    db.execute("UPDATE audit_log SET action = 'account.disable' WHERE seq = 3")
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    db.commit()
    r = jutella("audit", "verify", env=env)
    assert r.returncode == 1 and "broken at row 3" in r.stderr


def test_serve_prints_the_set_up_link_and_answers_healthz(env, tmp_path):
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jutella.cli", "serve", "--port", str(port)],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "jutella serving on" in line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}/console/setup#token=" in out
        with http_client() as poll:  # one client for every try (tests/helpers.py HTTP_TLS)
            for _ in range(100):
                try:
                    r = poll.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
        assert r.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_backup_and_restore_round_trip_every_conversation(env, tmp_path):
    import asyncio

    from jutella.chat import actions as chat
    from jutella.chat.metadata import Metadata
    from jutella.services import build_runtime
    from jutella.settings import Settings

    from tests.conftest import run_async

    settings = Settings(data_dir=Path(env["JUTELLA_DATA_DIR"]))

    async def make_chats(n: int) -> list[int]:
        rt = build_runtime(settings)
        await rt.db.migrate()
        ids = []
        for i in range(n):
            visitor, _ = await chat.new_visitor(rt)
            posted = await chat.post_visitor_message(rt, visitor_id=visitor.id, client_id=f"c{i}",
                                                     body=f"message {i}", meta=Metadata())
            ids.append(posted.conversation.id)
        await rt.db.dispose()
        return ids

    async def bodies() -> list[str]:
        rt = build_runtime(settings)
        out = [e["body"] for c in range(1, 20) for e in await chat.events_since(rt, c, 0)]
        await rt.db.dispose()
        return out

    ids = run_async(make_chats(5))
    env = {**env, "JUTELLA_BACKUP_KEY": "k" * 32}
    backup = tmp_path / "backup.sqlite3"
    r = jutella_process("backup", str(backup), env=env)
    assert r.returncode == 0, r.stderr
    assert jutella("backup", str(backup), env=env).returncode == 1  # no silent overwrite
    run_async(make_chats(2))  # written after the backup: the restore takes them away
    assert len(run_async(bodies())) == 7
    r = jutella_process("restore", str(backup), env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(run_async(bodies())) == [f"message {i}" for i in range(5)]
    assert len(ids) == 5
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database")
    r = jutella("restore", str(bad), env=env)
    assert r.returncode == 1 and "jutella:" in r.stderr and "Traceback" not in r.stderr


def test_restore_moves_the_audit_checkpoint_back_and_it_still_anchors(env, tmp_path):
    """A restore puts an older audit log back: verify finds it intact, and
    the checkpoint, moved back to its end, still catches its newest rows
    removed (docs/security.md, "The audit log")."""
    for email in ("aino@example.org", "eero@example.org"):
        r = jutella("user", "add", email, "--name", "A", "--role", "agent", "--password-stdin", env=env,
                    stdin=PASSWORD)
        assert r.returncode == 0, r.stderr
    env = {**env, "JUTELLA_BACKUP_KEY": "k" * 32}
    backup = tmp_path / "backup.sqlite3"
    r = jutella("backup", str(backup), env=env)
    assert r.returncode == 0 and "audit.key is not in the backup; keep a copy of it apart" in r.stderr
    assert jutella("user", "disable", "aino@example.org", env=env).returncode == 0  # row 3, after the backup
    r = jutella("restore", str(backup), env=env)
    assert r.returncode == 0, r.stderr
    r = jutella("audit", "verify", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 2 rows checked", r.stderr

    db = sqlite3.connect(Path(env["JUTELLA_DATA_DIR"]) / "jutella.sqlite3")
    first_hash = db.execute("SELECT hash FROM audit_log WHERE seq = 1").fetchone()[0]
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    db.execute("UPDATE audit_head SET seq = 1, last_hash = ?", (first_hash,))
    db.commit()
    r = jutella("audit", "verify", env=env)
    assert r.returncode == 1 and "the newest rows were removed" in r.stderr and "has row 2" in r.stderr, r.stderr
