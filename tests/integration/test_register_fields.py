"""What the register keeps about page addresses, what `subject find` reaches,
ids across erasure and audited lists (issue 16, items 2, 8, 6 and 3), on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.store.models import Conversation, OfflineMessage

from tests.chat_clients import visitor
from tests.conftest import BOTH
from tests.helpers import add_staff, run_cli, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


LEAKY_PAGE = "https://user:pw@site.example/help?email=liisa%40example.fi&sid=abc#frag"
LEAKY_REFERRER = "https://user:pw@search.example/results?q=liisa%40example.fi&token=xyz#top"


def rows(live, model, *columns):
    async def q():
        async with live.rt.db.reader() as s:
            return [tuple(r) for r in (await s.execute(select(*columns).order_by(model.id))).all()]
    return live.call(q)


# -- item 2: page and referrer are stripped by the server ---------------------------------
# the cleaning happens before the write (clean_url) and a text column holds what it is given on either dialect
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_raw_hello_cannot_store_query_fragment_or_credentials(live):
    v, _ = visitor(live, page=LEAKY_PAGE, referrer=LEAKY_REFERRER)
    v.message("Hei")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    stored = rows(live, Conversation, Conversation.id, Conversation.page_url, Conversation.referrer)
    assert stored == [(conv, "https://site.example/help", "https://search.example/results")]
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    info = http.get(f"/api/v1/conversations/{conv}").json()["visitor_info"]
    assert (info["page_url"], info["referrer"]) == ("https://site.example/help", "https://search.example/results")
    v.close()


# the cleaning happens before the write (clean_url) and a text column holds what it is given on either dialect
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_offline_form_cannot_store_them_either(live):
    form = {"name": "Liisa", "email": "liisa@example.fi", "message": "Soittakaa", "lang": "fi",
            "page": LEAKY_PAGE, "referrer": LEAKY_REFERRER}
    assert live.client().post("/api/v1/public/offline-messages", json=form).status_code == 201
    stored = rows(live, OfflineMessage, OfflineMessage.page_url, OfflineMessage.referrer)
    assert stored == [("https://site.example/help", "https://search.example/results")]
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    detail = http.get(f"/api/v1/offline-messages/{mid}").json()
    assert (detail["page_url"], detail["referrer"]) == ("https://site.example/help", "https://search.example/results")


# -- item 8: `subject find` searches every stored field ---------------------------------------
H = "X-Jutella-Visitor"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_subject_find_reaches_every_stored_field(live, database_url):
    """A person's details can sit in a page address a site built, a referrer,
    a file's name, a rating's comment, a transcript address or a note: each
    one finds the chat (and the form's page finds the form)."""
    from jutella.chat import actions as chat
    from jutella.chat import attachments as att
    from jutella.chat.notes import post_note

    agent_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    v, w = visitor(live, page="https://site.example/jasenet/ki-4471/hakemus",
                   referrer="https://portal.example/kayttaja/ref-9920")
    token = w["token"]
    v.message("Hei")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    # staff answer (a transcript is mailed only for a chat staff took part in)
    live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv, client_id="a1",
              body="Hei, miten voin auttaa?")
    http = live.client()
    r = http.post("/api/v1/public/attachments", headers={H: token},
                  files={"file": ("todistus-5531.pdf", PDF, "application/octet-stream")})
    assert r.status_code == 201, r.text
    assert http.post("/api/v1/public/transcript/email", headers={H: token},
                     json={"email": "liisa.tallenne@example.fi"}).status_code == 202
    live.call(post_note, live.rt, agent_id=agent_id, conversation_id=conv, body="Soita: muistio-3344",
              client_id="n1")
    live.call(chat.close, live.rt, conversation_id=conv, by="visitor")
    visitor_row = live.call(chat.visitor_by_token, live.rt, token)
    live.call(att.rate, live.rt, visitor_id=visitor_row.id, conversation_id=conv, rating=2,
              comment="Soittakaa numeroon palaute-7788")
    assert http.post("/api/v1/public/offline-messages", json={
        "name": "Liisa", "email": "liisa@example.fi", "message": "Hei", "lang": "fi",
        "page": "https://site.example/lomake/ki-8812", "referrer": "https://portal.example/lomake-ref-6120",
    }).status_code == 201
    chair = sign_in(live, "chair@example.org")

    def found(q):
        return {(m["kind"], m["field"]) for m in chair.get("/api/v1/privacy/subjects", params={"q": q}).json()
                if not m["related"]}

    assert found("KI-4471") == {("conversation", "page")}
    assert found("ref-9920") == {("conversation", "referrer")}
    assert found("todistus-5531") >= {("conversation", "attachment")}  # (and the transcript mail names it)
    assert found("palaute-7788") == {("conversation", "rating_comment")}
    assert found("liisa.tallenne") >= {("conversation", "transcript_email")}
    assert found("muistio-3344") == {("conversation", "note")}
    assert found("ki-8812") == {("offline_message", "page")}
    assert found("lomake-ref-6120") == {("offline_message", "referrer")}
    for q in ("ki-4471", "todistus-5531", "palaute-7788", "muistio-3344"):  # each finds that chat
        ids = {m["id"] for m in chair.get("/api/v1/privacy/subjects", params={"q": q}).json()
               if m["kind"] == "conversation"}
        assert ids == {conv}, q
    v.close()

    if database_url.startswith("sqlite"):  # and the command line says the same
        env = {"JUTELLA_DATA_DIR": str(live.rt.settings.data_dir), "JUTELLA_DATABASE_URL": database_url}
        out = run_cli("subject", "find", "ki-4471", env=env)
        assert out.returncode == 0, out.stderr
        assert f"conversation {conv}\t" in out.stdout and "match in page" in out.stdout


# -- item 6: ids are never given twice -------------------------------------------------------
def _chat_and_form(rt_call, rt, text: str):
    from jutella.chat import actions as chat
    from jutella.chat import offline
    from jutella.chat.metadata import Metadata

    v, _ = rt_call(chat.new_visitor, rt)
    posted = rt_call(chat.post_visitor_message, rt, visitor_id=v.id, client_id="c-" + text, body=text,
                     meta=Metadata())
    form = rt_call(offline.submit, rt, name="Liisa", email=f"{text}@example.fi", message=text, reason="no_agent",
                   meta=Metadata(), visitor_id=None)
    return {"visitor": v.id, "conversation": posted.conversation.id, "message": posted.event.id,
            "offline_message": form.message.id}


def test_ids_of_erased_records_are_never_given_again(in_process):
    from jutella.privacy import subjects

    rt, call = in_process.rt, in_process.call
    first = _chat_and_form(call, rt, "eka")
    newest = _chat_and_form(call, rt, "toka")
    assert all(newest[k] > first[k] for k in newest)
    receipt = call(subjects.erase, rt, subjects.Selection(conversations={newest["conversation"]},
                                                          offline_messages={newest["offline_message"]}), actor_id=None)
    assert receipt["counts"]["conversations"] == 1 and receipt["counts"]["offline_messages"] == 1
    again = _chat_and_form(call, rt, "kolmas")
    for kind, erased_id in newest.items():  # the erased person's ids stay theirs (the audit rows still name them)
        assert again[kind] > erased_id, (kind, again[kind], erased_id)


def test_migrations_0009_0010_keep_every_row_of_a_populated_0008_database(tmp_path):
    """SQLite (on PostgreSQL 0009 does nothing: sequences never reuse). A
    database as 0008 left it, with staff, chats and their search index and a
    form: after ``Database.migrate`` every row is there with its id (0010
    having stripped the stored page and referrer), search finds the old
    message, foreign keys still cascade, and ids are no longer reused."""
    from jutella.store.db import Database, alembic_config, alembic_to
    from jutella.store.search import matching_event_ids

    from tests.conftest import run_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    now = "2026-12-01 10:00:00.000000"
    seed = [
        "INSERT INTO staff_account (id, email, name, created_at, totp_enabled) "
        "VALUES (1, 'aino@example.org', 'Aino', :now, 0)",
        "INSERT INTO staff_role (account_id, role) VALUES (1, 'agent')",
        "INSERT INTO visitor (id, public_id, token_hash, created_at, last_seen_at) VALUES "
        "(1, 'V-1', 'h1', :now, :now), (2, 'V-2', 'h2', :now, :now)",
        "INSERT INTO conversation (id, visitor_id, state, created_at, last_activity_at, last_seq, agent_seen_seq, "
        "visitor_seen_seq, page_url) VALUES (1, 1, 'closed', :now, :now, 2, 0, 0, 'https://site.example/a'), "
        "(2, 2, 'waiting', :now, :now, 1, 0, 0, 'https://u:p@site.example/b?email=liisa%40example.fi#x')",
        "INSERT INTO chat_event (id, conversation_id, seq, kind, author, body, created_at) VALUES "
        "(1, 1, 1, 'message', 'visitor', 'opiskelijanumeroni on 4471', :now), "
        "(2, 1, 2, 'message', 'agent', 'Kiitos', :now), (3, 2, 1, 'message', 'visitor', 'Hei', :now)",
        "INSERT INTO offline_message (id, visitor_id, conversation_id, name, email, body, reason, state, "
        "created_at, updated_at, referrer) VALUES (1, 1, 1, 'Liisa', 'liisa@example.fi', 'Soittakaa', 'no_agent', "
        "'new', :now, :now, 'https://search.example/?q=liisa%40example.fi')",
    ]
    tables = ("staff_account", "staff_role", "visitor", "conversation", "chat_event", "offline_message",
              "alembic_version")

    async def go():
        from sqlalchemy import text

        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(alembic_to("0008"))
                for statement in seed:
                    await conn.execute(text(statement), {"now": now})
            columns: dict[str, str] = {}

            async def dump():
                # the columns 0008 had (later migrations may add some, e.g. 0011's consent)
                async with db.engine.connect() as conn:
                    out = {}
                    for t in tables:
                        got = await conn.exec_driver_sql(f"SELECT {columns.get(t, '*')} FROM {t}")
                        columns.setdefault(t, ", ".join(got.keys()))
                        out[t] = sorted((tuple(r) for r in got), key=repr)
                    return out
            before = await dump()
            await db.migrate()
            after = await dump()
            async with db.engine.connect() as conn:
                schema = (await conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'conversation'")).scalar()
                keys_on = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            async with db.reader() as s:
                found = await matching_event_ids(s, "4471", limit=10)
            async with db.engine.begin() as conn:  # the newest conversation erased, then a new one
                await conn.exec_driver_sql("DELETE FROM visitor WHERE id = 2")
                cascaded = (await conn.exec_driver_sql("SELECT count(*) FROM chat_event WHERE conversation_id = 2"
                                                       )).scalar()
                await conn.exec_driver_sql("INSERT INTO visitor (public_id, token_hash, created_at, last_seen_at) "
                                           "VALUES ('V-3', 'h3', '2026-12-02', '2026-12-02')")
                new_visitor = (await conn.exec_driver_sql("SELECT max(id) FROM visitor")).scalar()
            return before, after, schema, keys_on, found, cascaded, new_visitor
        finally:
            await db.dispose()

    before, after, schema, keys_on, found, cascaded, new_visitor = run_async(go())
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert before["alembic_version"] == [("0008",)] and after["alembic_version"] == [(head,)]
    # every row kept as it was, but for the page and referrer 0010 cleaned (issue 16, item 2)
    strip = {"https://u:p@site.example/b?email=liisa%40example.fi#x": "https://site.example/b",
             "https://search.example/?q=liisa%40example.fi": "https://search.example/"}
    expected = {t: [tuple(strip.get(v, v) if isinstance(v, str) else v for v in row) for row in rows]
                for t, rows in before.items() if t != "alembic_version"}
    assert {t: rows for t, rows in after.items() if t != "alembic_version"} == expected
    assert expected != {t: rows for t, rows in before.items() if t != "alembic_version"}
    assert len(after["chat_event"]) == 3 and len(after["offline_message"]) == 1
    assert "AUTOINCREMENT" in schema and keys_on == 1
    assert list(found) == [1]  # the search index still points at the old message
    assert cascaded == 0  # ON DELETE CASCADE survived the rebuild
    assert new_visitor == 3  # not 2 again


# -- item 3: lists are audited -----------------------------------------------------------------
def audit_rows(live, after: int = 0):
    from jutella.store.models import AuditEntry

    async def q():
        async with live.rt.db.reader() as s:
            return [(e.seq, e.action, e.actor_id, e.detail) for e in (await s.execute(
                select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq))).scalars()]
    return live.call(q)


def test_each_list_that_shows_personal_data_writes_one_row_of_ids(live):
    import json

    aino = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    pia = add_staff(live, "pia@example.org", ["privacy"], name="Pia")
    secrets = ["opiskelijanumero 4471", "liisa.virtanen@example.fi", "Liisa Virtanen", "haen todistusta"]
    convs = []
    for text in ("Hei, opiskelijanumero 4471", "Toinen chat"):
        v, _ = visitor(live)
        v.message(text)
        convs.append(v.until(lambda f: f["type"] == "ack")["conversation"])
        v.close()
    assert live.client().post("/api/v1/public/offline-messages", json={
        "name": "Liisa Virtanen", "email": "liisa.virtanen@example.fi", "message": "haen todistusta",
        "lang": "fi"}).status_code == 201
    http, privacy = sign_in(live, "aino@example.org"), sign_in(live, "pia@example.org")
    assert privacy.post("/api/v1/privacy/requests", json={"kind": "access", "verified_how": "Liisa Virtanen, kortti",
                                                          "note": "liisa.virtanen@example.fi"}).status_code == 201

    def rows_after(client, path, **kw):
        seq = (audit_rows(live) or [(0,)])[-1][0]
        r = client.get(path, **kw)
        assert r.status_code == 200, r.text
        return r.json(), [(action, actor, detail) for _, action, actor, detail in audit_rows(live, seq)]

    shown, rows = rows_after(http, "/api/v1/conversations")
    assert sorted(c["id"] for c in shown) == sorted(convs) and any("4471" in (c["preview"] or "") for c in shown)
    assert rows == [("conversation.list", aino, {"shown": {"conversations": sorted(convs)}})]
    inbox, rows = rows_after(http, "/api/v1/offline-messages")
    assert rows == [("offline_message.list", aino, {"shown": {"offline_messages": [inbox[0]["id"]]}})]
    hits, rows = rows_after(http, "/api/v1/search", params={"q": "4471"})
    assert [h["conversation"] for h in hits] == [convs[0]]
    assert rows[0][:2] == ("conversation.search", aino) and rows[0][2]["shown"]["conversations"] == [convs[0]]
    logged, rows = rows_after(privacy, "/api/v1/privacy/requests")
    assert rows == [("subject_request.list", pia, {"shown": {"subject_requests": [logged[0]["id"]]}})]
    found, rows = rows_after(privacy, "/api/v1/privacy/subjects", params={"q": "Liisa Virtanen"})
    assert rows == [("subject.find", pia, {"results": len(found), "shown": {
        "conversations": [], "offline_messages": [inbox[0]["id"]], "emails": []}})]
    # ids only: none of what the lists showed is in the log
    logged_text = json.dumps([r[3] for r in audit_rows(live)], ensure_ascii=False)
    assert not any(s in logged_text for s in secrets)
    # and a list that shows nothing writes nothing
    shown, rows = rows_after(http, "/api/v1/conversations", params={"state": "closed"})
    assert shown == [] and rows == []


def test_a_conversation_view_names_the_earlier_chats_listed_beside_it(live):
    from jutella.chat import actions as chat
    from jutella.chat.metadata import Metadata

    aino = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    v, _ = live.call(chat.new_visitor, live.rt)
    first = live.call(chat.post_visitor_message, live.rt, visitor_id=v.id, client_id="a", body="Eka: 4471",
                      meta=Metadata()).conversation.id
    live.call(chat.close, live.rt, conversation_id=first, by="visitor")
    second = live.call(chat.post_visitor_message, live.rt, visitor_id=v.id, client_id="b", body="Toka",
                       meta=Metadata()).conversation.id
    assert second != first
    http = sign_in(live, "aino@example.org")
    seq = (audit_rows(live) or [(0,)])[-1][0]
    detail = http.get(f"/api/v1/conversations/{second}").json()
    assert [c["id"] for c in detail["visitor_info"]["earlier"]] == [first]  # shown with its preview
    assert [(a, actor, d) for _, a, actor, d in audit_rows(live, seq)] == [
        ("conversation.view", aino, {"shown": {"conversations": [first]}})]


def test_migration_0010_strips_what_was_stored_before(in_process):
    """Rows stored before the server stripped addresses (simulated: metadata
    handed to the action as it is) are cleaned on upgrade, on SQLite and
    PostgreSQL alike."""
    from jutella.chat import actions as chat
    from jutella.chat.metadata import Metadata
    from jutella.store.db import alembic_to

    rt, call = in_process.rt, in_process.call
    v, _ = call(chat.new_visitor, rt)
    conv = call(chat.post_visitor_message, rt, visitor_id=v.id, client_id="old", body="Hei",
                meta=Metadata(page_url=LEAKY_PAGE, referrer="mailto:liisa@example.fi")).conversation.id

    async def go():
        async with rt.db.engine.begin() as conn:
            await conn.run_sync(alembic_to("0009", down=True))
        await rt.db.migrate()
        async with rt.db.reader() as s:
            return (await s.execute(select(Conversation.page_url, Conversation.referrer).where(
                Conversation.id == conv))).one()
    assert tuple(call(go)) == ("https://site.example/help", None)
