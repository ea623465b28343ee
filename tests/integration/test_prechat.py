"""The pre-chat form per site (issue 18 item 3, docs/prechat.md) over real HTTP
and WebSockets, on SQLite and PostgreSQL: the admin API and its checks, the
welcome that carries a site's form, the socket refusing answers that do not
satisfy it, a topic routing the chat to its department, the console's list
and detail naming the visitor, the register notice listing exactly the fields
in use, and `subject find` / export / rectify / erase reaching what the form
stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from jutella.store.models import AuditEntry, Conversation

from tests.chat_clients import agent, visitor
from tests.conftest import BOTH
from tests.helpers import add_staff, error_code, run_cli, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


SITE = "https://liitto.example"
OTHER = "https://asunnot.example"


def rows(live, *columns):
    async def q():
        async with live.rt.db.reader() as s:
            return [tuple(r) for r in (await s.execute(select(*columns).order_by(Conversation.id))).all()]
    return live.call(q)


def admin_with_departments(live):
    add_staff(live, "admin@example.org", ["admin", "agent"], name="Pääkäyttäjä")
    admin = sign_in(live, "admin@example.org")
    depts = {}
    for name in ("Jäsenyys", "Opintoasiat"):
        r = admin.post("/api/v1/departments", json={"name": name})
        assert r.status_code == 201, r.text
        depts[name] = r.json()["id"]
    return admin, depts


def form(origin="", name="off", email="off", topic="off", topics=()):
    return {"origin": origin, "name": name, "email": email, "topic": topic, "topics": list(topics)}


# HTTP roles and validation; a stored form with topics is read back on PostgreSQL by the socket test
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_form_api_is_for_admins_checks_what_it_stores_and_is_audited(live):
    admin, depts = admin_with_departments(live)
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    aino = sign_in(live, "aino@example.org")
    assert live.client().get("/api/v1/prechat").status_code == 401
    assert aino.get("/api/v1/prechat").status_code == 403
    assert aino.put("/api/v1/prechat", json=form(name="required")).status_code == 403

    # off by default: nothing stored, every site's widget asks nothing
    state = admin.get("/api/v1/prechat").json()
    assert state["forms"] == [] and live.url in [s["origin"] for s in state["sites"]]
    assert {d["name"] for d in state["departments"]} == {"Jäsenyys", "Opintoasiat"}
    v, w = visitor(live, page=f"{SITE}/help")
    assert "prechat" not in w
    v.close()

    # refusals, each in the admin's language
    bad = admin.put("/api/v1/prechat", json=form(topic="required"))
    assert error_code(bad) == "prechat_topics_invalid"
    assert error_code(admin.put("/api/v1/prechat", json=form(name="sometimes"))) == "invalid"
    assert error_code(admin.put("/api/v1/prechat", json=form(origin="not a site", name="required"))) \
        == "origin_invalid"
    long_label = {"labels": {"en": "x" * 81}, "department_id": None}
    assert error_code(admin.put("/api/v1/prechat", json=form(topic="optional", topics=[long_label]))) \
        == "prechat_label_invalid"
    assert error_code(admin.put("/api/v1/prechat", json=form(
        topic="optional", topics=[{"labels": {"en": "X"}, "department_id": 999999}]))) == "not_found"
    fi = admin.put("/api/v1/prechat", json=form(topic="required"), headers={"Accept-Language": "fi"})
    assert "aihe" in fi.json()["error"]["message"].lower()

    # a default for every site, and one site's own
    topics = [{"labels": {"en": "Membership", "fi": "Jäsenyys", "sv": "Medlemskap"},
               "department_id": depts["Jäsenyys"]},
              {"labels": {"en": "Studies", "fi": "Opinnot"}, "department_id": depts["Opintoasiat"]}]
    r = admin.put("/api/v1/prechat", json=form(name="optional", email="required", topic="required", topics=topics))
    assert r.status_code == 200, r.text
    r = admin.put("/api/v1/prechat", json=form(origin=OTHER + "/", name="required"))
    assert r.status_code == 200, r.text
    forms = {f["origin"]: f for f in r.json()["forms"]}
    assert set(forms) == {"", OTHER}
    assert [t["labels"]["fi"] for t in forms[""]["topics"]] == ["Jäsenyys", "Opinnot"]
    assert all(len(t["key"]) == 8 for t in forms[""]["topics"])

    # effective at once: the next widget of each site is told its own form, in its language
    v, w = visitor(live, page=f"{SITE}/help", lang="fi")
    assert w["prechat"] == {"name": "optional", "email": "required", "topic": "required",
                            "topics": [{"key": forms[""]["topics"][0]["key"], "label": "Jäsenyys",
                                        "department": depts["Jäsenyys"]},
                                       {"key": forms[""]["topics"][1]["key"], "label": "Opinnot",
                                        "department": depts["Opintoasiat"]}]}
    v.close()
    v, w = visitor(live, page=f"{OTHER}/vuokra", lang="sv")
    assert w["prechat"] == {"name": "required", "email": "off", "topic": "off"}
    v.close()
    # a site's own form "all off" means no form there, whatever the default says
    admin.put("/api/v1/prechat", json=form(origin=OTHER))
    v, w = visitor(live, page=f"{OTHER}/vuokra")
    assert "prechat" not in w
    v.close()
    assert admin.delete("/api/v1/prechat", params={"origin": OTHER}).status_code == 200
    assert error_code(admin.delete("/api/v1/prechat", params={"origin": OTHER})) == "not_found"

    async def audited():
        async with live.rt.db.reader() as s:
            return [(a.action, a.detail) for a in (await s.execute(
                select(AuditEntry).where(AuditEntry.action.like("prechat.%")).order_by(AuditEntry.id))).scalars()]
    trail = live.call(audited)
    assert [a for a, _ in trail] == ["prechat.change", "prechat.change", "prechat.change", "prechat.remove"]
    assert trail[0][1] == {"form": "", "asks": {"name": "optional", "email": "required", "topic": "required"},
                           "topics": 2}
    assert trail[3][1] == {"form": OTHER}


def test_the_socket_holds_the_visitor_to_the_form_and_the_topic_routes_the_chat(live):
    admin, depts = admin_with_departments(live)
    topics = [{"labels": {"en": "Membership", "fi": "Jäsenyys"}, "department_id": depts["Jäsenyys"]},
              {"labels": {"en": "Studies", "fi": "Opinnot"}, "department_id": depts["Opintoasiat"]}]
    saved = admin.put("/api/v1/prechat", json=form(name="required", email="optional", topic="required",
                                                   topics=topics)).json()
    studies = saved["forms"][0]["topics"][1]["key"]

    v, w = visitor(live, page=f"{SITE}/help", lang="fi")
    # a raw client skipping the form, or giving a bad email or an unknown topic, stores nothing
    for answers, field_word in ((None, "nimesi"), ({"name": "Liisa", "email": "liisa@", "topic": studies},
                                                   "sähköpostiosoite"),
                                ({"name": "Liisa", "topic": "nope"}, "aihe")):
        extra = {"prechat": answers} if answers else {}
        cid = v.message("Hei", **extra)
        err = v.until(lambda f: f["type"] == "error" and f.get("client_id") == cid)
        assert err["code"] == "prechat_invalid" and field_word in err["message"].lower(), err
    assert rows(live, Conversation.id) == []
    # a malformed answer is refused by the protocol itself
    v.message("Hei", prechat={"name": 5})
    assert v.until(lambda f: f["type"] == "error")["code"] == "malformed"

    hostile = "<img src=x onerror=alert(1)> Liisa"
    v.message("Hei", prechat={"name": f"  {hostile}  ", "email": "Liisa@Example.FI", "topic": studies,
                              })
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert rows(live, Conversation.prechat_name, Conversation.prechat_email, Conversation.prechat_topic,
                Conversation.department_id) == [(hostile, "Liisa@example.fi", "Opinnot", depts["Opintoasiat"])]
    # later messages of the same chat carry no answers and need none
    v.message("Toinen viesti")
    assert v.until(lambda f: f["type"] == "ack")["conversation"] == conv
    v.close()

    # the console names the visitor by the given name (list and detail), as text
    listed = admin.get("/api/v1/conversations").json()
    assert listed[0]["visitor_name"] == hostile and listed[0]["visitor"].startswith("v-")
    info = admin.get(f"/api/v1/conversations/{conv}").json()
    assert info["conversation"]["visitor_name"] == hostile
    assert (info["visitor_info"]["name"], info["visitor_info"]["email"], info["visitor_info"]["topic"],
            info["visitor_info"]["prechat"]) == (hostile, "Liisa@example.fi", "Opinnot", True)

    # a name longer than the stored limit is refused, not cut
    v, _ = visitor(live, page=f"{SITE}/help")
    v.message("Hei", prechat={"name": "x" * 101, "topic": studies})
    assert v.until(lambda f: f["type"] == "error")["code"] == "prechat_invalid"
    v.close()


# presence (in memory) decides what is offered: the dialect does not show
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_topic_is_offered_only_while_its_department_has_someone_on_duty(live):
    """chat/prechat.py topics_on_offer, the department picker's rule: a
    required topic whose department has nobody on duty is not asked (a chat
    starts without it) until someone of that department is online; the
    widget is told each topic's department so it shows only those on offer."""
    admin, depts = admin_with_departments(live)
    topics = [{"labels": {"en": "Membership", "fi": "Jäsenyys"}, "department_id": depts["Jäsenyys"]}]
    assert admin.put("/api/v1/prechat", json=form(topic="required", topics=topics)).status_code == 200

    v, welcome = visitor(live, page=f"{SITE}/help", lang="fi")
    assert [t["department"] for t in welcome["prechat"]["topics"]] == [depts["Jäsenyys"]]
    assert "on_duty" not in welcome  # nobody on duty: no topic on offer, none asked
    v.message("Hei ilman aihetta")
    assert v.until(lambda f: f["type"] in ("ack", "error"))["type"] == "ack"
    v.close()

    v, _ = visitor(live, page=f"{SITE}/help", lang="fi")
    me = admin.get("/api/v1/me").json()["account"]["id"]
    assert admin.put(f"/api/v1/departments/{depts['Jäsenyys']}/members",
                     json={"account_ids": [me]}).status_code == 200
    a, _ = agent(live, admin)  # someone of the department on duty: the open widget is told, the topic is asked
    v.until(lambda f: f["type"] == "presence" and f.get("on_duty") == [depts["Jäsenyys"]])
    cid = v.message("Hei taas")
    err = v.until(lambda f: f["type"] in ("ack", "error") and f.get("client_id") == cid)
    assert err["type"] == "error" and err["code"] == "prechat_invalid", err
    v.close()
    a.close()


NOTICE = {"fi": ("ennen chatin alkua", ("nimi", "sähköpostiosoite", "keskustelun aihe")),
          "en": ("before the chat starts", ("name", "email address", "the topic of the conversation")),
          "sv": ("formuläret före chatten", ("namn", "e-postadress", "samtalets ämne"))}


def _notice_line(live, lang):
    page = live.client().get("/privacy", params={"lang": lang}).text
    start = page.index('id="stored"')
    items = page[start:page.index("</ul>", start)]
    return next((li for li in items.split("<li>") if NOTICE[lang][0] in li), None)


@pytest.mark.parametrize("backend", ["sqlite"])  # how the notice page renders: the dialect does not show
def test_the_notice_lists_the_fields_in_use_and_only_those(live):
    admin, depts = admin_with_departments(live)
    for lang in NOTICE:
        assert _notice_line(live, lang) is None  # off: not listed
    admin.put("/api/v1/prechat", json=form(email="optional"))
    for lang, (_, words) in NOTICE.items():
        line = _notice_line(live, lang)
        assert line is not None and words[1] in line and words[0] not in line.replace(words[1], ""), (lang, line)
    admin.put("/api/v1/prechat", json=form(origin=live.url, name="required", topic="optional",
                                           topics=[{"labels": {"en": "Other"}}]))
    for lang, (_, words) in NOTICE.items():
        line = _notice_line(live, lang)
        assert all(w in line for w in words), (lang, line)
    record = admin.get("/api/v1/privacy/record", params={"lang": "en"})
    if record.status_code == 403:  # the record is for the privacy role
        add_staff(live, "chair@example.org", ["privacy"], name="Chair")
        record = sign_in(live, "chair@example.org").get("/api/v1/privacy/record", params={"lang": "en"})
    assert any("before the chat starts" in c for c in record.json()["categories_of_personal_data"])
    # a form of a site no longer allowed is not in use; all off again: not listed
    admin.put("/api/v1/prechat", json=form())
    admin.delete("/api/v1/prechat", params={"origin": live.url})
    admin.put("/api/v1/prechat", json=form(origin="https://gone.example", name="required"))
    for lang in NOTICE:
        assert _notice_line(live, lang) is None


def test_subject_find_export_rectify_and_erase_reach_the_form(live, database_url):
    admin, depts = admin_with_departments(live)
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    chair = sign_in(live, "chair@example.org")
    admin.put("/api/v1/prechat", json=form(name="optional", email="required"))
    v, _ = visitor(live, page=f"{SITE}/help")
    v.message("Kysyisin jäsenmaksusta", prechat={"name": "Liisa Prechat", "email": "liisa.pre@example.fi"})
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    v.close()
    # the same person's other chat, from another browser, with the same address
    v2, _ = visitor(live, page=f"{SITE}/help")
    v2.message("Toinen asia", prechat={"email": "LIISA.PRE@example.fi"})
    conv2 = v2.until(lambda f: f["type"] == "ack")["conversation"]
    v2.close()

    found = chair.get("/api/v1/privacy/subjects", params={"q": "liisa.pre@example.fi"}).json()
    assert {(m["kind"], m["id"], m["field"]) for m in found} == {("conversation", conv, "email"),
                                                                  ("conversation", conv2, "email")}
    found = chair.get("/api/v1/privacy/subjects", params={"q": "Liisa Prechat"}).json()
    assert {(m["kind"], m["id"], m["field"], m["related"]) for m in found} >= {
        ("conversation", conv, "name", False), ("conversation", conv2, "email", True)}

    env = {"JUTELLA_DATA_DIR": str(live.rt.settings.data_dir), "JUTELLA_DATABASE_URL": database_url}
    out = run_cli("subject", "find", "liisa.pre@example.fi", env=env)
    assert out.returncode == 0, out.stderr
    assert f"conversation {conv}\t" in out.stdout and f"conversation {conv2}\t" in out.stdout
    out = run_cli("subject", "export", "liisa.pre@example.fi", env=env)
    copy = json.loads(out.stdout)
    given = {c["id"]: c["prechat"] for c in copy["conversations"]}
    assert given[conv] == {"name": "Liisa Prechat", "email": "liisa.pre@example.fi", "topic": None}
    html = run_cli("subject", "export", "liisa.pre@example.fi", "--format", "html", env=env).stdout
    assert "Liisa Prechat" in html and "Ennen keskustelua annetut tiedot" in html  # the copy is in Finnish

    # rectification (by the privacy role, checked like the forms' fields)
    r = chair.post("/api/v1/privacy/rectify", json={"record": "conversation", "id": conv, "field": "name",
                                                    "value": "Liisa Oikaistu"})
    assert r.status_code == 200, r.text
    assert error_code(chair.post("/api/v1/privacy/rectify", json={
        "record": "conversation", "id": conv, "field": "email", "value": "nope"})) == "email_invalid"
    assert admin.get(f"/api/v1/conversations/{conv}").json()["conversation"]["visitor_name"] == "Liisa Oikaistu"

    # restriction by the email hides both chats from the agents
    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": True,
                                                  "email": "liisa.pre@example.fi"})
    assert r.status_code in (200, 201), r.text
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    assert sign_in(live, "aino@example.org").get("/api/v1/conversations").json() == []
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "on": False, "email": "liisa.pre@example.fi"})

    out = run_cli("subject", "erase", "liisa.pre@example.fi", "--yes", env=env)
    assert out.returncode == 0, out.stderr
    assert rows(live, Conversation.id) == []
    assert "liisa.pre" not in run_cli("subject", "find", "liisa.pre@example.fi", env=env).stdout


def test_the_answers_outlive_the_metadata_and_go_with_the_chat(live, clock):
    """Not automatic metadata: kept while the chat is, deleted with it by retention."""
    from jutella.privacy import retention

    admin, _ = admin_with_departments(live)
    admin.put("/api/v1/prechat", json=form(name="required", email="optional"))
    v, _ = visitor(live, page=f"{SITE}/help")
    v.message("Hei", prechat={"name": "Vanha Liisa", "email": "vanha@example.fi"})
    v.until(lambda f: f["type"] == "ack")
    v.close()
    r = live.rt.settings.retention
    clock.advance(days=r.metadata_days + 1)
    live.call(retention.run, live.rt)
    assert rows(live, Conversation.prechat_name, Conversation.prechat_email) == [("Vanha Liisa", "vanha@example.fi")]
    clock.advance(days=r.chat_days)
    assert live.call(retention.run, live.rt)["conversations"] == 1
    assert rows(live, Conversation.prechat_name) == []
