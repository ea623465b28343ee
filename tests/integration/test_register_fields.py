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
