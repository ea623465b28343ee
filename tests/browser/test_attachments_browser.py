"""Attachments, the rating and the transcript in Chromium: a visitor on /demo
and an agent in the console, through the data-testid hooks only."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers import eventually, PASSWORD, add_staff
from tests.integration.test_attachments import GPS_LAT, SVG, jpeg_with_gps

pytestmark = pytest.mark.browser


@pytest.fixture
def backend():
    return "sqlite"


def console_sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/console")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("presence")).to_be_visible(timeout=15_000)
    # on duty once the console's socket is in: only then does the widget offer the chat
    # (before, it shows the email form and no chat input)
    with httpx.Client(base_url=base) as http:
        eventually(lambda: http.get("/api/v1/public/availability").json()["agents_online"], 15)


def test_attachment_rating_and_transcript(live, browser_context_factory):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    problems: list[str] = []
    agent_ctx = browser_context_factory()
    agent = agent_ctx.new_page()
    # the one question expected: closing asks first (answered OK); any other dialog is a problem
    agent.on("dialog", lambda d: d.accept() if d.message == "Close this conversation?"
             else (problems.append(d.message), d.dismiss()))
    agent.on("pageerror", lambda exc: problems.append(str(exc)))
    console_sign_in(agent, live.url, "aino@example.org")

    visitor_ctx = browser_context_factory(accept_downloads=True)
    visitor = visitor_ctx.new_page()
    visitor.on("dialog", lambda d: (problems.append(d.message), d.dismiss()))
    visitor.on("pageerror", lambda exc: problems.append(str(exc)))
    visitor.goto(live.url + "/demo?lang=en")
    visitor.get_by_test_id("launcher").click()
    w = visitor.frame_locator("iframe[data-jutella=frame]")
    w.get_by_test_id("chat-input").fill("Hei, lähetän kuvan kuitista")
    w.get_by_test_id("chat-send").click()
    expect(w.locator("[data-testid=message][data-author=visitor]")).to_have_count(1, timeout=15_000)
    expect(w.locator(".row[data-author=visitor] .meta")).to_have_text(re.compile("Sent|Seen"), timeout=15_000)

    # an SVG is refused with the server's words, and nothing arrives
    w.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "kuva.svg", "mimeType": "image/svg+xml", "buffer": SVG}])
    expect(w.get_by_test_id("attach-error")).to_be_visible(timeout=15_000)
    expect(w.get_by_test_id("attach-error")).to_contain_text("PNG, JPEG, WebP")
    expect(w.get_by_test_id("attachment")).to_have_count(0)

    # a JPEG carrying a GPS position: shown to the visitor as a picture
    w.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "kuitti.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps()}])
    thumb = w.locator("[data-testid=attachment] img")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"), timeout=15_000)
    expect(w.get_by_test_id("attach-error")).to_be_hidden()

    # the agent sees it in the conversation; the bytes served carry no EXIF
    agent.locator("[data-testid=conversation][data-state=waiting]").first.click(timeout=15_000)
    shown = agent.locator("[data-testid=message][data-author=visitor] [data-testid=attachment] img")
    expect(shown).to_be_visible(timeout=15_000)
    expect(shown).to_have_attribute("alt", "kuitti.jpg")
    src = shown.get_attribute("src")
    assert src and src.startswith("/attachments/")
    served = agent.request.get(live.url + src)
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    body = served.body()
    assert b"Exif" not in body and b"SecretCam" not in body and GPS_LAT.encode() not in body
    with Image.open(io.BytesIO(body)) as im:
        assert not im.getexif()
    assert agent.evaluate("(img) => img.naturalWidth", shown.element_handle()) == 64
    # a stranger (no session, no token) gets nothing
    assert browser_context_factory().request.get(live.url + src).status == 404

    agent.get_by_test_id("console-input").fill("Kiitos, kuitti näkyy.")
    agent.get_by_test_id("console-send").click()
    expect(w.locator("[data-testid=message][data-author=agent]")).to_contain_text(["Kiitos, kuitti näkyy."],
                                                                                   timeout=15_000)
    # an internal note before closing: never in the widget, never in the visitor's transcript
    agent.get_by_test_id("note-toggle").click()
    agent.get_by_test_id("console-input").fill("SISÄINEN: kuitti tarkistettu")
    agent.get_by_test_id("console-send").click()
    expect(agent.get_by_test_id("note").filter(has_text="SISÄINEN")).to_have_count(1, timeout=15_000)
    agent.get_by_test_id("note-toggle").click()
    agent.get_by_test_id("close-conversation").click()

    # at close the visitor rates the chat; the console shows it on the conversation
    rating = w.get_by_test_id("rating")
    expect(rating).to_be_visible(timeout=15_000)
    w.locator("[data-testid=rating-star][data-value='4']").click()
    w.get_by_test_id("rating-comment").fill("Nopeaa apua, kiitos!")
    w.get_by_test_id("rating-submit").click()
    expect(w.get_by_test_id("rating-thanks")).to_be_visible(timeout=15_000)
    expect(rating).to_be_hidden()
    shown_rating = agent.get_by_test_id("conversation-rating")
    expect(shown_rating).to_contain_text("4/5", timeout=15_000)
    expect(shown_rating).to_contain_text("Nopeaa apua, kiitos!")
    agent.reload()
    expect(agent.get_by_test_id("conversation-rating")).to_contain_text("4/5", timeout=15_000)

    # the transcript: saved as a printable page with the messages
    with visitor.expect_download(timeout=15_000) as download:
        w.get_by_test_id("transcript-save").click()
    page_text = open(download.value.path(), encoding="utf-8").read()
    assert "Hei, lähetän kuvan kuitista" in page_text and "Kiitos, kuitti näkyy." in page_text
    assert "kuitti.jpg" in page_text and "<script" not in page_text
    assert "SISÄINEN" not in page_text
    expect(w.locator("[data-testid=message]").filter(has_text="SISÄINEN")).to_have_count(0)
    # emailing it says the address is stored
    w.get_by_test_id("transcript-email").click()
    expect(w.get_by_test_id("transcript-email-notice")).to_contain_text("customer register")
    w.get_by_test_id("transcript-email-input").fill("liisa@example.fi")
    w.get_by_test_id("transcript-email-send").click()
    expect(w.get_by_test_id("transcript-status")).to_contain_text("liisa@example.fi", timeout=15_000)
    assert problems == []
