"""A visitor's reply by email in the console's offline message (docs/mail.md
"Replies by email"): the answer goes out through aiosmtpd, the reply comes in
over LMTP, and an agent whose pane is open is told, shows the latest and sees
the reply in the thread, its file, the attachment not taken, and the warning
that the sender differs. Screenshots at 1280x800 and 390x844, in English and
Finnish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import PASSWORD, add_staff, eventually, sign_in
from tests.integration.test_email_replies import (FORM, QUOTED, REPLY_DOMAIN, deliver, png_bytes,  # noqa: F401
                                                  reply_mail)

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("JUTELLA_SHOTS_DIR_LMTP", "/tmp/shots-lmtp"))


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def lmtp_port():
    from tests.conftest import free_port

    return free_port()


@pytest.fixture
def settings_overrides(smtp, lmtp_port):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example",
            "lmtp_listen": f"127.0.0.1:{lmtp_port}", "reply_domain": REPLY_DOMAIN}


def test_the_reply_by_email_shows_in_the_thread(live, smtp, lmtp_port, browser_context_factory):
    smtp.start()
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Hei Maija,\nolemme auki 9-15."})
    _, sent = smtp.wait_for(1)[0]
    reply_to = sent["Reply-To"].addresses[0].addr_spec

    problems: list[str] = []
    ctx = browser_context_factory(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(live.url + f"/console#/offline/{mid}")
    page.get_by_test_id("login-email").fill("aino@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("offline-reply")).to_have_count(1, timeout=15_000)

    # the reply arrives while the pane is open: the agent is told, and shows it
    deliver(lmtp_port, reply_to, reply_mail(reply_to, "maija@example.fi", QUOTED,
                                            files=[("kuva.png", png_bytes(), "image", "png"),
                                                   ("ohjelma.exe", b"MZ\x90\x00", "application", "octet-stream")]))
    deliver(lmtp_port, reply_to, reply_mail(reply_to, "maija.work@firma.example", "Tässä vielä työosoitteestani."),
            sender="maija.work@firma.example")
    page.get_by_test_id("offline-show-latest").click()
    items = page.get_by_test_id("offline-email-reply")
    expect(items).to_have_count(2)
    expect(page.get_by_test_id("offline-state")).to_have_text("New")
    first, second = items.nth(0), items.nth(1)
    expect(first).to_contain_text("Kiitos, tulen huomenna klo 10.")
    expect(first).not_to_contain_text("olemme auki 9-15")  # the quoted history is not shown again
    expect(first.get_by_test_id("offline-email-file")).to_have_text("kuva.png")
    expect(first.get_by_test_id("offline-email-refused")).to_contain_text("ohjelma.exe")
    expect(first.get_by_test_id("offline-sender-differs")).to_have_count(0)
    expect(second.get_by_test_id("offline-sender-differs")).to_contain_text("maija.work@firma.example")
    # the thread is in time order: the answer, then the two replies
    order = page.locator("[data-testid=offline-replies] > li").evaluate_all(
        "els => els.map(e => e.dataset.testid)")
    assert order == ["offline-reply", "offline-email-reply", "offline-email-reply"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    second.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "email-reply-1280x800-en.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    second.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "email-reply-390x844-en.png"))
    assert problems == []

    fi = browser_context_factory(viewport={"width": 1280, "height": 800}, locale="fi-FI")
    page = fi.new_page()
    page.goto(live.url + f"/console#/offline/{mid}")
    page.get_by_test_id("login-email").fill("aino@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("offline-email-reply")).to_have_count(2, timeout=15_000)
    differs = page.get_by_test_id("offline-sender-differs")
    eventually(lambda: "Lähetetty osoitteesta" in differs.text_content())
    differs.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "email-reply-1280x800-fi.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    differs.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "email-reply-390x844-fi.png"))
