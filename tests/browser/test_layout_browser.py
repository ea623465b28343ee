"""The layout at laptop and phone sizes (issue 17, docs/console.md "Layout",
docs/widget.md "Layout"): every console view and widget state, at 1280x800,
1366x768 and 390x844. For each, what a person at that screen must be able to
see:

- the reply box and the newest message inside the viewport, the newest
  message inside the log's visible area (also after an image has loaded);
- nothing wider than the page (document scrollWidth <= innerWidth);
- every visible table column at least 12 characters ("0" in its own font) wide;
- side panels (transfer, labels, the "/" canned popup, the visitor panel) that
  cover at most half of the log, and the canned popup above the reply box,
  as wide as it.

One server and one seeded dataset per size, one test per size walking every
view; every problem of every view is collected, then reported together. A
screenshot of each view goes to JUTELLA_SHOTS_DIR (default test-screenshots/
in the repository), which pytest names at the end of the run."""

from __future__ import annotations

import io
import re
import time

import httpx
import pytest
from PIL import Image

from tests.chat_clients import agent, visitor
from tests.conftest import shots_dir
from tests.helpers import PASSWORD, add_staff, eventually, sign_in

pytestmark = pytest.mark.browser

SIZES = {"1280x800": (1280, 800), "1366x768": (1366, 768), "390x844": (390, 844)}
SHOTS = shots_dir()
LONG = ("Hei! Asuntohakemukseni on jonossa, mutta en ole saanut vielä vastausta. Voisitteko katsoa, missä "
        "vaiheessa se on? Muutto olisi elokuun alussa.")


def expect(locator):
    from playwright.sync_api import expect as _expect

    return _expect(locator)


@pytest.fixture
def backend():
    return "sqlite"


def png(width: int = 480, height: int = 360) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (70, 130, 180)).save(out, "PNG")
    return out.getvalue()


# What is checked in one view, in the page's (or the frame's) own coordinates.
PROBE = r"""
({reply, log, newest, panels, popup}) => {
  const out = [];
  const W = innerWidth, H = innerHeight;
  const VP = {top: 0, left: 0, bottom: H, right: W};
  const de = document.documentElement;
  if (de.scrollWidth > W) out.push(`the page is wider than the window: ${de.scrollWidth} > ${W}`);
  const shown = (el) => {
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const within = (r, b, tol = 1) => r.top >= b.top - tol && r.bottom <= b.bottom + tol
    && r.left >= b.left - tol && r.right <= b.right + tol;
  const box = (r) => `[${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)}]`;
  if (reply) {
    const el = document.querySelector(reply);
    if (!shown(el)) out.push(`the reply box ${reply} is not shown`);
    else if (!within(el.getBoundingClientRect(), VP)) {
      out.push(`the reply box is outside the viewport: ${box(el.getBoundingClientRect())} in ${W}x${H}`);
    }
  }
  let logRect = null;
  if (log) {
    const el = document.querySelector(log);
    if (!shown(el)) out.push(`the log ${log} is not shown`);
    else {
      const r = el.getBoundingClientRect();
      logRect = {top: Math.max(r.top, 0), left: Math.max(r.left, 0), bottom: Math.min(r.bottom, H),
                 right: Math.min(r.right, W)};
      logRect.height = logRect.bottom - logRect.top;
      logRect.width = logRect.right - logRect.left;
      if (newest && logRect.height < 96) out.push(`the log shows only ${Math.round(logRect.height)} px`);
    }
  }
  if (newest) {
    const all = document.querySelectorAll(newest);
    const el = all[all.length - 1];
    if (!shown(el)) out.push(`the newest message (${newest}) is not shown`);
    else {
      const r = el.getBoundingClientRect();
      if (!within(r, VP)) out.push(`the newest message is outside the viewport: ${box(r)} in ${W}x${H}`);
      if (logRect && (r.bottom > logRect.bottom + 1 || r.bottom < logRect.top + Math.min(r.height, logRect.height) - 1)) {
        out.push(`the newest message is scrolled out of the log: ${box(r)}, log ${box(logRect)}`);
      }
    }
  }
  for (const sel of panels || []) {
    for (const el of document.querySelectorAll(sel)) {
      if (!shown(el) || !logRect) continue;
      const r = el.getBoundingClientRect();
      const w = Math.min(r.right, logRect.right) - Math.max(r.left, logRect.left);
      const h = Math.min(r.bottom, logRect.bottom) - Math.max(r.top, logRect.top);
      if (w > 0 && h > 0 && w * h > 0.5 * logRect.width * logRect.height) {
        out.push(`${sel} covers ${Math.round(100 * w * h / (logRect.width * logRect.height))}% of the log`);
      }
    }
  }
  if (popup) {
    const el = document.querySelector(popup.list);
    const anchor = document.querySelector(popup.anchor);
    const input = document.querySelector(reply);
    if (!shown(el)) out.push(`the popup ${popup.list} is not shown`);
    else {
      const r = el.getBoundingClientRect();
      const a = anchor.getBoundingClientRect();
      if (Math.abs(r.width - a.width) > 2) out.push(`the popup is ${Math.round(r.width)} px wide, the reply box ${Math.round(a.width)}`);
      if (r.bottom > input.getBoundingClientRect().top + 1) out.push(`the popup is not above the reply box: ${box(r)}`);
      if (!within(r, VP)) out.push(`the popup is outside the viewport: ${box(r)}`);
    }
  }
  // tables: every visible column at least 12 characters of its own font wide
  const ctx = document.createElement("canvas").getContext("2d");
  for (const table of document.querySelectorAll("table")) {
    if (!shown(table)) continue;
    const seen = new Set();
    for (const cell of table.querySelectorAll("th, td")) {
      // a visually hidden header row (the phone's one-card-per-row tables) is not a column
      let hidden = !shown(cell);
      for (let up = cell.parentElement; !hidden && up && up !== table; up = up.parentElement) {
        const r = up.getBoundingClientRect();
        hidden = r.width <= 1 || r.height <= 1;
      }
      if (hidden) continue;
      const cs = getComputedStyle(cell);
      ctx.font = cs.font;
      const zero = ctx.measureText("0").width;
      const width = cell.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      if (width < 12 * zero - 0.5) {
        const col = cell.cellIndex;
        const key = `${col}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const head = table.querySelector("thead tr") ? table.querySelector("thead tr").children[col] : null;
        out.push(`table ${table.className || table.parentElement.className} column ${col + 1} ` +
          `(${head ? head.textContent.trim().slice(0, 20) : cell.textContent.trim().slice(0, 20)}) ` +
          `is ${Math.round(width)} px, 12 characters are ${Math.round(12 * zero)} px`);
      }
    }
  }
  return out;
}
"""


class Walk:
    """Checks and screenshots, view after view; the problems pile up."""

    def __init__(self, size: str):
        self.size = size
        self.problems: list[str] = []
        self.n = 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        for old in SHOTS.glob(f"{size}-*.png"):
            old.unlink()

    def check(self, page, name: str, frame=None, **probe) -> None:
        target = frame or page
        probe = {"reply": None, "log": None, "newest": None, "panels": [], "popup": None, **probe}
        # what the user sees once the view has settled: a frame that arrived a moment ago may still be
        # scrolling the log (on a loaded CI machine), so a problem must still be there after 2 s
        deadline = time.monotonic() + 2
        while True:
            found = target.evaluate(PROBE, probe)
            if frame is not None:  # the frame itself must be inside the page's viewport
                found += page.evaluate(PROBE, {"reply": None, "log": None, "newest": None, "panels": [],
                                               "popup": None})
            if not found or time.monotonic() > deadline:
                break
            page.wait_for_timeout(100)
        self.n += 1
        page.screenshot(path=str(SHOTS / f"{self.size}-{self.n:02d}-{name}.png"))
        self.problems += [f"{self.size} {name}: {p}" for p in found]

    def done(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def seed(live):
    """An operator with every role, canned responses, labels, a department,
    an offline message, and a conversation with enough messages to scroll,
    an image last."""
    add_staff(live, "ops@example.org", ["admin", "agent", "privacy"], name="Olli Operaattori")
    add_staff(live, "aino@example.org", ["agent"], name="Aino Asiakaspalvelija-Virtanen")
    ops = sign_in(live, "ops@example.org")
    for shortcut, lang, body in [
        ("hei", "fi", "Hei {visitor_name}! Olen {agent_name}, miten voin auttaa sinua tänään asumiseen liittyvissä "
                      "asioissa? Kerro vapaasti, niin katsotaan yhdessä."),
        ("hello", "en", "Hello! I am {agent_name}. How can I help you with your housing application today?"),
        ("hej", "sv", "Hej! Jag heter {agent_name}. Hur kan jag hjälpa dig?"),
        ("kiitos", "fi", "Kiitos yhteydenotosta! Mukavaa päivänjatkoa."),
    ]:
        assert ops.post("/api/v1/canned", json={"shortcut": shortcut, "language": lang, "shared": True,
                                                "body": body}).status_code == 201
    labels = [ops.post("/api/v1/labels", json={"name": n, "color": c}).json()["id"]
              for n, c in [("Vuokra", "red"), ("Opinnot", "blue"), ("Palaute", "green")]]
    dept = ops.post("/api/v1/departments", json={"name": "Asuminen ja vuokrasopimukset"}).json()["id"]
    # a webhook to a receiver that is not there: its deliveries wait in the log with the error (docs/webhooks.md)
    for side in {id(live): live, id(live.agent_side): live.agent_side}.values():
        side.rt.settings.webhook_allow_private = True
    assert ops.post("/api/v1/webhooks", json={
        "name": "Jäsenrekisteri ja tukipalvelun tikettijärjestelmä",
        "url": "http://127.0.0.1:9/hooks/jutella/vastaanotto?token=abcdefghijklmnopqrstuvwxyz0123456789",
        "events": ["conversation.created", "conversation.closed", "offline_message.created", "rating.created"],
        "personal": ["name", "email", "text"]}).status_code == 201
    ops.put(f"/api/v1/departments/{dept}/members", json={"account_ids": []})
    with httpx.Client(base_url=live.url) as public:
        r = public.post("/api/v1/public/offline-messages", json={
            "name": "Liisa Laaksonen", "email": "liisa.laaksonen@example.fi", "message": LONG * 3, "lang": "fi"})
        assert r.status_code == 201, r.text
    # the conversation: questions and answers, then a picture from the visitor
    v, welcome = visitor(live, lang="fi", page="https://site.example/asuminen/hakemus")
    v.message(LONG)
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    assert ops.post(f"/api/v1/conversations/{conv}/accept").status_code == 200
    a, _ = agent(live, ops, subscriptions={conv: 0})
    for n in range(8):
        a.message(f"Vastaus {n + 1}: {LONG}", conversation=conv)
        a.until(lambda f: f["type"] == "ack")
        v.message(f"Kysymys {n + 1}: kiitos, entä {n + 1}?")
        v.until(lambda f: f["type"] == "ack")
    token = welcome["token"]
    with httpx.Client(base_url=live.url) as public:
        r = public.post("/api/v1/public/attachments", headers={"X-Jutella-Visitor": token},
                        files={"file": ("kuitti.png", png(), "image/png")})
        assert r.status_code in (200, 201), r.text
    a.close()
    v.close()
    offline_id = ops.get("/api/v1/offline-messages").json()[0]["id"]
    for name, scopes in [("Jäsenrekisterin raporttinäkymä", ["reports:read"]),
                         ("Helpdesk", ["conversations:read", "offline:read"])]:
        assert ops.post("/api/v1/tokens", json={"name": name, "scopes": scopes, "expires_days": 90}).status_code == 201
    return {"conv": conv, "offline": offline_id, "labels": labels, "ops": ops}


def wait_images(target, selector: str) -> None:
    """Until the pictures are decoded, and two frames later (their load handlers have run)."""
    target.wait_for_function(
        "(sel) => [...document.querySelectorAll(sel)].every((img) => img.complete && img.naturalWidth > 0)",
        arg=selector)
    target.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def console_views(live, ctx, walk: Walk, data, lang: str) -> None:
    page = ctx.new_page()
    page.goto(live.url + "/console")
    expect(page.get_by_test_id("login-email")).to_be_visible()
    walk.check(page, "sign-in")
    page.get_by_test_id("login-email").fill("ops@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("presence")).to_be_visible()

    conv = data["conv"]
    page.goto(f"{live.url}/console#/conversations/{conv}")
    expect(page.locator(f".thread[data-conversation='{conv}']")).to_be_visible()
    expect(page.locator(".chat-layout")).to_have_attribute("data-connection", "open")
    img = ".thread-log [data-testid=attachment] img"
    expect(page.locator(img)).to_have_count(1)
    wait_images(page, img)
    thread = {"reply": "[data-testid=console-input]", "log": ".thread-log",
              "newest": ".thread-log [data-testid=message], .thread-log [data-testid=note]"}
    walk.check(page, "conversation-image", **thread)

    # the agent's own reply, just sent
    page.get_by_test_id("console-input").fill("Kuva näkyy, kiitos! Tarkistan asian heti.")
    page.get_by_test_id("console-input").press("Enter")
    expect(page.locator(".thread-log .msg-list:not(.msg-outbox) [data-testid=message]").last).to_contain_text(
        "Kuva näkyy")
    walk.check(page, "conversation-replied", **thread)

    # the transfer panel open
    page.get_by_test_id("transfer-button").click()
    expect(page.get_by_test_id("transfer-dialog")).to_be_visible()
    walk.check(page, "transfer-open", panels=["[data-testid=transfer-dialog]"], **thread)
    page.locator("[data-testid=transfer-dialog] button.quiet").click()  # Cancel
    expect(page.get_by_test_id("transfer-dialog")).to_be_hidden()

    # labels on the conversation
    for name in ("Vuokra", "Opinnot", "Palaute"):
        page.get_by_test_id("label-add").select_option(label=name)
        expect(page.locator(".thread-header [data-testid=label-chip]").filter(has_text=name)).to_have_count(1)
    # a chip's remove button is named for its label, not "×"
    name = {"en": "Remove label Opinnot", "fi": "Poista tunniste Opinnot"}[lang]
    expect(page.locator(".thread-header").get_by_role("button", name=name, exact=True)).to_have_count(1)
    walk.check(page, "labels", panels=[".thread-labels"], **thread)

    # the canned popup, "/" in the reply box
    page.get_by_test_id("console-input").press_sequentially("/h")
    expect(page.get_by_test_id("canned-option")).to_have_count(3)
    walk.check(page, "canned-popup", panels=["[data-testid=canned-suggestions]"],
               popup={"list": "[data-testid=canned-suggestions]", "anchor": ".composer-row"}, **thread)
    page.get_by_test_id("console-input").press("Escape")
    page.get_by_test_id("console-input").fill("")

    # the visitor panel: beside the conversation, or under it on a phone
    page.get_by_test_id("visitor-info").scroll_into_view_if_needed()
    walk.check(page, "visitor-info", panels=["[data-testid=visitor-info]", ".chat-info-pane"],
               log=".thread-log")
    page.evaluate("() => window.scrollTo(0, 0)")

    # the offline inbox and one message
    page.goto(f"{live.url}/console#/offline")
    expect(page.get_by_test_id("offline-item")).to_have_count(1)
    walk.check(page, "offline-list")
    page.goto(f"{live.url}/console#/offline/{data['offline']}")
    expect(page.get_by_test_id("offline-reply-input")).to_be_visible()
    walk.check(page, "offline-message")

    routes = [
        ("canned", "canned-page", "table"), ("departments", "departments", "h1"), ("accounts", "accounts", "table"),
        ("embed", "embed", "table"), ("reports", "reports", "svg"), ("tokens", "tokens", "table"),
        ("webhooks", "webhooks", "form"),
        ("audit", "audit-log", "table"), ("register", "privacy-find", "h1"),
        ("register/requests", "privacy-requests", "h1"), ("register/record", "privacy-record", "h1"),
        ("account", "my-account", "h1"),
    ]
    # every view the navigation offers is checked: a new view without an entry here fails
    listed = set(page.locator("nav.sidenav a").evaluate_all("els => els.map(a => a.getAttribute('href').slice(2))"))
    assert listed <= {"conversations", "offline"} | {r.split("/")[0] for r, _, _ in routes}, listed
    for route, name, ready in routes:
        page.goto(f"{live.url}/console#/{route}")
        expect(page.locator(f"main {ready}").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        walk.check(page, name)
    # the register's search with a result
    page.goto(f"{live.url}/console#/register")
    field = page.locator("main input[type=search], main input[type=text]").first
    field.fill("liisa.laaksonen@example.fi")
    field.press("Enter")
    page.wait_for_load_state("networkidle")
    walk.check(page, "privacy-search")
    return page


def widget_states(live, ctx, walk: Walk, data) -> None:
    page = ctx.new_page()
    page.goto(live.url + "/demo?lang=fi")
    expect(page.get_by_test_id("launcher")).to_be_visible()
    walk.check(page, "widget-launcher")
    page.get_by_test_id("launcher").click()
    frame = page.frame_locator("iframe[data-jutella=frame]")
    expect(frame.get_by_test_id("chat-input")).to_be_visible()
    inner = page.frame(url=re.compile(r"/widget/frame"))
    walk.check(page, "widget-open", frame=inner, reply="#input", log="#log")

    # chatting: a long log, an image last
    frame.get_by_test_id("chat-input").fill("Hei, minulla on kysymys vuokrasopimuksesta.")
    frame.get_by_test_id("chat-send").click()
    ops = data["ops"]
    conv = eventually(lambda: [c["id"] for c in ops.get("/api/v1/conversations").json()
                               if c["state"] == "waiting"])[0]
    assert ops.post(f"/api/v1/conversations/{conv}/accept").status_code == 200
    a, _ = agent(live, ops, subscriptions={conv: 0})
    for n in range(10):
        a.message(f"Vastaus {n + 1}: {LONG}", conversation=conv)
        a.until(lambda f: f["type"] == "ack")
    expect(frame.locator("[data-testid=message][data-author=agent]")).to_have_count(10)
    frame.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "kuva.png", "mimeType": "image/png", "buffer": png()}])
    expect(frame.locator("[data-testid=attachment] img")).to_have_attribute("src", re.compile("^blob:"))
    wait_images(inner, "[data-testid=attachment] img")
    chat = {"reply": "#input", "log": "#log", "newest": "#log .row"}
    walk.check(page, "widget-chatting-image", frame=inner, **chat)

    # the end of the chat: the card, and the last messages still in view
    a.message("Kiitos, asia on nyt hoidossa. Hyvää päivänjatkoa!", conversation=conv)
    a.until(lambda f: f["type"] == "ack")
    assert ops.post(f"/api/v1/conversations/{conv}/close").status_code == 200
    expect(frame.get_by_test_id("rating")).to_be_visible()
    ended = {"log": "#log", "newest": "#log .row"}
    walk.check(page, "widget-ended", frame=inner, panels=["#ended"], **ended)
    fold = frame.get_by_test_id("ended-fold")
    if not fold.count():
        walk.problems.append(f"{walk.size} widget-ended: no button folds the end-of-chat card")
    else:
        expect(fold).to_have_attribute("aria-expanded", "true")
        fold.click()
        expect(fold).to_have_attribute("aria-expanded", "false")
        expect(frame.get_by_test_id("rating")).to_be_hidden()
        card = inner.evaluate("() => document.getElementById('ended').getBoundingClientRect().height")
        if card > 64:
            walk.problems.append(f"{walk.size} widget-ended-folded: the folded card is {card:.0f} px high")
        walk.check(page, "widget-ended-folded", frame=inner, panels=["#ended"], **ended)
        fold.click()
        expect(frame.get_by_test_id("rating")).to_be_visible()
    a.close()


def widget_offline(live, ctx, walk: Walk) -> None:
    """Nobody on duty: the email form."""
    page = ctx.new_page()
    page.goto(live.url + "/demo?lang=fi")
    page.get_by_test_id("launcher").click()
    frame = page.frame_locator("iframe[data-jutella=frame]")
    expect(frame.get_by_test_id("offline-form")).to_be_visible()
    inner = page.frame(url=re.compile(r"/widget/frame"))
    # the form scrolls inside the panel; the field the visitor writes in is in view
    walk.check(page, "widget-offline-form", frame=inner, reply="[data-testid=offline-message]")
    page.close()


def walk_all(live, browser_context_factory, size: str, lang: str = "en") -> None:
    """Every view at one size; the console in English, or in Finnish (longer words)."""
    width, height = SIZES[size]
    walk = Walk(size)
    vctx = browser_context_factory(viewport={"width": width, "height": height}, locale="fi-FI",
                                   extra_http_headers={"Accept-Language": "fi-FI,fi;q=0.9"})
    widget_offline(live, vctx, walk)  # before any agent is on duty
    data = seed(live)
    languages = {"en": "en-GB,en;q=0.9", "fi": "fi-FI,fi;q=0.9"}
    ctx = browser_context_factory(viewport={"width": width, "height": height}, locale=languages[lang][:5],
                                  extra_http_headers={"Accept-Language": languages[lang]})
    console_views(live, ctx, walk, data, lang)
    with httpx.Client(base_url=live.url) as http:  # the console's socket is in: on duty
        eventually(lambda: http.get("/api/v1/public/availability").json()["agents_online"])
    widget_states(live, vctx, walk, data)
    walk.done()


def test_layout_1280x800(live, browser_context_factory):
    walk_all(live, browser_context_factory, "1280x800")


def test_layout_1366x768(live, browser_context_factory):
    walk_all(live, browser_context_factory, "1366x768")


def test_layout_390x844(live, browser_context_factory):
    walk_all(live, browser_context_factory, "390x844", lang="fi")  # the narrowest, with the longest words
