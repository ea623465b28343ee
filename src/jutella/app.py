"""The one application factory: it builds the runtime services and wires every
router, middleware and error handler explicitly."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from jutella.accounts.errors import AccountError
from jutella.chat.actions import close_idle
from jutella.chat.attachments import delete_due_files
from jutella.chat import sites
from jutella.chat.metadata import parse_user_agent
from jutella import clientaddr
from jutella.clock import Clock
from jutella.cpu import Busy
from jutella.mail.outbox import OutboxWorker
from jutella.mail.webhooks import WebhookWorker
from jutella.runtime import Runtime
from jutella.services import build_runtime
from jutella.settings import Settings, load_settings
from jutella import tuning
from jutella.privacy import retention
from jutella.store import search
from jutella.store.db import StorageFault, storage_fault
from jutella.store.models import SystemSetting
from jutella.realtime import lmtp, slowclients, wsserver
from jutella.realtime.asgi import DirectSockets
from jutella.chat.presence import publish_presence
from jutella.realtime.agent import agent_ws
from jutella.realtime.visitor import visitor_ws
from jutella.web import (errors, pages, routes_attach, routes_chat, routes_departments, routes_offline, routes_privacy,
                         routes_prechat, routes_reports, routes_sites, routes_sso, routes_staff, routes_tokens,
                         routes_tools, routes_webhooks, widget)
from jutella.web import auth
from jutella.web.schemas import ErrorResponse
from jutella.web.security import SecurityHeaders

STATIC = Path(__file__).parent / "web" / "static"
log = logging.getLogger("jutella")


async def _daily_retention(rt: Runtime) -> bool:
    """Run retention once a day, whichever worker or host gets there first.
    True when this one ran it.

    The run is recorded as started (``done: false``) before it runs and as
    finished after it: a housekeeper killed in the middle leaves it
    unfinished, and the next one runs it again when it takes over (the
    housekeeping loop checks at once on becoming the housekeeper) instead of
    waiting for the next day. Retention deletes only what is past its date,
    so running the rest of an interrupted run again doubles nothing."""
    now = rt.clock.now()
    started = {"at": now.isoformat(), "done": False}
    try:
        async with rt.db.transaction() as s:
            row = await s.get(SystemSetting, "retention_last_run", with_for_update=True)
            if row is not None and row.value.get("done", True) and \
                    now - datetime.fromisoformat(row.value["at"]) < timedelta(days=1):
                return False
            if row is None:
                s.add(SystemSetting(key="retention_last_run", value=started))
            else:
                await s.execute(update(SystemSetting).where(SystemSetting.key == "retention_last_run").values(
                    value=started))
    except IntegrityError:
        # the very first run, on several workers at once: another one inserted
        # the row first (there is no row to lock before it exists), and runs it
        return False
    counts = await retention.run(rt)
    async with rt.db.transaction() as s:
        await s.execute(update(SystemSetting).where(SystemSetting.key == "retention_last_run").values(
            value={**started, "done": True}))
    log.info("retention: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return True


async def _take_over(rt: Runtime) -> None:
    """What a process does on becoming the cluster's housekeeper (store/leader.py),
    before its first round: the previous one is gone, so mails it left in
    the middle of sending may have been delivered ("uncertain", not resent
    blindly) and its claims on mails not yet sent are released."""
    from jutella.mail.outbox import mark_uncertain

    if n := await mark_uncertain(rt):
        log.warning("housekeeper: %d mail(s) were being sent when the previous housekeeper stopped; "
                    "the console lists them as uncertain", n)
    if rt.outbox is not None:
        rt.outbox.kick()


async def _housekeeping(rt: Runtime) -> None:
    """Periodic work: presence grace periods every 2 s and this worker's
    throttle slots, in every process; idle conversations every 30 s, an
    object store's files due for deletion (each round when some are, else
    every minute) and the daily retention run only in the cluster's
    housekeeper (rt.is_housekeeper(),
    docs/housekeeping.md). Both are idempotent besides: closing a closed
    conversation does nothing, retention deletes what is past its date."""
    parse_user_agent("Mozilla/5.0")  # load the parser's tables now, not on a visitor's first message
    rounds = 0
    was_housekeeper = False
    while True:
        await asyncio.sleep(2.0)
        rounds += 1
        housekeeper = rt.is_housekeeper()
        became_housekeeper, was_housekeeper = housekeeper and not was_housekeeper, housekeeper
        try:
            rt.presence.sweep()
            await publish_presence(rt)
            if rounds % 15 == 0 and housekeeper:
                await close_idle(rt)
            if rounds % 30 == 0:  # every minute: this worker's open widget sockets still hold their slots
                await rt.throttle.refresh_slots()
            if rounds % 1800 == 0 and hasattr(rt.throttle, "sweep"):  # hourly
                rt.throttle.sweep()
            if housekeeper:  # an object store's files due for deletion (chat/attachments.py; backs off itself)
                await delete_due_files(rt)
            if housekeeper and (became_housekeeper or rounds % 450 == 1):
                # on becoming the housekeeper (a run the previous one left unfinished is run at once),
                # then every 15 minutes: is the daily retention run due?
                await _daily_retention(rt)
            # SQLite's full-text index, up to the last message (store/search.py; the writer does
            # it every few hundred messages, this round for the last few of a quiet moment)
            await search.catch_up(rt.db)
        except Exception as exc:  # keep going; the next round retries
            if storage_fault(exc) is not None:
                log.warning("housekeeping skipped: %s", storage_fault(exc))
            else:
                log.exception("housekeeping failed")


def _slow_clients(rt: Runtime, exempt: Callable[[str], bool] | None = None) -> slowclients.SlowClients:
    """The rules for connections whose request has not arrived (realtime/slowclients.py).
    ``exempt(address)``: peers the per-address cap does not apply to, meant for
    the trusted reverse proxies (which read the client's headers themselves);
    none until that setting exists."""
    settings = rt.settings
    m = rt.metrics
    slow = slowclients.SlowClients(
        header_timeout_s=settings.request_header_timeout_seconds,
        per_address=settings.max_waiting_connections_per_address,
        key=functools.partial(rt.throttle.key, "waiting"), exempt=exempt,
        on_refused=m.slow_clients.labels("refused").inc, on_late=m.slow_clients.labels("late").inc)
    m.waiting_connections.set_function(lambda: slow.total)
    return slow


# uvicorn's options for jutella's servers (jutella/tuning.py), here too for the tests and the
# applications that start uvicorn with jutella's app themselves.
SERVER_OPTIONS = tuning.SERVER_OPTIONS


async def _frame_origins(scope) -> frozenset[str]:
    """Who may frame the widget: the one rule of chat/sites.py (the server's own origin is 'self')."""
    rt = scope[auth.RUNTIME_KEY]
    return await sites.allowed_origins(rt) - {rt.settings.public_origin}


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               rt: Runtime | None = None) -> FastAPI:
    settings = settings or (rt.settings if rt else load_settings())
    rt = rt or build_runtime(settings, clock)
    # Process tuning (switch interval, collector) is not done here but by
    # what starts a server process: jutella/tuning.py.

    # The chat sockets, by path: served by realtime/wsserver.ChatSocket under
    # jutella's uvicorn, by the DirectSockets middleware under any other server.
    sockets = {"/ws/visitor": functools.partial(visitor_ws, rt), "/ws/agent": functools.partial(agent_ws, rt)}
    trusted = settings.trusted_proxies
    slow = _slow_clients(rt, functools.partial(clientaddr.is_trusted_peer, trusted=trusted) if trusted else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if hasattr(rt.hub, "on_presence_change"):
            rt.hub.on_presence_change = lambda: asyncio.get_running_loop().create_task(
                publish_presence(rt, announce=False))
        await rt.hub.start()
        # the audit log's key exists from the start (made now, with its one log line,
        # rather than at whichever request first writes an audit row)
        anchor = rt.db.session_info.get("audit")
        if anchor is not None:
            anchor.key()
        rt.outbox = OutboxWorker(rt)
        housekeeper = rt.housekeeper
        if housekeeper is not None:
            housekeeper.on_acquire = functools.partial(_take_over, rt)
            await housekeeper.start()
        await rt.outbox.start()
        rt.webhooks = WebhookWorker(rt)
        await rt.webhooks.start()
        # replies by email (JUTELLA_LMTP_LISTEN; every worker binds it with SO_REUSEPORT: realtime/lmtp.py)
        lmtp_server = await lmtp.start(rt)
        housekeeping = asyncio.create_task(_housekeeping(rt))
        try:
            # the lifespan state reaches uvicorn's WebSocket protocol class
            yield {wsserver.STATE_KEY: sockets, wsserver.TRUSTED_KEY: settings.trusted_proxies,
                   slowclients.STATE_KEY: slow}
        finally:
            # the drain's second part (docs/housekeeping.md), within TEARDOWN_SECONDS: uvicorn has
            # closed the sockets (1012) and their writes have committed; a step past the bound is
            # cut short, which loses nothing stored (a mail left "sending" is "uncertain")
            try:
                async with asyncio.timeout(tuning.TEARDOWN_SECONDS):
                    if lmtp_server is not None:
                        lmtp_server.close()
                    housekeeping.cancel()
                    await asyncio.gather(housekeeping, return_exceptions=True)
                    await rt.outbox.stop()  # the mail being sent finishes first, then ...
                    await rt.webhooks.stop()
                    if housekeeper is not None:
                        await housekeeper.stop()  # ... the lock is handed over at once
                    await rt.hub.stop()
                    await rt.throttle.close()
                    await rt.db.dispose()
            except TimeoutError:
                log.warning("shutdown: the teardown took longer than %.1f s; cut short", tuning.TEARDOWN_SECONDS)
            rt.cpu.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/", routes())
    # a path the mount cannot take (a line break in it) is refused here, in the same shape
    app.add_exception_handler(StarletteHTTPException, errors.http_error)  # type: ignore[arg-type]

    app.add_middleware(GZipMiddleware, minimum_size=800)
    app.add_middleware(SecurityHeaders, frame_origins=_frame_origins, hsts=settings.secure_cookies)
    # the chat sockets skip the router and the HTTP middleware (realtime/asgi.py)
    app.add_middleware(DirectSockets, routes=sockets, trusted=settings.trusted_proxies)
    app.add_middleware(WithRuntime, rt=rt)
    return app


class WithRuntime:
    """The outermost layer: puts this app's Runtime into every request's scope
    (web/auth.py ``runtime``), for the shared route table and the middleware."""

    def __init__(self, app, *, rt: Runtime) -> None:
        self.app = app
        self.rt = rt

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            scope[auth.RUNTIME_KEY] = self.rt
        await self.app(scope, receive, send)


@functools.cache
def routes() -> FastAPI:
    """Every HTTP route of jutella (and /openapi.json), built once per process
    and mounted by each app (:func:`create_app`). FastAPI builds an included
    router's parameter models on the first request an app routes, 0.2-0.35 s
    of CPU; one table per process pays it once however many apps the process
    makes (the tests make one per test). The routes hold no state of their
    own: each request finds its Runtime in its scope (web/auth.py)."""
    # Every refusal has the same documented shape, whatever the route.
    common = {code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "refused input"), (401, "not signed in"), (403, "not allowed"), (404, "not found"),
        (409, "conflict"), (410, "gone (a used or expired link)"), (422, "invalid request"),
        (429, "too many requests"), (503, "busy or the database is unreachable; retry after Retry-After"),
        (507, "the server cannot store anything right now"))}
    app = FastAPI(title="jutella", version="0.1.0", responses=common,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")

    app.add_exception_handler(AccountError, errors.account_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, errors.validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, errors.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, errors.integrity_error)  # type: ignore[arg-type]
    # database locked / full / unreachable: 503 or 507 with Retry-After (docs/faults.md)
    app.add_exception_handler(StorageFault, errors.storage_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, errors.storage_error)  # type: ignore[arg-type]
    # a CPU pool's workers and queue all taken: 503 with Retry-After (cpu.py)
    app.add_exception_handler(Busy, errors.busy_error)  # type: ignore[arg-type]

    app.include_router(pages.router)
    app.include_router(routes_staff.public)
    app.include_router(routes_staff.me)
    app.include_router(routes_staff.admin)
    app.include_router(routes_sso.pages)
    app.include_router(routes_sso.public)
    app.include_router(routes_chat.public)
    app.include_router(routes_chat.router)
    app.include_router(routes_tools.router)
    app.include_router(routes_departments.router)
    app.include_router(routes_sites.router)
    app.include_router(routes_prechat.router)
    app.include_router(routes_offline.public)
    app.include_router(routes_offline.router)
    app.include_router(routes_privacy.pages)
    app.include_router(routes_privacy.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_tokens.router)
    app.include_router(routes_webhooks.router)
    app.include_router(widget.router)
    app.include_router(routes_attach.public)
    app.include_router(routes_attach.router)
    app.include_router(routes_attach.files)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
