"""One attachment store for the cluster (issue 20, item 1; docs/attachments.md,
"Where the bytes are"):

- the file store's contract (store/files.py), run on every implementation
  (the database's, and the S3-compatible object store's against moto's S3
  server) on SQLite and on PostgreSQL;
- files an older jutella kept on each host's disk move into the store when
  `jutella` starts: served afterwards, the disk left empty;
- two `jutella serve` processes, each with a data dir of its own, on one
  PostgreSQL: a file uploaded through host A is served by host B, and an
  erasure through B leaves none of its bytes on either host's disk or in the
  database.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import text

from jutella.store.files import CHUNK, DatabaseFileStore, FileStore, read_due

from tests.chat_clients import visitor
from tests.conftest import BOTH, run_async
from tests.helpers import PASSWORD, http_client, run_cli

# the database's store, and the S3-compatible object store against moto's S3 server (tests/conftest.py
# S3Server; the database still holds the files due for deletion, so both run on SQLite and PostgreSQL)
IMPLEMENTATIONS = ["database", "s3"]


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request, in_process) -> FileStore:
    if request.param == "database":
        return DatabaseFileStore(in_process.rt.db, in_process.rt.clock.now)
    if request.param == "s3":
        from jutella.services import file_store
        from jutella.settings import Settings

        bucket = request.getfixturevalue("s3")
        s3_settings = Settings(**{**in_process.rt.settings.model_dump(by_alias=True), **bucket.settings})
        return file_store(s3_settings, in_process.rt.db, in_process.rt.clock.now)
    raise AssertionError(request.param)


def key() -> str:
    return secrets.token_hex(24)


async def _read(store: FileStore, name: str) -> tuple[int, list[bytes]] | None:
    opened = await store.open(name)
    if opened is None:
        return None
    return opened.size, [chunk async for chunk in opened.chunks]


async def _listing(store: FileStore) -> dict[str, int]:
    return {e.key: e.size async for e in store.entries()}


# -- the contract ----------------------------------------------------------------------------
def test_what_is_put_is_read_back_whole_and_in_chunks(in_process, store):
    call = in_process.call
    small, big = key(), key()
    data = secrets.token_bytes(2 * CHUNK + 12345)  # more than two chunks, ending in a short one
    call(store.put, small, b"%PDF-1.4 small")
    call(store.put, big, data)
    assert call(store.get, small) == b"%PDF-1.4 small"
    assert call(store.get, big) == data
    size, chunks = call(_read, store, big)
    assert size == len(data) and b"".join(chunks) == data
    assert all(len(c) <= CHUNK for c in chunks) and len(chunks) == 3
    assert call(store.exists, big) and call(store.exists, small)
    assert call(_listing, store) == {small: 14, big: len(data)}


def test_put_replaces_and_missing_files_are_none(in_process, store):
    call = in_process.call
    name = key()
    call(store.put, name, b"first")
    call(store.put, name, b"second, longer")
    assert call(store.get, name) == b"second, longer"
    assert call(_listing, store) == {name: 14}
    other = key()
    assert call(store.get, other) is None and call(_read, store, other) is None
    assert not call(store.exists, other)


def test_delete_takes_exactly_the_keys_named(in_process, store):
    call = in_process.call
    a, b, c = key(), key(), key()
    for name in (a, b, c):
        call(store.put, name, name.encode())
    assert call(store.delete, [a, c, key()]) == 2  # a missing one is no error
    assert call(_listing, store) == {b: 48}
    assert call(store.get, a) is None and call(store.get, b) == b.encode()
    assert call(store.delete, []) == 0


def test_keys_are_safe_names(in_process, store):
    for bad in ["", ".tmp-x", "../etc/passwd", "a/b", "a" * 65, "ä", "a b"]:
        for method, args in ((store.put, (bad, b"x")), (store.get, (bad,)), (store.open, (bad,)),
                             (store.exists, (bad,)), (store.delete, ([bad],))):
            with pytest.raises(ValueError):
                in_process.call(method, *args)


def test_a_transactional_store_commits_and_rolls_back_with_the_rows(in_process, store):
    """put_core and delete_core join the caller's transaction: a rolled back
    one leaves everything as it was."""
    if not store.transactional:
        pytest.skip("this store cannot join a database transaction (module docstring of store/files.py)")
    rt = in_process.rt
    kept, new = key(), key()
    in_process.call(store.put, kept, b"kept")

    class Undo(Exception):
        pass

    async def attempt(fail: bool) -> None:
        async with rt.db.transaction() as s:
            await s.run_sync(lambda sync: store.put_core(sync.connection(), new, b"new", rt.clock.now()))
            await s.run_sync(lambda sync: store.delete_core(sync.connection(), [kept]))
            if fail:
                raise Undo

    with pytest.raises(Undo):
        in_process.call(attempt, True)
    assert in_process.call(_listing, store) == {kept: 4}
    in_process.call(attempt, False)
    assert in_process.call(_listing, store) == {new: 3}


def test_files_forgotten_with_their_rows_go_only_when_those_rows_go(in_process, store):
    """forget_core, in the transaction that deletes the rows naming the files:
    rolled back, the files stay; committed, they are gone once delete_due has
    run (at once for the database's store; an object store's were due until
    then), and nothing is left due."""
    rt = in_process.rt
    kept, gone = key(), key()
    for name in (kept, gone):
        in_process.call(store.put, name, name.encode())

    class Undo(Exception):
        pass

    async def attempt(fail: bool) -> None:
        async with rt.db.transaction() as s:
            await s.run_sync(lambda sync: store.forget_core(sync.connection(), [gone], rt.clock.now()))
            if fail:
                raise Undo

    with pytest.raises(Undo):
        in_process.call(attempt, True)
    assert in_process.call(store.delete_due) == []  # nothing was due
    assert in_process.call(_listing, store) == {kept: 48, gone: 48}
    in_process.call(attempt, False)
    assert in_process.call(store.delete_due, [gone]) == []
    assert in_process.call(_listing, store) == {kept: 48}
    assert in_process.call(store.get, gone) is None
    assert in_process.call(read_due, rt.db) == []


# -- the move from the disk ------------------------------------------------------------------
def _pdf(marker: str) -> bytes:
    return f"%PDF-1.4\n1 0 obj<<>>endobj\n% {marker}\ntrailer<<>>\n%%EOF\n".encode()


async def _as_an_older_jutella_left_it(url: str, data_dir: Path) -> list[str]:
    """Every stored file out of the database into ``<data_dir>/attachments/``,
    as jutella kept them before migration 0022 (rows kept, bytes on disk)."""
    from jutella.settings import Settings
    from jutella.store.db import Database

    db = Database(Settings(database_url=url).sqlalchemy_url)
    folder = data_dir / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    async with db.engine.begin() as conn:  # the test plays the older jutella here
        rows = (await conn.execute(text("SELECT name, data FROM attachment_blob"))).all()
        for name, data in rows:
            (folder / name).write_bytes(bytes(data))
        await conn.execute(text("DELETE FROM attachment_blob"))
    await db.dispose()
    return [r[0] for r in rows]


def test_files_an_older_jutella_kept_on_disk_move_into_the_database(server_process, database_url, tmp_path):
    server = server_process().start()
    v, welcome = visitor(server)
    v.message("Hei, liitteitä tulossa")
    v.until(lambda f: f["type"] == "ack")
    http = http_client(base_url=server.url, timeout=15)
    headers = {"X-Jutella-Visitor": welcome["token"]}
    urls = {}
    for marker in ("OLD-HOST-FILE-1", "OLD-HOST-FILE-2"):
        r = http.post("/api/v1/public/attachments", headers=headers,
                      files={"file": (f"{marker}.pdf", _pdf(marker), "application/pdf")})
        assert r.status_code == 201, r.text
        urls[marker] = r.json()["url"]
    v.close()
    server.stop()

    data = tmp_path / "data"
    names = run_async(_as_an_older_jutella_left_it(database_url, data))
    assert len(names) == 2
    stray = data / "attachments" / (".tmp-" + "0" * 48)  # an upload an older jutella's crash cut short
    stray.write_bytes(b"half")
    import os
    os.utime(stray, (0, 0))

    restarted = server_process().start()  # `jutella serve` moves them in before it serves
    assert "moved 2 attachment file(s)" in restarted.output()
    assert not (data / "attachments").exists()  # the disk is empty: not even the folder is left
    http = http_client(base_url=restarted.url, timeout=15)
    for marker, url in urls.items():
        got = http.get(url, headers=headers)
        assert got.status_code == 200 and got.content == _pdf(marker)
        assert got.headers["content-disposition"].startswith("attachment")
    # idempotent: a command run afterwards finds nothing to move
    env = {"JUTELLA_DATABASE_URL": database_url, "JUTELLA_DATA_DIR": str(data)}
    again = run_cli("retention", "run", env=env)
    assert again.returncode == 0 and "moved" not in again.stderr


def test_a_backup_an_older_jutella_made_restores_its_files_into_the_database(database_url, tmp_path):
    """A backup whose files sit beside the database (``attachments/<name>`` in
    the sealed tar, as before migration 0022): the restore moves those the
    restored rows name into the database; nothing is left on the disk."""
    from tests.integration.test_backup import people, pdf, stored_files

    data = tmp_path / "data"
    env = {"JUTELLA_DATA_DIR": str(data), "JUTELLA_DATABASE_URL": database_url}
    people(env)
    assert len(run_async(_as_an_older_jutella_left_it(database_url, data))) == 2
    key_file = tmp_path / "backup.key"
    assert run_cli("backup", "--make-key", str(key_file), env=env).returncode == 0
    backup = tmp_path / "old.jutella-backup"
    r = run_cli("backup", str(backup), "--key-file", str(key_file), env=env)  # `backup` moves nothing itself
    assert r.returncode == 0 and "2 attachment(s)" in r.stdout, r.stdout + r.stderr
    r = run_cli("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "with 2 attachment(s)" in r.stdout, r.stdout + r.stderr
    assert not (data / "attachments").exists()
    assert stored_files(env) == sorted([pdf("LIISA-PDF-4711"), pdf("BERTTA-PDF-0815")])


# -- two hosts ---------------------------------------------------------------------------------
def _every_byte_of_the_database(url: str) -> bytes:
    """Every value of every row of every table, as bytes (bytea raw, not as the hex a dump writes)."""
    from jutella.settings import Settings
    from jutella.store.db import Database

    async def dump() -> bytes:
        db = Database(Settings(database_url=url).sqlalchemy_url)
        out = bytearray()
        async with db.engine.connect() as conn:
            names = [r[0] for r in await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))]
            for name in names:
                for row in await conn.execute(text(f'SELECT * FROM "{name}"')):  # names from the database
                    for value in row:
                        out += bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        await db.dispose()
        return bytes(out)

    return run_async(dump())


def _every_page_of_the_blob_table(url: str) -> bytes:
    """The raw pages of ``attachment_blob`` and of its TOAST table as PostgreSQL
    keeps them (pageinspect's get_raw_page): dead row versions an erasure left
    would be here, not in a SELECT."""
    return raw_pages(url, ("attachment_blob",))


def raw_pages(url: str, tables) -> bytes:
    """The raw pages of each of ``tables`` and of its TOAST table (pageinspect's get_raw_page)."""
    from jutella.settings import Settings
    from jutella.store.db import Database

    async def pages() -> bytes:
        db = Database(Settings(database_url=url).sqlalchemy_url)
        out = bytearray()
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            for table in tables:
                toast = (await conn.execute(text(
                    "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                    {"t": table})).scalar_one()
                for rel in (table, toast) if toast != "-" else (table,):  # "-": no TOAST table
                    count = (await conn.execute(text(
                        "SELECT pg_relation_size(CAST(:r AS regclass)) / current_setting('block_size')::int"),
                        {"r": rel})).scalar_one()
                    for n in range(count):
                        out += bytes((await conn.execute(text("SELECT get_raw_page(:r, :n)"),
                                                         {"r": rel, "n": n})).scalar_one())
        await db.dispose()
        return bytes(out)

    return run_async(pages())


def _every_byte_of(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_hosts_serve_one_file_and_an_erasure_through_either_leaves_it_nowhere(server_process, database_url,
                                                                                   tmp_path):
    shared = {"JUTELLA_AUDIT_KEY": secrets.token_hex(32)}  # the cluster's one audit key (docs/deployment.md)
    dirs = {host: tmp_path / f"host-{host}" for host in "ab"}
    a = server_process(JUTELLA_DATA_DIR=str(dirs["a"]), **shared).start()
    b = server_process(JUTELLA_DATA_DIR=str(dirs["b"]), **shared).start()
    env = {k: v for k, v in a.env.items() if k.startswith("JUTELLA_")}
    assert run_cli("user", "add", "chair@example.org", "--name", "Chair", "--role", "privacy", "--role", "agent",
                   "--password-stdin", stdin=PASSWORD + "\n", env=env).returncode == 0

    marker = "TWO-HOSTS-" + secrets.token_hex(8)
    content = _pdf(marker + " " + secrets.token_hex(32 * 1024))  # 64 KiB: kept out of line (TOAST)
    v, welcome = visitor(a)
    v.message(f"Olen {marker}, liite tulossa")
    v.until(lambda f: f["type"] == "ack")
    token = {"X-Jutella-Visitor": welcome["token"]}
    through_a = http_client(base_url=a.url, timeout=15)
    r = through_a.post("/api/v1/public/attachments", headers=token,
                       files={"file": ("liite.pdf", content, "application/pdf")})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    v.close()

    # host B serves it: to the visitor, and to staff signed in on B
    through_b = http_client(base_url=b.url, timeout=15)
    got = through_b.get(url, headers=token)
    assert got.status_code == 200 and got.content == content
    assert got.headers["content-type"] == "application/pdf" and got.headers["x-content-type-options"] == "nosniff"
    plain = through_b.get(url, headers={**token, "Accept-Encoding": "identity"})  # a PDF may go gzipped otherwise
    assert plain.headers["content-length"] == str(len(content)) and plain.content == content
    assert through_b.head(url, headers=token).headers["content-length"] == str(len(content))
    chair = http_client(base_url=b.url, timeout=15)
    login = chair.post("/api/v1/public/staff/login", json={"email": "chair@example.org", "password": PASSWORD})
    assert login.status_code == 200, login.text
    chair.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    assert chair.get(url).content == content
    # nothing of it on either host's disk: the bytes are in the database
    for host in "ab":
        assert marker.encode() not in _every_byte_of(dirs[host])
    assert marker.encode() in _every_byte_of_the_database(database_url)
    windows = [content[i:i + 48] for i in range(64, len(content) - 48, 4096)]  # each within a TOAST chunk, mostly
    pages = _every_page_of_the_blob_table(database_url)
    assert marker.encode() in pages and sum(w in pages for w in windows) > len(windows) // 2  # the scan sees them

    # erased through B
    matches = chair.get("/api/v1/privacy/subjects", params={"q": marker}).json()
    conversations = sorted({m["id"] for m in matches if m["kind"] == "conversation"})
    assert len(conversations) == 1
    r = chair.post("/api/v1/privacy/erase", json={"conversations": conversations, "offline_messages": [],
                                                  "emails": [], "confirm": True})
    assert r.status_code == 200 and r.json()["counts"]["attachments"] == 1, r.text
    for side in (through_a, through_b):
        assert side.get(url, headers=token).status_code == 404
    for host in "ab":
        assert marker.encode() not in _every_byte_of(dirs[host]), host
    everything = _every_byte_of_the_database(database_url)
    assert marker.encode() not in everything and marker.encode().hex().encode() not in everything
    assert content not in everything
    # nor in the table's pages: the erasure's VACUUM took the dead row versions (here, with the table left
    # empty, the pages themselves)
    pages = _every_page_of_the_blob_table(database_url)
    assert marker.encode() not in pages and not any(w in pages for w in windows)
