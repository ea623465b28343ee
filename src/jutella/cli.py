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


def _runtime(settings: Settings):
    from jutella.runtime import Runtime

    return Runtime.build(settings)


async def _with_runtime(settings: Settings, fn: Callable[..., Awaitable[int]]) -> int:
    rt = _runtime(settings)
    try:
        await rt.db.migrate()
        return await fn(rt)
    finally:
        await rt.db.dispose()


# -- serve ----------------------------------------------------------------------
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
        from jutella.mail.outbox import mark_uncertain

        if n := await mark_uncertain(rt):
            print(f"jutella: {n} mail(s) were being sent when jutella stopped; the console lists them as "
                  "uncertain", file=sys.stderr)

        link = await ensure_setup_link(rt)
        if link:
            print("No staff account yet. Open this one-time link to create the first administrator "
                  f"(valid {settings.setup_link_hours} h):\n\n    {link}\n", flush=True)
        return 0

    asyncio.run(_with_runtime(settings, prepare))

    import uvicorn

    from jutella.logs import log_config

    print(f"jutella serving on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        "jutella.app:create_app", factory=True, host=settings.host, port=settings.port,
        workers=args.workers, access_log=False, log_config=log_config(settings.log_level),
        ws_per_message_deflate=False, proxy_headers=False, server_header=False, date_header=True,
        ws_max_size=64 * 1024, timeout_graceful_shutdown=5,
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


# -- audit -----------------------------------------------------------------------------
def cmd_audit_verify(args: argparse.Namespace) -> int:
    from jutella.accounts.audit import verify

    async def run(rt) -> int:
        async with rt.db.reader() as s:
            result = await verify(s)
        if result.ok:
            print(f"audit log intact: {result.checked} rows checked")
            return 0
        raise Failed(f"audit log broken at row {result.broken_at_seq}: {result.reason} "
                     f"({result.checked} rows before it are intact)")

    return asyncio.run(_with_runtime(load_settings(), run))


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
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve" and args.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        return args.func(args) or 0
    except (Failed, SettingsError, AccountError) as exc:
        print(f"jutella: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
