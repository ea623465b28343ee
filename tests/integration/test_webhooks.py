"""Signed webhooks (issue 19 item 2, docs/webhooks.md) against a real HTTP
receiver: a small http.server in a thread of the test, which records what
arrives and answers with the status the test sets. Time moves with the fake
clock, not by sleeping."""

from __future__ import annotations

import hashlib
import hmac
import html as htmllib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from jutella.chat import actions as chat
from jutella.chat.metadata import Metadata
from jutella.store.models import WebhookDelivery
from tests.helpers import add_staff, error_code, eventually, sign_in

H = "X-Jutella-Visitor"
FORM = {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Milloin toimisto on auki?",
        "lang": "fi", "page": "https://jamko.example/yhteystiedot", "referrer": "https://search.example/",
        "browser_key": "browser-a"}


class Receiver:
    """A webhook receiver: every POST is kept (headers and raw body); it
    answers ``status`` (the test changes it), and counts as *processed* only
    the deliveries it answered 2xx to, once per X-Jutella-Delivery (what a
    receiver that dedupes does)."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.processed: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = outer.status
                    if 200 <= status < 300:
                        outer.processed.append(self.headers["X-Jutella-Delivery"])
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"receiver says " + str(status).encode() + b" " + b"x" * 500)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/jutella?token=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, event: str | None = None) -> list[dict]:
        with self.lock:
            return [json.loads(b) for h, b in self.requests if event is None or h["x-jutella-event"] == event]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def admin(live):
    add_staff(live, "admin@example.org", ["admin"])
    return sign_in(live, "admin@example.org")


def allow_private(live, on: bool = True) -> None:
    live.rt.settings.webhook_allow_private = on  # the live server's own settings object
    if live.peer is not None:
        live.peer.rt.settings.webhook_allow_private = on


def add_hook(admin, url: str, events: list[str], personal: list[str] | None = None, name: str = "Helpdesk"):
    r = admin.post("/api/v1/webhooks", json={"name": name, "url": url, "events": events,
                                             "personal": personal or []})
    assert r.status_code == 201, r.text
    return r.json()


def start_chat(live, text: str = "Hei, tarvitsen apua") -> tuple[str, int]:
    visitor, token = live.call(chat.new_visitor, live.rt)
    posted = live.call(chat.post_visitor_message, live.rt, visitor_id=visitor.id, client_id="c1", body=text,
                       meta=Metadata())
    return token, posted.conversation.id


def settled(live, attempts: int) -> bool:
    """Every delivery has had ``attempts`` attempts and none is being sent right now (its result is written)."""
    async def q():
        async with live.rt.db.reader() as s:
            rows = (await s.execute(select(WebhookDelivery))).scalars().all()
        return bool(rows) and all(r.attempts == attempts and r.claim_token is None for r in rows)
    return live.call(q)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What docs/webhooks.md tells a receiver to do."""
    signed = headers["x-jutella-timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-jutella-signature"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_delivery_is_signed_with_the_hooks_secret(live, admin, receiver):
    allow_private(live)
    hook = add_hook(admin, receiver.url, ["conversation.created", "conversation.closed"])
    secret = hook["secret"]
    assert secret and admin.get("/api/v1/webhooks").json()["hooks"][0].get("secret") is None  # shown once
    _, conv = start_chat(live)
    eventually(lambda: len(receiver.requests) == 1)
    headers, body = receiver.requests[0]
    assert headers["x-jutella-event"] == "conversation.created"
    assert headers["content-type"] == "application/json"
    assert verify(secret, headers, body)
    assert not verify(secret + "x", headers, body)
    assert abs(int(headers["x-jutella-timestamp"]) - int(live.rt.clock.now().timestamp())) <= 1
    payload = json.loads(body)
    assert payload["id"] == headers["x-jutella-delivery"] and payload["event"] == "conversation.created"
    assert payload["data"]["conversation_id"] == conv and "created_at" in payload["data"]

    staff = sign_in(live, "admin@example.org")
    add_staff(live, "aino@example.org", ["agent"])
    agent = sign_in(live, "aino@example.org")
    assert agent.post(f"/api/v1/conversations/{conv}/close").status_code == 200
    eventually(lambda: len(receiver.requests) == 2)
    headers, body = receiver.requests[1]
    assert headers["x-jutella-event"] == "conversation.closed" and verify(secret, headers, body)
    assert json.loads(body)["data"]["closed_by"] == "agent"
    # the receiver has the body before the sender records its answer: the log says so a moment later
    expected = [("conversation.closed", "delivered", 1, 200), ("conversation.created", "delivered", 1, 200)]

    def logged():
        log = staff.get("/api/v1/webhooks/deliveries").json()["deliveries"]
        return log if [(d["event"], d["state"], d["attempts"], d["last_status"]) for d in log] == expected else None
    log = eventually(logged)
    assert secret not in json.dumps(log)


def test_a_failing_receiver_gets_each_delivery_again_until_it_answers_then_never_again(live, admin, receiver):
    allow_private(live)
    add_hook(admin, receiver.url, ["conversation.created", "offline_message.created"])
    receiver.status = 500
    start_chat(live)
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    eventually(lambda: len(receiver.requests) == 2)
    first_ids = {h["x-jutella-delivery"] for h, _ in receiver.requests}
    log = eventually(lambda: (lambda failed: failed if len(failed) == 2 else None)(
        [d for d in admin.get("/api/v1/webhooks/deliveries").json()["deliveries"] if d["last_status"] == 500]))
    assert {d["state"] for d in log} == {"queued"}
    assert all(d["last_error"].startswith("HTTP 500: receiver says 500") and len(d["last_error"]) < 200 for d in log)
    assert all(d["next_attempt_at"] for d in log)

    # not again before its back-off (10 s): the worker runs, nothing is due
    assert not live.call(live.rt.webhooks.send_due)
    eventually(lambda: settled(live, 1))
    live.rt.clock.advance(seconds=11)
    eventually(lambda: len(receiver.requests) == 4)  # each retried once, still 500
    eventually(lambda: settled(live, 2))
    receiver.status = 200
    live.rt.clock.advance(seconds=21)
    eventually(lambda: len(receiver.processed) == 2)
    eventually(lambda: settled(live, 3))
    live.rt.clock.advance(hours=30)  # long after: nothing is sent again
    assert not live.call(live.rt.webhooks.send_due)
    assert len(receiver.requests) == 6
    assert sorted(receiver.processed) == sorted(first_ids)  # each delivery processed exactly once, same ids
    bodies = {}
    for h, b in receiver.requests:  # every attempt of a delivery sent the same bytes
        assert bodies.setdefault(h["x-jutella-delivery"], b) == b
    admin = sign_in(live, "admin@example.org")  # a new session: 30 hours went by
    log = admin.get("/api/v1/webhooks/deliveries").json()["deliveries"]
    assert {(d["state"], d["attempts"]) for d in log} == {("delivered", 3)}


def test_a_receiver_down_for_a_day_is_given_up_and_can_be_sent_again(live, admin, receiver):
    allow_private(live)
    add_hook(admin, receiver.url, ["conversation.created"])
    receiver.status = 503
    start_chat(live)
    eventually(lambda: len(receiver.requests) == 1)
    for _ in range(40):  # back-off doubles to an hour; after 24 h it is given up
        live.rt.clock.advance(hours=1)
        while live.call(live.rt.webhooks.send_due):
            pass
    admin = sign_in(live, "admin@example.org")  # a new session: a day and a half went by
    [row] = admin.get("/api/v1/webhooks/deliveries").json()["deliveries"]
    assert row["state"] == "failed" and row["next_attempt_at"] is None and 10 < row["attempts"] < 40
    tries = len(receiver.requests)
    receiver.status = 204
    assert admin.post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver").status_code == 204
    eventually(lambda: receiver.processed == [row["delivery_id"]])
    assert len(receiver.requests) == tries + 1


def test_private_addresses_are_refused_without_the_setting(live, admin, receiver):
    for url in (receiver.url, "https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest",
                "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://224.0.0.1/hook",
                "https://localhost/hook", "ftp://example.org/hook", "https://user:pw@example.org/hook"):
        r = admin.post("/api/v1/webhooks", json={"name": "x", "url": url, "events": ["conversation.created"]})
        assert r.status_code == 400 and error_code(r) == "url_refused", (url, r.text)
        assert r.json()["error"]["field"] == "url"
    assert admin.get("/api/v1/webhooks").json()["hooks"] == []
    # with the setting the receiver is accepted; turned off again, the delivery itself is refused
    # (checked before every attempt: a name that resolves elsewhere later is not followed)
    allow_private(live)
    add_hook(admin, receiver.url, ["conversation.created"])
    allow_private(live, False)
    start_chat(live)
    row = eventually(lambda: [d for d in admin.get("/api/v1/webhooks/deliveries").json()["deliveries"]
                              if d["last_error"]])
    assert row[0]["state"] == "queued" and "JUTELLA_WEBHOOK_ALLOW_PRIVATE" in row[0]["last_error"]
    assert receiver.requests == []


def test_personal_fields_only_when_ticked_and_then_the_notice_lists_the_hook(live, admin, receiver):
    allow_private(live)
    events = ["conversation.created", "offline_message.created", "rating.created"]
    plain = add_hook(admin, receiver.url + "&plain", events, name="Tilastot")
    ticked = add_hook(admin, receiver.url + "&ticked", events, ["name", "email", "text"], name="Jäsenrekisteri")
    page = htmllib.unescape(live.client().get("/privacy", params={"lang": "fi"}).text)
    assert "Jäsenrekisteri (127.0.0.1): nimi, sähköpostiosoite, viestin teksti" in page
    assert "Tilastot" not in page
    record = admin.get("/api/v1/privacy/record", params={"lang": "en"}).json()
    assert any("Jäsenrekisteri" in r and "email address" in r for r in record["recipients"])
    assert not any("Tilastot" in r for r in record["recipients"])

    token, conv = start_chat(live, "Opiskelijanumeroni on 123456")
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    add_staff(live, "aino@example.org", ["agent"])
    sign_in(live, "aino@example.org").post(f"/api/v1/conversations/{conv}/close")
    assert live.client().post("/api/v1/public/rating", headers={H: token},
                              json={"rating": 5, "comment": "Kiitos Maijalta"}).status_code == 200
    eventually(lambda: len(receiver.requests) == 6)
    by_hook: dict[str, dict] = {"plain": {}, "ticked": {}}
    # the receiver tells the two hooks apart by their secrets
    for headers, body in receiver.requests:
        key = "plain" if verify(plain["secret"], headers, body) else "ticked"
        assert key == "plain" or verify(ticked["secret"], headers, body)
        by_hook[key][headers["x-jutella-event"]] = json.loads(body)["data"]
    for event, data in by_hook["plain"].items():
        text = json.dumps(data, ensure_ascii=False)
        assert "Maija" not in text and "maija@example.fi" not in text and "123456" not in text, event
        assert not {"name", "email", "text"} & set(data), event
    assert by_hook["plain"]["rating.created"]["rating"] == 5
    assert by_hook["ticked"]["conversation.created"]["text"] == "Opiskelijanumeroni on 123456"
    offline = by_hook["ticked"]["offline_message.created"]
    assert (offline["name"], offline["email"], offline["text"]) == ("Maija Meikäläinen", "maija@example.fi",
                                                                     "Milloin toimisto on auki?")
    assert by_hook["ticked"]["rating.created"]["text"] == "Kiitos Maijalta"
    assert "name" not in by_hook["ticked"]["conversation.created"]  # a chat has no name or email to give


def test_webhooks_are_for_admins_only(live, admin):
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "tv@example.org", ["privacy"])
    for who in ("aino@example.org", "tv@example.org"):
        http = sign_in(live, who)
        assert http.get("/api/v1/webhooks").status_code == 403
        assert http.post("/api/v1/webhooks", json={"name": "x", "url": "https://example.org/",
                                                   "events": ["conversation.created"]}).status_code == 403
        assert http.get("/api/v1/webhooks/deliveries").status_code == 403
    assert live.client().get("/api/v1/webhooks").status_code == 401
