"""Small helpers the tests share."""

from __future__ import annotations

import httpx

from jutella.accounts import actions

PASSWORD = "correct horse battery staple"

# One TLS context for every HTTP client the tests make. httpx.Client() (and each
# httpx.get()) otherwise loads the CA bundle into a new one: ~20 ms of CPU each,
# though the test servers speak plain HTTP; a sign-in made one, a poll one per try.
HTTP_TLS = httpx.create_ssl_context()


def http_client(**kw) -> httpx.Client:
    """``httpx.Client(**kw)`` with the shared TLS context (use it for every client a test makes)."""
    kw.setdefault("verify", HTTP_TLS)
    return httpx.Client(**kw)


def add_staff(live, email: str, roles: list[str], *, name: str | None = None, password: str = PASSWORD) -> int:
    created = live.call(actions.create_account, live.rt, actor_id=None, email=email,
                        name=name or email.split("@")[0].title(), roles=roles, password=password)
    return created.account.id


def sign_in(live, email: str, password: str = PASSWORD, totp: str | None = None) -> httpx.Client:
    """A client holding a staff session; its CSRF token is sent on every request."""
    client = live.client()
    r = client.post("/api/v1/public/staff/login", json={"email": email, "password": password, "totp": totp})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def eventually(check, timeout: float = 15, interval: float = 0.02):
    """Poll ``check()`` until it returns something truthy and return that; fail
    with its last value after ``timeout`` s. For waiting on a state that no
    event announces, instead of sleeping for a guessed time."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not within {timeout} s: {check!r} gave {value!r}"
            return value
        time.sleep(interval)


def outbox_idle(live) -> bool:
    """One pass of each server's mail worker (the same call its loop makes)
    right now: True when none found a mail due, i.e. nothing more will be
    sent until the clock moves on. Deterministic where sleeping through a
    poll interval only guessed."""
    sides = {id(side): side for side in (live, getattr(live, "agent_side", live))}.values()
    return not any(side.call(side.rt.outbox.send_due) for side in sides)


class CliResult:
    """What ``subprocess.run(..., capture_output=True, text=True)`` gives: enough for the tests."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def check_returncode(self) -> None:
        assert self.returncode == 0, f"jutella {' '.join(self.args)} exited {self.returncode}: {self.stderr}"


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str = "", check: bool = False) -> CliResult:
    """``jutella ARGS`` run in this process: ``jutella.cli.main`` with the
    ``JUTELLA_*`` variables of ``env`` (and only those) as its environment,
    ``stdin`` as its standard input, its output and exit status captured
    (argparse's exit 2 too). The same command as the one an operator types,
    without the second of CPU a new interpreter takes to load jutella; for
    tests about what a command does, or that use one to set something up.
    tests/integration/test_cli.py keeps the command line itself (real
    processes, real exit codes) covered for each command family."""
    import contextlib
    import io
    import os
    import sys
    import threading

    from jutella import cli

    out, err = io.StringIO(), io.StringIO()
    result: dict[str, int] = {}

    def target() -> None:  # a thread of its own: the command runs its own event loop
        try:
            result["code"] = cli.main(list(args))
        except SystemExit as exc:
            result["code"] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # an unexpected error: its traceback on stderr, exit 1, as Python does
            import traceback

            err.write("".join(traceback.format_exception(exc)))
            result["code"] = 1

    saved = dict(os.environ)
    saved_stdin = sys.stdin
    try:
        for key in [k for k in os.environ if k.startswith("JUTELLA_") and not k.startswith("JUTELLA_TEST")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in (env or {}).items() if k.startswith("JUTELLA_")})
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
    finally:
        sys.stdin = saved_stdin
        os.environ.clear()
        os.environ.update(saved)
    done = CliResult(list(args), result["code"], out.getvalue(), err.getvalue())
    if check:
        done.check_returncode()
    return done


def put_on_duty(live, agent_id: int, conn_id: str) -> None:
    """An agent on duty without a console: connect to presence, then tell the
    widgets, as the console's socket does (chat/presence.py). Without the
    publish, a widget opened before housekeeping's next one may be told nobody
    is on duty."""
    from jutella.chat.presence import publish_presence

    async def go() -> None:
        live.rt.presence.connect(agent_id, conn_id, "online")
        await publish_presence(live.rt)

    live.call(go)
