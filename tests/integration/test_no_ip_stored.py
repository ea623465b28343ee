"""No IP address is stored anywhere: not in the database, not in the logs.

The clients connect from 127.0.0.2, an address that appears nowhere else, and
after a whole chat (sign-in, visitor, agent, messages) the database files,
every table's rows and the server's log output are searched for it."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from jutella.store.db import Database
from jutella.settings import Settings

from tests.chat_clients import agent, visitor
from tests.helpers import HTTP_TLS, PASSWORD, http_client, run_cli
import pytest

from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

SOURCE = "127.0.0.2"


def all_rows_as_text(database_url: str) -> str:
    import asyncio

    async def dump() -> str:
        db = Database(Settings(database_url=database_url).sqlalchemy_url)
        out = []
        async with db.engine.connect() as conn:
            if db.dialect == "sqlite":
                names = [r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
            else:
                names = [r[0] for r in await conn.execute(text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
            for name in names:
                for row in await conn.execute(text(f'SELECT * FROM "{name}"')):
                    out.append(f"{name}: {tuple(row)!r}")
        await db.dispose()
        return "\n".join(out)

    from tests.conftest import run_async

    return run_async(dump())


def test_a_whole_chat_leaves_no_ip_address(server_process, database_url, tmp_path):
    server = server_process(JUTELLA_LOG_LEVEL="debug").start()
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            stdin=PASSWORD, env=server.env, check=True)
    http = http_client(base_url=server.url, transport=httpx.HTTPTransport(local_address=SOURCE, verify=HTTP_TLS))
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": "wrong password!"})
    assert r.status_code == 401
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 200
    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    a, _ = agent(server, http, source=SOURCE)
    v, _ = visitor(server, source=SOURCE)
    v.message("Hei, opiskelijanumeroni on 1234567")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a.send(type="subscribe", conversation=conv, last_seq=0)
    a.send(type="accept", conversation=conv)
    a.message("Kiitos, katson asiaa.", conversation=conv)
    v.until(lambda f: f["type"] == "event" and f.get("author") == "agent")
    assert http.get(f"/api/v1/conversations/{conv}").status_code == 200
    v.conn.send("this is not json")  # an error path too
    v.until(lambda f: f["type"] == "error")
    v.close()
    a.close()
    server.stop()

    rows = all_rows_as_text(database_url)
    assert "Hei, opiskelijanumeroni" in rows  # the dump does see the chat
    assert SOURCE not in rows
    data_dir = Path(server.env["JUTELLA_DATA_DIR"])
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert SOURCE.encode() not in path.read_bytes(), path
    log = server.output()
    assert "WebSocket /ws/visitor" in log  # the server did log the connections...
    assert SOURCE not in log  # ...without the address
