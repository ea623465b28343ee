"""The audit log's anchors outside the database (accounts/audit_anchor.py):
the key file and the checkpoint file, without a database."""

from __future__ import annotations

import stat
import threading

from jutella.accounts.audit_anchor import AuditAnchor, Checkpoint
from jutella.settings import Settings


def test_processes_starting_together_agree_on_one_key_that_only_the_owner_reads(tmp_path):
    anchors = [AuditAnchor(Settings(data_dir=tmp_path / "data")) for _ in range(8)]
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda a=a: keys.append(a.key())) for a in anchors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    key_file = tmp_path / "data" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["audit.key"]  # no temporary file left


def test_the_checkpoint_only_moves_forward_unless_a_restore_forces_it(tmp_path):
    anchor = AuditAnchor(Settings(data_dir=tmp_path))
    assert anchor.read_checkpoint() is None
    anchor.write_checkpoint(Checkpoint(5, "e" * 64))
    anchor.write_checkpoint(Checkpoint(3, "c" * 64))  # another worker, a moment behind
    assert anchor.read_checkpoint() == Checkpoint(5, "e" * 64)
    anchor.write_checkpoint(Checkpoint(3, "c" * 64), force=True)
    assert anchor.read_checkpoint() == Checkpoint(3, "c" * 64)


def test_many_notes_end_in_the_newest_row(tmp_path):
    anchor = AuditAnchor(Settings(data_dir=tmp_path))
    for seq in range(1, 501):
        anchor.note(seq, f"{seq:064x}")
    anchor.flush()
    assert anchor.read_checkpoint() == Checkpoint(500, f"{500:064x}")
