"""Opening hours over real HTTP and WebSockets with a fake clock (docs/hours.md):
the widget is told the service is closed and when it opens next; a closed
department is not offered; hours_strict decides whether online agents get
chats outside the hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from jutella.chat.presence import publish_presence
from jutella.store.models import AuditEntry

from tests.chat_clients import agent, visitor
from tests.helpers import add_staff, error_code, sign_in

SATURDAY_NOON = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # 12:00 in Helsinki
MONDAY_TEN = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # 10:00 in Helsinki
WEEKDAYS = {str(d): [["09:00", "16:00"]] for d in range(5)}


def staff(live):
    add_staff(live, "ilona@example.org", ["admin"], name="Ilona")
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    return sign_in(live, "ilona@example.org"), sign_in(live, "aino@example.org")


def test_closed_outside_hours_open_inside_and_an_exception_day(live, clock):
    clock.set(SATURDAY_NOON)
    admin, aino = staff(live)
    a, _ = agent(live, aino)  # an agent online on Saturday
    r = admin.put("/api/v1/hours", json={"department_id": None, "weekly": WEEKDAYS, "exceptions": []})
    assert r.status_code == 200, r.text

    v, welcome = visitor(live)
    assert welcome["agents_online"] is False  # strict (the default): no chats outside the hours
    assert welcome["closed"] == {"next": "2026-12-07T09:00:00+02:00", "tz": "Europe/Helsinki"}
    assert live.client().get("/api/v1/public/availability").json() == {
        "agents_online": False, "closed": {"next": "2026-12-07T09:00:00+02:00", "tz": "Europe/Helsinki"}}

    clock.set(MONDAY_TEN)  # the clock reaches the opening: the widget already connected hears it
    live.call(publish_presence, live.rt)
    presence = v.until(lambda f: f["type"] == "presence" and f["agents_online"])
    assert "closed" not in presence
    _, welcome = visitor(live)
    assert welcome["agents_online"] is True and "closed" not in welcome
    admin = sign_in(live, "ilona@example.org")  # two days later: a new session

    # Monday is a holiday after all: closed all day, open again on Tuesday
    r = admin.put("/api/v1/hours", json={"department_id": None, "weekly": WEEKDAYS,
                                         "exceptions": [{"date": "2026-12-07", "hours": [], "note": "Holiday"}]})
    assert r.status_code == 200, r.text
    presence = v.until(lambda f: f["type"] == "presence" and not f["agents_online"])
    assert presence["closed"]["next"] == "2026-12-08T09:00:00+02:00"

    # removing the hours: always open again, as before there were hours
    assert admin.put("/api/v1/hours", json={"department_id": None}).status_code == 200
    assert v.until(lambda f: f["type"] == "presence" and f["agents_online"])
    assert admin.get("/api/v1/hours").json()["schedules"] == []


def test_a_closed_department_is_not_offered_and_refused(live, clock):
    clock.set(MONDAY_TEN)
    admin, aino = staff(live)
    bertta_id = add_staff(live, "bertta@example.org", ["agent"], name="Bertta")
    aino_id = admin.get("/api/v1/agents/load").json()[0]["id"]
    depts = {}
    for name, member in (("Jäsenyys", aino_id), ("Tekniikka", bertta_id)):
        depts[name] = admin.post("/api/v1/departments", json={"name": name}).json()["id"]
        admin.put(f"/api/v1/departments/{depts[name]}/members", json={"account_ids": [member]})
    agent(live, aino)
    agent(live, sign_in(live, "bertta@example.org"))
    _, welcome = visitor(live)
    assert [d["name"] for d in welcome["departments"]] == ["Jäsenyys", "Tekniikka"]
    # Tekniikka answers only in the afternoon
    r = admin.put("/api/v1/hours", json={"department_id": depts["Tekniikka"], "weekly": {"0": [["13:00", "16:00"]]}})
    assert r.status_code == 200, r.text
    v, welcome = visitor(live)
    assert welcome["departments"] == [] and welcome["agents_online"] is True and "closed" not in welcome
    v.message("Wifi ei toimi", department=depts["Tekniikka"])
    assert v.until(lambda f: f["type"] == "error")["code"] == "department_unavailable"


@pytest.mark.parametrize("strict", [True, False])
def test_hours_strict_decides_whether_online_agents_get_chats(live, clock, strict):
    live.rt.settings = live.rt.settings.model_copy(update={"hours_strict": strict, "auto_assign": True})
    clock.set(SATURDAY_NOON)
    admin, aino = staff(live)
    assert admin.put("/api/v1/hours", json={"weekly": WEEKDAYS}).status_code == 200
    a, _ = agent(live, aino)
    live.call(publish_presence, live.rt)
    v, welcome = visitor(live)
    assert welcome["agents_online"] is (not strict)
    assert ("closed" in welcome) is strict
    v.message("Hei?")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    v.send(type="ping")
    frames = v.until(lambda f: f["type"] == "pong") and v.frames
    joined = [f for f in frames if f["type"] == "event" and f.get("kind") == "state" and f["conversation"] == conv]
    assert bool(joined) is (not strict)  # auto-assigned only when the hours do not forbid it


def test_hours_are_validated_audited_and_for_admins_only(live, clock):
    admin, aino = staff(live)
    r = admin.put("/api/v1/hours", json={"weekly": {"0": [["16:00", "09:00"]]}})
    assert r.status_code == 400 and error_code(r) == "hours_invalid"
    assert "09:00 is not after 16:00" in r.text
    r = admin.put("/api/v1/hours", json={"weekly": {"0": [["09:00", "12:00"], ["11:00", "13:00"]]}})
    assert r.status_code == 400 and "overlap" in r.text
    assert aino.put("/api/v1/hours", json={"weekly": WEEKDAYS}).status_code == 403
    assert admin.put("/api/v1/hours", json={"department_id": 999, "weekly": WEEKDAYS}).status_code == 404
    assert admin.put("/api/v1/hours", json={"weekly": WEEKDAYS}).status_code == 200

    async def actions(s):
        return list((await s.execute(select(AuditEntry.action))).scalars())
    assert "hours.change" in live.call(_read, live, actions)


async def _read(live, fn):
    async with live.rt.db.reader() as s:
        return await fn(s)
