"""Issue 18 item 2, site profiles (docs/sites.md): a colour whose text would
not read is refused with a message saying why; texts per language and the
departments offered reach the widget's frame (and the loader its launcher's
look) for that site only, the others getting the default; a logo is
re-encoded and served by jutella; each conversation and offline message
records its site, and the console's lists filter by it; changes audited."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from jutella.chat import departments
from jutella.store.models import AuditEntry, Conversation, OfflineMessage

from tests.chat_clients import visitor
from tests.helpers import add_staff, error_code, put_on_duty, sign_in
from .test_attachments import jpeg_with_gps

SITE = "https://asunnot.example.org"
OTHER = "https://tapahtumat.example.org"
ENV = "https://env.example.org"


def frame_config(live) -> dict:
    html = live.client().get("/widget/frame").text
    return json.loads(re.search(r'<script type="application/json" id="jutella-config">(.*?)</script>', html,
                                re.S).group(1))


def form(page: str) -> dict:
    return {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Onko vapaita asuntoja?",
            "lang": "fi", "page": page, "referrer": "", "browser_key": "b-" + page[-12:]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": ENV}])
def test_site_profiles_reach_their_own_site_and_each_chat_records_its_site(live):
    admin_id = add_staff(live, "admin@example.org", ["admin"], name="Admin")
    aino = add_staff(live, "aino@example.org", ["agent"], name="Aino")
    admin, agent = sign_in(live, "admin@example.org"), sign_in(live, "aino@example.org")
    housing = live.call(departments.create, live.rt, actor_id=admin_id, name="Asunnot").id
    events = live.call(departments.create, live.rt, actor_id=admin_id, name="Tapahtumat").id
    for dept, email in ((housing, "asunnot@example.org"), (events, "tapahtumat@example.org")):
        staff = add_staff(live, email, ["agent"])
        live.call(departments.set_members, live.rt, actor_id=None, department_id=dept, account_ids=[staff, aino])
        put_on_duty(live, staff, email)
    sites = admin.post("/api/v1/sites", json={"origin": SITE, "name": "Asunnot"}).json()["sites"]
    site_id = next(s["id"] for s in sites if s["origin"] == SITE)
    other_id = next(s["id"] for s in admin.post("/api/v1/sites", json={"origin": OTHER}).json()["sites"]
                    if s["origin"] == OTHER)
    url = f"/api/v1/sites/{site_id}/profile"

    # a colour text would not read on: refused, with the reason, in the caller's language; nothing stored
    r = admin.put(url, json={"colour": "#ffeb3b"})
    assert r.status_code == 400 and error_code(r) == "colour_contrast"
    assert "#ffeb3b" in r.json()["error"]["message"] and "3:1" in r.json()["error"]["message"]
    r = admin.put(url, json={"colour": "#ffeb3b"}, headers={"Accept-Language": "fi"})
    assert "liian vaalea" in r.json()["error"]["message"]
    assert admin.put(url, json={"colour": "vihreä"}).status_code == 400
    assert agent.put(url, json={"colour": "#0b6e4f"}).status_code == 403

    # a profile of its own: colour (white text reads on it), left, texts per language, one department
    r = admin.put(url, json={
        "name": "Asuntopalvelu", "colour": "#0B6E4F", "position": "left", "departments": [housing],
        "texts": {"launcher": {"fi": "Kysy asunnoista", "en": "Ask about housing"},
                  "header": {"fi": "Asuntopalvelu", "en": "Housing service", "sv": ""},
                  "greeting": {"fi": "Hei! Kysy vapaista asunnoista.", "en": "Hi! Ask about free flats."},
                  "offline": {"fi": "Jätä viesti, vastaamme arkisin."}}})
    assert r.status_code == 200, r.text
    mine = next(s for s in r.json()["sites"] if s["id"] == site_id)
    assert mine["name"] == "Asuntopalvelu"
    assert mine["profile"]["colour"] == "#0b6e4f" and mine["profile"]["text_colour"] == "#ffffff"
    assert mine["profile"]["texts"]["header"] == {"fi": "Asuntopalvelu", "en": "Housing service"}  # empty: default
    # a mid-grey: black text reads on it (white would not), so it is taken with black
    r = admin.put("/api/v1/sites/default/profile", json={"colour": "#858585",
                                                        "texts": {"greeting": {"en": "Welcome to the union!"}}})
    assert r.status_code == 200 and r.json()["default_profile"]["text_colour"] == "#000000"

    # the frame: the site's profile under its origin, the default's for the rest
    config = frame_config(live)
    own, default = config["sites"][SITE], config["sites"][""]
    assert own["colour"] == {"bg": "#0b6e4f", "fg": "#ffffff", "hover": own["colour"]["hover"], "text": "#0b6e4f"}
    assert own["position"] == "left" and own["departments"] == [housing]
    assert own["texts"]["greeting"] == {"fi": "Hei! Kysy vapaista asunnoista.", "en": "Hi! Ask about free flats."}
    assert own["texts"]["offline"] == {"fi": "Jätä viesti, vastaamme arkisin."}
    assert default["colour"]["bg"] == "#858585" and default["colour"]["fg"] == "#000000"
    assert default["texts"] == {"greeting": {"en": "Welcome to the union!"}} and "departments" not in default
    assert OTHER not in config["sites"] and ENV not in config["sites"]  # no profile of their own: the default
    # the loader: the launcher's look for that site, a few bytes
    loader = live.client().get("/widget.js").text
    assert '"https://asunnot.example.org":["#0b6e4f","#ffffff","l",{"fi":"Kysy asunnoista"' in loader
    # an unknown department is refused
    assert admin.put(url, json={"departments": [999999]}).status_code == 400

    # a logo: re-encoded (no EXIF, no comment), shrunk, served by jutella; not an SVG
    r = admin.put(f"/api/v1/sites/{site_id}/logo", content=jpeg_with_gps((800, 400)),
                  headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    logo = next(s for s in r.json()["sites"] if s["id"] == site_id)["profile"]["logo"]
    assert logo.startswith(f"/widget/logo/site:{site_id}?v=")
    served = live.client().get(logo)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert b"SecretCam" not in served.content and b"where-i-live" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (256, 128)
    assert frame_config(live)["sites"][SITE]["logo"] == logo
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert admin.put(f"/api/v1/sites/{site_id}/logo", content=svg).status_code == 415
    assert live.client().get("/widget/logo/site:999").status_code == 404

    # each conversation and offline message records its site: the site's own, none for the others
    for origin in (SITE, OTHER, ENV):
        v, _ = visitor(live, origin=origin, page=f"{origin}/ota-yhteytta")
        if origin == SITE:  # a department its widget does not offer: refused, nothing stored
            v.message("Tapahtumista", department=events)
            assert v.until(lambda f: f["type"] == "error")["code"] == "department_unavailable"
        v.message(f"Hei {origin}", **({"department": events} if origin == OTHER else {}))
        v.until(lambda f: f["type"] == "ack")
        v.close()
        assert live.client().post("/api/v1/public/offline-messages", json=form(f"{origin}/lomake")).status_code == 201

    async def recorded():
        async with live.rt.db.reader() as s:
            convs = (await s.execute(select(Conversation.page_url, Conversation.site_id))).all()
            forms = (await s.execute(select(OfflineMessage.page_url, OfflineMessage.site_id))).all()
        return {p.split("/")[2]: sid for p, sid in convs}, {p.split("/")[2]: sid for p, sid in forms}

    convs, forms = live.call(recorded)
    assert len(convs) == 3
    expected = {"asunnot.example.org": site_id, "tapahtumat.example.org": other_id, "env.example.org": None}
    assert convs == expected and forms == expected

    # the console's lists filter by site (0: the default's); agents read the sites' names for the filter
    assert [s["id"] for s in agent.get("/api/v1/sites/choices").json()] == sorted([site_id, other_id])
    listed = agent.get("/api/v1/conversations", params={"site": site_id}).json()
    assert [c["site_id"] for c in listed] == [site_id]
    assert [c["site_id"] for c in agent.get("/api/v1/conversations", params={"site": 0}).json()] == [None]
    assert len(agent.get("/api/v1/conversations").json()) == 3
    inbox = agent.get("/api/v1/offline-messages", params={"site": other_id}).json()
    assert [m["site_id"] for m in inbox] == [other_id]
    assert [m["site_id"] for m in agent.get("/api/v1/offline-messages", params={"site": 0}).json()] == [None]

    # audited: the profile changes, by site id, without their texts
    async def audited():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry.action, AuditEntry.target_id, AuditEntry.detail).where(
                AuditEntry.action.like("site.%")).order_by(AuditEntry.id))).all())
    rows = [(a, t) for a, t, _ in live.call(audited)]
    assert rows[2:] == [("site.profile", str(site_id)), ("site.rename", str(site_id)), ("site.profile", None),
                        ("site.logo", str(site_id))]
    profile_detail = live.call(audited)[2][2]
    assert profile_detail["fields"] == ["colour", "departments", "launcher", "texts"]
    assert "Kysy" not in str(live.call(audited))


def loader_sites(live) -> dict:
    """The loader's per-origin launcher data (``SITES``), as a page gets it."""
    text = live.client().get("/widget.js").text
    return json.loads(re.search(r"const SITES = (\{.*?\});\n", text).group(1))


def hidden(rows: dict, origin: str) -> bool:
    row = rows.get(origin) or rows.get("") or []
    return len(row) > 4 and row[4] == 1


@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": ENV}])
def test_a_profile_hides_the_launcher_while_closed_and_shows_it_when_open(live, clock):
    """Issue 18 item 1: "outside hours ... or, where the site's profile says
    so, hides the launcher". The loader tells that site's pages to hide it
    while every queue is closed, not while open; other sites keep theirs."""
    from .test_hours import MONDAY_TEN, SATURDAY_NOON, WEEKDAYS
    clock.set(SATURDAY_NOON)
    add_staff(live, "admin@example.org", ["admin"], name="Admin")
    admin = sign_in(live, "admin@example.org")
    site_id = next(s["id"] for s in admin.post("/api/v1/sites", json={"origin": SITE}).json()["sites"]
                   if s["origin"] == SITE)
    other_id = next(s["id"] for s in admin.post("/api/v1/sites", json={"origin": OTHER}).json()["sites"]
                    if s["origin"] == OTHER)
    assert admin.put("/api/v1/hours", json={"department_id": None, "weekly": WEEKDAYS}).status_code == 200
    assert not any(hidden(loader_sites(live), o) for o in (SITE, OTHER, ENV))  # the built-in: the form

    assert admin.put(f"/api/v1/sites/{site_id}/profile", json={"when_closed": "maybe"}).status_code == 422
    r = admin.put(f"/api/v1/sites/{site_id}/profile", json={"when_closed": "hide"})
    assert r.status_code == 200, r.text
    assert next(s for s in r.json()["sites"] if s["id"] == site_id)["profile"]["when_closed"] == "hide"
    # another site with a look of its own, following the default (the offline form)
    assert admin.put(f"/api/v1/sites/{other_id}/profile", json={"colour": "#0b6e4f"}).status_code == 200

    rows = loader_sites(live)  # Saturday: closed
    assert hidden(rows, SITE)
    assert not hidden(rows, OTHER) and not hidden(rows, ENV)
    clock.set(MONDAY_TEN)  # open: the launcher is back on the next page load
    rows = loader_sites(live)
    assert not hidden(rows, SITE) and not hidden(rows, OTHER) and not hidden(rows, ENV)

    # the default profile hides it: every site following it, not the one that says "form"
    admin = sign_in(live, "admin@example.org")  # two days on: a new session
    assert admin.put("/api/v1/sites/default/profile", json={"when_closed": "hide"}).status_code == 200
    assert admin.put(f"/api/v1/sites/{other_id}/profile",
                     json={"colour": "#0b6e4f", "when_closed": "form"}).status_code == 200
    assert admin.put(f"/api/v1/sites/{site_id}/profile", json={}).status_code == 200
    clock.set(SATURDAY_NOON + timedelta(days=7))
    rows = loader_sites(live)
    assert hidden(rows, SITE) and hidden(rows, ENV) and not hidden(rows, OTHER)

    async def audited():
        async with live.rt.db.reader() as s:
            return list((await s.execute(select(AuditEntry.detail).where(
                AuditEntry.action == "site.profile"))).scalars())
    assert {"fields": ["when_closed"], "origin": SITE, "colour": None} in live.call(audited)
