"""The register: the notice, data-subject requests and retention, through
real flows (a chat, an offline form, an agent's email reply)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from jutella.store.models import AuditEntry

from tests.chat_clients import agent, visitor
from tests.helpers import add_staff, error_code, sign_in
from .test_no_ip_stored import all_rows_as_text
from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

EMAIL = "liisa.virtanen@student.example.fi"
NAME = "Liisa Virtanen"
STUDENT_NO = "AB1234567"
SECRET_TEXT = "Olen vaihdossa keväällä"


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


def scenario(live, smtp):
    """A chat in which the visitor gives their email and student number, an
    offline form from the same person, and an agent's emailed reply."""
    smtp.start()
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    http = sign_in(live, "aino@example.org")
    v, w = visitor(live)
    v.message(f"Hei, sähköpostini on {EMAIL} ja opiskelijanumeroni {STUDENT_NO}. {SECRET_TEXT}. "
              "<img src=x onerror=alert(1)>")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a, _ = agent(live, http, subscriptions={conv: 0})
    a.send(type="accept", conversation=conv)
    a.message("Kiitos, tarkistan asian.", conversation=conv)
    v.until(lambda f: f["type"] == "event" and f.get("author") == "agent")
    r = live.client().post("/api/v1/public/offline-messages", json={
        "name": NAME, "email": EMAIL, "message": "Saisinko kuitin jäsenmaksusta?", "lang": "fi"})
    assert r.status_code == 201
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Kuitti tulee postissa."})
    smtp.wait_for(1)
    return conv, mid, sign_in(live, "chair@example.org")


def audit_count(live, action: str) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == action))).scalar_one()
    return live.call(q)


def selection(matches) -> dict:
    sel = {"conversations": set(), "offline_messages": set(), "emails": set()}
    for m in matches:
        sel[{"conversation": "conversations", "offline_message": "offline_messages", "email": "emails"}[m["kind"]]
            ].add(m["id"])
    return {k: sorted(v) for k, v in sel.items()}


def test_find_export_rectify_and_erase(live, smtp, database_url):
    conv, mid, chair = scenario(live, smtp)
    matches = chair.get("/api/v1/privacy/subjects", params={"q": EMAIL.upper()}).json()
    kinds = {(m["kind"], m["field"]) for m in matches}
    assert ("conversation", "message") in kinds and ("offline_message", "email") in kinds
    assert ("email", "recipient") in kinds
    hit = next(m for m in matches if m["kind"] == "conversation")
    assert hit["text"][hit["start"]:hit["end"]].lower() == EMAIL.lower()
    assert audit_count(live, "subject.find") == 1
    sel = selection(matches)
    assert sel["conversations"] == [conv] and sel["offline_messages"] == [mid] and len(sel["emails"]) == 1

    # the student number finds the same chat
    by_number = chair.get("/api/v1/privacy/subjects", params={"q": STUDENT_NO}).json()
    assert {m["id"] for m in by_number if m["kind"] == "conversation"} == {conv}

    copy = chair.post("/api/v1/privacy/export", json=sel).json()
    assert copy["schema"] == "jutella.subject-copy/1"
    texts = [m["text"] for m in copy["conversations"][0]["messages"]]
    assert any(EMAIL in t for t in texts) and "Kiitos, tarkistan asian." in texts
    assert copy["conversations"][0]["metadata"]["browser"] == "Chrome"
    assert copy["conversations"][0]["labels"] == []  # the labels put on it (none here; tests/integration/test_agent_tools.py)
    assert copy["offline_messages"][0]["email"] == EMAIL
    assert copy["offline_messages"][0]["replies"][0]["text"] == "Kuitti tulee postissa."
    assert copy["emails"][0]["to"] == EMAIL

    html = chair.post("/api/v1/privacy/export", params={"format": "html", "lang": "fi"}, json=sel).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "Jäljennös henkilötiedoistasi" in html and "tietosuojavaltuutet" in html.lower() or "Tietosuojavaltuutetun" in html
    assert audit_count(live, "subject.export") == 2

    # rectification: the name, and a span of the chat message redacted
    r = chair.post("/api/v1/privacy/rectify", json={"record": "offline_message", "id": mid, "field": "name",
                                                    "value": "Liisa Korhonen"})
    assert r.json()["value"] == "Liisa Korhonen"
    events = sign_in(live, "aino@example.org").get(f"/api/v1/conversations/{conv}").json()["events"]
    first = events[0]
    body = first["body"]
    start = body.index(STUDENT_NO)
    async def event_id():
        async with live.rt.db.reader() as s:
            return (await s.execute(text("SELECT id FROM chat_event WHERE conversation_id = :c AND seq = 1"),
                                    {"c": conv})).scalar_one()
    r = chair.post("/api/v1/privacy/rectify", json={"record": "chat_event", "id": live.call(event_id),
                                                    "field": "body", "start": start, "end": start + len(STUDENT_NO),
                                                    "replacement": "[poistettu]"})
    assert STUDENT_NO not in r.json()["value"] and "[poistettu]" in r.json()["value"]
    copy = chair.post("/api/v1/privacy/export", json=sel).json()
    assert copy["offline_messages"][0]["name"] == "Liisa Korhonen"
    assert STUDENT_NO not in json.dumps(copy)
    assert audit_count(live, "subject.rectify") == 2
    rows = all_rows_as_text(database_url)
    assert NAME not in rows and STUDENT_NO not in rows  # the wrong values are not kept anywhere

    # erasure
    counts = chair.post("/api/v1/privacy/erase", json={**sel, "confirm": True}).json()["counts"]
    assert counts["conversations"] == 1 and counts["offline_messages"] == 1 and counts["emails"] == 1
    assert chair.get("/api/v1/privacy/subjects", params={"q": EMAIL}).json() == []
    rows = all_rows_as_text(database_url)
    for trace in (EMAIL, "Liisa", SECRET_TEXT, "jäsenmaksusta", "Kuitti tulee postissa", "Kiitos, tarkistan"):
        assert trace not in rows, trace
    if database_url.startswith("sqlite"):
        for path in Path(database_url.removeprefix("sqlite:///")).parent.glob("jutella.sqlite3*"):
            data = path.read_bytes()
            for trace in (EMAIL, "Liisa", SECRET_TEXT, "maksusta", "Kuitti tulee", "tarkistan asian"):
                assert trace.encode() not in data, (path.name, trace)
    tomb = live.call(_last_audit, live, "subject.erase")
    assert tomb["detail"]["conversations"] == 1 and EMAIL not in json.dumps(tomb)


async def _last_audit(live, action):
    async with live.rt.db.reader() as s:
        e = (await s.execute(select(AuditEntry).where(AuditEntry.action == action)
                             .order_by(AuditEntry.seq.desc()))).scalars().first()
        return {"detail": e.detail, "subject": e.subject, "target": e.target_id}


def test_objection_and_restriction(live, smtp):
    conv, mid, chair = scenario(live, smtp)
    # (objection and the contacts export: tests/integration/test_marketing_consent.py)
    assert chair.post("/api/v1/privacy/flags", json={"kind": "objection", "email": EMAIL}).json()["count"] == 1
    agent_http = sign_in(live, "aino@example.org")
    assert agent_http.get("/api/v1/offline-messages").json()[0]["objection"] is True

    sel = {"conversations": [conv], "offline_messages": [mid]}
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", **sel})
    assert agent_http.get("/api/v1/conversations").json() == []
    assert agent_http.get(f"/api/v1/conversations/{conv}").status_code == 404
    assert agent_http.get("/api/v1/offline-messages").json() == []
    assert agent_http.get("/api/v1/search", params={"q": STUDENT_NO}).json() == []
    assert chair.get("/api/v1/privacy/subjects", params={"q": EMAIL}).json() != []
    copy = chair.post("/api/v1/privacy/export", json=sel).json()
    assert copy["flags"] == {"objection_to_direct_marketing": True, "restriction_of_processing": True}
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": False, **sel})
    assert [c["id"] for c in agent_http.get("/api/v1/conversations").json()] == [conv]


def test_agents_without_the_privacy_role_get_403(live):
    add_staff(live, "aino@example.org", ["agent", "admin"])
    http = sign_in(live, "aino@example.org")
    for method, path, body in [("GET", "/api/v1/privacy/subjects?q=abc", None),
                               ("POST", "/api/v1/privacy/export", {}),
                               ("POST", "/api/v1/privacy/rectify", {"record": "chat_event", "id": 1, "field": "body"}),
                               ("POST", "/api/v1/privacy/erase", {"confirm": True}),
                               ("POST", "/api/v1/privacy/flags", {"kind": "objection", "email": "a@b.fi"}),
                               ("GET", "/api/v1/privacy/requests", None)]:
        r = http.request(method, path, json=body)
        assert r.status_code == 403 and error_code(r) == "forbidden", path


def test_request_log_deadlines(live, clock):
    add_staff(live, "chair@example.org", ["privacy"])
    chair = sign_in(live, "chair@example.org")
    received = clock.now().replace(day=31, month=1) if clock.now().month == 1 else None
    r = chair.post("/api/v1/privacy/requests", json={"kind": "access", "verified_how": "in person, ID card"})
    assert r.status_code == 201
    req = r.json()
    assert req["urgency"] == "ok" and req["status"] == "open"
    clock.advance(days=25)
    chair = sign_in(live, "chair@example.org")
    assert chair.get("/api/v1/privacy/requests").json()[0]["urgency"] == "near"
    clock.advance(days=10)
    chair = sign_in(live, "chair@example.org")
    assert chair.get("/api/v1/privacy/requests").json()[0]["urgency"] == "overdue"
    r = chair.patch(f"/api/v1/privacy/requests/{req['id']}", json={"status": "done"})
    assert r.json()["urgency"] == "closed"
    del received


def test_one_month_deadline_counts_calendar_months():
    from datetime import UTC, datetime

    from jutella.privacy.requests import one_month_after

    assert one_month_after(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert one_month_after(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)
