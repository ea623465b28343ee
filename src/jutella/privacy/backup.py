"""``jutella backup`` and ``jutella restore``: one encrypted file holding a
consistent copy of the database, the attachments' bytes included (in the
database by default; from an S3-compatible object store, read through the
store, when one is configured: store/files.py, docs/attachments.md); a
restore that erases again everything the erasure ledger (privacy/ledger.py)
recorded after the backup was taken, before anything is put in place.

The file: ``MAGIC`` and a random 16-byte salt (the header), then chunks of
at most 1 MiB of a tar stream, each sealed with AES-256-GCM (the
``cryptography`` library) under a key derived from the operator's backup key
and the salt (HKDF-SHA256), its nonce the chunk's number and a flag on the
last one, the header as associated data: a chunk edited, reordered, removed
or cut off at the end is refused. The tar holds ``manifest.json`` and
``jutella.sqlite3`` (or ``jutella.pgdump``), and ``attachments/<name>`` for
the files of an object store that the copy's rows name (``fetch``), and for
files an older jutella kept on the disk and this host has not moved into the
store yet. Nothing is ever extracted by name from the tar other than
those; a restore moves such files into the file store (those the restored
rows name; the rest is dropped) before anything is put in place.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import struct
import tarfile
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

#: reads the files of an object store into a folder: (names, folder) -> [(name, path)] of those still there
Fetch = Callable[[list[str], Path], list[tuple[str, Path]]]

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jutella.accounts.audit_anchor import write_new_key

MAGIC = b"JUTELLA-BACKUP\x00\x01"
CHUNK = 1 << 20
DB_NAME = "jutella.sqlite3"
PG_NAME = "jutella.pgdump"
_STORAGE_NAME = re.compile(r"[0-9a-f]{48}")


class BackupError(Exception):
    """An expected failure: one line for the operator; nothing was changed."""


# -- the key -----------------------------------------------------------------------------------
def make_key_file(path: Path) -> None:
    """A new random key (64 hex characters), readable by its owner only; never overwrites."""
    write_new_key(path)


def _ledger_key(audit_key: bytes | None, rows: list[dict[str, Any]]) -> bytes:
    """The key the ledger's ``rows`` were written with, from the configured
    audit key; BackupError when there is none or it is another one."""
    if audit_key is None:
        raise BackupError("the erasure ledger needs the audit key (audit.key or JUTELLA_AUDIT_KEY) to be "
                          "applied: put it back first; nothing was changed")
    from . import ledger

    lkey = ledger.ledger_key(audit_key)
    if {r["key_id"] for r in rows} != {ledger.key_id(lkey)}:
        raise BackupError("the erasure ledger was written with another audit key than the one configured; "
                          "nothing was changed")
    return lkey


def read_key(key_file: str | None, setting: str | None) -> bytes:
    if key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise BackupError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    elif setting:
        key = setting.strip()
    else:
        raise BackupError("no backup key: give --key-file KEYFILE or set JUTELLA_BACKUP_KEY (make a key with "
                          "`jutella backup --make-key KEYFILE`, and keep it apart from the backups)")
    if len(key) < 32:
        raise BackupError("the backup key must be at least 32 characters (`jutella backup --make-key KEYFILE`)")
    return key.encode()


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt, b"jutella backup v1").derive(key))


def _nonce(n: int, last: bool) -> bytes:
    return n.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class _Sealer:
    """A write-only file object: what tarfile writes is sealed chunk by chunk."""

    def __init__(self, out: IO[bytes], key: bytes):
        salt = secrets.token_bytes(16)
        self.header = MAGIC + salt
        self._aead = _file_key(key, salt)
        self._out = out
        self._buf = bytearray()
        self._n = 0
        out.write(self.header)

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _emit(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._n, last), plain, self.header)
        self._out.write(struct.pack(">I", len(sealed)) + sealed)
        self._n += 1

    def close(self) -> None:
        self._emit(bytes(self._buf), last=True)
        self._buf.clear()


class _Opener:
    """A read-only file object over a sealed file; refuses anything altered."""

    def __init__(self, src: IO[bytes], key: bytes, name: str):
        header = src.read(len(MAGIC) + 16)
        if len(header) < len(MAGIC) + 16 or not header.startswith(MAGIC):
            raise BackupError(f"{name} is not a jutella backup (or one from an older jutella that was not encrypted)")
        self.header, self._src, self._name = header, src, name
        self._aead = _file_key(key, header[len(MAGIC):])
        self._buf = b""
        self._pos = 0
        self._n = 0
        self._done = False

    def _next(self) -> None:
        size = self._src.read(4)
        if len(size) < 4:
            raise BackupError(f"{self._name} is cut short (damaged); nothing was changed")
        sealed = self._src.read(struct.unpack(">I", size)[0])
        for last in (False, True):
            try:
                plain = self._aead.decrypt(_nonce(self._n, last), sealed, self.header)
            except InvalidTag:
                continue
            self._n += 1
            self._buf = plain
            if last:
                self._done = True
                if self._src.read(1):
                    raise BackupError(f"{self._name} has data after its end (damaged); nothing was changed")
            return
        if self._n == 0:
            raise BackupError(f"{self._name} cannot be decrypted with this key (the wrong key, or the file is "
                              "damaged); nothing was changed")
        raise BackupError(f"{self._name} is damaged (chunk {self._n} does not authenticate); nothing was changed")

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf) and not self._done:
            self._buf, self._pos = b"", 0
            self._next()
        if n < 0:
            parts = [self._buf[self._pos:]]
            while not self._done:
                self._buf, self._pos = b"", 0
                self._next()
                parts.append(self._buf)
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        out = self._buf[self._pos:self._pos + n]  # at most what this chunk has; callers read again
        self._pos += len(out)
        return out


# -- backup ------------------------------------------------------------------------------------
def _private_dir(parent: Path, prefix: str) -> Path:
    path = parent / f"{prefix}{secrets.token_hex(8)}"
    path.mkdir(mode=0o700)
    return path


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _seal(target: Path, key: bytes, manifest: dict[str, Any], db_file: Path, member: str,
          files: list[tuple[str, Path]]) -> None:
    """Write the sealed file next to ``target`` and rename it into place."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            sealer = _Sealer(out, key)
            with tarfile.open(fileobj=sealer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
                _add_bytes(tar, "manifest.json", orjson.dumps(manifest))
                tar.add(db_file, member, recursive=False)
                for name, path in files:
                    try:
                        tar.add(path, f"attachments/{name}", recursive=False)
                    except FileNotFoundError:  # erased since the copy: the ledger covers its row
                        pass
            sealer.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _attachment_files(data_dir: Path, names: list[str]) -> list[tuple[str, Path]]:
    folder = data_dir / "attachments"
    return [(n, folder / n) for n in names if _STORAGE_NAME.fullmatch(n or "") and (folder / n).is_file()]


def _start(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise BackupError(f"{target} exists; add --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)


def _with_fetched(files: list[tuple[str, Path]], names: list[str], fetch: Fetch | None,
                  work: Path) -> list[tuple[str, Path]]:
    """The files of an object store (``fetch``) that the copy names, beside those an older jutella left on disk."""
    if fetch is None:
        return files
    on_disk = {n for n, _ in files}
    folder = work / "files"
    folder.mkdir(mode=0o700)
    return files + fetch(sorted({n for n in names if n not in on_disk and _STORAGE_NAME.fullmatch(n or "")}),
                         folder)


def backup(db_path: Path, data_dir: Path, target: Path, key: bytes, *, force: bool,
           now: datetime | None = None, fetch: Fetch | None = None) -> dict[str, Any]:
    """Copy the database with SQLite's online backup API (consistent while
    jutella runs), then seal it with the attachments that copy names (a file
    uploaded after the copy is not in it; one erased meanwhile is missing,
    and the ledger erases its row on restore). ``fetch``: the file store is
    an object store, whose files (a chat's and a reply by email's) that the
    copy names are read through it into the backup."""
    if not db_path.exists():
        raise BackupError(f"no database at {db_path}")
    _start(target, force)
    work = _private_dir(data_dir, ".backup-")  # the plain copy stays beside the database, never in /tmp
    try:
        copy = work / DB_NAME
        try:
            with closing(sqlite3.connect(db_path)) as src, closing(sqlite3.connect(copy)) as dst:
                src.backup(dst)
            with closing(sqlite3.connect(copy)) as db:
                db.execute("PRAGMA journal_mode=DELETE")
                try:
                    names = [r[0] for r in db.execute("SELECT storage_name FROM attachment")]
                except sqlite3.OperationalError:
                    names = []
                try:
                    reply_files = [r[0] for r in db.execute("SELECT storage_name FROM email_reply_file")]
                except sqlite3.OperationalError:
                    reply_files = []
                revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as exc:
            raise BackupError(f"backup failed: {exc}") from None
        files = _attachment_files(data_dir, names)  # not yet moved into the store (an older jutella's)
        files = _with_fetched(files, names + reply_files, fetch, work)
        manifest = {"format": 1, "taken_at": (now or datetime.now(UTC)).isoformat(), "database": "sqlite",
                    "revision": revision[0] if revision else None, "attachments": len(names)}
        _seal(target, key, manifest, copy, DB_NAME, files)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- PostgreSQL: pg_dump and pg_restore ----------------------------------------------------------
def libpq_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not on PATH (Debian: apt-get install postgresql-client, of the server's "
                          "major version)")
    return path


def _run(args: list[str], what: str) -> str:
    import subprocess  # fixed programs (pg_dump, pg_restore, psql) found on PATH, no shell  # nosec B404

    done = subprocess.run(args, capture_output=True, text=True)  # an argument list, no shell  # nosec B603
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupError(f"{what} failed: {last}")
    return done.stdout


def _dump_attachment_names(dump: Path, table: str = "attachment") -> list[str]:
    """The storage names in the dump's own ``table`` (its snapshot): ``attachment`` or ``email_reply_file``."""
    text = _run([_tool("pg_restore"), "--data-only", f"--table={table}", "--file=-", str(dump)],
                "pg_restore (reading the dump)")
    names: list[str] = []
    column = None
    for line in text.splitlines():
        if column is None:
            m = re.match(rf"COPY \S*{table} \((.*)\) FROM stdin;", line)
            if m:
                column = [c.strip().strip('"') for c in m.group(1).split(",")].index("storage_name")
        elif line == "\\.":
            break
        else:
            names.append(line.split("\t")[column])
    return names


def backup_postgres(url: str, data_dir: Path, target: Path, key: bytes, *, force: bool,
                    fetch: Fetch | None = None) -> dict[str, Any]:
    """``pg_dump --format=custom`` (one consistent snapshot) sealed with the
    attachments that snapshot names (``fetch``: as in :func:`backup`)."""
    _start(target, force)
    pg_dump = _tool("pg_dump")
    data_dir.mkdir(parents=True, exist_ok=True)
    work = _private_dir(data_dir, ".backup-")
    try:
        dump = work / PG_NAME
        _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}",
              f"--dbname={libpq_url(url)}"], "pg_dump")
        names = _dump_attachment_names(dump)
        files = _attachment_files(data_dir, names)  # not yet moved into the store (an older jutella's)
        if fetch is not None:
            files = _with_fetched(files, names + _dump_attachment_names(dump, "email_reply_file"), fetch, work)
        manifest = {"format": 1, "taken_at": datetime.now(UTC).isoformat(), "database": "postgresql",
                    "revision": None, "attachments": len(names)}
        _seal(target, key, manifest, dump, PG_NAME, files)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- restore -----------------------------------------------------------------------------------
@dataclass
class Restored:
    manifest: dict[str, Any]
    attachments: int
    erasures: int  # ledger batches applied again
    erased: dict[str, int] = field(default_factory=dict)
    audit_head: tuple[int, str] | None = None


def _unpack(source: Path, key: bytes, into: Path, database: str = "sqlite") -> dict[str, Any]:
    manifest: dict[str, Any] | None = None
    member_name = DB_NAME if database == "sqlite" else PG_NAME
    (into / "attachments").mkdir(mode=0o700)
    try:
        with open(source, "rb") as raw:
            opener = _Opener(raw, key, str(source))
            with tarfile.open(fileobj=opener, mode="r|") as tar:  # type: ignore[arg-type]
                for member in tar:
                    name = member.name
                    if not member.isfile():
                        raise BackupError(f"{source} holds an unexpected entry {name!r}; nothing was changed")
                    if name == "manifest.json":
                        manifest = orjson.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
                        continue
                    if name == member_name:
                        dest = into / member_name
                    elif name in (DB_NAME, PG_NAME):
                        other = "SQLite" if name == DB_NAME else "PostgreSQL"
                        raise BackupError(f"{source} is a backup of a {other} database, and this jutella's database "
                                          "is not; nothing was changed")
                    elif name.startswith("attachments/") and _STORAGE_NAME.fullmatch(name[12:]):
                        dest = into / "attachments" / name[12:]
                    else:
                        raise BackupError(f"{source} holds an unexpected entry {name!r}; nothing was changed")
                    fileobj = tar.extractfile(member)
                    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(fileobj, out)  # type: ignore[misc]
            opener.read()  # the rest, to its authenticated end
    except tarfile.TarError as exc:
        raise BackupError(f"{source} is not a jutella backup ({exc}); nothing was changed") from None
    if manifest is None or manifest.get("format") != 1 or not (into / member_name).exists():
        raise BackupError(f"{source} is not a complete jutella backup; nothing was changed")
    if database != "sqlite":
        return manifest
    try:
        with closing(sqlite3.connect(into / DB_NAME)) as db:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} holds a damaged database; nothing was changed")
            db.execute("SELECT count(*) FROM alembic_version")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a jutella backup ({exc}); nothing was changed") from None
    return manifest


def _check_age(manifest: dict[str, Any], source: Path, max_age: timedelta | None) -> None:
    """A backup older than retention.backups_days should have been deleted, and
    the ledger no longer holds the erasures made before its period ended
    (retention prunes them): restoring it could bring erased people back."""
    if max_age is None:
        return
    taken = datetime.fromisoformat(manifest["taken_at"])
    if datetime.now(UTC) - taken > max_age:
        raise BackupError(f"{source} was taken {taken:%Y-%m-%d}, more than retention.backups_days "
                          f"({max_age.days}) ago: the erasure ledger no longer covers it, so it could bring erased "
                          "people back. Delete it; to restore it all the same add --past-retention; nothing was "
                          "changed")


def _ledger_rows(db_path: Path) -> list[dict[str, Any]]:
    if not db_path.exists():
        return []
    try:
        with closing(sqlite3.connect(db_path)) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT batch, kind, digest, key_id, erased_at FROM erasure_ledger ORDER BY id")]
    except sqlite3.OperationalError:  # a database from before the ledger
        return []


def restore(source: Path, db_path: Path, data_dir: Path, key: bytes, *, audit_key: bytes | None,
            reapply: Callable[[Path, list[dict[str, Any]], bytes], Awaitable[dict[str, int]]],
            run: Callable[[Awaitable[dict[str, int]]], dict[str, int]], max_age: timedelta | None) -> Restored:
    """Unpack into a private folder of the data dir; erase there again what
    the current ledger recorded after the backup (``reapply``, which runs the
    same erase() as `jutella subject erase`); carry the current ledger over;
    VACUUM; only then put the database and the attachments in place. A wrong
    key or a damaged file fails before anything is changed."""
    from . import ledger

    if not source.exists():
        raise BackupError(f"no backup at {source}")
    data_dir.mkdir(parents=True, exist_ok=True)
    work = _private_dir(data_dir, ".restore-")
    try:
        manifest = _unpack(source, key, work)
        _check_age(manifest, source, max_age)
        staged = work / DB_NAME
        current = _ledger_rows(db_path)  # read before the database is replaced: the ledger outlives a restore
        restored_rows = _ledger_rows(staged)
        todo = ledger.pending(current, {r["batch"] for r in restored_rows})
        erased: dict[str, int] = {}
        lkey = _ledger_key(audit_key, todo) if todo else None
        in_tar = _names_in(work / "attachments")
        if todo or in_tar:
            # the files of a backup an older jutella made go into the copy first, then the erasures
            erased = run(reapply(work, todo, lkey))
        with closing(sqlite3.connect(staged)) as db, db:
            # the ledger itself: the restored one plus every batch it lacked (the re-application's own batch,
            # written by erase(), is dropped: it repeats them)
            known = {r["batch"] for r in restored_rows}
            try:
                db.execute("DELETE FROM erasure_ledger WHERE batch NOT IN (SELECT value FROM json_each(?))",
                           (orjson.dumps(sorted(known)).decode(),))
                db.executemany("INSERT INTO erasure_ledger (batch, kind, digest, key_id, erased_at) "
                               "VALUES (:batch, :kind, :digest, :key_id, :erased_at)", todo)
            except sqlite3.OperationalError:
                pass  # not migrated (nothing to apply): the server's migration makes the table
            head = db.execute("SELECT seq, last_hash FROM audit_head WHERE id = 1").fetchone()
            stored = _files_restored(db, in_tar)
        db = sqlite3.connect(staged, isolation_level=None)
        try:
            db.execute("VACUUM")  # no free page of the erased rows is left in the file
        finally:
            db.close()
        # put in place: the database through SQLite (a server's open connections see it whole), then the files
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(staged)) as src, closing(sqlite3.connect(db_path)) as dst:
            src.backup(dst)
        dst = sqlite3.connect(db_path, isolation_level=None)
        try:
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
        _drop_legacy_folder(data_dir, work)
        return Restored(manifest, stored, len({r["batch"] for r in todo}), erased,
                        (int(head[0]), str(head[1])) if head else None)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"restore failed: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _names_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _count_restored(blob: set[str], named: set[str], in_tar: set[str]) -> int:
    """The files a restore brought back: those in the database's own store,
    and those of the tar (an object store's, an older jutella's) that the
    restored rows name, which the restore put into the file store."""
    return len(blob) + len((named & in_tar) - blob)


def _files_restored(db: sqlite3.Connection, in_tar: set[str]) -> int:
    def names(query: str) -> set[str]:
        try:
            return {r[0] for r in db.execute(query)}
        except sqlite3.OperationalError:  # not migrated: a backup from before the table
            return set()

    named = names("SELECT storage_name FROM attachment") | names("SELECT storage_name FROM email_reply_file")
    return _count_restored(names("SELECT name FROM attachment_blob"), named, in_tar)


def _drop_legacy_folder(data_dir: Path, work: Path) -> None:
    """Files an older jutella left on this host belong to the database the
    restore replaced: they go with it."""
    folder = data_dir / "attachments"
    if folder.exists():
        folder.rename(work / "attachments-replaced")


def staged_settings(settings: Any, work: Path, audit_key: bytes | None) -> Any:
    """The settings of a runtime on the unpacked copy (its own data dir, the installation's audit key)."""
    from pydantic import SecretStr

    return settings.model_copy(update={"data_dir": work, "database_url": f"sqlite:///{work / DB_NAME}",
                                       "audit_key": SecretStr(audit_key.decode()) if audit_key else settings.audit_key,
                                       "redis_url": None})


async def reapply_with(rt: Any, rows: list[dict[str, Any]], lkey: bytes | None,
                       files: Path | None = None) -> dict[str, int]:
    """In the runtime ``rt`` on the unpacked copy: move the files a backup of
    an older jutella holds (``files``, default the copy's data dir's
    ``attachments``) into it, then erase what ``rows`` name, with the erase()
    of `jutella subject erase` (files, index and all)."""
    from jutella.chat.attachments import import_disk_files

    from . import ledger, subjects

    await rt.db.migrate()
    await import_disk_files(rt, files, orphans_at_once=True)
    if not rows or lkey is None:
        return {}
    async with rt.db.reader() as s:
        found = await ledger.matches(s, rows, lkey)
    sel = subjects.Selection(found["conversations"], found["offline_messages"], found["emails"])
    if sel.is_empty():
        return {}
    return (await subjects.erase(rt, sel, actor_id=None))["counts"]  # the receipt's counts per kind



# -- PostgreSQL restore ------------------------------------------------------------------------
PENDING_FILE = "restore-ledger.json"
_DROP_TABLES = """DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
  END LOOP;
END $$;
"""


async def ledger_of(rt: Any) -> list[dict[str, Any]]:
    """The ledger of the database ``rt`` is on (migrated first)."""
    from sqlalchemy import select

    from jutella.store.models import ErasureLedger

    await rt.db.migrate()
    async with rt.db.reader() as s:
        return [{"batch": r.batch, "kind": r.kind, "digest": r.digest, "key_id": r.key_id,
                 "erased_at": r.erased_at.isoformat()}
                for r in (await s.execute(select(ErasureLedger).order_by(ErasureLedger.id))).scalars()]


def _union(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rows in groups:
        for r in rows:
            seen.setdefault((r["batch"], r["kind"], r["digest"]), r)
    return list(seen.values())


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


async def _after_pg_restore(rt: Any, rows: list[dict[str, Any]], lkey: bytes | None, files: Path) -> tuple:
    from sqlalchemy import delete, select

    from jutella.chat.attachments import import_disk_files
    from jutella.store.models import Attachment, AttachmentBlob, AuditHead, EmailReplyFile, ErasureLedger

    from . import ledger

    await rt.db.migrate()
    in_tar = _names_in(files)
    # the files of the tar into the file store: an object store's, or a backup of an older jutella's
    await import_disk_files(rt, files, orphans_at_once=True)
    async with rt.db.reader() as s:
        restored = set((await s.execute(select(ErasureLedger.batch).distinct())).scalars())
    todo = ledger.pending(rows, restored)
    erased: dict[str, int] = {}
    if todo:
        if lkey is None:  # checked before pg_restore; never reached
            raise BackupError("the erasure ledger needs the audit key")
        erased = await reapply_with(rt, todo, lkey, files)
        async with rt.db.transaction() as s:
            await s.execute(delete(ErasureLedger).where(ErasureLedger.batch.notin_(restored) if restored else True))
            s.add_all([ErasureLedger(batch=r["batch"], kind=r["kind"], digest=r["digest"], key_id=r["key_id"],
                                     erased_at=datetime.fromisoformat(r["erased_at"])) for r in todo])
    async with rt.db.reader() as s:
        head = (await s.execute(select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1))).first()
        blob = set((await s.execute(select(AttachmentBlob.c.name))).scalars())
        named = set((await s.execute(select(Attachment.storage_name))).scalars()) | set(
            (await s.execute(select(EmailReplyFile.storage_name))).scalars())
    stored = _count_restored(blob, named, in_tar)
    return erased, len({r["batch"] for r in todo}), (int(head[0]), str(head[1])) if head else None, stored


def restore_postgres(source: Path, url: str, data_dir: Path, key: bytes, *, audit_key: bytes | None,
                     with_runtime: Callable[[Callable[[Any], Awaitable[Any]]], Any],
                     max_age: timedelta | None) -> Restored:
    """Decrypt, unpack and check first (nothing changed on a wrong key); save
    the current ledger to ``<data_dir>/restore-ledger.json`` (keyed hashes
    only; an interrupted restore finds it again); drop jutella's tables and
    load the dump in ONE transaction (psql --single-transaction); put the
    attachments in place; erase again what the ledger recorded since the
    dump, with erase() (files, VACUUM); put the ledger back; delete the file."""
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    data_dir.mkdir(parents=True, exist_ok=True)
    work = _private_dir(data_dir, ".restore-")
    try:
        manifest = _unpack(source, key, work, "postgresql")
        _check_age(manifest, source, max_age)
        pending_path = data_dir / PENDING_FILE
        saved = orjson.loads(pending_path.read_bytes()) if pending_path.exists() else []
        rows = _union(saved, with_runtime(ledger_of))
        lkey = None
        if rows:
            lkey = _ledger_key(audit_key, rows)
            _write_private(pending_path, orjson.dumps(rows))
        script = work / "restore.sql"
        _run([pg_restore, "--no-owner", "--no-privileges", f"--file={script}", str(work / PG_NAME)],
             "pg_restore (reading the dump)")
        (work / "drop.sql").write_text(_DROP_TABLES)
        _run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", str(work / "drop.sql"),
              "-f", str(script), f"--dbname={libpq_url(url)}"], "restoring the dump (nothing was changed)")
        _drop_legacy_folder(data_dir, work)
        erased, batches, head, stored = with_runtime(lambda rt: _after_pg_restore(rt, rows, lkey, work / "attachments"))
        pending_path.unlink(missing_ok=True)
        return Restored(manifest, stored, batches, erased, head)
    finally:
        shutil.rmtree(work, ignore_errors=True)
