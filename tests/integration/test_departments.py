"""Departments, transfers and concurrent-chat limits over real HTTP and
WebSockets, on SQLite and PostgreSQL (docs/departments.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.store.models import AuditEntry, Conversation, OfflineMessage

from tests.chat_clients import agent, visitor
from tests.helpers import add_staff, error_code, run_cli, sign_in
from tests.conftest import BOTH, CHEAP_HASHING


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


def is_event(kind=None, conversation=None):
    return lambda f: (f["type"] == "event" and (kind is None or f["kind"] == kind)
                      and (conversation is None or f["conversation"] == conversation))


def is_conv(conv_id):
    return lambda f: f["type"] == "conversation" and f["conversation"]["id"] == conv_id


def nothing_matches(client, pred, wait: float = 0.7) -> bool:
    """No frame (already received or arriving within ``wait``) matches."""
    if any(pred(f) for f in client.frames):
        return False
    try:
        client.until(pred, timeout=wait)
    except TimeoutError:
        return True
    return False


def db(live, fn):
    async def q():
        async with live.rt.db.reader() as s:
            return await fn(s)
    return live.call(q)


def two_departments(live, **notify):
    """Admin Ilona; agents Aino (Jäsenyys) and Bertta (Tekniikka). Returns
    (admin client, {name: id}, {agent name: account id})."""
    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    ids = {"Aino": add_staff(live, "aino@example.org", ["agent"], name="Aino"),
           "Bertta": add_staff(live, "bertta@example.org", ["agent"], name="Bertta")}
    admin = sign_in(live, "ilona@example.org")
    depts = {}
    for name, member in (("Jäsenyys", "Aino"), ("Tekniikka", "Bertta")):
        r = admin.post("/api/v1/departments", json={"name": name, "notify_email": notify.get(name)})
        assert r.status_code == 201, r.text
        depts[name] = r.json()["id"]
        r = admin.put(f"/api/v1/departments/{depts[name]}/members", json={"account_ids": [ids[member]]})
        assert r.status_code == 200 and r.json()["members"] == [ids[member]], r.text
    return admin, depts, ids


def test_department_admin_api_is_for_admins_with_csrf_and_audited(live):
    admin, depts, ids = two_departments(live, Jäsenyys="jasenyys@jamko.example")
    anon = live.client()
    assert anon.get("/api/v1/departments").status_code == 401
    assert anon.post("/api/v1/departments", json={"name": "X"}).status_code == 401
    aino = sign_in(live, "aino@example.org")
    r = aino.post("/api/v1/departments", json={"name": "Opintoasiat"})
    assert r.status_code == 403 and error_code(r) == "forbidden"
    assert aino.delete(f"/api/v1/departments/{depts['Jäsenyys']}").status_code == 403
    assert aino.put(f"/api/v1/agents/{ids['Aino']}/max-chats", json={"max_chats": 9}).status_code == 403
    no_csrf = live.client(cookies=admin.cookies)
    assert error_code(no_csrf.post("/api/v1/departments", json={"name": "Opintoasiat"})) == "csrf"

    # agents read names (no addresses, no members); admins everything
    listed = aino.get("/api/v1/departments").json()
    assert [(d["name"], d["notify_email"], d["members"]) for d in listed] == [
        ("Jäsenyys", None, None), ("Tekniikka", None, None)]
    full = admin.get("/api/v1/departments").json()
    assert [(d["name"], d["notify_email"], d["members"]) for d in full] == [
        ("Jäsenyys", "jasenyys@jamko.example", [ids["Aino"]]), ("Tekniikka", None, [ids["Bertta"]])]

    r = admin.post("/api/v1/departments", json={"name": " Jäsenyys "})
    assert r.status_code == 409 and error_code(r) == "name_taken"
    assert error_code(admin.post("/api/v1/departments", json={"name": "  "})) == "name_required"
    assert error_code(admin.post("/api/v1/departments", json={"name": "X", "notify_email": "nope"})) == "email_invalid"
    r = admin.put(f"/api/v1/departments/{depts['Jäsenyys']}/members",
                  json={"account_ids": [ids["Aino"], 999999]})
    assert r.status_code == 400 and error_code(r) == "not_agent"
    r = admin.patch(f"/api/v1/departments/{depts['Jäsenyys']}", json={"name": "Jäsenasiat", "notify_email": None})
    assert r.status_code == 200 and (r.json()["name"], r.json()["notify_email"]) == ("Jäsenasiat", None)
    assert admin.delete(f"/api/v1/departments/{depts['Tekniikka']}").status_code == 200
    assert [d["name"] for d in admin.get("/api/v1/departments").json()] == ["Jäsenasiat"]
    assert admin.delete(f"/api/v1/departments/{depts['Tekniikka']}").status_code == 404

    actions = db(live, lambda s: _scalars(s, select(AuditEntry.action).where(AuditEntry.action.like("department.%"))))
    assert actions.count("department.create") == 2 and actions.count("department.members") == 2
    assert "department.change" in actions and "department.delete" in actions


async def _scalars(s, q):
    return list((await s.execute(q)).scalars())


def test_a_chat_reaches_only_the_chosen_department(live):
    admin, depts, ids = two_departments(live)
    aino_http, bertta_http = sign_in(live, "aino@example.org"), sign_in(live, "bertta@example.org")
    v0, w0 = visitor(live)
    assert w0["departments"] == []  # nobody online: no choice
    a, _ = agent(live, aino_http)
    v1, w1 = visitor(live)
    assert w1["departments"] == []  # one department online: no choice either
    b, _ = agent(live, bertta_http)
    # a visitor already connected hears that there is now a choice
    presence = v0.until(lambda f: f["type"] == "presence" and len(f.get("departments", [])) == 2)
    assert [d["name"] for d in presence["departments"]] == ["Jäsenyys", "Tekniikka"]
    v, welcome = visitor(live)
    assert welcome["departments"] == [{"id": depts["Jäsenyys"], "name": "Jäsenyys"},
                                      {"id": depts["Tekniikka"], "name": "Tekniikka"}]

    v.message("Wifi ei toimi", department=depts["Tekniikka"])
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    listed = b.until(is_conv(conv))
    assert listed["conversation"]["department_id"] == depts["Tekniikka"]
    assert nothing_matches(a, is_conv(conv))
    assert [c["id"] for c in bertta_http.get("/api/v1/conversations?state=open").json()] == [conv]
    assert aino_http.get("/api/v1/conversations?state=open").json() == []
    assert aino_http.get(f"/api/v1/conversations/{conv}").status_code == 404
    assert aino_http.post(f"/api/v1/conversations/{conv}/accept").status_code == 404
    a.send(type="subscribe", conversation=conv, last_seq=0)
    assert a.until(lambda f: f["type"] == "error")["code"] == "not_found"
    # nor write into it over the socket (checked inside the message's own write)
    a.send(type="message", conversation=conv, client_id="aino-1", body="Minä vastaan")
    refused = a.until(lambda f: f["type"] in ("error", "ack"))
    assert (refused["type"], refused["code"], refused["client_id"]) == ("error", "not_found", "aino-1")
    # admins (who are also agents) see every queue
    add_staff(live, "pirjo@example.org", ["admin", "agent"], name="Pirjo")
    open_for_admin = sign_in(live, "pirjo@example.org").get("/api/v1/conversations?state=open").json()
    assert [(c["id"], c["department_name"]) for c in open_for_admin] == [(conv, "Tekniikka")]

    # a malformed choice is refused, and so is one the widget does not offer (issue 15):
    # nothing is stored; without a choice the chat goes to the shared queue
    v2, _ = visitor(live)
    v2.message("hei", department="Tekniikka")
    assert v2.until(lambda f: f["type"] == "error")["code"] == "malformed"
    v2.message("hei", department=987654)
    refused = v2.until(lambda f: f["type"] in ("error", "ack"))
    assert refused["code"] == "department_unavailable" and "not available" in refused["message"]
    v2.message("hei")
    conv2 = v2.until(lambda f: f["type"] == "ack")["conversation"]
    a.until(is_conv(conv2))
    b.until(is_conv(conv2))
    for c in (v0, v1, v, v2, a, b):
        c.close()


def test_with_one_department_online_the_chat_goes_to_it_silently(live):
    _, depts, _ = two_departments(live)
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    v, welcome = visitor(live)
    assert welcome["departments"] == []
    v.message("Jäsenkortti hukassa")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert a.until(is_conv(conv))["conversation"]["department_id"] == depts["Jäsenyys"]
    stored = db(live, lambda s: s.get(Conversation, conv))
    assert stored.department_id == depts["Jäsenyys"]
    v.close()
    a.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # a setting and the welcome frame: the dialect does not show
def test_the_choice_can_be_turned_off(live):
    live.rt.settings.widget_department_choice = False
    two_departments(live)
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    b, _ = agent(live, sign_in(live, "bertta@example.org"))
    v, welcome = visitor(live)
    assert welcome["departments"] == []
    for c in (v, a, b):
        c.close()


def start_with_bertta(live, depts, lang="fi"):
    """A visitor's chat in Tekniikka, accepted by Bertta; Aino online too."""
    aino_http, bertta_http = sign_in(live, "aino@example.org"), sign_in(live, "bertta@example.org")
    a, _ = agent(live, aino_http)
    b, _ = agent(live, bertta_http)
    v, _ = visitor(live, lang=lang)
    v.message("Tulostin ei tulosta", department=depts["Tekniikka"])
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert bertta_http.post(f"/api/v1/conversations/{conv}/accept").status_code == 200
    v.until(lambda f: f["type"] == "event" and f["kind"] == "state")
    return conv, v, a, b, aino_http, bertta_http


def test_transfer_to_an_agent_with_a_note_the_visitor_never_sees(live):
    admin, depts, ids = two_departments(live)
    conv, v, a, b, aino_http, bertta_http = start_with_bertta(live, depts, lang="fi")
    r = bertta_http.post(f"/api/v1/conversations/{conv}/transfer",
                         json={"agent_id": ids["Aino"], "note": "Jäsenyysasia, ei tekninen"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["agent_name"]) == ("active", "Aino")

    joined = v.until(is_event("state"))
    assert joined["body"] == "Aino liittyi keskusteluun." and joined["state"] == "active"
    # the receiver is told, with the note
    told = a.until(lambda f: is_conv(conv)(f) and "transfer" in f)
    assert told["transfer"]["note"] == "Jäsenyysasia, ei tekninen" and told["transfer"]["from_name"] == "Bertta"
    assert told["conversation"]["agent_id"] == ids["Aino"]
    # the history stays whole; the note is among the events staff load, and never the visitor's
    events = aino_http.get(f"/api/v1/conversations/{conv}").json()["events"]
    assert [e["kind"] for e in events] == ["message", "state", "state", "note"]
    note = events[-1]
    assert note["body"] == "Jäsenyysasia, ei tekninen" and note["author_name"] == "Bertta"
    assert note["data"] == {"key": "transfer_note", "to_agent": ids["Aino"], "to_department": None}
    a.message("Hei, autan jäsenyysasiassa", conversation=conv)
    reply = v.until(lambda f: is_event("message")(f) and f["author"] == "agent")
    assert reply["author_name"] == "Aino" and reply["seq"] == note["seq"] + 1
    assert not any(f.get("kind") == "note" or "Jäsenyysasia" in str(f.get("body")) for f in v.frames)
    # Bertta no longer holds it
    b.message("vielä minä", conversation=conv)
    assert b.until(lambda f: f["type"] == "error")["code"] == "conflict"
    audit = db(live, lambda s: _scalars(s, select(AuditEntry.detail).where(
        AuditEntry.action == "conversation.transfer")))
    assert audit == [{"from_agent": ids["Bertta"], "to_agent": ids["Aino"], "to_department": None, "note": True}]
    for c in (v, a, b):
        c.close()


def test_transfer_to_a_department_puts_it_back_in_that_queue(live):
    admin, depts, ids = two_departments(live)
    conv, v, a, b, aino_http, bertta_http = start_with_bertta(live, depts, lang="en")
    r = bertta_http.post(f"/api/v1/conversations/{conv}/transfer", json={"department_id": depts["Jäsenyys"]})
    assert r.status_code == 200 and (r.json()["state"], r.json()["agent_id"]) == ("waiting", None)
    moved = v.until(is_event("state"))
    assert moved["body"] == "Your chat was passed on to Jäsenyys. Someone will be with you shortly."
    assert moved["state"] == "waiting"
    assert a.until(lambda f: is_conv(conv)(f) and "transfer" in f)["conversation"]["state"] == "waiting"
    assert [c["id"] for c in aino_http.get("/api/v1/conversations?state=waiting").json()] == [conv]
    # now Jäsenyys' conversation: out of Bertta's sight
    assert bertta_http.get(f"/api/v1/conversations/{conv}").status_code == 404
    assert aino_http.post(f"/api/v1/conversations/{conv}/accept").status_code == 200
    assert v.until(is_event("state"))["body"] == "Aino joined the chat."
    for c in (v, a, b):
        c.close()


def test_transfer_refusals(live):
    live.rt.settings.max_concurrent_chats = 1
    admin, depts, ids = two_departments(live)
    carl = add_staff(live, "carl@example.org", ["agent"], name="Carl")  # never online
    conv, v, a, b, aino_http, bertta_http = start_with_bertta(live, depts)
    url = f"/api/v1/conversations/{conv}/transfer"
    r = aino_http.post(url, json={"agent_id": ids["Aino"]})
    assert r.status_code == 404  # Tekniikka's chat: Aino does not even see it
    r = bertta_http.post(url, json={"agent_id": carl})
    assert r.status_code == 409 and error_code(r) == "not_online" and "Carl is not online" in r.json()["error"]["message"]
    r = bertta_http.post(url, json={"agent_id": ids["Aino"], "department_id": depts["Jäsenyys"]})
    assert r.status_code == 400 and error_code(r) == "invalid"
    assert error_code(bertta_http.post(url, json={})) == "invalid"
    assert bertta_http.post(url, json={"department_id": 999999}).status_code == 404
    assert bertta_http.post(url, json={"agent_id": ids["Bertta"]}).status_code == 409
    # Aino at her limit of one chat
    v2, _ = visitor(live)
    v2.message("toinen", department=depts["Jäsenyys"])
    conv2 = v2.until(lambda f: f["type"] == "ack")["conversation"]
    assert aino_http.post(f"/api/v1/conversations/{conv2}/accept").status_code == 200
    r = bertta_http.post(url, json={"agent_id": ids["Aino"]})
    assert r.status_code == 409 and error_code(r) == "limit_reached"
    assert r.json()["error"]["message"] == "Aino has reached their limit of 1 chats."
    # transferring is an agent's act: an admin without the agent role may not
    assert admin.post(url, json={"department_id": depts["Jäsenyys"]}).status_code == 403
    for c in (v, v2, a, b):
        c.close()


def test_limit_refuses_accept_and_auto_assign_picks_least_loaded_in_department(live):
    live.rt.settings.max_concurrent_chats = 1
    _, depts, ids = two_departments(live)
    aino2 = add_staff(live, "aino2@example.org", ["agent"], name="Aapo")
    admin = sign_in(live, "ilona@example.org")
    admin.put(f"/api/v1/departments/{depts['Jäsenyys']}/members", json={"account_ids": [ids["Aino"], aino2]})
    aino_http = sign_in(live, "aino@example.org")
    a, _ = agent(live, aino_http)
    c, _ = agent(live, sign_in(live, "aino2@example.org"))
    b, _ = agent(live, sign_in(live, "bertta@example.org"))
    v1, _ = visitor(live)
    v1.message("yksi", department=depts["Jäsenyys"])
    conv1 = v1.until(lambda f: f["type"] == "ack")["conversation"]
    assert aino_http.post(f"/api/v1/conversations/{conv1}/accept").status_code == 200
    v2, _ = visitor(live)
    v2.message("kaksi", department=depts["Jäsenyys"])
    conv2 = v2.until(lambda f: f["type"] == "ack")["conversation"]
    r = aino_http.post(f"/api/v1/conversations/{conv2}/accept")
    assert r.status_code == 409 and error_code(r) == "limit_reached"
    # writing to a waiting chat accepts it: refused the same way
    a.message("minä otan", conversation=conv2)
    assert a.until(lambda f: f["type"] == "error")["code"] == "limit_reached"
    # an admin raises Aino's own limit
    assert admin.put(f"/api/v1/agents/{ids['Aino']}/max-chats", json={"max_chats": 3}).json() == {"ok": True}
    assert aino_http.post(f"/api/v1/conversations/{conv2}/accept").status_code == 200

    # auto-assignment: least loaded member of the department under the limit
    live.rt.settings.auto_assign = True
    v3, _ = visitor(live)
    v3.message("kolme", department=depts["Jäsenyys"])
    conv3 = v3.until(lambda f: f["type"] == "ack")["conversation"]
    joined = v3.until(is_event("state"))
    assert joined["body"] == "Aapo joined the chat."  # Aino has 2, Aapo 0; Bertta is in Tekniikka
    v4, _ = visitor(live)
    v4.message("neljä", department=depts["Jäsenyys"])
    conv4 = v4.until(lambda f: f["type"] == "ack")["conversation"]
    assert v4.until(is_event("state"))["body"] == "Aino joined the chat."  # Aapo is at his limit of 1
    v5, _ = visitor(live)
    v5.message("viisi", department=depts["Jäsenyys"])
    conv5 = v5.until(lambda f: f["type"] == "ack")["conversation"]
    v5.send(type="ping")  # answered once the socket has handled the message, auto-assignment included
    v5.until(lambda f: f["type"] == "pong")
    states = {cid: db(live, lambda s, cid=cid: s.get(Conversation, cid)) for cid in (conv3, conv4, conv5)}
    assert states[conv3].agent_id == aino2 and states[conv4].agent_id == ids["Aino"]
    assert (states[conv5].state, states[conv5].agent_id) == ("waiting", None)  # everyone is full: it waits

    # the load as admins see it, and as agents see it (online agents, no own limits)
    load = {r["name"]: r for r in admin.get("/api/v1/agents/load").json()}
    assert (load["Aino"]["active"], load["Aino"]["limit"], load["Aino"]["max_chats"]) == (3, 3, 3)
    assert (load["Aapo"]["active"], load["Aapo"]["limit"], load["Aapo"]["state"]) == (1, 1, "online")
    assert (load["Bertta"]["active"], load["Bertta"]["departments"]) == (0, [depts["Tekniikka"]])
    b.close()  # (whether Bertta is still listed does not matter below: no sleep waits for it)
    seen_by_agent = aino_http.get("/api/v1/agents/load").json()
    assert {r["name"] for r in seen_by_agent} >= {"Aino", "Aapo"}
    assert all(r["max_chats"] is None for r in seen_by_agent)
    assert live.client().get("/api/v1/agents/load").status_code == 401
    for x in (v1, v2, v3, v4, v5, a, c):
        x.close()


def test_offline_message_notifies_the_chosen_departments_address(live, smtp):
    live.rt.settings.offline_notify_to = "paivystys@jamko.example"
    _, depts, _ = two_departments(live, Tekniikka="tekniikka@jamko.example")
    smtp.start()
    form = {"name": "Maija", "email": "maija@example.fi", "message": "Wifi ei toimi", "lang": "fi"}
    r = live.client().post("/api/v1/public/offline-messages", json={**form, "department_id": depts["Tekniikka"]})
    assert r.status_code == 201
    rcpt, _ = smtp.wait_for(1)[0]
    assert rcpt == ["tekniikka@jamko.example"]
    # a department without an address: the general one
    live.client().post("/api/v1/public/offline-messages", json={**form, "department_id": depts["Jäsenyys"]})
    rcpt, _ = smtp.wait_for(2)[1]
    assert rcpt == ["paivystys@jamko.example"]
    stored = db(live, lambda s: _scalars(s, select(OfflineMessage.department_id).order_by(OfflineMessage.id)))
    assert stored == [depts["Tekniikka"], depts["Jäsenyys"]]


def test_the_access_copy_names_the_department_and_erasure_takes_the_transfer_note(live, database_url):
    from .test_no_ip_stored import all_rows_as_text

    admin, depts, ids = two_departments(live)
    add_staff(live, "pia@example.org", ["privacy"], name="Pia")
    conv, v, a, b, aino_http, bertta_http = start_with_bertta(live, depts)
    secret = "Asiakas kertoi opiskelijanumeronsa 0123456"
    assert bertta_http.post(f"/api/v1/conversations/{conv}/transfer",
                            json={"agent_id": ids["Aino"], "note": secret}).status_code == 200
    pia = sign_in(live, "pia@example.org")
    sel = {"conversations": [conv], "offline_messages": [], "emails": []}
    copy = pia.post("/api/v1/privacy/export", json=sel).json()
    exported = copy["conversations"][0]
    assert exported["department"] == "Tekniikka"
    assert [(m["text"], m["internal_note"]) for m in exported["messages"] if m["kind"] == "note"] == [(secret, True)]
    html = pia.post("/api/v1/privacy/export", params={"format": "html", "lang": "fi"}, json=sel).text
    assert "Osasto: Tekniikka" in html
    assert pia.post("/api/v1/privacy/erase", json={**sel, "confirm": True}).json()["counts"]["conversations"] == 1
    rows = all_rows_as_text(database_url)
    assert secret not in rows and "0123456" not in rows
    assert "Tekniikka" in rows  # the department itself is no one's personal data and stays
    for c in (v, a, b):
        c.close()


def test_the_command_line_adds_and_lists_departments(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "JUTELLA_DATA_DIR": str(tmp_path),
           **{f"JUTELLA_{k.upper()}": v for k, v in CHEAP_HASHING.items()}}  # `user add` hashes: cheaply, as in tests
    env.pop("JUTELLA_DATABASE_URL", None)

    def jutella(*args, stdin=""):  # in this process: the same command, without a new interpreter
        return run_cli(*args, env=env, stdin=stdin)

    assert jutella("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
                   stdin="correct horse battery staple\n").returncode == 0
    # the department commands as an operator runs them: a process, its exit status
    r = subprocess.run([sys.executable, "-m", "jutella.cli", "department", "add", "Tekniikka", "--notify",
                        "tekniikka@jamko.example"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "created department Tekniikka" in r.stdout, r.stderr
    assert jutella("department", "members", "Tekniikka", "aino@example.org").returncode == 0
    r = jutella("department", "list")
    assert r.stdout.split("\t")[1:] == ["Tekniikka", "tekniikka@jamko.example", "aino@example.org\n"]
    r = jutella("department", "add", "Tekniikka")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = jutella("department", "members", "Nope", "aino@example.org")
    assert r.returncode == 1 and "no department named 'Nope'" in r.stderr


@pytest.mark.parametrize("backend", ["pg+redis"])
def test_routing_and_the_choice_work_across_two_servers(live, backend):
    """Agents on one server, the visitor on the other (PostgreSQL + Redis)."""
    _, depts, _ = two_departments(live)
    v0, w0 = visitor(live)
    assert w0["departments"] == []
    a, _ = agent(live, sign_in(live, "aino@example.org"))
    b, _ = agent(live, sign_in(live, "bertta@example.org"))
    presence = v0.until(lambda f: f["type"] == "presence" and len(f.get("departments", [])) == 2, timeout=10)
    assert [d["id"] for d in presence["departments"]] == [depts["Jäsenyys"], depts["Tekniikka"]]
    v0.message("Salasana ei kelpaa", department=depts["Tekniikka"])
    conv = v0.until(lambda f: f["type"] == "ack")["conversation"]
    assert b.until(is_conv(conv), timeout=10)["conversation"]["department_id"] == depts["Tekniikka"]
    assert nothing_matches(a, is_conv(conv), wait=1.5)
    for c in (v0, a, b):
        c.close()


def test_the_list_and_the_search_filter_by_department(live):
    _, depts, ids = two_departments(live)
    add_staff(live, "pirjo@example.org", ["admin", "agent"], name="Pirjo")
    pirjo = sign_in(live, "pirjo@example.org")
    # both departments online, so that the widget offers them (a visitor chooses only from those)
    online = [agent(live, sign_in(live, f"{who}@example.org"))[0] for who in ("aino", "bertta")]
    watcher, welcome = visitor(live)
    if len(welcome["departments"]) < 2:
        watcher.until(lambda f: f["type"] == "presence" and len(f.get("departments", [])) == 2)
    convs = {}
    for where, department in (("Tekniikka", depts["Tekniikka"]), ("Jäsenyys", depts["Jäsenyys"]), (None, None)):
        v, _ = visitor(live)
        v.message(f"Tulostin jumissa {where or 'yleinen'}", **({"department": department} if department else {}))
        convs[where] = v.until(lambda f: f["type"] == "ack")["conversation"]
        v.close()
    everyone = pirjo.get("/api/v1/conversations").json()
    assert {(c["id"], c["department_name"]) for c in everyone} == {(convs[k], k) for k in convs}

    for name, dept in depts.items():
        listed = pirjo.get("/api/v1/conversations", params={"department": dept}).json()
        assert [(c["id"], c["department_id"], c["department_name"]) for c in listed] == [(convs[name], dept, name)]
        hits = pirjo.get("/api/v1/search", params={"q": "tulostin", "department": dept}).json()
        assert [h["conversation"] for h in hits] == [convs[name]]
    assert len(pirjo.get("/api/v1/search", params={"q": "tulostin"}).json()) == 3
    # with the other filters
    assert pirjo.get("/api/v1/conversations", params={"department": depts["Tekniikka"], "state": "closed"}).json() == []
    assert len(pirjo.get("/api/v1/conversations", params={"department": depts["Tekniikka"], "state": "open"}).json()) == 1
    # an unknown department matches nothing; a malformed one is refused
    assert pirjo.get("/api/v1/conversations", params={"department": 987654}).json() == []
    assert pirjo.get("/api/v1/search", params={"q": "tulostin", "department": 987654}).json() == []
    for bad in ("Tekniikka", "0", "-1", str(2**63), "1.5"):
        assert pirjo.get("/api/v1/conversations", params={"department": bad}).status_code == 422, bad
        assert pirjo.get("/api/v1/search", params={"q": "x", "department": bad}).status_code == 422, bad
    # the filter never widens what an agent may see: Bertta (Tekniikka) asks for Jäsenyys
    bertta = sign_in(live, "bertta@example.org")
    assert bertta.get("/api/v1/conversations", params={"department": depts["Jäsenyys"]}).json() == []
    assert bertta.get("/api/v1/search", params={"q": "tulostin", "department": depts["Jäsenyys"]}).json() == []
    assert [c["id"] for c in bertta.get("/api/v1/conversations",
                                        params={"department": depts["Tekniikka"]}).json()] == [convs["Tekniikka"]]
    # agents read the departments for the filter's options (names and ids, no addresses)
    options = bertta.get("/api/v1/departments").json()
    assert [(d["id"], d["name"], d["notify_email"]) for d in options] == [
        (depts["Jäsenyys"], "Jäsenyys", None), (depts["Tekniikka"], "Tekniikka", None)]


HOSTILE_DEPARTMENTS = [
    "Tekniikka", "1", "", "<img src=x onerror=alert(1)>", 0, -1, -(2**63), 2**63, 2**64, 10**40, 1.5, 1e308,
    True, False, [], [1], {"id": 1}, "9" * 5000,
]


def test_a_bogus_department_in_the_message_frame_is_refused_cleanly(live):
    """Strings, floats, booleans, lists, out-of-range and huge numbers: an
    error frame (``malformed``), nothing stored, and the connection goes on.
    The largest id the protocol allows, unknown (a 64-bit value: PostgreSQL's
    BIGINT takes it), is well-formed but not offered: refused too (issue 15)."""
    _, depts, _ = two_departments(live)
    v, _ = visitor(live)
    for value in HOSTILE_DEPARTMENTS:
        cid = v.message("hei", department=value)
        refused = v.until(lambda f, cid=cid: f["type"] in ("error", "ack") and f.get("client_id") == cid)
        assert (refused["type"], refused["code"]) == ("error", "malformed"), (value, refused)
        assert "department" in refused["message"]
    assert db(live, lambda s: _scalars(s, select(Conversation.id))) == []
    cid = v.message("hei", department=2**63 - 1)
    refused = v.until(lambda f, cid=cid: f["type"] in ("error", "ack") and f.get("client_id") == cid)
    assert (refused["type"], refused["code"]) == ("error", "department_unavailable")
    assert db(live, lambda s: _scalars(s, select(Conversation.id))) == []
    cid = v.message("hei")
    conv = v.until(lambda f: f["type"] == "ack" and f.get("client_id") == cid)["conversation"]
    # once the conversation exists, the department in later frames changes nothing
    cid = v.message("vielä", department=depts["Tekniikka"], conversation=conv)
    assert v.until(lambda f: f["type"] in ("ack", "error") and f.get("client_id") == cid)["type"] == "ack"
    stored = db(live, lambda s: s.get(Conversation, conv))
    assert stored.department_id is None
    v.close()
