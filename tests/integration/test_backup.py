"""Backups that forget (docs/privacy.md "Backups that forget"): `jutella
backup` is encrypted and holds the attachments; `jutella restore` of a backup
taken before an erasure brings nobody back, not in the database, not in the
attachment files, not in a single byte of the data dir."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BOTH, run_async
from tests.integration.test_cli import jutella

ERASED = ["Liisa Virtanen", "liisa.virtanen@example.fi", "K1234567", "LIISA-PDF-4711", "Ilmoittautuminen on auki"]
KEPT = ["Bertta Berg", "BERTTA-PDF-0815"]


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"JUTELLA_DATA_DIR": str(tmp_path / "data"), "JUTELLA_DATABASE_URL": database_url}


def pdf(marker: str) -> bytes:
    return f"%PDF-1.4\n1 0 obj<<>>endobj\n% {marker}\ntrailer<<>>\n%%EOF\n".encode()


def people(env: dict[str, str]) -> dict[str, int]:
    """Liisa: a chat with her name, email and student number, a PDF, and an
    offline form with her address; Bertta: a chat and a PDF of her own."""
    from jutella.chat import actions as chat
    from jutella.chat import attachments, offline
    from jutella.chat.metadata import Metadata
    from jutella.services import build_runtime
    from jutella.settings import Settings

    async def make() -> dict[str, int]:
        rt = build_runtime(Settings(data_dir=Path(env["JUTELLA_DATA_DIR"]),
                                    database_url=env["JUTELLA_DATABASE_URL"]))
        await rt.db.migrate()
        out = {}
        for who, text, marker in (
                ("liisa", "Olen Liisa Virtanen, liisa.virtanen@example.fi, opiskelijanumero K1234567. "
                          "Ilmoittautuminen on auki?", "LIISA-PDF-4711"),
                ("bertta", "Hei, täällä Bertta Berg.", "BERTTA-PDF-0815")):
            visitor, _ = await chat.new_visitor(rt)
            posted = await chat.post_visitor_message(rt, visitor_id=visitor.id, client_id="c1", body=text,
                                                     meta=Metadata())
            await attachments.add(rt, conversation_id=posted.conversation.id, visitor_id=visitor.id,
                                  data=pdf(marker), filename=f"{who}.pdf")
            out[who] = posted.conversation.id
            if who == "liisa":
                await offline.submit(rt, name="Liisa Virtanen", email="liisa.virtanen@example.fi",
                                     message="Ilmoittautuminen on auki vielä?", reason="offline",
                                     meta=Metadata(), visitor_id=visitor.id)
        await rt.db.dispose()
        return out

    return run_async(make())


def every_byte(data_dir: Path, env: dict[str, str]) -> bytes:
    """Every file of the data dir; on PostgreSQL also everything the database holds (a plain dump)."""
    files = b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())
    url = env["JUTELLA_DATABASE_URL"]
    if url.startswith("postgres"):
        files += subprocess.run(["pg_dump", "--dbname", url], capture_output=True, check=True).stdout
    return files


def stored_files(env: dict[str, str]) -> list[bytes]:
    """The attachments' bytes in the database (the cluster's file store, store/files.py)."""
    from jutella.services import build_runtime
    from jutella.settings import Settings

    async def read() -> list[bytes]:
        rt = build_runtime(Settings(data_dir=Path(env["JUTELLA_DATA_DIR"]), database_url=env["JUTELLA_DATABASE_URL"]))
        try:
            return sorted([await rt.files.get(e.key) async for e in rt.files.entries()])
        finally:
            await rt.db.dispose()

    return run_async(read())


def snapshot(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def key_file(tmp_path: Path, env) -> Path:
    path = tmp_path / "keys" / "backup.key"
    path.parent.mkdir()
    r = jutella("backup", "--make-key", str(path), env=env)
    assert r.returncode == 0, r.stderr
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text().strip()) == 64
    assert jutella("backup", "--make-key", str(path), env=env).returncode == 1  # never overwritten
    return path


def test_a_restore_brings_no_erased_person_back(env, tmp_path, key_file):
    data = Path(env["JUTELLA_DATA_DIR"])
    people(env)
    backup = tmp_path / "before-erasure.jutella-backup"
    r = jutella("backup", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0, r.stderr
    assert "2 attachment(s)" in r.stdout and "retention.backups_days (30 days)" in r.stderr

    # the backup file holds none of it in plain: neither text nor the attachments' bytes
    sealed = backup.read_bytes()
    for s in ERASED + KEPT + ["Olen", "SQLite format 3", "%PDF"]:
        assert s.encode() not in sealed, s
    assert backup.stat().st_mode & 0o777 == 0o600

    r = jutella("subject", "erase", "liisa.virtanen@example.fi", "--yes", env=env)
    assert r.returncode == 0, r.stderr
    assert "1 conversations" in r.stdout and "1 offline messages" in r.stdout and "1 attachments" in r.stdout

    # the wrong key: one clear line, and not one byte of the data dir changed
    before = snapshot(data)
    wrong = tmp_path / "keys" / "other.key"
    assert jutella("backup", "--make-key", str(wrong), env=env).returncode == 0
    r = jutella("restore", str(backup), "--key-file", str(wrong), env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"jutella: {backup} cannot be decrypted with this key (the wrong key, or the file "
                                "is damaged); nothing was changed")
    assert snapshot(data) == before

    r = jutella("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0, r.stderr
    assert "erasures made since the backup, applied again: 1 (" in r.stdout, r.stdout
    for query in ("liisa.virtanen@example.fi", "K1234567", "Liisa Virtanen"):
        r = jutella("subject", "find", query, env=env)
        assert r.returncode == 0 and r.stdout == "", (query, r.stdout)
    everything = every_byte(data, env)
    for s in ERASED:
        assert s.encode() not in everything, s
    # Bertta, not erased, is back with her attachment
    r = jutella("subject", "find", "Bertta Berg", env=env)
    assert r.returncode == 0 and "Bertta Berg" in r.stdout
    assert stored_files(env) == [pdf("BERTTA-PDF-0815")]  # in the restored database (store/files.py)
    assert not (data / "attachments").exists()
    r = jutella("audit", "verify", env=env)
    assert r.returncode == 0, r.stderr

    # the ledger outlived the restore: restoring the same backup again erases Liisa again
    r = jutella("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "applied again: 1 (" in r.stdout, r.stdout + r.stderr
    assert jutella("subject", "find", "K1234567", env=env).stdout == ""
    for s in ERASED:
        assert s.encode() not in every_byte(data, env), s


def test_a_backup_taken_after_the_erasure_erases_nothing_more(env, tmp_path, key_file):
    data = Path(env["JUTELLA_DATA_DIR"])
    people(env)
    assert jutella("subject", "erase", "K1234567", "--yes", env=env).returncode == 0
    backup = tmp_path / "after.jutella-backup"
    assert jutella("backup", str(backup), "--key-file", str(key_file), env=env).returncode == 0
    r = jutella("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "applied again: 0 (nothing left to erase)" in r.stdout, r.stdout
    assert "Bertta Berg" in jutella("subject", "find", "Bertta", env=env).stdout


def test_key_from_the_environment_and_clear_errors(env, tmp_path):
    data = Path(env["JUTELLA_DATA_DIR"])
    people(env)
    backup = tmp_path / "b.jutella-backup"
    r = jutella("backup", str(backup), env=env)
    assert r.returncode == 1 and "no backup key" in r.stderr and "--make-key" in r.stderr and not backup.exists()
    keyed = {**env, "JUTELLA_BACKUP_KEY": "k" * 40}
    assert jutella("backup", str(backup), env=keyed).returncode == 0
    assert jutella("backup", str(backup), env=keyed).returncode == 1  # no silent overwrite
    # damaged: one flipped byte in the middle
    raw = bytearray(backup.read_bytes())
    raw[len(raw) // 2] ^= 1
    bad = tmp_path / "bad.jutella-backup"
    bad.write_bytes(bytes(raw))
    before = snapshot(data)
    r = jutella("restore", str(bad), env=keyed)
    assert r.returncode == 1 and "nothing was changed" in r.stderr and "Traceback" not in r.stderr
    # cut short
    bad.write_bytes(backup.read_bytes()[:-10])
    r = jutella("restore", str(bad), env=keyed)
    assert r.returncode == 1 and "nothing was changed" in r.stderr and "Traceback" not in r.stderr
    # an old plain copy (as `jutella backup` wrote before) is not taken for a backup
    bad.write_bytes(b"SQLite format 3\x00" + bytes(4096))
    r = jutella("restore", str(bad), env=keyed)
    assert r.returncode == 1 and "is not a jutella backup" in r.stderr
    assert snapshot(data) == before
    assert not [p for p in data.iterdir() if p.name.startswith(".restore-")]
    assert jutella("restore", str(backup), env=keyed).returncode == 0


def test_a_restore_takes_no_more_than_the_erasure_took(env, tmp_path, key_file):
    """Erasing one of a person's two forms (a selection, as the console
    sends): the restore erases that form again and keeps the other, though
    both carry the same address (the address is in the ledger only when
    nothing with it is left)."""
    from jutella.chat import offline
    from jutella.chat.metadata import Metadata
    from jutella.privacy import subjects
    from jutella.services import build_runtime
    from jutella.settings import Settings

    settings = Settings(data_dir=Path(env["JUTELLA_DATA_DIR"]), database_url=env["JUTELLA_DATABASE_URL"])

    async def forms() -> list[int]:
        rt = build_runtime(settings)
        await rt.db.migrate()
        ids = []
        for text in ("Ensimmäinen viesti: laskun numero 5551", "Toinen viesti: kokous torstaina 7772"):
            done = await offline.submit(rt, name="Olli Otava", email="olli.otava@example.fi", message=text,
                                        reason="offline", meta=Metadata())
            ids.append(done.message.id)
        await rt.db.dispose()
        return ids

    async def erase(mid: int) -> None:
        rt = build_runtime(settings)
        await subjects.erase(rt, subjects.Selection(offline_messages={mid}), actor_id=None)
        await rt.db.dispose()
        rt.db.session_info["audit"].flush()

    first, _ = run_async(forms())
    backup = tmp_path / "b.jutella-backup"
    assert jutella("backup", str(backup), "--key-file", str(key_file), env=env).returncode == 0
    run_async(erase(first))
    r = jutella("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "applied again: 1 (" in r.stdout and "1 offline messages" in r.stdout, r.stdout
    found = jutella("subject", "find", "olli.otava@example.fi", env=env).stdout
    assert len([line for line in found.splitlines() if line.startswith("offline_message")]) == 1, found
    assert jutella("subject", "find", "5551", env=env).stdout == ""
    assert jutella("subject", "find", "7772", env=env).stdout != ""


@pytest.mark.parametrize("backend", ["sqlite"])  # the backup's age is checked before the database kind matters
def test_a_backup_past_its_retention_is_refused_and_its_ledger_rows_pruned(env, tmp_path, key_file):
    """retention.backups_days (30): retention prunes ledger rows older than
    that, so a restore refuses a backup older than that (it could bring back
    people erased before the rows went), unless told --past-retention."""
    from datetime import UTC, datetime, timedelta

    from jutella.privacy import backup as backups
    from jutella.privacy import retention
    from jutella.services import build_runtime
    from jutella.settings import Settings

    from jutella.clock import FakeClock

    data = Path(env["JUTELLA_DATA_DIR"])
    people(env)
    old = tmp_path / "old.jutella-backup"
    backups.backup(data / "jutella.sqlite3", data, old, key_file.read_text().strip().encode(), force=False,
                   now=datetime.now(UTC) - timedelta(days=31))
    before = snapshot(data)
    r = jutella("restore", str(old), "--key-file", str(key_file), env=env)
    assert r.returncode == 1 and "more than retention.backups_days (30) ago" in r.stderr, r.stderr
    assert snapshot(data) == before
    r = jutella("restore", str(old), "--key-file", str(key_file), "--past-retention", env=env)
    assert r.returncode == 0, r.stderr

    assert jutella("subject", "erase", "K1234567", "--yes", env=env).returncode == 0
    clock = FakeClock(datetime.now(UTC))

    async def prune() -> list[int]:
        rt = build_runtime(Settings(data_dir=data), clock)
        out = [(await retention.run(rt))["erasure_ledger"]]
        clock.advance(days=31)
        out.append((await retention.run(rt))["erasure_ledger"])
        await rt.db.dispose()
        rt.db.session_info["audit"].flush()
        return out

    kept, pruned = run_async(prune())
    assert kept == 0 and pruned >= 3  # the conversation, the form, the visitor, the address
