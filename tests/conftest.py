"""Fixtures shared by tests/integration and tests/browser (tests/README.md
says which folder gets what; browser-only fixtures are in tests/browser).

Storage-touching tests take the ``backend`` fixture, parametrised over SQLite
(always) and PostgreSQL (whenever reachable; required under
``JUTELLA_TEST_STRICT=1``). Each test gets a fresh, migrated database, cloned
from a template migrated once per session, and a real jutella server on a free
port (uvicorn in a background thread) that tests talk to over real HTTP and
WebSocket connections.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
import uvicorn

from jutella.app import SERVER_OPTIONS, create_app
from jutella.clock import FakeClock
from jutella.runtime import Runtime
from jutella.services import build_runtime
from jutella.settings import Settings
from jutella.store.db import Database

from tests.helpers import http_client

STRICT = os.environ.get("JUTELLA_TEST_STRICT") == "1"
PG_ADMIN_URL = os.environ.get("JUTELLA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("JUTELLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _children_keep_their_bytecode() -> None:
    """With PYTHONDONTWRITEBYTECODE=1 in the environment (as on the CI
    machine), every ``jutella serve`` and CLI process the tests start would
    compile jutella's ~90 modules from source again (0.1-0.2 s of CPU each,
    hundreds of processes). Their bytecode goes to a cache of the tests' own
    instead (PYTHONPYCACHEPREFIX, outside the source tree), written by the
    first process that needs it and read by the rest."""
    import sys
    import tempfile

    if sys.dont_write_bytecode and "PYTHONPYCACHEPREFIX" not in os.environ:
        os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"jutella-tests-pyc-{os.getuid()}")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


_children_keep_their_bytecode()


def run_async(coro) -> Any:
    """asyncio.run() in a fresh thread: the Playwright fixtures keep an event
    loop running in the main thread once a browser test has started."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def need(ok: bool, reason: str) -> None:
    """Skip with a one-line reason, or fail under strict mode."""
    if not ok:
        if STRICT:
            pytest.fail(f"{reason} (JUTELLA_TEST_STRICT=1)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> Iterator[None]:
    """Settings come from the fixtures, never from the developer's shell."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("JUTELLA_") and not k.startswith("JUTELLA_TEST")}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- databases -------------------------------------------------------------------
async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    if not _port_open("127.0.0.1", 5432):
        yield None
        return
    name = f"jutella_tmpl_{os.getpid()}"
    run_async(_pg_exec(f'DROP DATABASE IF EXISTS "{name}"'))
    run_async(_pg_exec(f'CREATE DATABASE "{name}"'))

    async def migrate() -> None:
        db = Database(Settings(database_url=_pg_url(name)).sqlalchemy_url, pool_size=1)
        await db.migrate()
        await db.dispose()

    run_async(migrate())
    yield name
    run_async(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class _PgAdminThread:
    """A thread of its own with one administrative connection to PostgreSQL
    (opened again after an error), running the statements it is given."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def execute(self, sql: str) -> None:
        import asyncpg

        async def go() -> None:
            if self.conn is None or self.conn.is_closed():
                self.conn = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await self.conn.execute(sql)
            except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InterfaceError):
                self.conn = None
                raise

        self.loop.run_until_complete(go())

    def _run(self) -> None:
        try:
            self.work()
        finally:
            if self.conn is not None:
                self.loop.run_until_complete(self.conn.close())
            self.loop.close()

    def work(self) -> None:
        raise NotImplementedError


class _PgDropper(_PgAdminThread):
    """Drops the tests' PostgreSQL databases one after another in a thread of
    its own. A DROP DATABASE waits for the disk (0.7-4 s each on a busy
    machine, minutes over the suite) and the next test has no need to wait
    with it; the session waits for the last ones at its end."""

    def __init__(self) -> None:
        super().__init__("pg-dropper")
        self.names: queue.Queue[str | None] = queue.Queue()
        self.thread.start()

    def drop(self, name: str) -> None:
        self.names.put(name)

    def work(self) -> None:
        while (name := self.names.get()) is not None:
            try:
                self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # a database left behind is no test's failure; say so
                print(f"tests: could not drop database {name}: {exc}")

    def close(self) -> None:
        self.names.put(None)
        self.thread.join(300)


@pytest.fixture(scope="session")
def _pg_dropper() -> Iterator[_PgDropper]:
    dropper = _PgDropper()
    yield dropper
    dropper.close()


class _PgSpares(_PgAdminThread):
    """Keeps ``count`` fresh copies of the migrated template made ahead, in a
    thread of its own: a CREATE DATABASE ... TEMPLATE takes 0.25-0.35 s (more
    on a busy machine), which each PostgreSQL test waited for. A test takes
    one that nobody has used (:meth:`take`) and the thread makes the next;
    the ones not taken by the session's end are dropped."""

    def __init__(self, template: str, dropper: _PgDropper, count: int = 2) -> None:
        super().__init__("pg-spares")
        self.template, self.dropper = template, dropper
        self.ready: queue.Queue[str | BaseException] = queue.Queue()
        self.room = threading.Semaphore(count)  # copies still to make
        self.closing = False
        self.thread.start()

    def work(self) -> None:
        while True:
            self.room.acquire()
            if self.closing:
                return
            name = f"jutella_t_{uuid.uuid4().hex[:12]}"
            try:
                self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            except Exception as exc:  # the test that takes it fails with it
                self.ready.put(exc)
            else:
                self.ready.put(name)

    def take(self) -> str:
        """A fresh copy of the template, the caller's alone (drop it with the dropper)."""
        made = self.ready.get(timeout=300)
        self.room.release()
        if isinstance(made, BaseException):
            raise made
        return made

    def close(self) -> None:
        self.closing = True
        self.room.release()
        self.thread.join(300)
        while not self.ready.empty():
            made = self.ready.get()
            if isinstance(made, str):
                self.dropper.drop(made)


@pytest.fixture(scope="session")
def _pg_spares(pg_template: str | None, _pg_dropper: _PgDropper) -> Iterator[_PgSpares | None]:
    if pg_template is None:
        yield None
        return
    spares = _PgSpares(pg_template, _pg_dropper)
    yield spares
    spares.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "jutella.sqlite3"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.checkpoint()
        await db.dispose()

    run_async(migrate())
    return path


# The three topologies: one process on SQLite, one on PostgreSQL, and two
# servers (separate event loops and runtimes, as two workers or hosts) on
# PostgreSQL + Redis with the visitor on one and the agent on the other.
TOPOLOGIES = ["sqlite", "postgresql", "pg+redis"]


# Where the SQL dialect matters (access clauses, locking and group commit,
# search, erasure, retention's date arithmetic, what the database files hold)
# a module runs on both databases by overriding ``backend`` with ``BOTH``.
# The chat, offline and revocation modules run on all of ``TOPOLOGIES``.
BOTH = ["sqlite", "postgresql"]
# What a browser sees does not depend on the SQL dialect alone: the browser
# modules that care about deployment shape run on SQLite and on PostgreSQL
# with Redis and two servers (which also covers the PostgreSQL dialect).
BROWSER_TOPOLOGIES = ["sqlite", "pg+redis"]


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite, unless the module says the dialect matters (``BOTH``)."""
    return request.param


def redis_reachable() -> bool:
    return _port_open("127.0.0.1", 6379)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "pg+redis":
        need(redis_reachable(), "Redis is not reachable on 127.0.0.1:6379")
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "data" / "jutella.sqlite3"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    spares = request.getfixturevalue("_pg_spares")
    need(spares is not None, "PostgreSQL is not reachable on 127.0.0.1:5432")
    name = spares.take()  # made ahead from the template, never used by another test
    yield _pg_url(name)
    spares.dropper.drop(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Tests override settings by redefining this fixture or updating the dict."""
    return {}


# Cheap argon2 for every test server (in this process or ``jutella serve``):
# the standard parameters cost ~0.1 s of CPU for each account made and each
# sign-in, minutes over the suite. tests/unit/test_passwords.py proves that
# production keeps the standard ones. Override with settings_overrides.
CHEAP_HASHING = {"password_hash_profile": "fast-for-tests"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any], backend: str) -> Settings:
    port = free_port()
    values: dict[str, Any] = dict(
        database_url=database_url, data_dir=tmp_path / "data", host="127.0.0.1", port=port,
        public_url=f"http://127.0.0.1:{port}", **CHEAP_HASHING,
    )
    if backend == "pg+redis":
        values.update(redis_url=REDIS_URL, redis_prefix=f"jt-{uuid.uuid4().hex[:10]}")
    values.update(settings_overrides)
    return Settings(**values)


# -- the runtime without a server -----------------------------------------------------
@dataclass
class InProcess:
    """A ``Runtime`` on a fresh database, its event loop in a background
    thread, and no HTTP server: for tests of actions, queries and rules that
    a user reaches through the API but that need no socket to prove. Same
    ``rt`` and ``call`` as :class:`Live`, so ``add_staff(in_process, ...)`` works.
    No background work runs (housekeeping, the outbox worker's loop): a test
    drives it itself, e.g. ``in_process.call(in_process.rt.outbox.send_due)``."""

    rt: Runtime
    portal: Any

    def call(self, fn, *args, **kwargs):
        """Run an async function (an action, a query) on the runtime's loop."""
        return self.portal.call(partial(fn, *args, **kwargs))


@pytest.fixture
def in_process(settings: Settings, clock: FakeClock) -> Iterator[InProcess]:
    from jutella.mail.outbox import OutboxWorker

    rt = build_runtime(settings, clock)
    rt.outbox = OutboxWorker(rt)  # kick() only wakes it; its loop is not started
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(rt.hub.start)
        try:
            yield InProcess(rt=rt, portal=portal)
        finally:
            portal.call(rt.hub.stop)
            portal.call(rt.db.dispose)


# -- a running server --------------------------------------------------------------
@dataclass
class Live:
    """A jutella server running in a background thread's event loop."""

    rt: Runtime
    url: str
    portal: Any
    server: uvicorn.Server
    peer: "Live | None" = None  # the second server of the pg+redis topology

    @property
    def agent_side(self) -> "Live":
        """Where agents connect: the other server when there are two."""
        return self.peer or self

    def call(self, fn, *args, **kwargs):
        """Run an async function (an action, a query) on the server's loop."""
        return self.portal.call(partial(fn, *args, **kwargs))

    def client(self, **kw) -> httpx.Client:
        return http_client(base_url=self.url, timeout=15, **kw)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]


class PromptServer(uvicorn.Server):
    """uvicorn's Server that stops as soon as it is told to. Stopping a test
    server took ~0.2 s, nearly all of it uvicorn's fixed waits: the 0.1 s tick
    on which it looks at ``should_exit``, a 0.1 s sleep after asking the
    connections to close, and 0.1 s polls until they have. Here :meth:`wake`
    ends the tick at once, and the shutdown takes uvicorn's steps in uvicorn's
    order (stop accepting; ask each connection to close; wait, within
    ``timeout_graceful_shutdown``, until the connections and their tasks are
    gone, else cancel the tasks; the application's lifespan shutdown), waiting
    for the connections themselves (polled every 5 ms) instead of fixed times.
    For the ``live`` fixture; ``start_live`` without ``prompt=True`` keeps
    uvicorn's own Server (test_wsserver.py's restart checks uvicorn's drain).
    Relies on uvicorn's ``servers``, ``server_state`` and ``lifespan`` (the
    version pyproject.toml pins)."""

    _woken: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._woken = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._woken.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    async def wake(self) -> None:
        """(on the server's loop) Look at ``should_exit`` now."""
        if self._woken is not None:
            self._woken.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), timeout=self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


def start_live(settings: Settings, clock: FakeClock | None, *, prompt: bool = False,
               **server_options: Any) -> tuple[Live, Any]:
    """A server in a thread of its own; ``prompt``: a :class:`PromptServer`."""
    rt = build_runtime(settings, clock)
    app = create_app(rt=rt)
    cm = anyio.from_thread.start_blocking_portal()
    portal = cm.__enter__()
    portal.call(rt.db.migrate)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1, **{**SERVER_OPTIONS, **server_options})
    server = (PromptServer if prompt else uvicorn.Server)(config)
    done = portal.start_task_soon(server.serve)
    for _ in range(500):
        if server.started or done.done():
            break
        threading.Event().wait(0.01)
    if done.done():
        done.result()
    assert server.started, "the test server did not start"
    live = Live(rt=rt, url=settings.effective_public_url, portal=portal, server=server)

    def stop() -> None:
        server.should_exit = True
        try:
            if isinstance(server, PromptServer) and not done.done():
                portal.call(server.wake)
            done.result(timeout=10)
        finally:
            cm.__exit__(None, None, None)

    return live, stop


@pytest.fixture
def live(settings: Settings, clock: FakeClock, backend: str) -> Iterator[Live]:
    server, stop = start_live(settings, clock, prompt=True)
    stops = [stop]
    try:
        if backend == "pg+redis":
            port = free_port()
            other = settings.model_copy(update={"port": port, "public_url": f"http://127.0.0.1:{port}"})
            server.peer, stop_peer = start_live(other, clock, prompt=True)
            stops.append(stop_peer)
        yield server
    finally:
        for stop_one in reversed(stops):
            stop_one()


# -- an S3-compatible object store (the file store JUTELLA_FILE_STORE=s3) -------------------
class S3Server:
    """moto's S3 server (``ThreadedMotoServer``, the test extra's ``moto[s3]``)
    on a port of its own, speaking S3 over HTTP: one per test worker. Its
    buckets live in this process's memory, so they outlast a :meth:`stop`
    and :meth:`start` (the object store "down" and back on the same port)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._cls = ThreadedMotoServer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._client: Any = None
        self.start()

    def start(self) -> None:
        self._server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="jutella-test",
                aws_secret_access_key="not-a-secret")
        return self._client


@dataclass
class S3Bucket:
    """A fresh bucket of the test's own on :class:`S3Server`: ``settings`` for
    ``settings_overrides``, ``objects()`` what is in it (key -> bytes, the
    prefix cut off)."""

    server: S3Server
    name: str
    prefix: str = "jutella/"

    @property
    def settings(self) -> dict[str, Any]:
        return {"file_store": "s3", "s3_endpoint_url": self.server.url, "s3_bucket": self.name,
                "s3_region": "us-east-1", "s3_access_key_id": "jutella-test",
                "s3_secret_access_key": "not-a-secret", "s3_prefix": self.prefix, "s3_timeout_seconds": 2}

    def objects(self) -> dict[str, bytes]:
        """What the bucket holds now (an object listed and deleted before it is read is not held)."""
        client = self.server.client()
        found = client.list_objects_v2(Bucket=self.name).get("Contents") or []
        held = {}
        for o in found:
            try:
                held[o["Key"].removeprefix(self.prefix)] = client.get_object(Bucket=self.name,
                                                                             Key=o["Key"])["Body"].read()
            except client.exceptions.NoSuchKey:  # the housekeeper deleted it between the two requests
                continue
        return held


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        server = S3Server()
    except ImportError:
        need(False, "moto is not installed (the test extra: pip install -e '.[test]')")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server) -> S3Bucket:
    bucket = S3Bucket(s3_server, f"jutella-{uuid.uuid4().hex[:16]}")
    s3_server.client().create_bucket(Bucket=bucket.name)
    return bucket


# -- jutella as its own process (for kill -9, log capture, several workers) -----------
# What ServerProcess.prepare_restart runs: the imports `jutella serve` would do,
# then, on a line on stdin, the command itself (its arguments follow -c).
SPARE = ("import sys, uvicorn, jutella.app, jutella.cli, jutella.logs; sys.stdin.readline(); "
         "sys.exit(jutella.cli.main(sys.argv[1:]))")


# Most tests that start `jutella serve` as a process do not need a new interpreter to
# load jutella's modules each time (2-3 s of CPU for each start, minutes over the
# suite): a "zygote" process per test worker has imported what `jutella serve`
# imports (the same as SPARE) and forks a child for each start, which then runs
# `jutella serve` from its beginning (settings, database, the port) in a session of
# its own, its output in the server's log, with the server's environment. A kill -9
# kills that child's process group as before. Should the zygote not start, the
# servers are started as new interpreters as before.
ZYGOTE = r"""
import json, os, select, sys, traceback
import uvicorn, jutella.app, jutella.cli, jutella.logs

def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sys.stdout.write(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()

sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    readable = select.select([sys.stdin], [], [], 0.05)[0]
    reap()
    if not readable:
        continue
    line = sys.stdin.readline()
    if not line:  # the test worker is ending: wait for the children still running (their CPU is counted)
        while True:
            try:
                os.wait()
            except ChildProcessError:
                break
        break
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            os.environ.clear()
            os.environ.update(order["env"])
            sys.argv = ["jutella", *order["argv"]]
            code = jutella.cli.main(order["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
    sys.stdout.write(f"pid {pid}\n")
    sys.stdout.flush()
"""


class _Zygote:
    """The test worker's zygote (ZYGOTE above) and what it says: the pid of
    each child it forked, and each child's exit status."""

    def __init__(self) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.replies: queue.Queue[str | None] = queue.Queue()
        self.exits: dict[int, int] = {}
        self.changed = threading.Condition()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()
        if self.replies.get(timeout=120) != "ready":
            raise RuntimeError("the zygote did not start")
        import atexit

        atexit.register(self.close)

    def close(self) -> None:
        """At the test worker's end: the zygote waits for its children and ends."""
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except Exception:
            self.proc.kill()
            self.proc.wait()

    def _read(self) -> None:
        for line in self.proc.stdout:
            word, *rest = line.split()
            if word == "exit":
                with self.changed:
                    self.exits[int(rest[0])] = int(rest[1])
                    self.changed.notify_all()
            else:
                self.replies.put(line.strip())
        self.replies.put(None)

    def fork(self, argv: list[str], env: dict[str, str], log: Path) -> "_Forked":
        import json

        with self.lock:
            self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n")
            self.proc.stdin.flush()
            reply = self.replies.get(timeout=30)
        if not reply or not reply.startswith("pid "):
            raise RuntimeError(f"the zygote did not fork: {reply!r}")
        return _Forked(self, int(reply.split()[1]))


class _Forked:
    """A zygote's child, as much of subprocess.Popen as ServerProcess uses."""

    def __init__(self, zygote: _Zygote, pid: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self) -> int | None:
        with self.zygote.changed:
            self.returncode = self.zygote.exits.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        with self.zygote.changed:
            if not self.zygote.changed.wait_for(lambda: self.pid in self.zygote.exits, timeout):
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            self.returncode = self.zygote.exits[self.pid]
        return self.returncode

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        import signal

        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self._signal(signal.SIGKILL)


_zygote: list[_Zygote | None] = []  # made at the first server start of this test worker


def zygote() -> _Zygote | None:
    if not _zygote:
        try:
            _zygote.append(_Zygote())
        except Exception as exc:  # new interpreters then, as before
            print(f"tests: no zygote ({exc}); servers start as new processes")
            _zygote.append(None)
    made = _zygote[0]
    return made if made is not None and made.proc.poll() is None else None


class ServerProcess:
    """``jutella serve`` in a child process, its output in a file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, workers: int = 1):
        self.env = {**os.environ, **env, "JUTELLA_PORT": str(port), "JUTELLA_HOST": "127.0.0.1",
                    "JUTELLA_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log_path = log_path
        self.workers = workers
        self.proc: Any = None
        self.spare: Any = None

    def _spawn(self, code: list[str], **kw: Any) -> Any:
        import subprocess
        import sys

        log = open(self.log_path, "ab")
        return subprocess.Popen([sys.executable, *code, "serve", "--workers", str(self.workers)], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw)

    def prepare_restart(self) -> None:
        """Start the next server process now, as far as Python and jutella's
        modules loaded (seconds of CPU on a busy machine) and nothing more; the
        next start() lets it run ``jutella serve`` from its beginning
        (settings, database, the port). For tests that restart a server many
        times; what a restart does is unchanged."""
        import subprocess

        if zygote() is not None:
            return  # the zygote has them loaded already
        self.spare = self._spawn(["-c", SPARE], stdin=subprocess.PIPE)

    def start(self, timeout: float = 60) -> "ServerProcess":
        import time

        if self.spare is not None and self.spare.poll() is None:
            self.proc, self.spare = self.spare, None
            self.proc.stdin.write(b"serve\n")
            self.proc.stdin.close()
        elif (forker := zygote()) is not None:
            self.proc = forker.fork(["serve", "--workers", str(self.workers)], self.env, self.log_path)
        else:
            self.proc = self._spawn(["-m", "jutella.cli"])
        deadline = time.time() + timeout
        with http_client(timeout=1) as poll:  # one client for every try (tests/helpers.py HTTP_TLS)
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"jutella serve exited: {self.log_path.read_text()[-2000:]}")
                try:
                    if poll.get(self.url + "/healthz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError("jutella serve did not become healthy")

    def kill9(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            # the whole process group: uvicorn's worker children too
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.spare is not None and self.spare.poll() is None:
            self.spare.kill()
            self.spare.wait(10)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except Exception:
                self.kill9()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def server_process(database_url: str, tmp_path: Path, backend: str) -> Iterator[Any]:
    """``jutella serve`` processes; in the pg+redis topology, with two workers."""
    made: list[ServerProcess] = []

    def make(workers: int = 1, **env: str) -> ServerProcess:
        base = {"JUTELLA_DATABASE_URL": database_url, "JUTELLA_DATA_DIR": str(tmp_path / "data"),
                **{f"JUTELLA_{k.upper()}": v for k, v in CHEAP_HASHING.items()}}
        if backend == "pg+redis":
            base.update(JUTELLA_REDIS_URL=REDIS_URL, JUTELLA_REDIS_PREFIX=f"jt-{uuid.uuid4().hex[:10]}")
            workers = max(workers, 2)
        server = ServerProcess({**base, **env}, free_port(), tmp_path / f"server-{len(made)}.log", workers)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


# -- a real SMTP server ------------------------------------------------------------------
class SmtpSink:
    """aiosmtpd in a thread; ``messages`` are the parsed mails it accepted;
    addresses put in ``refused`` are refused with 550 at RCPT."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[Any] = []
        self.controller: Any = None
        self.refused: set[str] = set()  # recipients answered "550" at RCPT, as a real server refuses a mailbox
        self.cut_after_data = False  # take the mail, then drop the connection before answering

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd handler hook
        if address.lower() in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        import email
        from email import policy

        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        if self.cut_after_data:
            server.transport.close()
        return "250 OK"

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 15) -> list[Any]:
        import time

        deadline = time.time() + timeout
        while len(self.messages) < count and time.time() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    yield sink
    sink.stop()


# -- where the layout suite's screenshots went (tests/browser/test_layout_browser.py) ----------
def shots_dir() -> Path:
    """JUTELLA_SHOTS_DIR, or test-screenshots/ in the repository (git-ignored).
    The summary hook lives here, not in tests/browser/conftest.py: under xdist
    the controller, which prints the summary, loads only this conftest."""
    return Path(os.environ.get("JUTELLA_SHOTS_DIR") or Path(__file__).resolve().parents[1] / "test-screenshots")


def pytest_configure(config: pytest.Config) -> None:
    import time

    config._jutella_started = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Name the screenshot folder when this run wrote screenshots into it."""
    folder = shots_dir()
    started = getattr(config, "_jutella_started", 0)
    try:
        fresh = [p for p in folder.glob("*.png") if p.stat().st_mtime >= started]
    except OSError:
        fresh = []
    if fresh:
        terminalreporter.write_sep("-", "layout screenshots")
        terminalreporter.write_line(f"{len(fresh)} screenshots of every view and size in {folder}")
# -- the order of the tests under ``make test`` (pytest-xdist, --dist worksteal) -------------
# worksteal hands each worker one contiguous share of the collection at the start
# (the first len/n tests to the first worker, ...), then idle workers steal the
# second half of the longest queue. A long test collected late therefore starts
# late and ends the run with one worker busy and the others idle. So under
# worksteal the collection is reordered: each worker's share starts with its part
# of the known-long tests (longest first, spread so the shares' long time is
# even), then its browser and integration modules (browser first on the even
# workers, integration first on the odd ones: see the end of
# schedule_for_worksteal), then unit tests, which are the cheap filler that
# stealing moves around at the end. A module's tests stay
# together (its fixtures). The estimates: LONG below (seconds on a quiet
# two-core machine under make test; re-measure with --durations and update it
# when a test becomes one of the longest), otherwise by folder.
LONG = {
    "tests/browser/test_hostile_corpus.py::test_the_corpus_stays_text_everywhere_staff_look": 95,
    "tests/integration/test_soak.py::test_kill_9_at_random_moments_under_load": 65,
    "tests/browser/test_layout_browser.py::test_layout_1280x800": 30,
    "tests/browser/test_layout_browser.py::test_layout_1366x768": 30,
    "tests/browser/test_layout_browser.py::test_layout_390x844": 30,
}
FOLDER_SECONDS = {"browser": 4.0, "integration": 1.0, "unit": 0.02}


def _estimate(item: pytest.Item) -> float:
    if item.nodeid in LONG:
        return LONG[item.nodeid]
    parts = item.nodeid.split("/")
    return FOLDER_SECONDS.get(parts[1] if len(parts) > 2 else "", 1.0)


def _worksteal_shares(count: int, workers: int) -> list[int]:
    """How many tests each worker gets first (xdist's WorkStealingScheduling.check_schedule)."""
    shares, left = [], count
    for i in range(workers):
        shares.append(left // (workers - i))
        left -= shares[-1]
    return shares


def schedule_for_worksteal(items: list[Any], workers: int, estimate=_estimate) -> list[Any]:
    """The order described above; the same items, each once."""
    if workers < 2 or len(items) < workers:
        return list(items)
    sizes = _worksteal_shares(len(items), workers)
    shares: list[list[Any]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    long_items = sorted((i for i in items if i.nodeid in LONG), key=estimate, reverse=True)
    for item in long_items:  # longest first, each to the share with the least long time so far
        k = min(range(workers), key=lambda w: (load[w], w))
        shares[k].append(item)
        load[k] += estimate(item)
    modules: dict[str, list[Any]] = {}
    for item in items:
        if item.nodeid not in LONG:
            modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    rank = {"browser": 0, "integration": 1}
    order = sorted(modules.values(), key=lambda group: (rank.get(group[0].nodeid.split("/")[1], 2),
                                                       -sum(map(estimate, group))))
    for group in order:  # to the least loaded share with room; split across shares if none has room
        while group:
            room = [w for w in range(workers) if len(shares[w]) < sizes[w]]
            k = min(room, key=lambda w: (load[w], w))
            taken, group = group[:sizes[k] - len(shares[k])], group[sizes[k] - len(shares[k]):]
            shares[k] += taken
            load[k] += sum(map(estimate, taken))
    # Within each share (after its long tests): the even workers begin with their browser modules, the odd
    # ones with their integration modules, so that Chromium-heavy tests (CPU) and server-and-socket tests
    # (mostly waiting) run side by side the whole time instead of every worker rendering at once and then
    # every worker waiting at once.
    phase = {"browser": 0, "integration": 1}
    for k, share in enumerate(shares):
        first = [i for i in share if i.nodeid in LONG]
        rest = [i for i in share if i.nodeid not in LONG]
        folder = lambda i: phase.get(i.nodeid.split("/")[1], 2)  # noqa: E731
        rest.sort(key=lambda i, k=k: (folder(i) if folder(i) == 2 else (folder(i) + k) % 2))  # stable: modules together
        shares[k] = first + rest
    return [item for share in shares for item in share]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist, in the controller) Tell the workers the mode: xdist sets
    their own ``dist`` option to "no"."""
    node.workerinput["jutella_dist"] = node.config.getoption("dist")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or workerinput.get("jutella_dist") != "worksteal":
        return  # one process (or another xdist mode): collection order
    items[:] = schedule_for_worksteal(items, int(workerinput["workercount"]))
