"""What anchors the audit log outside the database (accounts/audit.py keeps
the chain itself):

- the chain's HMAC key: ``JUTELLA_AUDIT_KEY``, or else the file ``audit.key``
  in the data dir, made on first use (32 random bytes as hex, mode 0600).
  Without the key nobody can recompute a row's hash, so an edited row cannot
  be re-hashed to match. The key is never logged nor stored in the database;
- the checkpoint: the file ``audit-checkpoint.json`` beside it, holding the
  last row number and hash this machine has seen committed, and a log line
  each time it moves. Rows after it can be appended, but none up to it can be
  removed or replaced without ``jutella audit verify`` saying so.

Writing the checkpoint (temporary file, fsync, rename, fsync of the folder)
is done by a thread of its own, never by the event loop: ``note()`` only
remembers the newest row, so a burst of appends costs one write. The file
only moves forward (a lock file serialises the workers of one machine, and a
write never lowers the row number), so it is a lower bound of the chain: on
several servers each keeps its own, covering what it saw (docs/security.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from jutella.settings import Settings

log = logging.getLogger("jutella.audit")

KEY_FILE = "audit.key"
CHECKPOINT_FILE = "audit-checkpoint.json"


class AuditKeyMissing(Exception):
    """There are keyed rows but no key to check them with."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_key(path: Path) -> None:
    """A new random key (64 hex characters) at ``path``, readable by its owner
    only, on disk before this returns; never overwrites (FileExistsError).
    The audit key and `jutella backup --make-key` both make theirs so."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditAnchor:
    """The key and the checkpoint of one installation's audit log, as this
    process sees them. One per Runtime (services.build_runtime); the database
    sessions carry it (``session.info["audit"]``) so ``audit.record`` finds it."""

    def __init__(self, settings: Settings):
        self.data_dir = Path(settings.data_dir)
        self._setting = settings.audit_key.get_secret_value().strip() if settings.audit_key else None
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self._pending: Checkpoint | None = None
        self._writer: threading.Thread | None = None

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / CHECKPOINT_FILE

    # -- the key --------------------------------------------------------------------------
    def key(self) -> bytes:
        """The HMAC key; made (in the data dir) on first use."""
        key = self.existing_key()
        if key is None:
            key = self._key = self._make_key()
        return key

    def existing_key(self) -> bytes | None:
        """The HMAC key if there is one (verifying never makes one)."""
        if self._key is None:
            if self._setting is not None:
                self._key = self._setting.encode()
            elif self.key_path.exists():
                self._key = self.key_path.read_text().strip().encode()
        return self._key

    def _make_key(self) -> bytes:
        """Write a new key file atomically and without ever being readable by
        others; when another process made one meanwhile, use that one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        write_new_key(tmp)
        try:
            os.link(tmp, self.key_path)  # fails if it exists: the first process's key wins
            _fsync_dir(self.data_dir)
            log.warning("audit: made a new audit key at %s; back it up apart from the database", self.key_path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return self.key_path.read_text().strip().encode()

    # -- the checkpoint ---------------------------------------------------------------------
    def read_checkpoint(self) -> Checkpoint | None:
        try:
            data = orjson.loads(self.checkpoint_path.read_bytes())
            return Checkpoint(int(data["seq"]), str(data["hash"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the audit checkpoint {self.checkpoint_path} is unreadable ({exc})") from None

    def note(self, seq: int, digest: str) -> None:
        """Row ``seq`` with hash ``digest`` is committed: move the checkpoint
        there soon (a thread writes it; cheap to call on every append)."""
        with self._lock:
            if self._pending is None or seq > self._pending.seq:
                self._pending = Checkpoint(seq, digest)
            if self._writer is None:
                # not a daemon: a process that ends waits for its last checkpoint
                self._writer = threading.Thread(target=self._write_pending, name="audit-checkpoint")
                self._writer.start()

    def flush(self) -> None:
        """Wait until every noted row is in the checkpoint file."""
        while True:
            with self._lock:
                writer = self._writer
            if writer is None:
                return
            writer.join()

    def _write_pending(self) -> None:
        while True:
            with self._lock:
                item, self._pending = self._pending, None
                if item is None:
                    self._writer = None
                    return
            try:
                self.write_checkpoint(item)
            except (OSError, ValueError) as exc:  # the log still has the line; say why the file has not
                log.error("audit checkpoint not written: %s", exc)

    def write_checkpoint(self, cp: Checkpoint, *, force: bool = False) -> None:
        """Write the checkpoint if it is ahead of the file's (or ``force``:
        after a restore put an older database back)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / f"{CHECKPOINT_FILE}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = None if force else self.read_checkpoint()
            if current is not None and current.seq >= cp.seq:
                return
            tmp = self.checkpoint_path.with_name(f".{CHECKPOINT_FILE}.{os.getpid()}")
            with open(tmp, "wb") as f:
                f.write(orjson.dumps({"seq": cp.seq, "hash": cp.hash}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.checkpoint_path)
            _fsync_dir(self.data_dir)
        # the second anchor: a line in the log, which leaves the machine with it
        log.info("audit checkpoint: row %d, hash %s", cp.seq, cp.hash)
