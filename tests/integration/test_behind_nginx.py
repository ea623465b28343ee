"""jutella behind a real nginx, configured as docs/deployment.md says.

Debian's nginx runs as a process of its own with the documentation's server
block (read from docs/deployment.md; only TLS is taken out and the ports
filled in) in a temporary folder, in front of a real ``jutella serve`` with
``JUTELLA_TRUSTED_PROXIES=127.0.0.1``. Clients connect to nginx from
different loopback addresses (127.0.0.2, 127.0.0.3, ...), as different
visitors would: one client's use of its per-address limits must not touch
another's. (Before issue 15 every client behind nginx was nginx's 127.0.0.1:
one client's 100 widget sockets gave every other visitor 429 and 50 failed
sign-ins locked the administrator out.)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.chat_clients import WsClient, _connect, agent, visitor
from tests.conftest import need
from tests.helpers import HTTP_TLS, PASSWORD, http_client, run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"  # three clients on one machine


@pytest.fixture
def backend():
    return "sqlite"  # what is shown is addresses and limits; the database plays no part


def documented_block(heading: str = "## Behind nginx with TLS") -> str:
    """The first nginx block under ``heading`` in docs/deployment.md (by default
    the server block of "Behind nginx with TLS")."""
    text = DOC.read_text()
    section = text[text.index(heading):]
    match = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert match, f"docs/deployment.md has no nginx block under {heading!r}"
    return match.group(1)


def several_hosts_block() -> str:
    """The documented server block with its ``upstream`` replaced by the one of
    "Several hosts behind one nginx"."""
    block, upstream = documented_block(), documented_block("### Several hosts behind one nginx").strip()
    assert upstream.startswith("upstream jutella {") and upstream.endswith("}"), upstream
    merged, count = re.subn(r"^upstream jutella \{.*?^\}", lambda _: upstream, block, flags=re.S | re.M)
    assert count == 1, "docs/deployment.md's nginx block has no upstream jutella { ... }"
    return merged


def local_config(block: str, *, listen: int, upstream: int | Sequence[int], folder: Path) -> str:
    """The documented block with TLS taken out (plain HTTP on a free loopback
    port) and jutella's port (or, for several hosts, each host's in the
    upstream's order, their parameters kept) filled in; everything else as
    documented, inside the minimum nginx needs to run unprivileged in ``folder``."""
    ports = [upstream] if isinstance(upstream, int) else list(upstream)
    out, listens, servers, in_upstream = [], 0, 0, False
    for line in block.splitlines():
        words = line.split()
        if words[:2] == ["upstream", "jutella"]:
            in_upstream = True
        elif in_upstream and words[:1] == ["}"]:
            in_upstream = False
        if words[:1] == ["listen"]:
            line, listens = f"    listen 127.0.0.1:{listen};", listens + 1
        elif words[:1] in (["ssl_certificate"], ["ssl_certificate_key"]):
            continue
        elif in_upstream and words[:1] == ["server"]:
            assert servers < len(ports), "docs/deployment.md's upstream lists more hosts than the test started"
            rest = " " + " ".join(words[2:]) if len(words) > 2 else ";"  # e.g. " max_fails=1 fail_timeout=5s;"
            line, servers = f"    server 127.0.0.1:{ports[servers]}{rest}", servers + 1
        out.append(line)
    assert listens == 1 and servers == len(ports), "docs/deployment.md's nginx block changed shape: update local_config"
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    body = "\n".join("    " + line for line in out)
    return (f"master_process off;  # one process, as the test's user\n"
            f"pid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} warn;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n{temp}\n{body}\n}}\n")


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def nginx(tmp_path):
    """Start Debian's nginx with the documented block in front of a server,
    ``nginx(server)``, or of several hosts, ``nginx(a, b)`` (the upstream of
    "Several hosts behind one nginx"). Only the servers' ports are read: they
    need not be listening yet."""
    need(NGINX is not None, "nginx is not installed (apt-get install nginx-light)")
    started: list[Nginx] = []

    def start(*servers) -> Nginx:
        from tests.conftest import free_port

        assert servers
        folder = tmp_path / f"nginx-{len(started)}" if started else tmp_path / "nginx"
        folder.mkdir()
        port = free_port()
        conf = folder / "nginx.conf"
        block = documented_block() if len(servers) == 1 else several_hosts_block()
        conf.write_text(local_config(block, listen=port, upstream=[s.port for s in servers], folder=folder))
        proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log"),
                                 "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proxy = Nginx(proc, port, folder)
        started.append(proxy)
        deadline = time.monotonic() + 15
        while True:  # until nginx listens (or has exited)
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode(errors='replace')}{proxy.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proxy
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.02)

    yield start
    for proxy in started:
        proxy.proc.terminate()
        try:
            proxy.proc.wait(10)
        except subprocess.TimeoutExpired:
            proxy.proc.kill()
            proxy.proc.wait(10)


@dataclass
class Via:
    """What tests/chat_clients.py connects to: the sockets through nginx, with
    the Origin of jutella's public URL (the widget's page)."""

    url: str  # the Origin sent
    ws_url: str


def add_staff_cli(server, email: str, *roles: str) -> None:
    run_cli("user", "add", email, "--name", email.split("@")[0], *(arg for role in roles for arg in ("--role", role)),
            "--password-stdin", stdin=PASSWORD, env=server.env, check=True)


def client_from(address: str, base_url: str) -> httpx.Client:
    return http_client(base_url=base_url, timeout=15,
                       transport=httpx.HTTPTransport(local_address=address, verify=HTTP_TLS))


def sign_in(http: httpx.Client, email: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return http.post("/api/v1/public/staff/login", json={"email": email, "password": password}, headers=headers)


def test_behind_nginx_one_clients_limits_do_not_touch_another_clients_chat_or_sign_in(server_process, nginx):
    server = server_process(JUTELLA_TRUSTED_PROXIES="127.0.0.1").start()
    add_staff_cli(server, "aino@example.org", "admin", "agent")  # the administrator, also answering chats
    proxy = nginx(server)
    via = Via(url=server.url, ws_url=proxy.ws_url)
    limit = 100  # max_connections_per_client's default

    # Client A holds 100 widget sockets through nginx: its own limit is full ...
    held: list[WsClient] = [visitor(via, source=A)[0] for _ in range(limit)]
    with pytest.raises(InvalidStatus) as refused:
        visitor(via, source=A)
    assert refused.value.response.status_code == 429

    # ... and fails 50 sign-ins, each claiming another address in X-Forwarded-For
    # (nginx adds the address it saw on the right; that one counts)
    a_http = client_from(A, proxy.url)
    for i in range(50):
        r = sign_in(a_http, f"guess{i}@example.org", "not the password", **{"X-Forwarded-For": f"198.51.100.{i}"})
        assert r.status_code == 401, r.text
    r = sign_in(a_http, "aino@example.org", **{"X-Forwarded-For": "198.51.100.200"})
    assert r.status_code == 429, "A's own sign-ins are throttled"
    # Sent straight to jutella, past nginx, a claimed address is not believed
    # either (A is not a trusted proxy): pretending to be B, A is still A
    r = sign_in(client_from(A, server.url), "aino@example.org", **{"X-Forwarded-For": B})
    assert r.status_code == 429

    # Client B, meanwhile: the administrator signs in with the right password ...
    b_http = client_from(B, proxy.url)
    r = sign_in(b_http, "aino@example.org")
    assert r.status_code == 200, r.text
    assert r.json()["account"]["email"] == "aino@example.org"

    # ... and a visitor on B chats with her, signed in from C as well
    c_http = client_from(C, proxy.url)
    r = sign_in(c_http, "aino@example.org")
    assert r.status_code == 200, r.text
    c_http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    aino, _ = agent(via, c_http, source=C)
    v, _ = visitor(via, source=B)
    v.message("Hei! Onko kirjasto auki lauantaina?")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    aino.send(type="subscribe", conversation=conv, last_seq=0)
    aino.send(type="accept", conversation=conv)
    aino.message("On, kello 10-16.", conversation=conv)
    reply = v.until(lambda f: f["type"] == "event" and f.get("author") == "agent")
    assert reply["body"] == "On, kello 10-16."

    # A's 100 sockets were live all along
    held[0].send(type="ping")
    held[0].until(lambda f: f["type"] == "pong")
    for ws in (v, aino, *held):
        ws.close()
    assert "[alert]" not in proxy.log() and "[emerg]" not in proxy.log()


def test_the_documented_block_forwards_the_address_and_the_docs_trust_it():
    block = documented_block()
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$(proxy_add_x_forwarded_for|remote_addr);", block)
    doc = DOC.read_text()
    assert 'trusted_proxies = ["127.0.0.1"]' in doc and "JUTELLA_TRUSTED_PROXIES=127.0.0.1" in doc


# -- X-Forwarded-For from anyone but a trusted proxy is ignored -------------------------
@pytest.fixture(params=["unset", "127.0.0.1"])
def settings_overrides(request):
    values = {"max_connections_per_client": 3}
    if request.param != "unset":
        values["trusted_proxies"] = request.param
    return values


def _socket(live, source: str, claimed: str):
    conn = _connect(live.ws_url + "/ws/visitor", origin=live.url, source=source,
                    headers={"X-Forwarded-For": claimed})
    c = WsClient(conn)
    c.send(type="hello", token=None, last_seq=0, lang="en", page="https://site.example/", referrer="")
    c.until(lambda f: f["type"] == "welcome")
    return c


@pytest.fixture(params=["wsserver", "asgi"])
def direct(request, settings, clock):
    """A server in this process: chat sockets served by jutella's own protocol
    (realtime/wsserver.py) or by the ASGI adapter (realtime/asgi.py)."""
    from tests.conftest import start_live

    server, stop = start_live(settings, clock, **({"ws": "websockets-sansio"} if request.param == "asgi" else {}))
    yield server
    stop()


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(direct, settings):
    live = direct
    # a client (not a proxy) claims a new address on every socket: all count as its own
    held = [_socket(live, A, f"198.51.100.{i}") for i in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        _socket(live, A, "198.51.100.99")
    assert refused.value.response.status_code == 429
    # and on HTTP: its failed sign-ins count as its own whatever it claims
    http = client_from(A, live.url)
    for i in range(50):
        assert sign_in(http, f"guess{i}@example.org", "nope", **{"X-Forwarded-For": f"203.0.113.{i}"}
                       ).status_code == 401
    assert sign_in(http, "x@example.org", "nope", **{"X-Forwarded-For": "203.0.113.99"}).status_code == 429

    # 127.0.0.1 stands for a proxy: believed only when trusted
    proxy_http = client_from("127.0.0.1", live.url)
    from_proxy = [_socket(live, "127.0.0.1", f"192.0.2.{i}") for i in range(3)]
    r = sign_in(proxy_http, "x@example.org", "nope", **{"X-Forwarded-For": A})
    if settings.trusted_proxies:
        from_proxy.append(_socket(live, "127.0.0.1", "192.0.2.77"))  # a fourth: another client's
        assert r.status_code == 429  # the proxy says this is A, whose failures are used up
    else:
        with pytest.raises(InvalidStatus) as refused:
            _socket(live, "127.0.0.1", "192.0.2.77")  # not believed: the proxy's own fourth
        assert refused.value.response.status_code == 429
        assert r.status_code == 401  # not believed: the proxy's own first failure
    for ws in (*held, *from_proxy):
        ws.close()
