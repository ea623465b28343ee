"""The hostile-markup corpus (tests/hostile_corpus.py, 150+ payloads) through
every field a visitor controls, and every place staff see it, in Chromium.

A visitor sends each payload as a chat message (twice: as it is, and behind a
search marker), as its User-Agent header, page address, referrer and language,
and through the email form as name, email, message, page, referrer, language and
User-Agent. Batches of ten more go in one message body and one form each. The
server may drop or clean much of the metadata (only http(s) URLs are kept, a
language must look like one, most emails are refused): that is fine. Then an
agent (who also has the privacy role) looks at all of it:

- the console's conversation list, each conversation and its visitor panel;
- the history search results;
- the offline inbox and each message in it;
- the Register view's subject lookup;
- the HTML access copy, opened as a page;
- the HTML part of each reply email (sent through a real SMTP server), opened as a page.

A second test does the same for issue 8's visitor fields: each payload as an
attachment's file name (the multipart filename, quotes and all), in rating
comments, as a transcript email address (most are refused) and as the
department in the message frame (always refused as malformed); seen in the
console's conversation view (files, rating), the staff's printable
transcript, the transcript emails, the HTML access copy and the Register view.

Everywhere: no dialog, ``window.__pwned`` never set, no script error and no
Content-Security-Policy report, and inside the region that shows the data no
``script``/``img``/``svg``/``iframe``/``object``/``embed`` (nor other loading
or foreign-namespace elements), no event-handler or ``style`` attribute, no
``javascript:``/``data:`` URL, links only to http(s). Where the whole text is
shown (a message, the visitor panel, an offline message, the access copy, an
email), it is the payload's text, character for character where the page keeps
it.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from jutella.store.models import MailOutbox

from tests.chat_clients import visitor
from tests.helpers import PASSWORD, add_staff, sign_in
from tests.hostile_corpus import PAYLOADS

pytestmark = pytest.mark.browser

MAX_BODY = 4000
GROUP = 40  # payloads per search marker: the console shows 50 hits at most


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings_overrides(smtp):
    # 150+ conversations (and their transcript mails) from one address in a few seconds: the flood
    # limits are lifted
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "chat@jamko.example",
            "max_messages_per_minute": 0, "max_conversations_per_hour": 0, "max_conversations_per_client": 0,
            "max_uploads_per_client": 0,
            "transcript_email_per_client_hour": 100_000, "transcript_email_global_hour": 100_000,
            "offline_per_client_hour": 30, "offline_global_hour": 100_000}  # submit_form: 25 an address


# -- what must never be in a region that shows visitor data ------------------------------------
SCAN = r"""
(arg) => {
  const FORBIDDEN = new Set(["script", "img", "svg", "iframe", "object", "embed", "math", "video", "audio",
    "source", "picture", "frame", "frameset", "base", "link", "meta", "style", "template", "marquee",
    "noscript", "applet", "portal", "xss", "isindex"]);
  const URLISH = ["href", "src", "action", "formaction", "xlink:href", "data", "background", "poster",
    "srcset", "codebase", "cite", "ping"];
  const roots = [...document.querySelectorAll(arg.selector)];
  const bad = [];
  for (const root of roots) {
    for (const el of [root, ...root.querySelectorAll("*")]) {
      const tag = el.localName;
      // the console's own attachment thumbnail: <img class=attachment-thumb src=/attachments/ID alt=NAME>
      const thumb = arg.allowThumb && tag === "img" && el.classList.contains("attachment-thumb")
        && /^\/attachments\/[A-Za-z0-9_-]+$/.test(el.getAttribute("src") || "")
        && [...el.attributes].every((a) => ["class", "src", "alt"].includes(a.name));
      if (FORBIDDEN.has(tag) && !thumb) bad.push(`<${tag}> element`);
      if (el.namespaceURI !== "http://www.w3.org/1999/xhtml") bad.push(`<${tag}> in ${el.namespaceURI}`);
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        if (name.startsWith("on")) bad.push(`${name} attribute on <${tag}>`);
        if (name === "srcdoc" || name === "formaction") bad.push(`${name} attribute on <${tag}>`);
        if (name === "style" && !arg.allowStyle) bad.push(`style attribute on <${tag}>`);
        if (URLISH.includes(name) && /^[\s\u0000-\u001f]*(javascript|vbscript|data)\s*:/i.test(attr.value)) {
          bad.push(`${name}=${attr.value.slice(0, 60)} on <${tag}>`);
        }
      }
      if (tag === "a" && el.hasAttribute("href") && !["http:", "https:"].includes(el.protocol)) {
        bad.push(`link to ${el.getAttribute("href").slice(0, 60)}`);
      }
    }
  }
  return { roots: roots.length, bad: bad.slice(0, 30), pwned: typeof window.__pwned !== "undefined",
           text: arg.withText ? roots.map((r) => r.textContent).join("\n") : "" };
}
"""


def norm(text: str) -> str:
    """Text without whitespace, control and format characters: how a page
    keeps a payload may differ there (line breaks become <br>, an HTML parser
    turns CR into LF, a name's spaces are collapsed)."""
    return "".join(c for c in text if not (c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")))


class Watch:
    """Dialogs, script errors and CSP reports on one page."""

    ALLOWED = [re.compile(r"status of 401 .*/api/v1/me"), re.compile(r"status of 404 .*favicon\.ico")]

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message) -> None:
        text = f"{message.text} @ {message.location.get('url', '')}"
        if "Content Security Policy" in message.text or (
                message.type == "error" and not any(p.search(text) for p in self.ALLOWED)):
            self.errors.append(text)

    def scan(self, selector: str, where: str, *, allow_style: bool = False, with_text: bool = False,
             allow_thumb: bool = False) -> str:
        result = self.page.evaluate(SCAN, {"selector": selector, "allowStyle": allow_style, "withText": with_text,
                                           "allowThumb": allow_thumb})
        assert result["roots"] > 0, f"{where}: nothing matches {selector}"
        assert result["bad"] == [], f"{where}: {result['bad']}"
        self.check(where, result["pwned"])
        return result["text"]

    def check(self, where: str, pwned: bool | None = None) -> None:
        if pwned is None:
            pwned = self.page.evaluate("typeof window.__pwned !== 'undefined'")
        assert not pwned, f"{where}: window.__pwned was set"
        assert self.dialogs == [], f"{where}: dialogs {self.dialogs}"
        assert self.errors == [], f"{where}: " + "\n".join(self.errors)


# -- sending the corpus -----------------------------------------------------------------------------
def header_value(payload: str) -> str:
    """The payload as raw header bytes a client can send (its UTF-8 read as
    Latin-1), without the control characters HTTP does not allow."""
    raw = payload.encode("utf-8").decode("latin-1")
    return "".join(c for c in raw if c == "\t" or " " <= c <= "~" or c >= "\x80").strip() or "x"


def batches(size: int = 10) -> list[list[int]]:
    """Indexes of up to `size` payloads whose texts, joined with blank lines, fit one message."""
    out: list[list[int]] = []
    for i, p in enumerate(PAYLOADS):
        joined = "\n\n".join([*(PAYLOADS[j] for j in out[-1]), p]) if out else ""
        if out and len(out[-1]) < size and len(joined.strip()) <= MAX_BODY:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def joined(group: list[int]) -> str:
    return "\n\n".join(PAYLOADS[i] for i in group)


def marker(i: int) -> str:
    return f"zq{i // GROUP}x{i:03d}"


def start_chats(live, indexes: range) -> list[dict[str, Any]]:
    """One conversation per payload; its metadata and messages carry it."""
    chats = []
    groups = {b[0]: b for b in batches() if len(b) > 1}
    for i in indexes:
        p = PAYLOADS[i]
        embedded = "https://hostile.example/page/" + p  # in the path: the server keeps no query
        page, referrer = (p, embedded) if i % 2 == 0 else (embedded, p)
        v, _ = visitor(live, user_agent=header_value(p), page=page, referrer=referrer, lang=p)
        bodies = [p, f"{marker(i)} {p}"]
        if i in groups:
            bodies.append(joined(groups[i]))
        conv = None
        for body in bodies:
            cid = v.message(body)
            ack = v.until(lambda f, cid=cid: f["type"] in ("ack", "error") and f.get("client_id") == cid)
            assert ack["type"] == "ack", (i, ack)
            conv = ack["conversation"]
        chats.append({"conversation": conv, "messages": [b.strip() for b in bodies]})
        v.close()
    return chats


FORM = "/api/v1/public/offline-messages"


def clean_name(name: str) -> str:
    name = " ".join("".join(c for c in name if ord(c) >= 32 and ord(c) != 127).split())
    return name[:200].strip() or "Name"


def submit_form(clients, counter: list[int], form: dict[str, Any], user_agent: str,
                fallback_email: str) -> dict[str, Any]:
    """Post the form; when a field is refused, clean that field and try again
    (refusals are fine and counted). Each client (a loopback address of its
    own) is used for 25 stored forms, under the per-address limit."""
    form = {**form, "name": form["name"][:1000], "email": form["email"][:1000], "lang": form["lang"][:35],
            "page": form["page"][:4096], "referrer": form["referrer"][:4096]}
    refused = []
    for _ in range(4):
        client = clients[counter[0] // 25]
        r = client.post(FORM, json=form, headers={"User-Agent": user_agent.encode("latin-1")})
        if r.status_code == 201:
            counter[0] += 1
            return {"form": form, "refused": refused}
        assert r.status_code == 400, r.text
        field = r.json()["error"]["field"]
        refused.append(field)
        if field == "name":
            form["name"] = clean_name(form["name"])
        elif field == "email":
            form["email"] = fallback_email
        else:
            raise AssertionError(f"the message was refused: {r.text}")
    raise AssertionError(f"never accepted: {form!r}")


def leave_forms(live) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """One form per payload (in every field), then one per batch of ten."""
    clients = [httpx.Client(base_url=live.url, timeout=15,
                            transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}")) for n in range(2, 12)]
    counter = [0]
    refusals: dict[str, int] = {}
    singles, grouped = [], []
    valid_hostile_emails = [p for p in PAYLOADS if p.endswith("@hostile.example")]
    try:
        for i, p in enumerate(PAYLOADS):
            out = submit_form(clients, counter, {
                "name": p, "email": p, "message": p, "lang": p, "page": p,
                "referrer": "https://hostile.example/from/" + p}, header_value(p), f"o{i}@hostile.example")
            singles.append(out)
            for field in out["refused"]:
                refusals[field] = refusals.get(field, 0) + 1
        for k, group in enumerate(batches()):
            first = PAYLOADS[group[0]]
            out = submit_form(clients, counter, {
                "name": f"{first[:150]} batch{k:02d}", "email": valid_hostile_emails[k % len(valid_hostile_emails)],
                "message": joined(group), "lang": "en", "page": "https://hostile.example/" + first,
                "referrer": ""}, header_value(PAYLOADS[group[-1]]), f"batch{k}@hostile.example")
            grouped.append({**out, "payloads": [PAYLOADS[i] for i in group]})
    finally:
        for c in clients:
            c.close()
    return singles, grouped, refusals


# -- the console --------------------------------------------------------------------------------------
def sign_in_console(page, live, path: str) -> None:
    page.goto(live.url + "/console")
    page.get_by_test_id("login-email").fill("aino@example.org")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("logout").wait_for()
    page.goto(live.url + "/console" + path)


def wait_js(page, predicate: str, arg: Any = None, timeout: float = 20, what: str = "") -> Any:
    """Poll a JS predicate with page.evaluate (wait_for_function would need
    'unsafe-eval', which the console's CSP rightly refuses)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(predicate, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        page.wait_for_timeout(50)


# Opening many records in one evaluate: the page clicks each one in its list,
# waits until it is shown, reads what staff see and scans the region. (One
# round trip per record from Python would take most of the time budget.)
OPEN_EACH = r"""
async ({kind, items, region}) => {
  const scan = %s;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const text = (selector) => {
    const el = document.querySelector(selector);
    return el ? el.textContent : null;
  };
  const out = [];
  for (const item of items) {
    const list = kind === "conversation" ? "conversation" : "offline-item";
    const link = document.querySelector(`[data-testid=${list}][data-id="${item.id}"]`);
    if (!link) {
      out.push({ id: item.id, error: "not in the list" });
      continue;
    }
    link.click();
    const deadline = Date.now() + 10000;
    let shown = null;
    while (Date.now() < deadline) {
      if (kind === "conversation") {
        const bodies = [...document.querySelectorAll(
          ".chat-thread-pane [data-testid=message][data-author=visitor] .msg-body")].map((e) => e.textContent);
        if (text("[data-testid=visitor-info] [data-testid=visitor-id]") === item.visitor
            && bodies.length >= item.count) {
          const fact = (testid) => text(`[data-testid=visitor-info] [data-testid=${testid}]`);
          shown = { bodies, browser: fact("visitor-browser"), os: fact("visitor-os"),
                    language: fact("visitor-language"), page: fact("visitor-page"),
                    referrer: fact("visitor-referrer") };
        }
      } else if (location.hash.endsWith(`/${item.id}`) && text("[data-testid=offline-meta-email]") === item.email
                 && document.querySelector("[data-testid=offline-body]")) {
        shown = { body: text("[data-testid=offline-body]"), title: text(".offline-title"),
                  email: text("[data-testid=offline-email]"), page: text("[data-testid=offline-page]"),
                  referrer: text("[data-testid=offline-referrer]"), language: text("[data-testid=offline-language]"),
                  browser: text("[data-testid=offline-browser]"),
                  replies: [...document.querySelectorAll(".offline-reply-body")].map((e) => e.textContent) };
      }
      if (shown) break;
      await sleep(10);
    }
    if (!shown) {
      out.push({ id: item.id, error: "did not open" });
      continue;
    }
    out.push({ id: item.id, ...shown, scan: scan({ selector: region, allowStyle: false, withText: false }) });
  }
  return out;
}
""" % SCAN.strip()


def shown_or_unknown(value: str | None) -> str:
    return {"fi": "Finnish", "en": "English", "sv": "Swedish"}.get(value or "", value) if value else "Not known"


def fetch_all(http: httpx.Client, paths: list[str]) -> list[dict[str, Any]]:
    """The API's view of each record (the oracle for what the page shows)."""
    from concurrent.futures import ThreadPoolExecutor

    def get(path: str) -> dict[str, Any]:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(get, paths))


# The same, begun without waiting for it: each console page (a tab of its own, the same
# signed-in agent) opens its share of the records while the others open theirs.
START_EACH = "(arg) => { window.__openEach = (%s)(arg); return true; }" % OPEN_EACH.strip()
CONSOLES = 3  # console pages opening offline messages side by side (one waits on the server while another draws)
SHARE = 25  # records per page per round


def open_each(watches: list[Watch], kind: str, items: list[dict[str, Any]], region: str) -> list[dict[str, Any]]:
    """Open every item in one of the console pages; the results in the items' order."""
    results: list[tuple[Watch, dict[str, Any]]] = []
    for at in range(0, len(items), SHARE * len(watches)):
        begun = []
        for k, watch in enumerate(watches):
            share = items[at + k * SHARE:at + (k + 1) * SHARE]
            if share:
                watch.page.evaluate(START_EACH, {"kind": kind, "items": share, "region": region})
                begun.append(watch)
        for watch in begun:
            results += [(watch, r) for r in watch.page.evaluate("() => window.__openEach")]
    for watch, r in results:
        assert "error" not in r, r
        assert r["scan"]["bad"] == [], f"{kind} {r['id']}: {r['scan']['bad']}"
        watch.check(f"{kind} {r['id']}", r["scan"]["pwned"])
    return [r for _watch, r in results]


def consoles(ctx, watch: Watch, live, path: str) -> list[Watch]:
    """The signed-in console page of `watch` and CONSOLES - 1 more tabs of it, each showing `path`."""
    watches = [watch]
    for _ in range(CONSOLES - 1):
        tab = ctx.new_page()
        watches.append(Watch(tab))
        tab.goto(live.url + "/console" + path)
    # the first page in front again: Playwright's fill and click wait for animation frames,
    # which a tab behind the others gets late
    watch.page.bring_to_front()
    return watches


def post_all(http: httpx.Client, paths: list[str]) -> list[httpx.Response]:
    """POST each path (no body), a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(http.post, paths))


def check_conversations(watches: list[Watch], http: httpx.Client, chats: list[dict[str, Any]]) -> None:
    for watch in watches:
        wait_js(watch.page, "ids => ids.every((id) => "
                "document.querySelector(`[data-testid=conversation][data-id='${id}']`))",
                [c["conversation"] for c in chats], what="every conversation in the list")
    watches[0].scan(".chat-layout", "conversation list")
    details = fetch_all(http, [f"/api/v1/conversations/{c['conversation']}" for c in chats])
    items = []
    for chat, detail in zip(chats, details, strict=True):
        stored = [e["body"] for e in detail["events"] if e["kind"] == "message" and e["author"] == "visitor"]
        assert stored == chat["messages"], f"conversation {chat['conversation']}: the server changed a message"
        items.append({"id": chat["conversation"], "visitor": detail["visitor_info"]["visitor"], "count": len(stored)})
    shown = open_each(watches, "conversation", items, ".chat-layout")
    for chat, detail, seen in zip(chats, details, shown, strict=True):
        conv, info = chat["conversation"], detail["visitor_info"]
        assert seen["bodies"] == chat["messages"], f"conversation {conv}: a message is not shown as its text"
        assert seen["page"] == shown_or_unknown(info["page_url"]), conv
        assert seen["referrer"] == shown_or_unknown(info["referrer"]), conv
        assert seen["language"] == shown_or_unknown(info["language"]), conv
        if info["browser"]:
            assert seen["browser"].startswith(info["browser"]), conv


def search(page, watch: Watch, query: str, expected: int | None) -> str:
    page.get_by_test_id("chat-search").fill(query)
    page.get_by_test_id("chat-search-submit").click()
    status = wait_js(page, "() => { const s = document.querySelector('.chat-search-status');"
                           " return s && s.textContent && !s.textContent.startsWith('Searching') && s.textContent; }",
                     what=f"search results for {query!r}")
    hits = page.get_by_test_id("search-result").count()
    if expected is not None:
        assert hits == expected, (query, status)
    text = watch.scan("[data-testid=search-results]", f"search results for {query!r}", with_text=True)
    if hits:
        assert page.locator("[data-testid=search-results] mark").count() >= hits
    return norm(text)


def check_offline(watches: list[Watch], http: httpx.Client, expected: int) -> list[int]:
    listed = http.get("/api/v1/offline-messages", params={"limit": 1000}).json()
    assert len(listed) == expected
    for watch in watches:
        wait_js(watch.page, "n => document.querySelectorAll('[data-testid=offline-item]').length === n",
                len(listed), what="every offline message in the inbox")
    flat = norm(watches[0].scan("[data-testid=offline-messages]", "offline inbox", with_text=True))
    for m in listed:
        assert norm(m["name"]) in flat and norm(m["preview"]) in flat, m["id"]
    details = fetch_all(http, [f"/api/v1/offline-messages/{m['id']}" for m in listed])
    shown = open_each(watches, "offline", [{"id": d["id"], "email": d["email"]} for d in details],
                      ".offline-layout")
    for detail, seen in zip(details, shown, strict=True):
        mid = detail["id"]
        assert seen["body"] == detail["body"], f"offline message {mid}: the body is not shown as its text"
        assert seen["title"] == detail["name"] and seen["email"] == detail["email"], mid
        assert seen["page"] == shown_or_unknown(detail["page_url"]), mid
        assert seen["referrer"] == shown_or_unknown(detail["referrer"]), mid
        assert seen["language"] == shown_or_unknown(detail["language"]), mid
        assert seen["replies"] == [r["body"] for r in detail["replies"]], mid
    return [d["id"] for d in details if re.search(r" batch\d\d$", d["name"])]


@pytest.mark.timeout(600)  # ~90 s alone; in the suite it shares 2 cores with other browser tests (issue 14)
def test_the_corpus_stays_text_everywhere_staff_look(live, smtp, browser_context_factory):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    smtp.start()
    add_staff(live, "aino@example.org", ["agent", "privacy"], name="Aino")
    http = sign_in(live, "aino@example.org")

    singles, grouped, refusals = leave_forms(live)
    # the staff's answers (their own text is hostile too) go out as email quoting the form
    inbox = http.get("/api/v1/offline-messages", params={"limit": 1000}).json()
    by_batch = {int(m["name"][-2:]): m["id"] for m in inbox if re.search(r" batch\d\d$", m["name"])}
    assert sorted(by_batch) == list(range(len(grouped)))
    for k in range(len(grouped)):
        mid = by_batch[k]
        r = http.post(f"/api/v1/offline-messages/{mid}/reply",
                      json={"body": f"Hello {PAYLOADS[k]}\n\nAnswer {k}: {PAYLOADS[-k - 1][:200]}"})
        assert r.status_code == 201, r.text
    assert refusals.get("email", 0) > len(PAYLOADS) // 2  # most hostile emails are refused, as they should be
    lap("forms")

    ctx = browser_context_factory(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)

    # 1. the conversation list (live), each conversation, its visitor panel; in rounds,
    # each closed afterwards, because the console slows down with 150 open chats in its list
    sign_in_console(page, live, "#/conversations")
    chats = []
    for at in range(0, len(PAYLOADS), GROUP):
        chats_now = start_chats(live, range(at, min(at + GROUP, len(PAYLOADS))))
        check_conversations([watch], http, chats_now)
        closed = post_all(http, [f"/api/v1/conversations/{chat['conversation']}/close" for chat in chats_now])
        assert [r.status_code for r in closed] == [200] * len(chats_now)
        chats += chats_now
    assert len(PAYLOADS) >= 100 and len(chats) == len(PAYLOADS)
    lap("conversations")

    # 2. the history search: every payload behind its marker, then hostile queries
    for g in range((len(PAYLOADS) + GROUP - 1) // GROUP):
        found = search(page, watch, f"zq{g}x", min(GROUP, len(PAYLOADS) - g * GROUP))
        for i in range(g * GROUP, min((g + 1) * GROUP, len(PAYLOADS))):
            assert norm(PAYLOADS[i][:150]) in found, f"search hit {i} does not show the payload as text"
    for query in ("<img src=x onerror=alert(1)>", "javascript:alert(1)", "{{7*7}}", "\u202e"):
        search(page, watch, query, None)
    lap("search")

    # 3. the offline inbox and every message in it
    page.goto(live.url + "/console#/offline")
    watches = consoles(ctx, watch, live, "#/offline")
    batch_ids = check_offline(watches, http, len(singles) + len(grouped))
    assert len(batch_ids) == len(grouped)
    lap("offline")

    # 4. the Register view's subject lookup
    page.goto(live.url + "/console#/register")
    page.get_by_test_id("pv-query").wait_for()
    for query in ("alert(1)", "__pwned", "hostile.example", "7*7", "<script>"):
        page.get_by_test_id("pv-query").fill(query)
        page.get_by_test_id("pv-find").click()
        summary = page.get_by_test_id("pv-summary")
        wait_js(page, "() => { const s = document.querySelector('[data-testid=pv-summary]');"
                      " const r = document.querySelector('[data-testid=pv-results]');"
                      " return s && r && !r.hasAttribute('aria-busy') && /Records found/.test(s.textContent); }",
                what=f"the lookup of {query!r}")
        assert page.get_by_test_id("pv-result").count() > 0, (query, summary.text_content())
        assert page.locator("[data-testid=pv-results] mark").count() > 0
        watch.scan("[data-testid=pv-results]", f"register lookup {query!r}")
    # one chat and one form opened in full
    for kind, shown in (("conversation", "pv-chat-message"), ("offline_message", "pv-offline-name")):
        record = page.get_by_test_id("pv-result").and_(page.locator(f"[data-kind='{kind}']")).first
        record.get_by_test_id("pv-open").click()
        record.get_by_test_id(shown).first.wait_for()
        watch.scan("[data-testid=pv-results]", f"register record {kind}")
    lap("register")

    # 5. the printable access copy of everything, opened as a page
    ids = {
        "conversations": [c["conversation"] for c in chats],
        "offline_messages": sorted(m["id"] for m in inbox),
        "emails": list(live.call(_mail_ids, live)),
    }
    r = http.post("/api/v1/privacy/export", params={"format": "html", "lang": "en"}, json=ids)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    copy_page = ctx.new_page()
    copy_watch = Watch(copy_page)
    copy_page.set_content(r.text)
    copy_page.wait_for_timeout(500)  # time for any onerror / onload / ontoggle to fire
    text = norm(copy_watch.scan("body", "access copy", with_text=True))
    missing = [i for i, p in enumerate(PAYLOADS) if norm(p) not in text]
    assert missing == [], f"payloads not in the access copy as text: {missing}"
    lap("export")

    # 6. each reply's email, its HTML part opened as a page
    mails = smtp.wait_for(len(grouped))
    assert len(mails) == len(grouped)
    mail_page = ctx.new_page()
    mail_watch = Watch(mail_page)
    seen_in_mail = set()
    for _rcpt, msg in mails:
        html = msg.get_body(("html",)).get_content()
        mail_page.set_content(html)
        mail_page.wait_for_timeout(100)
        seen_in_mail.add(norm(mail_watch.scan("body", f"email to {msg['To']}", allow_style=True, with_text=True)))
    for out in grouped:
        assert any(all(norm(p) in t for p in out["payloads"]) for t in seen_in_mail), out["form"]["name"]
    mail_page.wait_for_timeout(300)
    mail_watch.check("the emails, after a while")
    lap("email")

    for w in watches:
        w.check("the console, at the end")
    copy_watch.check("the access copy, at the end")
    print(f"\n{len(PAYLOADS)} payloads, {len(chats)} conversations, {len(singles) + len(grouped)} offline "
          f"messages ({json.dumps(refusals)} refused fields), {len(mails)} emails; seconds: {timings}")


async def _mail_ids(live) -> list[int]:
    async with live.rt.db.reader() as s:
        return list((await s.execute(select(MailOutbox.id))).scalars())


def test_console_csp_blocks_inline_script(live):
    with live.client() as client:
        for path in ("/console", "/console/", "/privacy", "/demo"):
            r = client.get(path)
            if r.status_code == 404:
                continue
            csp = r.headers["content-security-policy"]
            directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
            script = directives.get("script-src", directives.get("default-src"))
            assert script == ["'self'"], (path, csp)
            for forbidden in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "data:", "*"):
                assert forbidden not in csp.split("script-src", 1)[1].split(";")[0], (path, csp)
            assert directives.get("object-src") == ["'none'"] and directives.get("base-uri") == ["'none'"]
            assert "script-src-attr" not in directives and "script-src-elem" not in directives
            assert r.headers["x-content-type-options"] == "nosniff"
        r = client.get("/console")
        assert r.status_code == 200
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]



# -- issue 8's visitor-controlled fields ------------------------------------------------------------------
# A file's name (multipart filename), the rating comment, the transcript email address and the
# department chosen in the message frame. Seen in the console's conversation view, the printable
# transcript (staff "Print transcript"), the transcript email and the HTML access copy.
VISITOR_HEADER = "X-Jutella-Visitor"
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png_bytes() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def upload_named(http: httpx.Client, token: str, data: bytes, name: str) -> httpx.Response:
    """The payload as the multipart file name, byte for byte (quotes and
    backslashes escaped as a quoted string allows; a line break cannot be in
    a header line, so it goes as a space)."""
    raw = name.replace("\r", " ").replace("\n", " ").encode("utf-8")
    raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    boundary = b"hostileBoundary1x2y3z"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + raw
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n--" + boundary + b"--\r\n")
    return http.post("/api/v1/public/attachments", content=body, headers={
        VISITOR_HEADER: token, "Content-Type": "multipart/form-data; boundary=" + boundary.decode()})


def comment_groups(limit: int = 2000) -> list[str]:
    """Every payload in some rating comment (at most 2000 characters each; the long ones cut)."""
    out: list[str] = []
    for p in PAYLOADS:
        p = p[:limit - 10]
        if out and len(out[-1]) + 2 + len(p) <= limit:
            out[-1] += "\n\n" + p
        else:
            out.append(p)
    return out


# One evaluate opens each conversation by its address and reads the thread.
OPEN_THREADS = r"""
async ({items}) => {
  const scan = %s;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const out = [];
  for (const item of items) {
    location.hash = `#/conversations/${item.id}`;
    const deadline = Date.now() + 10000;
    let shown = null;
    while (Date.now() < deadline && !shown) {
      const thread = document.querySelector(`.thread[data-conversation="${item.id}"]`);
      const files = thread ? [...thread.querySelectorAll("[data-testid=attachment]")] : [];
      const rating = thread && thread.querySelector("[data-testid=conversation-rating]");
      if (files.length >= item.files && rating && !rating.hidden) {
        shown = {
          files: files.map((a) => {
            const img = a.querySelector("img");
            return { text: img ? img.alt : a.textContent, download: a.getAttribute("download"), image: !!img };
          }),
          bodies: [...thread.querySelectorAll("[data-testid=message][data-author=visitor] .msg-body")]
            .filter((b) => !b.querySelector("[data-testid=attachment]")).map((b) => b.textContent),
          rating: rating.dataset.value,
          comment: (rating.querySelector(".rating-comment") || {}).textContent,
        };
      } else {
        await sleep(20);
      }
    }
    if (!shown) {
      out.push({ id: item.id, error: "did not open" });
      continue;
    }
    out.push({ id: item.id, ...shown,
               scan: scan({ selector: ".chat-layout", allowStyle: false, withText: false, allowThumb: true }) });
  }
  return out;
}
""" % SCAN.strip()


def test_issue8_fields_stay_text_where_staff_look(live, smtp, browser_context_factory):
    from jutella.chat import actions as chat_actions
    from jutella.chat.metadata import Metadata

    started = time.monotonic()
    smtp.start()
    aino = add_staff(live, "aino@example.org", ["agent", "privacy"], name="Aino")
    http = sign_in(live, "aino@example.org")
    public = live.client()

    # a hostile department choice is refused as malformed, the socket carries on
    v, _ = visitor(live)
    for value in [*PAYLOADS, -1, 0, 2**63, 10**30, 1.5, True, [], {}]:
        cid = v.message("hei", department=value)
        frame = v.until(lambda f, cid=cid: f["type"] in ("ack", "error") and f.get("client_id") == cid)
        assert (frame["type"], frame.get("code")) == ("error", "malformed"), (value, frame)
    v.close()

    # one chat per batch of payloads: the batch as its message, each payload as a file's name
    # (every fourth an image, the rest PDFs); then closed, rated with a comment, and its
    # transcript asked by email (most hostile addresses are refused, as they should be)
    groups = batches()
    comments = comment_groups()
    hostile_emails = [p for p in PAYLOADS if p.endswith("@hostile.example")] + [
        "'onfocus='window.__pwned=1'autofocus='@hostile.example", "`${window.__pwned=1}`@hostile.example",
        "x{{7*7}}y@hostile.example", "a'/onload='window.__pwned=1'/@hostile.example"]
    png = png_bytes()
    chats: list[dict[str, Any]] = []
    accepted_emails: list[str] = []
    refused_emails = 0
    for k in range(max(len(groups), len(comments))):
        group = groups[k] if k < len(groups) else []
        message = joined(group) if group else f"chat {k}"
        v_row, token = live.call(chat_actions.new_visitor, live.rt)
        posted = live.call(chat_actions.post_visitor_message, live.rt, visitor_id=v_row.id, client_id="c1",
                           body=message, meta=Metadata())
        conv = posted.conversation.id
        files = []
        for i in group:
            r = upload_named(public, token, png if i % 4 == 0 else PDF_BYTES, PAYLOADS[i])
            assert r.status_code == 201, (i, r.text)
            files.append(r.json())
        live.call(chat_actions.post_agent_message, live.rt, agent_id=aino, conversation_id=conv, client_id="a1",
                  body="Kiitos, katsotaan.")  # a transcript is mailed only for a chat staff answered
        assert http.post(f"/api/v1/conversations/{conv}/close").status_code == 200
        comment = comments[k] if k < len(comments) else PAYLOADS[k % len(PAYLOADS)][:2000]
        r = public.post("/api/v1/public/rating", headers={VISITOR_HEADER: token},
                        json={"conversation": conv, "rating": 1 + k % 5, "comment": comment})
        assert r.status_code == 200, r.text
        for address in [*(PAYLOADS[i] for i in group), hostile_emails[k % len(hostile_emails)]]:
            r = public.post("/api/v1/public/transcript/email", headers={VISITOR_HEADER: token},
                            json={"conversation": conv, "email": address[:1000], "lang": "en"})
            if r.status_code == 202:
                accepted_emails.append(address)
            else:
                assert r.status_code in (400, 422), r.text
                refused_emails += 1
        chats.append({"conversation": conv, "message": message, "files": files, "rating": 1 + k % 5,
                      "comment": comment.strip(), "payloads": group})
    assert sorted(i for c in chats for i in c["payloads"]) == list(range(len(PAYLOADS)))
    names = [f["name"] for c in chats for f in c["files"]]
    # the names kept their markup (a path or a control character goes; "<", quotes and handlers stay)
    assert sum("onerror=alert(1)>" in n for n in names) >= 10 and sum('"' in n for n in names) >= 10
    assert len(accepted_emails) >= len(chats) and refused_emails > len(PAYLOADS) // 2
    sent = time.monotonic() - started

    ctx = browser_context_factory(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    sign_in_console(page, live, "#/conversations")

    # 1. the console's conversation view: the files (a link named by the file, or a thumbnail
    # with the name as its alt text), the message, the rating and its comment
    details = fetch_all(http, [f"/api/v1/conversations/{c['conversation']}" for c in chats])
    items = [{"id": c["conversation"], "files": len(c["files"])} for c in chats]
    shown = []
    for at in range(0, len(items), 10):
        shown += page.evaluate(OPEN_THREADS, {"items": items[at:at + 10]})
    for chat, detail, seen in zip(chats, details, shown, strict=True):
        conv = chat["conversation"]
        assert "error" not in seen, seen
        assert seen["scan"]["bad"] == [], f"conversation {conv}: {seen['scan']['bad']}"
        watch.check(f"conversation {conv}", seen["scan"]["pwned"])
        assert detail["rating"]["rating_comment"] == chat["comment"]
        assert [f["text"] for f in seen["files"]] == [f["name"] for f in chat["files"]], conv
        assert all(f["download"] == f["text"] for f in seen["files"] if not f["image"]), conv
        assert [f["image"] for f in seen["files"]] == [f["type"] == "image/png" for f in chat["files"]], conv
        assert seen["bodies"] == [chat["message"].strip()], conv
        assert seen["rating"] == str(chat["rating"]) and seen["comment"] == f" – {chat['comment']}", conv
    console_done = time.monotonic()

    # 2. the staff's printable transcript (served page, its own CSP) and the visitor's saved copy
    for chat in chats:
        conv = chat["conversation"]
        response = page.goto(f"{live.url}/api/v1/conversations/{conv}/transcript?lang=en")
        assert response.status == 200
        page.get_by_test_id("transcript").wait_for()
        text = norm(watch.scan("[data-testid=transcript]", f"printed transcript {conv}", with_text=True))
        for i in chat["payloads"]:
            assert norm(PAYLOADS[i]) in text, f"transcript {conv}: payload {i} is not shown as text"
        for f in chat["files"]:
            assert norm(f"[Attachment: {f['name']}]") in text, f"transcript {conv}: file {f['name']!r}"
    print_done = time.monotonic()

    # 3. the transcript emails' HTML parts, opened as pages
    mails = smtp.wait_for(len(accepted_emails))
    assert len(mails) == len(accepted_emails)
    mail_page = ctx.new_page()
    mail_watch = Watch(mail_page)
    seen_in_mail = []
    for _rcpt, msg in mails:
        mail_page.set_content(msg.get_body(("html",)).get_content())
        mail_page.wait_for_timeout(50)
        seen_in_mail.append(norm(mail_watch.scan("body", f"transcript mail to {msg['To']}", allow_style=True,
                                                 with_text=True)))
    for chat in chats:
        for f in chat["files"]:
            assert any(norm(f["name"]) in t for t in seen_in_mail), f["name"]
        for i in chat["payloads"]:
            assert any(norm(PAYLOADS[i]) in t for t in seen_in_mail), i
    mail_page.wait_for_timeout(300)
    mail_watch.check("the transcript mails, after a while")

    # 4. the HTML access copy: files, rating comments and transcript addresses
    ids = {"conversations": [c["conversation"] for c in chats], "offline_messages": [],
           "emails": list(live.call(_mail_ids, live))}
    r = http.post("/api/v1/privacy/export", params={"format": "html", "lang": "en"}, json=ids)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    copy_page = ctx.new_page()
    copy_watch = Watch(copy_page)
    copy_page.set_content(r.text)
    copy_page.wait_for_timeout(300)
    text = norm(copy_watch.scan("body", "access copy", with_text=True))
    for name in names:
        assert norm(name) in text, f"file name not in the access copy as text: {name!r}"
    for chat in chats:
        assert norm(chat["comment"]) in text, f"rating comment of {chat['conversation']} not in the access copy"
    for address in accepted_emails:
        assert norm(address) in text, f"transcript address not in the access copy: {address!r}"
    copy_watch.check("the access copy, at the end")

    # 5. the Register view finds the chats by their transcript addresses and rating comments
    page.goto(live.url + "/console#/register")
    for query in ("hostile.example", "__pwned", "onerror=alert"):
        page.get_by_test_id("pv-query").fill(query)
        page.get_by_test_id("pv-find").click()
        wait_js(page, "() => { const s = document.querySelector('[data-testid=pv-summary]');"
                      " const r = document.querySelector('[data-testid=pv-results]');"
                      " return s && r && !r.hasAttribute('aria-busy') && /Records found/.test(s.textContent); }",
                what=f"the lookup of {query!r}")
        assert page.locator("[data-testid=pv-result][data-kind=conversation]").count() > 0, query
        watch.scan("[data-testid=pv-results]", f"register lookup {query!r}")
    record = page.locator("[data-testid=pv-result][data-kind=conversation]").first
    record.get_by_test_id("pv-open").click()
    record.get_by_test_id("pv-chat-message").first.wait_for()
    watch.scan("[data-testid=pv-results]", "register record with files and a rating", allow_thumb=True)
    watch.check("the console, at the end")
    end = time.monotonic()
    print(f"\n{len(chats)} chats, {len(names)} files, {len(accepted_emails)} transcript mails "
          f"({refused_emails} addresses refused); seconds: sending {sent:.1f}, console "
          f"{console_done - started - sent:.1f}, print {print_done - console_done:.1f}, "
          f"mail+copy {end - print_done:.1f}")
