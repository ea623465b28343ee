"""What the register keeps about page addresses, what `subject find` reaches,
ids across erasure and audited lists (issue 16, items 2, 8, 6 and 3), on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jutella.store.models import Conversation, OfflineMessage

from tests.chat_clients import visitor
from tests.conftest import BOTH
from tests.helpers import add_staff, sign_in


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
        import os
        import subprocess
        import sys
        env = {"JUTELLA_DATA_DIR": str(live.rt.settings.data_dir), "JUTELLA_DATABASE_URL": database_url}
        out = subprocess.run([sys.executable, "-m", "jutella.cli", "subject", "find", "ki-4471"],
                             capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"conversation {conv}\t" in out.stdout and "match in page" in out.stdout
