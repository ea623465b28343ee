"""Canned responses, internal notes and labels over the real HTTP API and
WebSockets, on SQLite and PostgreSQL (docs/agent-tools.md)."""

from __future__ import annotations

import time

import pytest

from tests.chat_clients import agent, visitor
from tests.conftest import BOTH
from tests.helpers import add_staff, error_code, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param


def is_event(seq=None, kind=None):
    return lambda f: f["type"] == "event" and (seq is None or f["seq"] == seq) and (kind is None or f["kind"] == kind)


def quiet_frames(client, seconds: float = 0.6) -> list[dict]:
    """Everything the client receives until it has been quiet for a while."""
    got = list(client.unread)
    client.unread.clear()
    deadline = time.time() + 8
    while time.time() < deadline:
        try:
            got.append(client.recv(timeout=seconds))
        except TimeoutError:
            break
    return got


def start_chat(live, body="Hei, tarvitsen apua"):
    v, w = visitor(live)
    v.message(body)
    ack = v.until(lambda f: f["type"] == "ack")
    return v, w["token"], ack["conversation"]


# -- canned responses ------------------------------------------------------------------------
def test_canned_responses_personal_and_shared_with_role_checks(live):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "eero@example.org", ["agent"], name="Eero")
    add_staff(live, "admin@example.org", ["admin"], name="Admin")
    aino, eero, admin = (sign_in(live, e) for e in ("aino@example.org", "eero@example.org", "admin@example.org"))

    r = aino.post("/api/v1/canned", json={"shortcut": "/Hello", "language": "en",
                                          "body": "Hello {visitor_name}, I am {agent_name}."})
    assert r.status_code == 201, r.text
    own = r.json()
    assert (own["shortcut"], own["shared"], own["mine"]) == ("hello", False, True)
    assert aino.post("/api/v1/canned", json={"shortcut": "hello", "language": "en", "body": "again"}
                     ).status_code == 409
    # the same shortcut in another language, or another agent's, is fine
    assert aino.post("/api/v1/canned", json={"shortcut": "hello", "language": "fi", "body": "Hei!"}).status_code == 201
    assert eero.post("/api/v1/canned", json={"shortcut": "hello", "language": "en", "body": "Eero's"}
                     ).status_code == 201
    for bad, code in (({"shortcut": "two words", "language": "en", "body": "x"}, "invalid_shortcut"),
                      ({"shortcut": "x", "language": "de", "body": "x"}, "invalid_language"),
                      ({"shortcut": "x", "language": "en", "body": "   "}, "empty"),
                      ({"shortcut": "x", "language": "en", "body": "Hi {name}"}, "invalid_placeholder")):
        r = aino.post("/api/v1/canned", json=bad)
        assert r.status_code == 422 and error_code(r) == code, r.text
        assert r.json()["error"]["message"]
    # shared ones: administrators only
    r = aino.post("/api/v1/canned", json={"shortcut": "hours", "language": "fi", "body": "Auki 9-16.", "shared": True})
    assert r.status_code == 403 and error_code(r) == "forbidden"
    r = admin.post("/api/v1/canned", json={"shortcut": "hours", "language": "fi", "body": "Auki 9-16.",
                                           "shared": True})
    assert r.status_code == 201 and r.json()["shared"] is True
    shared_id = r.json()["id"]
    assert admin.post("/api/v1/canned", json={"shortcut": "hours", "language": "fi", "body": "dup", "shared": True}
                      ).status_code == 409

    listed = aino.get("/api/v1/canned").json()
    assert sorted((c["shortcut"], c["language"], c["shared"]) for c in listed) == [
        ("hello", "en", False), ("hello", "fi", False), ("hours", "fi", True)]  # not Eero's
    eero_id = next(c["id"] for c in eero.get("/api/v1/canned").json() if c["mine"])

    # an agent changes their own, not the shared ones nor another agent's
    r = aino.put(f"/api/v1/canned/{own['id']}", json={"shortcut": "hi", "language": "en", "body": "Hi!"})
    assert r.status_code == 200 and r.json()["shortcut"] == "hi"
    assert aino.put(f"/api/v1/canned/{shared_id}", json={"shortcut": "h", "language": "fi", "body": "x"}
                    ).status_code == 403
    assert aino.delete(f"/api/v1/canned/{shared_id}").status_code == 403
    assert aino.put(f"/api/v1/canned/{eero_id}", json={"shortcut": "h", "language": "en", "body": "x"}
                    ).status_code == 404
    assert aino.delete(f"/api/v1/canned/{eero_id}").status_code == 404
    assert admin.put(f"/api/v1/canned/{shared_id}", json={"shortcut": "hours", "language": "fi",
                                                          "body": "Auki 10-15."}).json()["body"] == "Auki 10-15."
    assert aino.delete(f"/api/v1/canned/{own['id']}").status_code == 204
    assert {c["shortcut"] for c in aino.get("/api/v1/canned").json()} == {"hello", "hours"}
    assert admin.delete(f"/api/v1/canned/{shared_id}").status_code == 204

    # who is asking: no session 401, no CSRF token 403, a role without it 403
    anon = live.client()
    assert anon.get("/api/v1/canned").status_code == 401
    assert anon.post("/api/v1/canned", json={"shortcut": "a", "language": "en", "body": "b"}).status_code == 401
    no_csrf = live.client(cookies=dict(aino.cookies))
    r = no_csrf.post("/api/v1/canned", json={"shortcut": "a", "language": "en", "body": "b"})
    assert r.status_code == 403 and error_code(r) == "csrf"
    add_staff(live, "privacy@example.org", ["privacy"])
    assert sign_in(live, "privacy@example.org").get("/api/v1/canned").status_code == 403


# -- internal notes -----------------------------------------------------------------------------
def test_note_reaches_staff_never_the_visitor_and_is_in_the_access_copy(live):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "eero@example.org", ["agent"], name="Eero")
    add_staff(live, "dpo@example.org", ["privacy"])
    aino, eero = sign_in(live, "aino@example.org"), sign_in(live, "eero@example.org")
    v, token, conv = start_chat(live)
    v.until(is_event(1))
    a, _ = agent(live, aino, subscriptions={conv: 0})
    a.until(is_event(1))
    e, _ = agent(live, eero, subscriptions={conv: 0})
    e.until(is_event(1))

    a.message("Hei, autan mielelläni.", conversation=conv)
    assert v.until(is_event(2)) and v.until(is_event(3))["body"] == "Hei, autan mielelläni."
    a.send(type="note", conversation=conv, client_id="note-1", body="Asks about rent arrears; student no. 1234567")
    ack = a.until(lambda f: f["type"] == "ack" and f["client_id"] == "note-1")
    assert ack["seq"] == 4
    seen_by_eero = e.until(is_event(4))
    assert (seen_by_eero["kind"], seen_by_eero["author"], seen_by_eero["author_name"]) == ("note", "agent", "Aino")
    assert seen_by_eero["body"] == "Asks about rent arrears; student no. 1234567"
    # a resend is acked with the same seq and stored once
    a.send(type="note", conversation=conv, client_id="note-1", body="Asks about rent arrears; student no. 1234567")
    assert a.until(lambda f: f["type"] == "ack" and f["client_id"] == "note-1")["seq"] == 4
    a.send(type="note", conversation=conv, client_id="note-2", body="   ")
    assert a.until(lambda f: f["type"] == "error")["code"] == "empty"

    a.message("Tarkistan asian.", conversation=conv)
    assert v.until(is_event(5))["body"] == "Tarkistan asian."  # seq 4 was moved past silently
    visitor_frames = list(v.frames) + quiet_frames(v)
    assert not [f for f in visitor_frames if f.get("kind") == "note" or "rent arrears" in str(f)]

    # HTTP: a note on a closed conversation, idempotent on client_id
    assert aino.post(f"/api/v1/conversations/{conv}/close").status_code == 200
    r = aino.post(f"/api/v1/conversations/{conv}/notes", json={"client_id": "note-3", "body": "Follow up by email"})
    assert r.status_code == 201 and r.json()["kind"] == "note", r.text
    note_seq = r.json()["seq"]
    again = aino.post(f"/api/v1/conversations/{conv}/notes", json={"client_id": "note-3", "body": "Follow up by email"})
    assert again.status_code == 200 and again.json()["seq"] == note_seq
    r = aino.post(f"/api/v1/conversations/{conv}/notes", json={"client_id": "note-4", "body": ""})
    assert r.status_code == 422 and error_code(r) == "empty"
    assert aino.post("/api/v1/conversations/999999/notes", json={"client_id": "x", "body": "y"}).status_code == 404
    assert live.client().post(f"/api/v1/conversations/{conv}/notes",
                              json={"client_id": "x", "body": "y"}).status_code == 401

    # the console's read has the notes; the list's preview and unread count ignore them
    events = aino.get(f"/api/v1/conversations/{conv}").json()["events"]
    assert [ev["kind"] for ev in events if ev["kind"] == "note"] == ["note", "note"]
    listed = next(c for c in aino.get("/api/v1/conversations").json() if c["id"] == conv)
    assert listed["preview"] == "Tarkistan asian."

    # the visitor comes back (resume from 0): every message, never a note
    v.close()
    v2, _ = visitor(live, token=token, last_seq=0)
    replayed = quiet_frames(v2)
    seqs = [f["seq"] for f in replayed if f["type"] == "event"]
    assert 3 in seqs and 5 in seqs and 4 not in seqs and note_seq not in seqs
    assert not [f for f in replayed if "rent arrears" in str(f) or "Follow up" in str(f)]

    # the access copy has them, marked as internal notes
    dpo = sign_in(live, "dpo@example.org")
    sel = {"conversations": [conv], "offline_messages": [], "emails": []}
    copy = dpo.post("/api/v1/privacy/export", json=sel).json()
    notes = [m for m in copy["conversations"][0]["messages"] if m["internal_note"]]
    assert [m["text"] for m in notes] == ["Asks about rent arrears; student no. 1234567", "Follow up by email"]
    html = dpo.post("/api/v1/privacy/export", params={"format": "html", "lang": "en"}, json=sel).text
    assert "internal note" in html and "Follow up by email" in html
    # erasure takes them with the conversation
    assert dpo.post("/api/v1/privacy/erase", json={**sel, "confirm": True}).status_code == 200
    assert aino.get(f"/api/v1/conversations/{conv}").status_code == 404
    for c in (a, e, v2):
        c.close()


# -- labels and filters ----------------------------------------------------------------------------
def test_labels_and_filters_of_the_list_and_the_search(live, clock):
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "admin@example.org", ["admin"], name="Admin")
    aino, admin = sign_in(live, "aino@example.org"), sign_in(live, "admin@example.org")

    r = aino.post("/api/v1/labels", json={"name": "Rent", "color": "red"})
    assert r.status_code == 403
    r = admin.post("/api/v1/labels", json={"name": "  Rent  ", "color": "red"})
    assert r.status_code == 201 and r.json()["name"] == "Rent"
    rent = r.json()["id"]
    assert admin.post("/api/v1/labels", json={"name": "Rent", "color": "blue"}).status_code == 409
    r = admin.post("/api/v1/labels", json={"name": "Other", "color": "chartreuse"})
    assert r.status_code == 422 and error_code(r) == "invalid_color"
    housing = admin.post("/api/v1/labels", json={"name": "Housing", "color": "teal"}).json()["id"]
    assert [x["name"] for x in aino.get("/api/v1/labels").json()] == ["Housing", "Rent"]

    v1, _, c1 = start_chat(live, "Vuokra on myöhässä")
    clock.advance(days=2)
    v2, _, c2 = start_chat(live, "Vuokrasopimus kysymys")
    aino, admin = sign_in(live, "aino@example.org"), sign_in(live, "admin@example.org")  # sessions idled out
    assert aino.post(f"/api/v1/conversations/{c2}/accept").status_code == 200

    a, _ = agent(live, aino)
    assert aino.put(f"/api/v1/conversations/{c1}/labels/{rent}").status_code == 204
    frame = a.until(lambda f: f["type"] == "conversation" and f["conversation"]["id"] == c1)
    assert frame["conversation"]["state"] == "waiting"
    assert aino.put(f"/api/v1/conversations/{c1}/labels/{rent}").status_code == 204  # twice is fine
    assert aino.put(f"/api/v1/conversations/{c2}/labels/{housing}").status_code == 204
    assert aino.put(f"/api/v1/conversations/{c1}/labels/99999").status_code == 404
    assert aino.put(f"/api/v1/conversations/99999/labels/{rent}").status_code == 404
    assert live.client().put(f"/api/v1/conversations/{c1}/labels/{rent}").status_code == 401

    def ids(**params):
        r = aino.get("/api/v1/conversations", params=params)
        assert r.status_code == 200, r.text
        return sorted(c["id"] for c in r.json())

    listed = {c["id"]: c for c in aino.get("/api/v1/conversations").json()}
    assert [x["name"] for x in listed[c1]["labels"]] == ["Rent"]
    assert ids(label=rent) == [c1]
    assert ids(label=housing) == [c2]
    assert ids(state="active") == [c2] and ids(state="waiting") == [c1]
    assert ids(agent=aino_id) == [c2]
    day1 = listed[c1]["created_at"]
    day3 = listed[c2]["created_at"]
    assert ids(**{"from": day3}) == [c2]
    assert ids(to=day3) == [c1]
    assert ids(**{"from": day1, "to": day3}) == [c1]
    assert ids(label=rent, state="active") == []

    def hits(**params):
        r = aino.get("/api/v1/search", params={"q": "vuokra", **params})
        assert r.status_code == 200, r.text
        return sorted(h["conversation"] for h in r.json())

    assert hits() == [c1, c2]
    assert hits(label=rent) == [c1]
    assert hits(agent=aino_id) == [c2]
    assert hits(state="waiting") == [c1]
    assert hits(**{"from": day3}) == [c2]

    assert aino.delete(f"/api/v1/conversations/{c1}/labels/{rent}").status_code == 204
    assert ids(label=rent) == []
    assert admin.put(f"/api/v1/labels/{housing}", json={"name": "Asuminen", "color": "green"}).status_code == 200
    assert [x["name"] for x in {c["id"]: c for c in aino.get("/api/v1/conversations").json()}[c2]["labels"]] == [
        "Asuminen"]
    assert aino.delete(f"/api/v1/labels/{housing}").status_code == 403
    assert admin.delete(f"/api/v1/labels/{housing}").status_code == 204
    assert ids(label=housing) == []
    for c in (a, v1, v2):
        c.close()


def test_labels_are_in_the_access_copy_and_go_with_retention(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "admin@example.org", ["admin"])
    add_staff(live, "dpo@example.org", ["privacy"])
    aino, admin, dpo = (sign_in(live, e) for e in ("aino@example.org", "admin@example.org", "dpo@example.org"))
    rent = admin.post("/api/v1/labels", json={"name": "Rent", "color": "red"}).json()["id"]
    v, _, conv = start_chat(live)
    v.close()
    assert aino.put(f"/api/v1/conversations/{conv}/labels/{rent}").status_code == 204
    copy = dpo.post("/api/v1/privacy/export", json={"conversations": [conv], "offline_messages": [],
                                                    "emails": []}).json()
    assert copy["conversations"][0]["labels"] == ["Rent"]

    from sqlalchemy import func, select

    from jutella.privacy import retention
    from jutella.store.models import ConversationLabel

    async def links():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(ConversationLabel))).scalar_one()

    assert live.call(links) == 1
    clock.advance(days=live.rt.settings.retention.chat_days + 1)
    counts = live.call(retention.run, live.rt)
    assert counts["conversations"] == 1 and live.call(links) == 0
    aino = sign_in(live, "aino@example.org")
    assert [x["name"] for x in aino.get("/api/v1/labels").json()] == ["Rent"]  # the label set stays


@pytest.mark.parametrize("backend", ["sqlite"])  # how a page renders its catalogue: the dialect does not show
def test_the_agent_tools_catalog_reaches_the_console_page(live):
    """agenttools.po is a domain of its own: the console page embeds it with the rest."""
    fi = live.client(cookies={"jutella_lang": "fi"}).get("/console")
    assert fi.status_code == 200
    assert "Valmisvastaukset" in fi.text and "Pikanäppäimet" in fi.text
    sv = live.client(cookies={"jutella_lang": "sv"}).get("/console")
    assert "Färdiga svar" in sv.text and "Intern anteckning" in sv.text


def test_two_agents_labelling_the_same_chat_at_once_both_succeed_and_it_is_labelled_once(live):
    """Putting a label on (or taking it off) is idempotent also when two
    requests race: each answers 204, the conversation has the label once
    (or not at all), and nothing is logged as a server fault."""
    from concurrent.futures import ThreadPoolExecutor

    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "bertta@example.org", ["agent"], name="Bertta")
    add_staff(live, "admin@example.org", ["admin"], name="Admin")
    rent = sign_in(live, "admin@example.org").post("/api/v1/labels", json={"name": "Rent", "color": "red"}).json()["id"]
    agents = [sign_in(live, "aino@example.org"), sign_in(live, "bertta@example.org")]
    chats = [start_chat(live, f"Vuokra {i}")[2] for i in range(6)]

    def labels_of(conv: int) -> list[str]:
        return [x["name"] for x in {c["id"]: c for c in agents[0].get("/api/v1/conversations").json()}[conv]["labels"]]

    with ThreadPoolExecutor(4) as pool:
        for method in ("put", "delete"):
            for conv in chats:
                url = f"/api/v1/conversations/{conv}/labels/{rent}"
                answers = list(pool.map(lambda c, url=url, method=method: getattr(c, method)(url).status_code,
                                        agents * 2))
                assert answers == [204] * 4, (method, conv, answers)
                assert labels_of(conv) == (["Rent"] if method == "put" else []), (method, conv)
