"""Issue 17, "nothing silent" and "onboarding": a refused transcript mail is
told where it was asked for and makes /healthz degraded; sites added in the
console's Embed page let a widget socket in without a restart (on both
servers of a two-server deployment) and removing one shuts it out again;
invitation mails go through the outbox; set-up and an accepted invitation
sign the person in; URLs in HTML mails are links."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jutella.accounts import actions as accounts
from jutella.chat import actions as chat
from jutella.mail.compose import reply_mail
from jutella.settings import Settings
from jutella.store.models import AuditEntry

from tests.helpers import PASSWORD, add_staff, error_code, eventually, outbox_idle, sign_in
from .test_attachments import H, new_visitor_with_chat

REFUSED = "gone.student@example.fi"
SITE = "https://kerho.example.org"


def smtp_settings(smtp) -> dict:
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example"}


# -- nothing silent -------------------------------------------------------------------------------
@pytest.fixture
def settings_overrides(smtp):
    return smtp_settings(smtp)


def test_a_refused_transcript_mail_is_told_to_its_visitor_and_the_console_and_healthz_is_degraded(live, smtp):
    smtp.refused.add(REFUSED)
    smtp.start()
    aino_id = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    aino = sign_in(live, "aino@example.org")
    http = live.client()
    assert http.get("/healthz").json() == {"status": "ok"}
    token, conv = new_visitor_with_chat(live, "Hei, lähettäkää tallenne")
    live.call(chat.post_agent_message, live.rt, agent_id=aino_id, conversation_id=conv, client_id="a1",
              body="Hei! Ohjeet: https://jamko.example/ohje?a=1&b=2.")
    r = http.post("/api/v1/public/transcript/email", headers={H: token}, json={"email": REFUSED})
    assert r.status_code == 202 and r.json()["delivery"] == "queued"
    mail = r.json()["id"]
    state = f"/api/v1/public/transcript/email/{mail}"
    # its visitor may read its state at once (the outbox may already be at it: it is not told to wait)
    first = http.get(state, headers={H: token}).json()
    assert first["id"] == mail and first["delivery"] in ("queued", "sending", "refused"), first
    # the visitor who asked is told it failed (as their widget asks); another visitor learns nothing
    # (waited for until it leaves both passing states: the outbox's own loop may hold the mail, still
    # "queued" to the visitor, at the moment the test's own pass finds nothing due)
    eventually(lambda: outbox_idle(live)
               and http.get(state, headers={H: token}).json()["delivery"] not in ("queued", "sending"), 15)
    assert http.get(state, headers={H: token}).json() == {"id": mail, "delivery": "refused"}
    other, _ = new_visitor_with_chat(live, "Toinen")
    assert http.get(state, headers={H: other}).status_code == 404
    assert http.get(state).status_code == 401
    # the console's conversation view lists it with the server's reason
    mails = aino.get(f"/api/v1/conversations/{conv}").json()["transcript_mails"]
    assert [(m["to"], m["delivery"], m["requested_by"], m["error"][:3]) for m in mails] == [
        (REFUSED, "refused", "visitor", "550")]
    # /healthz: degraded, with a reason and no personal data
    health = http.get("/healthz").json()
    assert health == {"status": "degraded", "mail": "refused"}
    assert REFUSED not in str(health)


# -- the allowed sites ---------------------------------------------------------------------------------
def widget_socket_status(server, origin: str) -> int:
    try:
        connect(server.ws_url + "/ws/visitor", origin=origin, open_timeout=5).close()
        return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("backend", ["pg+redis"])
@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": "https://env.example.org"}])
def test_sites_added_on_the_embed_page_are_allowed_on_every_server_without_a_restart(live, backend):
    servers = [live, live.peer]
    assert all(s is not None for s in servers)
    add_staff(live, "admin@example.org", ["admin"], name="Admin")
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    admin, agent = sign_in(live, "admin@example.org"), sign_in(live, "aino@example.org")
    listed = admin.get("/api/v1/sites").json()
    assert listed["snippet"] == f'<script src="{live.url}/widget.js" async></script>'
    assert listed["sites"] == [{"id": None, "origin": "https://env.example.org", "name": None,
                                "from_settings": True, "profile": None}]
    assert agent.get("/api/v1/sites").status_code == 403
    assert [widget_socket_status(s, SITE) for s in servers] == [403, 403]
    assert widget_socket_status(live, "https://env.example.org") == 101  # the setting is still honoured

    # a bad origin: a clear refusal, in the caller's language, and nothing stored
    for bad in ("kerho.example.org", "https://kerho.example.org/sivu", "ftp://kerho.example.org",
                "https://user@kerho.example.org", "https://"):
        r = admin.post("/api/v1/sites", json={"origin": bad})
        assert r.status_code == 400 and error_code(r) == "origin_invalid", bad
    r = admin.post("/api/v1/sites", json={"origin": "kerho.example.org"}, headers={"Accept-Language": "fi"})
    assert "Anna sivuston osoite" in r.json()["error"]["message"]
    assert admin.post("/api/v1/sites", json={"origin": "https://env.example.org"}).status_code == 409

    # added: a widget socket from it is let in at once here, and within a second or two on the other server
    r = admin.post("/api/v1/sites", json={"origin": "HTTPS://Kerho.Example.org:443/", "name": "Kerho"})
    assert r.status_code == 201, r.text
    site = next(s for s in r.json()["sites"] if not s["from_settings"])
    assert (site["origin"], site["name"]) == (SITE, "Kerho")
    assert widget_socket_status(live, SITE) == 101
    eventually(lambda: widget_socket_status(live.peer, SITE) == 101, 5)
    # the frame may be framed by it, and talks to it
    frame = live.client().get("/widget/frame")
    assert SITE in frame.headers["content-security-policy"] and SITE in frame.text
    assert widget_socket_status(live, "https://other.example.org") == 403
    assert admin.post("/api/v1/sites", json={"origin": SITE}).status_code == 409

    # removed: refused again, on both
    assert admin.delete(f"/api/v1/sites/{site['id']}").status_code == 200
    assert widget_socket_status(live, SITE) == 403
    eventually(lambda: widget_socket_status(live.peer, SITE) == 403, 5)
    assert SITE not in live.client().get("/widget/frame").headers["content-security-policy"]

    async def audited():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry.action, AuditEntry.target_id).where(
                AuditEntry.action.like("site.%")).order_by(AuditEntry.id))).all())
    assert live.call(audited) == [("site.add", str(site["id"])), ("site.remove", str(site["id"]))]


# -- onboarding ---------------------------------------------------------------------------------------
def test_set_up_and_an_accepted_invitation_sign_in_at_once_and_invitations_are_mailed(live, smtp):
    smtp.start()
    token = live.call(accounts.ensure_setup_link, live.rt).split("#token=")[1]
    chair = live.client(headers={"X-Requested-With": "fetch"})
    r = chair.post("/api/v1/public/staff/setup", json={"token": token, "email": "chair@example.org",
                                                       "name": "Chair", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["account"]["email"] == "chair@example.org"
    chair.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert chair.get("/api/v1/me").json()["account"]["name"] == "Chair"  # signed in: no second sign-in

    r = chair.post("/api/v1/accounts", json={"email": "eero@example.org", "name": "Eero", "roles": ["agent"]},
                   headers={"Accept-Language": "fi"})
    assert r.status_code == 201 and r.json()["invitation_mailed"] is True
    link = r.json()["invitation_link"]
    eventually(lambda: outbox_idle(live) and len(smtp.messages) == 1 and live.client().get("/healthz").json()
               == {"status": "ok"}, 15)
    (rcpt, msg), = smtp.messages
    assert rcpt == ["eero@example.org"] and "chatin hallintanäkymä" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert link in text and "Hei Eero," in text
    assert f'href="{link}"' in msg.get_body(("html",)).get_content()
    eventually(lambda: next(a for a in chair.get("/api/v1/accounts").json()
                            if a["email"] == "eero@example.org")["invitation_delivery"] == "sent", 15)

    eero = live.client(headers={"X-Requested-With": "fetch"})
    r = eero.post("/api/v1/public/staff/invitation", json={"token": link.split("#token=")[1], "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert eero.get("/api/v1/me").json()["account"]["email"] == "eero@example.org"
    eero.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert eero.put("/api/v1/me/language", json={"language": "fi"}).status_code == 200  # the CSRF rule holds

    async def logins():
        async with live.rt.db.reader() as s:
            return [(a.action, (a.detail or {}).get("via")) for a in (await s.execute(
                select(AuditEntry).where(AuditEntry.action == "login").order_by(AuditEntry.id))).scalars()]
    assert live.call(logins) == [("login", "setup"), ("login", "invitation")]


def test_urls_in_html_mails_become_links_and_the_text_part_stays_as_it_was():
    subject, text, html = reply_mail(lang="en", org="Org", agent_name="Aino",
                                     reply="See https://jamko.example/ohje?a=1&b=<2>. Or javascript:alert(1)",
                                     original="<b>https://x.example/\"onmouseover=1</b>",
                                     original_at=__import__("datetime").datetime(2026, 12, 7), settings=Settings())
    assert "See https://jamko.example/ohje?a=1&b=<2>. Or javascript:alert(1)" in text
    assert '<a href="https://jamko.example/ohje?a=1&amp;b=" rel="noopener noreferrer">' in html
    assert "&lt;2&gt;." in html and 'href="javascript' not in html
    assert '<a href="https://x.example/" rel="noopener noreferrer">https://x.example/</a>&#34;onmouseover=1' in html
    assert "<b>" not in html
    assert len(re.findall(r"<a ", html)) == 2
