"""The attachments' bytes in an S3-compatible object store (``JUTELLA_FILE_STORE=s3``).

:class:`S3FileStore` implements store/files.py's :class:`FileStore` with
boto3 (the optional extra ``jutella[s3]``) against any server that speaks
S3: AWS itself, MinIO, Ceph's RADOS Gateway, Garage, SeaweedFS, ... A file
is the object ``<prefix><key>`` in one bucket. The tests run it against
moto's S3 server (tests/integration/test_filestore.py, test_s3.py).

boto3 is blocking: every call goes to a thread (``asyncio.to_thread``), none
runs on the event loop. A client is thread-safe, so one serves them all.

It cannot join a database transaction (``transactional = False``): how the
callers keep rows and objects consistent without one (put before the row,
deletions written down with the rows' deletion and carried out after the
commit and by the housekeeper, the sweep of objects no row names) is in
store/files.py and docs/attachments.md, "An S3-compatible object store".

Faults: an object store that cannot be reached, times out, or answers with
an error is a ``StorageFault("files_unavailable")`` (503 to a client, a
clear line on the command line, jutella/faults.py). Log lines and faults
carry the error's code or class, never the secret key, a key or an address.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from jutella.settings import S3_PREFIX

from .db import Database, StorageFault
from .files import CHUNK, KEY, Entry, FileStore, FileStoreMisconfigured, Opened, check_key

MISSING = {"NoSuchKey", "404", "NotFound"}
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def check_prefix(prefix: str) -> str:
    """Empty, or folder names ending in ``/`` (``jutella/``, ``chat/files/``)."""
    if not S3_PREFIX.fullmatch(prefix or ""):
        raise ValueError("must be empty or folder names of letters, digits, '.', '_' and '-', each ending in '/'")
    return prefix or ""


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode") or "ClientError")
    return type(exc).__name__


def _fault(exc: BaseException) -> StorageFault:
    return StorageFault("files_unavailable", f"object store: {_code(exc)}")


_SESSION_LOCK = threading.Lock()
_SESSIONS: list[boto3.session.Session] = []


def _session() -> boto3.session.Session:
    """One boto3 session per process (under ``_SESSION_LOCK``): a client made
    from it costs milliseconds, a new session's first one a tenth of a second."""
    if not _SESSIONS:
        _SESSIONS.append(boto3.session.Session())
    return _SESSIONS[0]


class _Body:
    """An object's body read a chunk at a time, each read in a thread; closed
    at its end, on ``aclose()`` (a HEAD request's answer) or when dropped."""

    def __init__(self, body: Any):
        self._body = body

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        if self._body is None:
            raise StopAsyncIteration
        try:
            part = await asyncio.to_thread(self._body.read, CHUNK)
        except (BotoCoreError, ClientError, OSError) as exc:
            await self.aclose()
            raise _fault(exc) from None
        if not part:
            await self.aclose()
            raise StopAsyncIteration
        return part

    async def aclose(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    def __del__(self) -> None:
        if self._body is not None:
            self._body.close()


class S3FileStore(FileStore):
    """Files as objects ``<prefix><key>`` of ``bucket``. ``access_key_id``
    None: boto3's own chain (AWS_* variables, an instance's role). The
    secret is handed to the client and kept nowhere else."""

    transactional = False

    def __init__(self, db: Database, *, bucket: str, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None, prefix: str = "",
                 timeout: float = 10.0):
        self.db = db
        self.bucket = bucket
        self.prefix = check_prefix(prefix)
        config = Config(
            signature_version="s3v4",
            # path-style URLs (endpoint/bucket/key) for a server of one's own (MinIO, Ceph, ...); AWS: its default
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=timeout, read_timeout=timeout, max_pool_connections=16,
            # checksums only where S3 requires them: several S3-compatible servers refuse the newer trailers
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )
        with _SESSION_LOCK:  # a session is not thread-safe; its clients are (and it keeps the loaded S3 model)
            self.client = _session().client(
                "s3", endpoint_url=endpoint_url or None, region_name=region or "us-east-1",
                aws_access_key_id=access_key_id or None, aws_secret_access_key=secret_access_key or None,
                config=config)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise
            raise _fault(exc) from None
        except BotoCoreError as exc:
            raise _fault(exc) from None

    # -- the interface ---------------------------------------------------------------------
    async def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        await self._call(self.client.put_object, Bucket=self.bucket, Key=name, Body=data,
                         ContentType="application/octet-stream")

    async def get(self, key: str) -> bytes | None:
        opened = await self.open(key)
        if opened is None:
            return None
        return b"".join([part async for part in opened.chunks])

    async def open(self, key: str) -> Opened | None:
        name = self._name(key)
        try:
            got = await self._call(self.client.get_object, Bucket=self.bucket, Key=name)
        except ClientError:  # missing (every other error is a fault)
            return None
        return Opened(int(got["ContentLength"]), _Body(got["Body"]))

    async def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            await self._call(self.client.head_object, Bucket=self.bucket, Key=name)
        except ClientError:
            return False
        return True

    async def delete(self, keys: Iterable[str]) -> int:
        names = sorted({self._name(k) for k in keys})
        if not names:
            return 0
        return await self._call(self._delete_blocking, names)

    def _delete_blocking(self, names: list[str]) -> int:
        """In a thread: which of ``names`` are there (S3's DeleteObjects says
        "deleted" of a missing key too), then delete them, 1000 at a time. An
        error for any key is a fault: nothing is said gone that is not."""
        there = 0
        for name in names:
            try:
                self.client.head_object(Bucket=self.bucket, Key=name)
                there += 1
            except ClientError as exc:
                if _code(exc) not in MISSING:
                    raise
        for start in range(0, len(names), DELETE_BATCH):
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": n} for n in names[start:start + DELETE_BATCH]], "Quiet": True})
            errors = answer.get("Errors") or []
            if errors:
                raise StorageFault("files_unavailable", f"object store: {errors[0].get('Code', 'delete refused')} "
                                                        f"for {len(errors)} object(s)")
        return there

    async def entries(self) -> AsyncIterator[Entry]:  # type: ignore[override]
        for entry in await self._call(self._list_blocking):
            yield entry

    def _list_blocking(self) -> list[Entry]:
        out: list[Entry] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents") or []:
                key = obj["Key"][len(self.prefix):]
                if KEY.fullmatch(key):  # anything else under the prefix is not jutella's
                    out.append(Entry(key, int(obj["Size"]), obj["LastModified"].astimezone(UTC)))
        return out

    # -- at start-up -----------------------------------------------------------------------
    async def check(self) -> str | None:
        """Whether the bucket is one jutella may use: FileStoreMisconfigured
        when it is missing, refused, or keeps old versions of deleted objects
        (then a deletion would not remove the bytes, and erasure would not be
        erasure). None when all is well; a warning's text when the store does
        not answer now (jutella starts all the same: uploads wait for it,
        deletions stay due)."""
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
            versioning = await asyncio.to_thread(self.client.get_bucket_versioning, Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise FileStoreMisconfigured(f"the bucket {self.bucket!r} does not exist (JUTELLA_S3_BUCKET)") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
                raise FileStoreMisconfigured(f"the object store refuses the bucket {self.bucket!r} ({code}): check "
                                             "JUTELLA_S3_ACCESS_KEY_ID and JUTELLA_S3_SECRET_ACCESS_KEY") from None
            return f"the object store does not answer now ({code}); uploads are refused until it does"
        if versioning.get("Status") in ("Enabled", "Suspended"):
            raise FileStoreMisconfigured(
                f"the bucket {self.bucket!r} keeps versions of objects (versioning {versioning['Status']}): a "
                "deleted file would stay as an old version, so erasure would not remove it; use a bucket that "
                "never had versioning (docs/attachments.md)")
        return None
