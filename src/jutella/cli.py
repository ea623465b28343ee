"""The ``jutella`` command. Exit status: 0 done, 2 usage error, 1 failed, with
one clear line on stderr (no traceback) for an expected error."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from jutella.accounts.errors import AccountError
from jutella.settings import Settings, SettingsError, load_settings


class Failed(Exception):
    """An expected failure: one line for stderr."""


# A fault of the database (store/db.StorageFault): one line, exit 1, no traceback.
CLI_FAULTS = {
    "locked": "the database is locked by another process (a backup? the server's writer?) and stayed locked "
              "beyond JUTELLA_SQLITE_BUSY_TIMEOUT_MS; nothing was changed. Try again in a moment.",
    "full": "the database or the disk is full; nothing was changed. Free some space and try again.",
    "unavailable": "cannot reach the database (JUTELLA_DATABASE_URL); nothing was changed.",
    "files_unavailable": "cannot reach the object store of the attachments (JUTELLA_S3_ENDPOINT_URL); what "
                         "needed it was not done. Try again when it answers.",
}


def _runtime(settings: Settings):
    from jutella.services import build_runtime

    return build_runtime(settings)


async def _with_runtime(settings: Settings, fn: Callable[..., Awaitable[int]]) -> int:
    from jutella.accounts.audit import seal

    rt = _runtime(settings)
    try:
        await rt.db.migrate()
        await seal(rt)  # the audit rows from before its key, once (migration 0008)
        await _check_file_store(rt)
        await _files_into_store(rt)
        return await fn(rt)
    finally:
        rt.cpu.close()
        await rt.db.dispose()
        rt.db.session_info["audit"].flush()


async def _check_file_store(rt) -> None:
    """The file store as configured (an object store's bucket: there, usable,
    without versions that would keep deleted files)."""
    from jutella.store.files import FileStoreMisconfigured

    try:
        warning = await rt.files.check()
    except FileStoreMisconfigured as exc:
        raise Failed(str(exc)) from None
    if warning:
        print(f"jutella: warning: {warning}", file=sys.stderr)


async def _files_into_store(rt) -> None:
    """Migration 0022's other half: the attachments an older jutella kept in
    this host's data dir go into the cluster's file store (docs/attachments.md)."""
    from jutella.chat.attachments import import_disk_files

    moved, _removed = await import_disk_files(rt)
    if moved:
        print(f"jutella: moved {moved} attachment file(s) from {rt.settings.data_dir}/attachments into the file "
              f"store ({rt.settings.file_store})", file=sys.stderr)


# -- serve ----------------------------------------------------------------------
def served_app():
    """The application factory ``jutella serve`` gives uvicorn: it runs in
    every worker process (uvicorn spawns them as fresh interpreters), tunes
    that process (jutella/tuning.py), then builds the plain application."""
    from jutella.app import create_app
    from jutella.tuning import tune_process

    tune_process()
    return create_app()


def cmd_serve(args: argparse.Namespace) -> int:
    if args.host:
        os.environ["JUTELLA_HOST"] = args.host
    if args.port:
        os.environ["JUTELLA_PORT"] = str(args.port)
    settings = load_settings()
    if args.workers > 1 and not settings.redis_url:
        raise Failed("--workers above 1 needs JUTELLA_REDIS_URL (workers share events through Redis)")
    if args.workers > 1 and settings.sqlalchemy_url.startswith("sqlite"):
        print("jutella: note: several workers on SQLite share one writer; PostgreSQL scales further",
              file=sys.stderr)

    async def prepare(rt) -> int:
        from jutella.accounts.actions import ensure_setup_link

        # mails a crash left half-sent are the housekeeper's to settle when it takes over
        # (app._take_over), not every starting host's: another host may be sending them now
        link = await ensure_setup_link(rt)
        if link:
            print("No staff account yet. Open this one-time link to create the first administrator "
                  f"(valid {settings.setup_link_hours} h):\n\n    {link}\n", flush=True)
        return 0

    asyncio.run(_with_runtime(settings, prepare))
    # each worker knows how many share this host (store/db.py batches_in_flight); spawned, they inherit it
    os.environ["JUTELLA_HOST_WORKERS"] = str(args.workers)

    import uvicorn

    from jutella.logs import log_config

    print(f"jutella serving on http://{settings.host}:{settings.port}", flush=True)
    from jutella.tuning import SERVER_OPTIONS, SOCKETS_DRAIN_SECONDS

    uvicorn.run(
        "jutella.cli:served_app", factory=True, host=settings.host, port=settings.port,
        workers=args.workers, log_config=log_config(settings.log_level),
        timeout_graceful_shutdown=SOCKETS_DRAIN_SECONDS,  # the drain's first part (jutella/tuning.py)
        **SERVER_OPTIONS,
    )
    return 0


# -- user ---------------------------------------------------------------------------
def cmd_user_add(args: argparse.Namespace) -> int:
    from jutella.accounts import actions

    if not args.password_stdin:
        raise Failed("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")

    async def run(rt) -> int:
        created = await actions.create_account(rt, actor_id=None, email=args.email, name=args.name,
                                               roles=args.role, password=password)
        print(f"created {created.account.email} ({', '.join(created.account.role_names)})")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_user_list(args: argparse.Namespace) -> int:
    from jutella.accounts import actions

    async def run(rt) -> int:
        for a in await actions.list_accounts(rt):
            state = "disabled" if a.disabled_at else ("active" if a.password_hash else "invited")
            twofa = "2fa" if a.totp_enabled else "-"
            print(f"{a.email}\t{a.name}\t{','.join(a.role_names)}\t{state}\t{twofa}")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_user_disable(args: argparse.Namespace) -> int:
    from jutella.accounts import actions

    async def run(rt) -> int:
        account = await actions.disable_by_email(rt, args.email)
        print(f"disabled {account.email}; its sessions have ended")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


# -- API tokens (docs/api.md) ----------------------------------------------------------------------
def cmd_token_create(args: argparse.Namespace) -> int:
    from jutella.accounts import apitokens

    async def run(rt) -> int:
        made = await apitokens.create(rt, actor_id=None, name=args.name, scopes=args.scope,
                                      expires_days=args.expires)
        until = f"until {made.row.expires_at:%Y-%m-%d %H:%M} UTC" if made.row.expires_at else "no expiry"
        print(f"created token {made.row.id} {made.row.name!r} ({', '.join(made.row.scopes)}; {until}). "
              "It is shown only this once:", file=sys.stderr)
        print(made.token, flush=True)
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_token_list(args: argparse.Namespace) -> int:
    from jutella.accounts import apitokens

    def when(dt) -> str:
        return f"{dt:%Y-%m-%d %H:%M}" if dt else "-"

    async def run(rt) -> int:
        now = rt.clock.now()
        for t, creator in await apitokens.list_tokens(rt):
            print(f"{t.id}\t{t.name}\t{','.join(t.scopes)}\t{apitokens.state(t, now)}\t"
                  f"{creator or '(operator)'}\tcreated {when(t.created_at)}\texpires {when(t.expires_at)}\t"
                  f"last used {when(t.last_used_at)}")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from jutella.accounts import apitokens

    async def run(rt) -> int:
        row = await apitokens.find(rt, args.token)
        await apitokens.revoke(rt, actor_id=None, token_id=row.id)
        print(f"revoked token {row.id} {row.name!r}; it stops working at once")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


# -- departments (docs/departments.md) ---------------------------------------------------
def cmd_department_add(args: argparse.Namespace) -> int:
    from jutella.chat import departments

    async def run(rt) -> int:
        dept = await departments.create(rt, actor_id=None, name=args.name, notify_email=args.notify)
        print(f"created department {dept.name} (id {dept.id})")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_department_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from jutella.chat import departments
    from jutella.store.models import StaffAccount

    async def run(rt) -> int:
        async with rt.db.reader() as s:
            emails = dict((await s.execute(select(StaffAccount.id, StaffAccount.email))).all())
        for d in await departments.list_departments(rt):
            members = ",".join(sorted(emails.get(m, str(m)) for m in d["members"])) or "-"
            print(f"{d['id']}\t{d['name']}\t{d['notify_email'] or '-'}\t{members}")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_department_members(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from jutella.chat import departments
    from jutella.store.models import Department, StaffAccount

    async def run(rt) -> int:
        async with rt.db.reader() as s:
            dept = (await s.execute(select(Department).where(Department.name == args.name))).scalar_one_or_none()
            if dept is None:
                raise Failed(f"no department named {args.name!r}")
            found = dict((await s.execute(select(StaffAccount.email, StaffAccount.id).where(
                StaffAccount.email.in_([e.lower() for e in args.email])))).all())
        missing = [e for e in args.email if e.lower() not in found]
        if missing:
            raise Failed(f"no account for {', '.join(missing)}")
        await departments.set_members(rt, actor_id=None, department_id=dept.id, account_ids=list(found.values()))
        print(f"{dept.name}: {len(found)} member(s)")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


# -- audit -----------------------------------------------------------------------------
def cmd_audit_verify(args: argparse.Namespace) -> int:
    from jutella.accounts.audit import verify
    from jutella.accounts.audit_anchor import AuditKeyMissing

    async def run(rt) -> int:
        try:
            async with rt.db.reader() as s:
                result = await verify(s)
        except (AuditKeyMissing, ValueError) as exc:
            raise Failed(f"audit log cannot be checked: {exc}") from None
        if result.warning:
            print(f"jutella: note: {result.warning}", file=sys.stderr)
        if result.ok:
            print(f"audit log intact: {result.checked} rows checked")
            return 0
        raise Failed(f"audit log broken at row {result.broken_at_seq}: {result.reason} "
                     f"({result.checked} rows before it are intact)")

    return asyncio.run(_with_runtime(load_settings(), run))


# -- subject and retention ---------------------------------------------------------------
def _line(text: str) -> str:
    return " ".join(text.split())


def cmd_subject_find(args: argparse.Namespace) -> int:
    from jutella.privacy import subjects

    async def run(rt) -> int:
        matches = await subjects.find(rt, args.query, actor_id=None)
        for m in matches:
            where = f"visitor {m.visitor}" if m.visitor else "-"
            how = "related" if m.related else f"match in {m.field}"
            print(f"{m.kind} {m.id}\t{m.at:%Y-%m-%d %H:%M}\t{where}\t{how}\t{_line(m.text)}")
        if not matches:
            print(f"nothing found for {args.query!r}", file=sys.stderr)
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_subject_export(args: argparse.Namespace) -> int:
    import orjson

    from jutella.privacy import subjects
    from jutella.privacy.export import render_html

    async def run(rt) -> int:
        sel = subjects.selection_of(await subjects.find(rt, args.query, actor_id=None))
        if sel.is_empty():
            raise Failed(f"nothing found for {args.query!r}")
        copy = await subjects.collect(rt, sel, actor_id=None, fmt=args.format)
        if args.format == "html":
            sys.stdout.write(render_html(copy, rt.settings, args.lang))
        else:
            sys.stdout.write(orjson.dumps(copy, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_subject_erase(args: argparse.Namespace) -> int:
    from jutella.privacy import subjects

    if not args.yes:
        raise Failed("erasure cannot be undone: run `jutella subject find` first, then add --yes")

    async def run(rt) -> int:
        sel = subjects.selection_of(await subjects.find(rt, args.query, actor_id=None))
        if sel.is_empty():
            raise Failed(f"nothing found for {args.query!r}")
        receipt = await subjects.erase(rt, sel, actor_id=None)
        print("erased: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in receipt["counts"].items() if n))
        for kind, ids in receipt["ids"].items():
            if ids:
                print(f"  {kind}: {' '.join(str(i) for i in ids)}")
        if receipt["files_pending"]:  # rows gone, bytes not yet: the object store did not answer
            print(f"not yet deleted: {len(receipt['files_pending'])} attachment file(s) in the object store, which "
                  "did not answer; they are due for deletion, and jutella's housekeeper deletes them as soon as "
                  f"it answers: {' '.join(receipt['files_pending'])}")
        if receipt["tables_pending_vacuum"]:  # rows gone, old versions not yet: an older session was open
            print("not yet removed from the database's pages: old row versions in "
                  f"{' '.join(receipt['tables_pending_vacuum'])}; a database session older than the erasure was "
                  "still open when VACUUM ran (see the log); VACUUM those tables once it has ended")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def cmd_retention_run(args: argparse.Namespace) -> int:
    from jutella.privacy import retention

    async def run(rt) -> int:
        counts = await retention.run(rt)
        for key, value in counts.items():
            print(f"{key.replace('_', ' ')}: {value}")
        return 0

    return asyncio.run(_with_runtime(load_settings(), run))


def _sqlite_path(settings: Settings):
    from pathlib import Path

    from sqlalchemy.engine import make_url

    url = settings.sqlalchemy_url
    return Path(make_url(url).database) if url.startswith("sqlite") else None


def cmd_backup(args: argparse.Namespace) -> int:
    """An encrypted, consistent backup of the SQLite database and the
    attachments (privacy/backup.py); ``--make-key KEYFILE`` makes a key."""
    from pathlib import Path

    from jutella.privacy import backup

    if args.make_key:
        try:
            backup.make_key_file(Path(args.make_key))
        except FileExistsError:
            raise Failed(f"{args.make_key} exists; a key is never overwritten") from None
        except OSError as exc:
            raise Failed(f"cannot write {args.make_key}: {exc.strerror}") from None
        print(f"made the backup key {args.make_key}; keep a copy apart from the backups (without it they cannot "
              "be restored)")
        return 0
    if not args.path:
        raise Failed("name the backup file: jutella backup FILE")
    settings = load_settings()
    source = _sqlite_path(settings)
    key = _backup_key(args, settings)
    if args.key_file and Path(settings.data_dir).resolve() in Path(args.key_file).resolve().parents:
        print(f"jutella: note: the backup key {args.key_file} is inside the data dir; keep it apart (whoever copies "
              "the data dir and a backup could read the backup)", file=sys.stderr)
    fetch = _fetch_files(settings) if settings.file_store != "database" else None
    try:
        if source is None:  # PostgreSQL: pg_dump's snapshot, sealed the same way
            manifest = backup.backup_postgres(settings.sqlalchemy_url, Path(settings.data_dir), Path(args.path),
                                              key, force=args.force, fetch=fetch)
        else:
            manifest = backup.backup(source, Path(settings.data_dir), Path(args.path), key, force=args.force,
                                     fetch=fetch)
    except backup.BackupError as exc:
        raise Failed(str(exc)) from None
    print(f"backed up {'the PostgreSQL database' if source is None else source} and {manifest['attachments']} "
          f"attachment(s) to {args.path} (encrypted)")
    from jutella.accounts.audit_anchor import KEY_FILE

    audit_key = Path(settings.data_dir) / KEY_FILE
    if audit_key.exists():  # kept apart on purpose: a backup and the key together could forge the audit log
        print(f"jutella: note: the audit log's key {audit_key} is not in the backup; keep a copy of it apart "
              "(docs/deployment.md, Backups)", file=sys.stderr)
    print(f"jutella: note: delete this backup after retention.backups_days ({settings.retention.backups_days} "
          "days), as the privacy notice says", file=sys.stderr)
    return 0


def _fetch_files(settings: Settings):
    """For a backup with an object store: its files that the database copy
    names, read through the store into the backup's private folder (one at a
    time, a MiB at a time); a file erased since the copy is left out (the
    ledger erases its row on restore)."""
    from pathlib import Path

    def fetch(names: list[str], folder: Path) -> list[tuple[str, Path]]:
        async def run() -> list[tuple[str, Path]]:
            rt = _runtime(settings)
            got: list[tuple[str, Path]] = []
            try:
                for name in names:
                    opened = await rt.files.open(name)
                    if opened is None:
                        continue
                    path = folder / name
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        async for chunk in opened.chunks:
                            out.write(chunk)
                    got.append((name, path))
            finally:
                rt.cpu.close()
                await rt.db.dispose()
            return got

        return asyncio.run(run())

    return fetch


def _backup_key(args: argparse.Namespace, settings: Settings) -> bytes:
    from jutella.privacy import backup

    try:
        return backup.read_key(args.key_file,
                               settings.backup_key.get_secret_value() if settings.backup_key else None)
    except backup.BackupError as exc:
        raise Failed(str(exc)) from None


def cmd_restore(args: argparse.Namespace) -> int:
    """Put a backup in place (stop jutella first), erasing again whatever the
    erasure ledger recorded since the backup was taken."""
    from datetime import timedelta
    from pathlib import Path

    from jutella.accounts.audit_anchor import AuditAnchor, Checkpoint
    from jutella.privacy import backup

    settings = load_settings()
    target = _sqlite_path(settings)
    key = _backup_key(args, settings)
    audit_key = AuditAnchor(settings).existing_key()
    max_age = None if args.past_retention else timedelta(days=settings.retention.backups_days)

    async def on_database(fn) -> object:
        rt = _runtime(settings)
        try:
            return await fn(rt)
        finally:
            await rt.db.dispose()
            rt.db.session_info["audit"].flush()

    async def reapply(work: Path, rows: list, lkey: bytes) -> dict[str, int]:
        rt = _runtime(backup.staged_settings(settings, work, audit_key))
        try:
            return await backup.reapply_with(rt, rows, lkey)
        finally:
            await rt.db.dispose()
            rt.db.session_info["audit"].flush()

    try:
        if target is None:  # PostgreSQL (docs/deployment.md, Backups)
            done = backup.restore_postgres(Path(args.path), settings.sqlalchemy_url, Path(settings.data_dir), key,
                                           audit_key=audit_key, with_runtime=lambda fn: asyncio.run(on_database(fn)),
                                           max_age=max_age)
        else:
            done = backup.restore(Path(args.path), target, Path(settings.data_dir), key, audit_key=audit_key,
                                  reapply=reapply, run=asyncio.run, max_age=max_age)
    except backup.BackupError as exc:
        raise Failed(str(exc)) from None
    if done.audit_head is not None:
        # the audit checkpoint moves back to the restored log's end (it only moves forward otherwise)
        AuditAnchor(settings).write_checkpoint(Checkpoint(*done.audit_head), force=True)
    print(f"restored {args.path} (taken {done.manifest.get('taken_at')}) into {target or 'the PostgreSQL database'}, "
          f"with {done.attachments} attachment(s)")
    erased = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in done.erased.items() if v) or "nothing left to erase"
    print(f"erasures made since the backup, applied again: {done.erasures} ({erased})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from jutella.bench.run import main as bench_main

    if args.workers > 1 and not load_settings().redis_url:
        raise Failed("--workers above 1 needs JUTELLA_REDIS_URL")
    return bench_main(args)


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jutella", description="Self-hosted, privacy-first live chat.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the server (applies migrations first)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, default=1, help="processes; above 1 needs JUTELLA_REDIS_URL")
    s.set_defaults(func=cmd_serve)

    u = sub.add_parser("user", help="staff accounts").add_subparsers(dest="user_command", required=True,
                                                                      metavar="ACTION")
    a = u.add_parser("add", help="create an individual staff account")
    a.add_argument("email")
    a.add_argument("--name", required=True)
    a.add_argument("--role", action="append", required=True, choices=["admin", "agent", "privacy"],
                   help="admin, agent or privacy; repeat for several")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    a.set_defaults(func=cmd_user_add)
    u.add_parser("list", help="list staff accounts").set_defaults(func=cmd_user_list)
    d = u.add_parser("disable", help="disable an account and end its sessions")
    d.add_argument("email")
    d.set_defaults(func=cmd_user_disable)

    au = sub.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command", required=True,
                                                                      metavar="ACTION")
    au.add_parser("verify", help="recompute the hash chain and say where it breaks").set_defaults(
        func=cmd_audit_verify)

    sj = sub.add_parser("subject", help="data-subject requests (find, access copy, erasure)").add_subparsers(
        dest="subject_command", required=True, metavar="ACTION")
    f = sj.add_parser("find", help="everything held about a person, one line per record")
    f.add_argument("query", help="an email, name, student number, phone number or visitor id")
    f.set_defaults(func=cmd_subject_find)
    e = sj.add_parser("export", help="the access copy of everything found, on stdout")
    e.add_argument("query")
    e.add_argument("--format", choices=["json", "html"], default="json")
    e.add_argument("--lang", choices=["fi", "en", "sv"], default="fi", help="language of the HTML copy")
    e.set_defaults(func=cmd_subject_export)
    x = sj.add_parser("erase", help="erase everything found, and print what was erased")
    x.add_argument("query")
    x.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    x.set_defaults(func=cmd_subject_erase)

    bk = sub.add_parser("backup", help="an encrypted, consistent backup of the database and attachments (SQLite)")
    bk.add_argument("path", nargs="?", help="the backup file to write")
    bk.add_argument("--force", action="store_true", help="overwrite an existing file")
    bk.add_argument("--key-file", help="the backup key (default: JUTELLA_BACKUP_KEY); keep it apart from backups")
    bk.add_argument("--make-key", metavar="KEYFILE", help="make a new random backup key in KEYFILE and stop")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="put a backup in place (stop jutella first), erasing again every erasure "
                                        "made since it was taken")
    rs.add_argument("path")
    rs.add_argument("--key-file", help="the backup key (default: JUTELLA_BACKUP_KEY)")
    rs.add_argument("--past-retention", action="store_true",
                    help="restore a backup older than retention.backups_days (the ledger may not cover it)")
    rs.set_defaults(func=cmd_restore)

    b = sub.add_parser("bench", help="the load benchmark: starts its own server and drives it")
    b.add_argument("--visitors", type=int, default=100)
    b.add_argument("--agents", type=int, default=5)
    b.add_argument("--rate", type=float, default=100, help="messages a second, all visitors together")
    b.add_argument("--duration", type=float, default=10, help="seconds per step")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--ramp", action="store_true",
                   help="raise the rate by half each step until one fails, then narrow the gap three times")
    b.add_argument("--baseline", action="store_true", help="also run the same load against a bare relay")
    b.set_defaults(func=cmd_bench)

    dp = sub.add_parser("department", help="departments (docs/departments.md)").add_subparsers(
        dest="department_command", required=True, metavar="ACTION")
    da = dp.add_parser("add", help="create a department")
    da.add_argument("name")
    da.add_argument("--notify", metavar="EMAIL", help="where its new offline messages are announced")
    da.set_defaults(func=cmd_department_add)
    dp.add_parser("list", help="list departments and their members").set_defaults(func=cmd_department_list)
    dm = dp.add_parser("members", help="set a department's members (agents), replacing the old list")
    dm.add_argument("name")
    dm.add_argument("email", nargs="*")
    dm.set_defaults(func=cmd_department_members)

    from jutella.accounts.scopes import SCOPES

    tk = sub.add_parser("token", help="API tokens (docs/api.md)").add_subparsers(
        dest="token_command", required=True, metavar="ACTION")
    tc = tk.add_parser("create", help="make an API token and print it, once")
    tc.add_argument("name")
    tc.add_argument("--scope", action="append", required=True, choices=list(SCOPES), metavar="SCOPE",
                    help=f"what it may do: {', '.join(SCOPES)}; repeat for several")
    tc.add_argument("--expires", type=int, metavar="DAYS", help="days until it stops working (default: never)")
    tc.set_defaults(func=cmd_token_create)
    tk.add_parser("list", help="list API tokens (never the tokens themselves)").set_defaults(func=cmd_token_list)
    tv = tk.add_parser("revoke", help="revoke an API token at once")
    tv.add_argument("token", metavar="NAME|ID")
    tv.set_defaults(func=cmd_token_revoke)

    rt_ = sub.add_parser("retention", help="the retention policy").add_subparsers(
        dest="retention_command", required=True, metavar="ACTION")
    rt_.add_parser("run", help="delete what is past its retention period, and print counts").set_defaults(
        func=cmd_retention_run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("serve", "bench") and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.command == "bench" and (args.visitors < 1 or args.agents < 1 or args.rate <= 0 or args.duration <= 0):
        parser.error("--visitors, --agents, --rate and --duration must be positive")
    try:
        return args.func(args) or 0
    except (Failed, SettingsError, AccountError) as exc:
        print(f"jutella: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from jutella.store.db import storage_fault

        fault = storage_fault(exc)
        if fault is None:
            raise
        print(f"jutella: {CLI_FAULTS[fault.kind]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
