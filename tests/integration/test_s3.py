"""The attachments' bytes in an S3-compatible object store (JUTELLA_FILE_STORE=s3;
store/s3files.py, docs/attachments.md "An S3-compatible object store"), against
moto's S3 server (tests/conftest.py ``S3Server``), read back with an S3 client:

- a jutella server with the store: an upload through the HTTP API is an object
  in the bucket (and nothing in the database), served back; `jutella subject
  erase` removes it from the bucket;
- the object store down: an upload is refused (503) and leaves nothing; an
  erasure deletes the rows, says which files are not gone yet, keeps them due
  for deletion, and the housekeeper deletes them once the store is back;
- `jutella backup` holds the objects (read through the store) and `jutella
  restore` puts them back, less those of people erased since.

The contract itself runs in test_filestore.py, on both stores.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jutella.store.files import read_due
from jutella.store.models import Attachment, AttachmentBlob

from tests.chat_clients import visitor
from tests.conftest import run_async
from tests.helpers import eventually, run_cli


@pytest.fixture
def settings_overrides(s3):
    return dict(s3.settings)


def pdf(marker: str) -> bytes:
    return f"%PDF-1.4\n1 0 obj<<>>endobj\n% {marker}\ntrailer<<>>\n%%EOF\n".encode()


def cli_env(settings, s3) -> dict[str, str]:
    env = {"JUTELLA_DATABASE_URL": settings.database_url, "JUTELLA_DATA_DIR": str(settings.data_dir)}
    env.update({f"JUTELLA_{k.upper()}": str(v) for k, v in s3.settings.items()})
    return env


def upload(live, marker: str) -> tuple[dict, str, dict[str, str]]:
    """A visitor's chat with a PDF: (the attachment's JSON, its storage name, the visitor's header)."""
    v, welcome = visitor(live)
    v.message(f"Olen {marker}, liite tulossa")
    v.until(lambda f: f["type"] == "ack")
    v.close()
    headers = {"X-Jutella-Visitor": welcome["token"]}
    r = live.client().post("/api/v1/public/attachments", headers=headers,
                           files={"file": ("liite.pdf", pdf(marker), "application/pdf")})
    assert r.status_code == 201, r.text
    info = r.json()

    async def storage_name() -> str:
        async with live.rt.db.reader() as s:
            return (await s.execute(select(Attachment.storage_name).where(
                Attachment.public_id == info["id"]))).scalar_one()

    return info, live.call(storage_name), headers


def blobs_in_database(live) -> int:
    async def count() -> int:
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(AttachmentBlob))).scalar_one()

    return live.call(count)


def test_uploads_land_in_the_bucket_are_served_and_erasure_reaches_them_even_when_the_store_was_down(
        live, s3, settings):
    marker = "S3-LIISA-" + secrets.token_hex(6)
    info, name, headers = upload(live, marker)
    assert s3.objects() == {name: pdf(marker)}  # the object, under the prefix, as the client reads it
    assert blobs_in_database(live) == 0  # and nothing of it in the database
    http = live.client()
    got = http.get(info["url"], headers=headers)
    assert got.status_code == 200 and got.content == pdf(marker)
    assert got.headers["content-type"] == "application/pdf"
    assert http.head(info["url"], headers=headers).headers["content-length"] == str(len(pdf(marker)))

    # `jutella subject erase`: the object goes from the bucket
    env = cli_env(settings, s3)
    r = run_cli("subject", "erase", marker, "--yes", env=env)
    assert r.returncode == 0 and "1 attachment files" in r.stdout and "not yet deleted" not in r.stdout, \
        r.stdout + r.stderr
    assert s3.objects() == {}
    assert http.get(info["url"], headers=headers).status_code == 404

    # the object store down: an upload is refused, nothing stored; an erasure leaves the key due
    marker = "S3-BERTTA-" + secrets.token_hex(6)
    info, name, headers = upload(live, marker)
    s3.server.stop()
    try:
        v, welcome = visitor(live)
        v.message("Toinen liite")
        v.until(lambda f: f["type"] == "ack")
        v.close()
        refused = http.post("/api/v1/public/attachments", headers={"X-Jutella-Visitor": welcome["token"]},
                            files={"file": ("x.pdf", pdf("REFUSED"), "application/pdf")})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable", refused.text
        assert refused.headers["retry-after"]

        from jutella.privacy import subjects

        async def erase() -> dict:
            sel = subjects.selection_of(await subjects.find(live.rt, marker, actor_id=None))
            return await subjects.erase(live.rt, sel, actor_id=None)

        receipt = live.call(erase)
        assert receipt["counts"]["attachments"] == 1 and receipt["ids"]["attachment_files"] == [name]
        assert receipt["files_pending"] == [name]  # the receipt does not say the bytes are gone: they are not
        assert http.get(info["url"], headers=headers).status_code == 404  # the row is gone already
        assert live.call(read_due, live.rt.db) == [name]
    finally:
        s3.server.start()
    assert name in s3.objects()  # still there while the store was away
    # back: the housekeeper's next rounds delete it and strike it off
    eventually(lambda: name not in s3.objects() and not live.call(read_due, live.rt.db), timeout=20,
               interval=0.25)
    assert s3.objects() == {}
    assert blobs_in_database(live) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])  # two ways: SQLite's copy, pg_dump and pg_restore
def test_backup_holds_the_objects_and_restore_puts_them_back_less_the_erased(s3, database_url, tmp_path):
    from jutella.chat import actions as chat
    from jutella.chat import attachments
    from jutella.chat.metadata import Metadata
    from jutella.services import build_runtime
    from jutella.settings import Settings

    data = tmp_path / "data"
    settings = Settings(data_dir=data, database_url=database_url, **s3.settings)

    async def people() -> None:
        rt = build_runtime(settings)
        await rt.db.migrate()
        for who in ("LIISA-S3-4711", "BERTTA-S3-0815"):
            v, _ = await chat.new_visitor(rt)
            posted = await chat.post_visitor_message(rt, visitor_id=v.id, client_id="c1", body=f"Olen {who}",
                                                     meta=Metadata())
            await attachments.add(rt, conversation_id=posted.conversation.id, visitor_id=v.id, data=pdf(who),
                                  filename="x.pdf")
        rt.cpu.close()
        await rt.db.dispose()

    run_async(people())
    before = s3.objects()
    assert sorted(before.values()) == sorted([pdf("LIISA-S3-4711"), pdf("BERTTA-S3-0815")])

    env = cli_env(settings, s3)
    key_file = tmp_path / "backup.key"
    assert run_cli("backup", "--make-key", str(key_file), env=env).returncode == 0
    backup = tmp_path / "s3.jutella-backup"
    r = run_cli("backup", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "2 attachment(s)" in r.stdout, r.stdout + r.stderr
    assert not any(p.name in before for p in Path(data).rglob("*"))  # the plain files went with the work dir

    # since the backup: Bertta erased (her object goes), Liisa's object lost from the bucket
    assert run_cli("subject", "erase", "BERTTA-S3-0815", "--yes", env=env).returncode == 0
    liisa = next(k for k, v in before.items() if v == pdf("LIISA-S3-4711"))
    s3.server.client().delete_object(Bucket=s3.name, Key=s3.prefix + liisa)
    assert s3.objects() == {}

    r = run_cli("restore", str(backup), "--key-file", str(key_file), env=env)
    assert r.returncode == 0 and "with 1 attachment(s)" in r.stdout, r.stdout + r.stderr
    assert s3.objects() == {liisa: pdf("LIISA-S3-4711")}  # Liisa's back; Bertta's erasure applied again


def test_a_bucket_that_keeps_old_versions_or_is_missing_is_refused_before_anything_runs(s3, database_url, tmp_path):
    """With versioning a deleted object stays as an old version: erasure would
    not remove the bytes, so every command (`serve` included) refuses it."""
    from jutella.settings import Settings

    env = cli_env(Settings(data_dir=tmp_path / "data", database_url=database_url), s3)
    assert run_cli("retention", "run", env=env).returncode == 0
    s3.server.client().put_bucket_versioning(Bucket=s3.name, VersioningConfiguration={"Status": "Enabled"})
    r = run_cli("retention", "run", env=env)
    assert r.returncode == 1 and "keeps versions of objects" in r.stderr and "erasure" in r.stderr, r.stderr
    r = run_cli("retention", "run", env={**env, "JUTELLA_S3_BUCKET": "no-such-bucket-here"})
    assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr
    assert "not-a-secret" not in r.stdout + r.stderr
