"""Issue 15, item 7: what a browser on another site, a cache, a network
observer or a scraper can get from jutella, and what a person may choose.

- a cross-site navigation of a signed-in member of staff reads and writes
  nothing (no audit row, not even the session's last-seen time);
- staff and visitor API answers are never stored by a cache; HSTS and a
  Secure language cookie when the public URL is https;
- ``/metrics`` only for loopback or the metrics token;
- passwords that are one short pattern repeated, or hold the person's name
  or email, are refused with a message saying so.
(The department choice: tests/integration/test_departments.py.)
"""

from __future__ import annotations

import socket

import httpx
import pytest
from sqlalchemy import func, select

from jutella.accounts import actions as accounts
from jutella.accounts.actions import SESSION_COOKIE
from jutella.store.models import AuditEntry, StaffSession

from tests.chat_clients import visitor
from tests.helpers import HTTP_TLS, PASSWORD, add_staff, error_code, http_client, sign_in

CROSS_SITE_NAVIGATION = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
SAME_ORIGIN_NAVIGATION = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
                          "Sec-Fetch-Dest": "document"}


def _query(live, statement):
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(statement)).scalar_one()
    return live.call(q)


def _views(live) -> int:
    return _query(live, select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "conversation.view"))


def _a_conversation(live) -> int:
    v, _ = visitor(live)
    v.message("Hei, tarvitsen apua")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    v.close()
    return conv


def test_a_cross_site_navigation_reads_and_writes_nothing(live, clock):
    add_staff(live, "aino@example.org", ["agent"])
    aino = sign_in(live, "aino@example.org")
    conv = _a_conversation(live)
    session = aino.cookies[SESSION_COOKIE]
    # what the browser sends when a page on another site navigates it here: the Lax cookie, no custom header
    browser = live.client(cookies={SESSION_COOKIE: session})
    clock.advance(minutes=5)  # the session's last-seen time would be written now
    seen = _query(live, select(StaffSession.last_seen_at))
    for headers in (CROSS_SITE_NAVIGATION, {}):  # {}: a browser without Fetch Metadata
        for path in (f"/api/v1/conversations/{conv}", f"/api/v1/conversations/{conv}/transcript",
                     "/api/v1/conversations", f"/api/v1/search?q=apua"):
            r = browser.get(path, headers=headers)
            assert r.status_code == 403 and error_code(r) == "csrf", (path, headers)
            assert "apua" not in r.text
    assert _views(live) == 0
    assert _query(live, select(StaffSession.last_seen_at)) == seen
    # the console's own read (its fetch carries the token): shown and audited
    r = aino.get(f"/api/v1/conversations/{conv}")
    assert r.status_code == 200 and "apua" in r.text
    assert _views(live) == 1
    # the printable transcript, which the console opens as a page: a same-origin navigation may
    r = browser.get(f"/api/v1/conversations/{conv}/transcript", headers=SAME_ORIGIN_NAVIGATION)
    assert r.status_code == 200 and "apua" in r.text
    assert _views(live) == 2
    # ...but only that page
    r = browser.get(f"/api/v1/conversations/{conv}", headers=SAME_ORIGIN_NAVIGATION)
    assert r.status_code == 403 and error_code(r) == "csrf"
    # the token does not help a request the browser says another site made
    r = aino.get(f"/api/v1/conversations/{conv}", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"})
    assert r.status_code == 403 and error_code(r) == "csrf"
    assert _views(live) == 2
    # GET /me hands the token to the console's script, and to nobody else
    assert browser.get("/api/v1/me", headers=CROSS_SITE_NAVIGATION).status_code == 403
    assert browser.get("/api/v1/me").status_code == 403
    me = browser.get("/api/v1/me", headers={"X-Requested-With": "jutella-console"})
    assert me.status_code == 200 and me.json()["csrf_token"] == aino.headers["X-CSRF-Token"]


def test_pages_staff_open_by_their_address_need_no_token_but_another_site_cannot_open_them(live):
    """The printable transcript and the marketing contacts download are pages:
    the person may type or bookmark their address (Sec-Fetch-Site: none) or
    follow the console's link (same-origin); another site's page may not."""
    add_staff(live, "admin@example.org", ["admin", "agent"])
    admin = sign_in(live, "admin@example.org")
    conv = _a_conversation(live)
    browser = live.client(cookies={SESSION_COOKIE: admin.cookies[SESSION_COOKIE]})
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    for path in (f"/api/v1/conversations/{conv}/transcript", "/api/v1/offline-messages/contacts.csv"):
        for headers in (typed, SAME_ORIGIN_NAVIGATION):
            assert browser.get(path, headers=headers).status_code == 200, (path, headers)
        r = browser.get(path, headers=CROSS_SITE_NAVIGATION)
        assert r.status_code == 403 and error_code(r) == "csrf", path
    r = browser.get("/api/v1/offline-messages/contacts.csv", headers=typed)
    assert r.headers["content-type"].startswith("text/csv") and r.text.startswith("name,email")


def test_api_answers_are_not_stored_and_http_public_url_has_no_hsts(live):
    add_staff(live, "aino@example.org", ["agent"])
    aino = sign_in(live, "aino@example.org")
    conv = _a_conversation(live)
    anon = live.client()
    for r in (aino.get("/api/v1/me"), aino.get(f"/api/v1/conversations/{conv}"), aino.get("/api/v1/conversations"),
              aino.get("/api/v1/canned"), anon.get("/api/v1/me"), anon.get("/api/v1/public/availability"),
              anon.post("/api/v1/public/offline-messages", json={"name": "Maija", "email": "maija@example.org",
                                                                "message": "Soittakaa minulle"})):
        assert "no-store" in r.headers.get("cache-control", ""), (r.request.url, r.status_code)
        assert "strict-transport-security" not in r.headers  # the public URL is http here
    # pages without personal data keep their caching
    assert anon.get("/privacy").headers["cache-control"] == "public, max-age=300"
    r = aino.put("/api/v1/me/language", json={"language": "fi"})
    assert r.status_code == 200 and "secure" not in r.headers["set-cookie"].lower()


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://chat.example.org"}])
def test_an_https_public_url_brings_hsts_and_secure_cookies(live):
    add_staff(live, "aino@example.org", ["agent"])
    # the server itself speaks plain HTTP behind its TLS proxy (docs/deployment.md)
    http = http_client(base_url=f"http://127.0.0.1:{live.rt.settings.port}", timeout=15)
    for path in ("/healthz", "/console", "/widget.js", "/widget/frame", "/api/v1/public/availability"):
        r = http.get(path)
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", path
    login = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    assert login.status_code == 200 and "strict-transport-security" in login.headers
    assert "secure" in login.headers["set-cookie"].lower()
    session = login.cookies[SESSION_COOKIE]
    headers = {"Cookie": f"{SESSION_COOKIE}={session}", "X-CSRF-Token": login.json()["csrf_token"]}
    r = http.put("/api/v1/me/language", json={"language": "sv"}, headers=headers)
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("jutella_lang=sv") and "; secure" in cookie.lower()


def _outside_address() -> str:
    """An address of this machine that is not loopback (the interface towards
    the outside), for a client that is not on this host's loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("this machine has no address besides loopback")
    return address


def test_metrics_only_for_loopback_without_a_token(live):
    assert live.client().get("/metrics").status_code == 200
    outside = http_client(base_url=live.url,
                          transport=httpx.HTTPTransport(local_address=_outside_address(), verify=HTTP_TLS))
    r = outside.get("/metrics")
    assert r.status_code == 403 and "jutella" not in r.text
    assert outside.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "s3cret-metrics-token-for-prometheus"}])
def test_metrics_with_the_token_from_anywhere(live):
    outside = http_client(base_url=live.url,
                          transport=httpx.HTTPTransport(local_address=_outside_address(), verify=HTTP_TLS))
    r = outside.get("/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert outside.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}).status_code == 401
    r = outside.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-for-prometheus"})
    assert r.status_code == 200 and "jutella" in r.text
    assert live.client().get("/metrics").status_code == 200  # loopback still needs none


@pytest.mark.parametrize("password,code", [
    ("abcabcabcabc", "password_repeated"),
    ("qwe1qwe1qwe1qwe1", "password_repeated"),
    ("Kesä2024Kesä2024", "password_repeated"),
    ("virtanen rocks forever", "password_personal"),  # the name
    ("MY-AINO.VIRTANEN-PASSWORD", "password_personal"),  # the email's local part, any case
])
def test_weak_passwords_are_refused_with_a_reason(live, password, code):
    admin = add_staff(live, "ilona@example.org", ["admin"], name="Ilona Admin")
    created = live.call(accounts.create_account, live.rt, actor_id=admin, email="aino.virtanen@example.org",
                        name="Aino Virtanen", roles=["agent"])
    token = created.invitation_link.split("#token=", 1)[1]
    anon = live.client(headers={"Accept-Language": "fi"})
    r = anon.post("/api/v1/public/staff/invitation", json={"token": token, "password": password})
    assert r.status_code == 400 and error_code(r) == code, r.text
    assert r.json()["error"]["message"].startswith("Salasana")  # in the reader's language
    # changing one's own password: the same rule with the person's own name
    ilona = sign_in(live, "ilona@example.org")
    r = ilona.post("/api/v1/me/password", json={"current": PASSWORD, "new": "ilona's own secret"})
    assert r.status_code == 400 and error_code(r) == "password_personal"
    # and a good one still passes
    r = anon.post("/api/v1/public/staff/invitation", json={"token": token, "password": "puhelin soi aamulla"})
    assert r.status_code == 200, r.text


def test_a_cross_site_navigation_to_an_attachment_shows_and_audits_nothing(live):
    from tests.integration.test_attachments import new_visitor_with_chat, png, upload

    token, conv = new_visitor_with_chat(live)
    add_staff(live, "aino@example.org", ["agent"])
    aino = sign_in(live, "aino@example.org")
    url = upload(live.client(), token, png()).json()["url"]

    def opened() -> int:
        return _query(live, select(func.count()).select_from(AuditEntry)
                      .where(AuditEntry.action == "attachment.view"))

    browser = live.client(cookies={SESSION_COOKIE: aino.cookies[SESSION_COOKIE]})
    assert browser.get(url, headers=CROSS_SITE_NAVIGATION).status_code == 404
    assert opened() == 0
    # the console's own <img> and link (same origin) still open it, audited
    assert browser.get(url, headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "image"}).status_code == 200
    assert opened() == 1
