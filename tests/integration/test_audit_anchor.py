"""The audit log's start, content and end are anchored outside the database
(issue 15, item 6): someone with write access to the database alone cannot
remove the oldest rows, remove the newest, or edit a row and re-hash the rest
with the public algorithm without ``jutella audit verify`` (the real command,
as an operator runs it) exiting 1 with a clear line. Retention's pruning
leaves a keyed link, so what remains still verifies, and still catches edits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import stat
from pathlib import Path

import orjson
import pytest
from sqlalchemy import delete, select, update

from jutella.accounts import audit
from jutella.privacy import retention
from jutella.store.models import AuditEntry, AuditHead

from tests.conftest import BOTH
from tests.helpers import run_cli


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def verify_cli(settings, **extra: str):
    """``jutella audit verify`` (in this process: tests/integration/test_cli.py runs it as a process)."""
    env = {"JUTELLA_DATA_DIR": str(settings.data_dir), "JUTELLA_DATABASE_URL": settings.database_url, **extra}
    return run_cli("audit", "verify", env=env)


def write_rows(in_process, n: int) -> None:
    """n audit rows, each in its own transaction as the actions write them,
    then wait for the checkpoint outside the database to catch up."""
    rt = in_process.rt

    async def go():
        for i in range(n):
            async with rt.db.transaction() as s:
                await audit.record(s, rt.clock.now(), actor_id=None, action="conversation.view",
                                   target_type="conversation", target_id=i)
    in_process.call(go)
    flush_checkpoint(in_process)


def flush_checkpoint(in_process) -> None:
    """Wait for the checkpoint file (written by a thread of its own)."""
    anchor = getattr(in_process.rt.db, "session_info", {}).get("audit")  # (none before issue 15)
    if anchor is not None:
        anchor.flush()


def execute(in_process, *statements) -> None:
    """Play someone with write access to the database (not to the data dir)."""
    async def go():
        async with in_process.rt.db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)
    in_process.call(go)


def rows(in_process) -> list[AuditEntry]:
    async def go():
        async with in_process.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars())
    return in_process.call(go)


def public_hash(prev_hash: str, row: AuditEntry) -> str:
    """The chain's algorithm as it was published (before the key)."""
    content = orjson.dumps([row.seq, row.at.isoformat(timespec="microseconds"), row.actor_id, row.action,
                            row.target_type, row.target_id, row.subject, row.detail], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"\n" + content).hexdigest()


def assert_broken(result, *phrases: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.startswith("jutella: audit log broken at row ") and len(line.splitlines()) == 1, line
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in line, line


def test_a_fresh_install_verifies_and_its_key_and_checkpoint_live_in_the_data_dir(in_process, settings, caplog):
    r = verify_cli(settings)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 0 rows checked", r.stderr
    caplog.set_level(logging.INFO, logger="jutella.audit")
    write_rows(in_process, 3)
    key = Path(settings.data_dir) / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    checkpoint = json.loads((Path(settings.data_dir) / "audit-checkpoint.json").read_text())
    last = rows(in_process)[-1]
    assert checkpoint == {"seq": 3, "hash": last.hash}
    # the checkpoint's second copy: a log line (the key never appears in it)
    lines = [r.getMessage() for r in caplog.records if r.name == "jutella.audit"]
    assert f"audit checkpoint: row 3, hash {last.hash}" in lines
    assert not any(key.read_text().strip() in line for line in lines)
    # the row's hash is keyed: the public algorithm does not give it
    assert last.hash != public_hash(last.prev_hash, last)
    r = verify_cli(settings)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 3 rows checked", r.stderr


def test_deleting_the_oldest_rows_is_found(in_process, settings):
    write_rows(in_process, 200)
    execute(in_process, delete(AuditEntry).where(AuditEntry.seq <= 150))
    assert_broken(verify_cli(settings), "row 151", "the 150 rows before it were removed")


def test_an_edit_re_hashed_with_the_public_algorithm_is_found(in_process, settings):
    write_rows(in_process, 20)
    chain = rows(in_process)
    prev = chain[8].hash
    statements = []
    for row in chain[9:]:  # row 10 edited, it and every later row re-hashed, the head moved to match
        if row.seq == 10:
            row.action = "account.enable"
        row.prev_hash, row.hash = prev, public_hash(prev, row)
        statements.append(update(AuditEntry).where(AuditEntry.seq == row.seq).values(
            action=row.action, prev_hash=row.prev_hash, hash=row.hash))
        prev = row.hash
    statements.append(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    execute(in_process, *statements)
    assert_broken(verify_cli(settings), "row 10", "does not match its keyed hash")


def test_deleting_the_newest_rows_is_found_even_with_the_head_moved_back(in_process, settings):
    write_rows(in_process, 20)
    chain = rows(in_process)
    execute(in_process, delete(AuditEntry).where(AuditEntry.seq > 15),
            update(AuditHead).where(AuditHead.id == 1).values(seq=15, last_hash=chain[14].hash))
    assert_broken(verify_cli(settings), "the newest rows were removed", "has row 20, the log ends at row 15")


def test_retention_leaves_a_link_that_verification_starts_from(in_process, settings, clock):
    rt = in_process.rt
    write_rows(in_process, 10)  # these go
    clock.advance(days=rt.settings.retention.audit_days - 1)
    write_rows(in_process, 5)  # these stay
    clock.advance(days=2)
    assert in_process.call(retention.run, rt)["audit_rows"] == 10
    flush_checkpoint(in_process)
    kept = rows(in_process)
    assert kept[0].seq == 11 and [r.action for r in kept[-2:]] == ["audit.pruned", "retention.run"]
    assert kept[-2].detail == {"through": 10, "hash": kept[0].prev_hash, "rows": 10}
    r = verify_cli(settings)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 7 rows checked", r.stderr
    # what remains is still checked: an edit in it is found
    execute(in_process, update(AuditEntry).where(AuditEntry.seq == 12).values(target_id="99"))
    assert_broken(verify_cli(settings), "row 12", "does not match its keyed hash")
    # and pruning more than retention did (the link names row 10, not 11) is found
    execute(in_process, update(AuditEntry).where(AuditEntry.seq == 12).values(target_id=kept[1].target_id),
            delete(AuditEntry).where(AuditEntry.seq == 11))
    assert_broken(verify_cli(settings), "row 12", "the 11 rows before it were removed")


def test_rows_from_before_the_key_are_sealed_at_upgrade_and_stay_protected(in_process, settings, clock):
    from sqlalchemy import insert

    from jutella.store.db import alembic_to

    # the database as version 0007 left it: five rows hashed with the public algorithm
    async def go():
        async with in_process.rt.db.engine.begin() as conn:
            await conn.run_sync(alembic_to("0007", down=True))
    in_process.call(go)
    prev, statements = "0" * 64, []
    for seq in range(1, 6):
        row = AuditEntry(seq=seq, at=clock.now(), actor_id=None, action="login.failed", target_type=None,
                         target_id=None, subject=None, detail={"n": seq})
        row.prev_hash, row.hash = prev, public_hash(prev, row)
        statements.append(insert(AuditEntry).values(seq=seq, at=row.at, actor_id=None, action=row.action,
                                                    detail=row.detail, prev_hash=row.prev_hash, hash=row.hash))
        prev = row.hash
    statements.append(update(AuditHead.__table__).where(AuditHead.id == 1).values(seq=5, last_hash=prev))
    execute(in_process, *statements)

    # upgrading (every command migrates first) seals them with a keyed row
    r = verify_cli(settings)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 6 rows checked", r.stderr
    chain = rows(in_process)
    assert chain[-1].action == "audit.keyed" and chain[-1].detail == {"unkeyed_through": 5}

    # an old row edited and the old rows re-hashed with the public algorithm: the seal no longer matches
    prev, statements = chain[0].hash, []
    for row in chain[1:5]:
        if row.seq == 2:
            row.detail = {"n": 20}
        row.prev_hash, row.hash = prev, public_hash(prev, row)
        statements.append(update(AuditEntry).where(AuditEntry.seq == row.seq).values(
            detail=row.detail, prev_hash=row.prev_hash, hash=row.hash))
        prev = row.hash
    statements.append(update(AuditEntry).where(AuditEntry.seq == 6).values(prev_hash=prev))
    execute(in_process, *statements)
    assert_broken(verify_cli(settings), "row 6", "does not match its keyed hash")


AUDIT_KEY = "k" * 40


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("settings_overrides", [{"audit_key": AUDIT_KEY}])
def test_the_key_can_come_from_the_setting_and_verify_needs_that_key(in_process, settings):
    write_rows(in_process, 3)
    assert not (Path(settings.data_dir) / "audit.key").exists()  # the setting's key, no file made
    r = verify_cli(settings, JUTELLA_AUDIT_KEY=AUDIT_KEY)
    assert r.returncode == 0 and r.stdout.strip() == "audit log intact: 3 rows checked", r.stderr
    assert_broken(verify_cli(settings, JUTELLA_AUDIT_KEY="x" * 40), "row 1", "does not match its keyed hash")
    r = verify_cli(settings)  # neither the setting nor a key file
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("jutella: audit log cannot be checked: the audit log has rows but its key "
                                       "is missing"), r.stderr
