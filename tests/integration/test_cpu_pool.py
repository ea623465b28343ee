"""Nothing CPU-heavy on the event loop (docs/security.md, "CPU-heavy requests"):
password hashing and image decoding run in bounded pools (jutella/cpu.py)
after every cheap check; a full pool answers 503 with Retry-After; a picture
with too many pixels is refused from its header; a PDF is checked to its
last byte; a visitor's uploads are limited per address as well as per token."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from jutella.accounts import actions

from tests.chat_clients import visitor
from tests.helpers import PASSWORD, add_staff, error_code, http_client
from tests.integration.test_attachments import new_visitor_with_chat, png, upload

STRONG = "a long and unusual passphrase 4 u"
# GET /healthz every 20 ms until a line comes on stdin; then the latencies, one a line
SAMPLER = """
import sys, threading, time, http.client, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
seen = []
while not stop.is_set():
    t0 = time.perf_counter()
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    seen.append(time.perf_counter() - t0)
    if len(seen) == 1:
        print("started", flush=True)
    stop.wait(0.02)
print("\\n".join(map(str, seen)))
"""


def webp_of(width: int, height: int) -> bytes:
    """A real picture of width x height pixels in a few kB: one colour."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "WEBP", quality=10)
    return out.getvalue()


def webp_claiming(width: int, height: int) -> bytes:
    """A small WebP whose extended header (VP8X) claims width x height."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "WEBP", exif=Image.Exif().tobytes())
    data = bytearray(out.getvalue())
    assert data[12:16] == b"VP8X"
    data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return bytes(data)


def huge_png() -> bytes:
    """100 megapixels in 12 kB: the header says 10,000 x 10,000."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def forty_megapixels() -> bytes:
    return webp_of(8000, 5000)  # 40,000,000 pixels: within the limit, so it is decoded


# -- /healthz under an anonymous CPU attack, on a real `jutella serve` --------------------------
def test_healthz_keeps_answering_while_anonymous_requests_ask_for_hashes_and_decoding(server_process,
                                                                                       forty_megapixels):
    # production's argon2 parameters; one upload worker and no queue, so the
    # images beyond the first are refused at once rather than queued
    server = server_process(JUTELLA_PASSWORD_HASH_PROFILE="standard", JUTELLA_UPLOAD_QUEUE="0").start()
    assert len(forty_megapixels) < 200_000
    tokens = []
    for n in range(4):  # anonymous visitors, each with an open chat to send a picture into
        v, welcome = visitor(server)
        v.message(f"hei {n}")
        v.until(lambda f: f["type"] == "ack")
        tokens.append(welcome["token"])
        v.close()

    # FastAPI builds a router's request and response models on the first
    # request that reaches it (0.3 to 0.7 s on a busy machine): once per
    # process, not the attack's work, so done before the measurement
    with http_client(base_url=server.url, timeout=30) as http:
        assert http.post("/api/v1/public/staff/invitation", json={"token": "x", "password": STRONG}).status_code == 400
        assert upload(http, None, b"x").status_code == 401

    # /healthz is asked every 20 ms by a process of its own, so that what it
    # measures is the server, not this process's threads sending the attack
    sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, server.url], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert sampler.stdout.readline().strip() == "started"
    start = threading.Barrier(34)
    # one client for the whole attack (each new client costs this process a TLS context)
    with http_client(base_url=server.url, timeout=120, limits=httpx.Limits(max_connections=40)) as http:

        def bogus(n: int) -> httpx.Response:
            start.wait()
            if n % 2:
                return http.post("/api/v1/public/staff/invitation", json={"token": f"made-up-{n}", "password": STRONG})
            return http.post("/api/v1/public/staff/setup", json={"token": f"made-up-{n}", "email": f"x{n}@example.org",
                                                                 "name": "X", "password": STRONG})

        def picture(token: str) -> httpx.Response:
            start.wait()
            return upload(http, token, forty_megapixels, "big.webp")

        try:
            with ThreadPoolExecutor(34) as pool:
                fakes = [pool.submit(bogus, n) for n in range(30)]
                pictures = [pool.submit(picture, t) for t in tokens]
                fake_answers = [f.result() for f in fakes]
                picture_answers = [f.result() for f in pictures]
        finally:
            out, _ = sampler.communicate("stop\n", timeout=60)
    latencies = [float(x) for x in out.split()]

    # a made-up link is refused from the database alone: no hash, and never "busy"
    assert {(r.status_code, error_code(r)) for r in fake_answers} == {(400, "link_invalid")}
    statuses = sorted(r.status_code for r in picture_answers)
    assert statuses[0] == 201 and set(statuses) <= {201, 503}, [r.text for r in picture_answers]
    for r in picture_answers:
        if r.status_code == 503:
            assert error_code(r) == "busy" and int(r.headers["retry-after"]) >= 1
    worst = max(latencies)
    print(f"\n/healthz during the attack: {len(latencies)} requests, worst {worst * 1000:.0f} ms, "
          f"median {statistics.median(latencies) * 1000:.1f} ms; pictures answered {statuses}")
    assert len(latencies) >= 10
    assert worst < 1.0


# -- the pools full, on a live server with one worker and no queue each -------------------------
@pytest.fixture
def settings_overrides():
    return {"password_workers": 1, "password_queue": 0, "upload_workers": 1, "upload_queue": 0}


def _invite(live) -> str:
    created = live.call(actions.create_account, live.rt, actor_id=None, email="uusi@example.org", name="Uusi",
                        roles=["agent"])
    return created.invitation_link.split("#token=")[1]


def test_a_full_password_pool_answers_503_with_retry_after_and_cheap_checks_still_answer(live):
    add_staff(live, "aino@example.org", ["agent"])
    token = _invite(live)
    http = live.client()
    gate = threading.Event()
    held = live.rt.cpu.passwords.submit(gate.wait)  # the one worker, busy
    try:
        r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
        assert r.status_code == 503 and error_code(r) == "busy", r.text
        assert int(r.headers["retry-after"]) >= 1
        assert "try again" in r.json()["error"]["message"]
        fi = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD},
                       headers={"Accept-Language": "fi"})
        assert fi.status_code == 503 and "uudelleen" in fi.json()["error"]["message"]
        # a made-up link needs no hash: refused as ever, full pool or not
        r = http.post("/api/v1/public/staff/invitation", json={"token": "made-up", "password": STRONG})
        assert r.status_code == 400 and error_code(r) == "link_invalid"
        r = http.post("/api/v1/public/staff/setup", json={"token": "made-up", "email": "a@example.org",
                                                          "name": "A", "password": STRONG})
        assert r.status_code == 400 and error_code(r) == "link_invalid"
        # a real link waits for a worker: refused for now, and not used up
        r = http.post("/api/v1/public/staff/invitation", json={"token": token, "password": STRONG})
        assert r.status_code == 503 and error_code(r) == "busy"
    finally:
        gate.set()
        held.result(timeout=10)
    r = http.post("/api/v1/public/staff/invitation", json={"token": token, "password": STRONG})
    assert r.status_code == 200, r.text
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_a_full_upload_pool_answers_503_and_a_huge_picture_is_refused_from_its_header(live, tmp_path):
    token, _conv = new_visitor_with_chat(live)
    http = live.client()
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    # the one upload worker process, busy: it waits to read the pipe until the test writes to it
    held = live.rt.cpu.uploads.submit(Path(fifo).read_bytes)
    try:
        r = upload(http, token, png(), "kuva.png")
        assert r.status_code == 503 and error_code(r) == "busy", r.text
        assert int(r.headers["retry-after"]) >= 1
        # too many pixels is read from the header: refused at once, no worker needed
        big = huge_png()
        assert len(big) < 100_000
        t0 = time.perf_counter()
        r = upload(http, token, big, "huge.png")
        assert r.status_code == 413 and error_code(r) == "too_many_pixels", r.text
        assert r.json()["error"]["message"] == "The image is too large (at most 40 megapixels)."
        assert time.perf_counter() - t0 < 2
        r = upload(http, token, webp_claiming(8001, 5000), "huge.webp")  # just over 40 MP
        assert r.status_code == 413 and error_code(r) == "too_many_pixels", r.text
    finally:
        with open(fifo, "wb") as pipe:
            pipe.write(b"go")
        assert held.result(timeout=30) == b"go"
    r = upload(http, token, png(), "kuva.png")
    assert r.status_code == 201, r.text


# -- a PDF is checked to its end ------------------------------------------------------------
BODY = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\n" + b"% filler\n" * 1000  # 9 kB: past the first 4 KiB


@pytest.mark.parametrize("data,code,words", [
    (BODY + b"trailer<<>>\n%%EOF\n<html><script>alert(document.cookie)</script></html>\n", "unreadable", "PDF"),
    (BODY + b"<script>alert(1)</script>\ntrailer<<>>\n%%EOF\n", "unsupported_type", "PNG, JPEG, WebP"),
    (BODY + b"2 0 obj<< /S /J#61vaScript /JS (app.alert(1)) >>endobj\ntrailer<<>>\n%%EOF\n", "unsupported_type",
     "scripts"),
    (BODY + b"2 0 obj<< /S /Launch /F (cmd.exe) >>endobj\ntrailer<<>>\n%%EOF\n", "unsupported_type", "programs"),
])
def test_a_pdf_is_checked_to_its_last_byte(live, data, code, words):
    token, _conv = new_visitor_with_chat(live)
    http = live.client()
    r = upload(http, token, data, "lasku.pdf")
    assert r.status_code == 415 and error_code(r) == code, r.text
    assert words in r.json()["error"]["message"]
    r = upload(http, token, BODY + b"trailer<<>>\n%%EOF\n\n", "lasku.pdf")
    assert r.status_code == 201, r.text


# -- uploads per client address ----------------------------------------------------------------
class TestUploadsPerAddress:
    @pytest.fixture
    def settings_overrides(self):
        return {"max_uploads_per_client": 3}

    def test_fresh_visitor_tokens_do_not_escape_the_per_address_upload_limit(self, live):
        http = live.client()
        for _ in range(3):
            token, _conv = new_visitor_with_chat(live)
            assert upload(http, token, png(), "kuva.png").status_code == 201
        token, _conv = new_visitor_with_chat(live)  # a new browser, the same address
        r = upload(http, token, png(), "kuva.png")
        assert r.status_code == 429 and error_code(r) == "rate_limited", r.text
        assert "network" in r.json()["error"]["message"] and int(r.headers["retry-after"]) >= 1
        assert http.get("/healthz").status_code == 200
