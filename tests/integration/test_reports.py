"""Reports that keep no personal data (issue 18 item 4, docs/reports.md).

The aggregates are written by the close, the offline form and the rating
themselves (chat/reports.py), summed in SQL: on SQLite and PostgreSQL. Each
figure below is counted by hand from the scenario (Helsinki is UTC+2 in
January)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from jutella.chat import actions as chat
from jutella.chat import attachments as att
from jutella.chat import offline, reports
from jutella.chat.metadata import collect
from jutella.store.models import Conversation

from tests.conftest import BOTH
from tests.helpers import add_staff, run_cli, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    """SQL aggregation: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param


DAY = datetime(2026, 1, 14, tzinfo=UTC)
SECRETS = ["Liisa Virtanen", "liisa.virtanen@example.fi", "opiskelijanumero 1234567", "Matti Meikäläinen",
           "matti@example.fi", "vuokrasopimus umpeutuu"]


def one_chat(p, clock, *, start: datetime, text: str, agent: int | None = None, answer: float | None = None,
             close: float, by: str = "agent", rating: int | None = None) -> int:
    """A chat that starts at ``start`` with a visitor's ``text``; ``agent``
    answers after ``answer`` seconds (None: nobody does); closed after
    ``close`` seconds; rated after the close."""
    rt = p.rt
    clock.set(start)
    v, _ = p.call(chat.new_visitor, rt)
    posted = p.call(chat.post_visitor_message, rt, visitor_id=v.id, client_id="c1", body=text,
                    meta=collect("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "https://site.example/", None, "fi"))
    conv = posted.conversation.id
    if answer is not None:
        clock.set(start + timedelta(seconds=answer))
        p.call(chat.post_agent_message, rt, agent_id=agent, conversation_id=conv, client_id="a1",
               body="Hei! Miten voin auttaa?")
    clock.set(start + timedelta(seconds=close))
    p.call(chat.close, rt, conversation_id=conv, by=by, agent_id=agent if by == "agent" else None)
    if rating is not None:
        p.call(att.rate, rt, visitor_id=v.id, conversation_id=conv, rating=rating, comment=SECRETS[2])
    return conv


def scenario(p, clock) -> dict[str, int]:
    """Four chats on 14 January (Helsinki), one at 23:30 UTC that is 15
    January in Helsinki, and one offline message."""
    aino = add_staff(p, "aino@example.org", ["agent"], name="Aino Agentti")
    bert = add_staff(p, "bert@example.org", ["agent"], name="Bert Agentti")
    h = timedelta(hours=1)
    ids = {
        "a": one_chat(p, clock, start=DAY + 8 * h, text=SECRETS[0], agent=aino, answer=10, close=300, rating=5),
        "b": one_chat(p, clock, start=DAY + 9 * h, text=SECRETS[1], agent=aino, answer=45, close=1200, rating=4),
        "c": one_chat(p, clock, start=DAY + 10 * h, text=SECRETS[5], agent=bert, answer=100, close=4200),
        "d": one_chat(p, clock, start=DAY + 11 * h, text=SECRETS[3], close=120, by="visitor"),
        "e": one_chat(p, clock, start=DAY + timedelta(hours=23, minutes=30), text=SECRETS[4], agent=bert, answer=20,
                      close=60),
    }
    clock.set(DAY + 12 * h)
    p.call(offline.submit, p.rt, name=SECRETS[0], email=SECRETS[1], message=SECRETS[5], reason="no_agent",
           meta=collect(None, "https://site.example/", None, "fi"))
    return {"aino": aino, "bert": bert, **ids}


def report(p, start="2026-01-13", end="2026-01-15", **kw):
    first, last = reports.parse_range(start, end, DAY.date())
    return p.call(reports.daily, p.rt, start=first, end=last, **kw)


def test_counts_and_percentiles_match_a_hand_count_and_the_day_is_helsinkis(in_process, clock):
    scenario(in_process, clock)
    r = report(in_process, per_agent=True)
    days = {d["day"]: d for d in r["days"]}
    assert list(days) == ["2026-01-13", "2026-01-14", "2026-01-15"]  # every day, empty ones too
    assert days["2026-01-13"]["chats"] == 0 and days["2026-01-13"]["first_answer"]["median"] is None
    d14 = days["2026-01-14"]
    assert (d14["chats"], d14["answered"], d14["missed"], d14["offline_messages"], d14["messages"]) == (4, 3, 1, 1, 7)
    assert d14["ratings"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    # first answers 10 s, 45 s, 100 s: median the 2nd (<= 60 s), 90th percentile the 3rd (<= 2 min)
    assert d14["first_answer"]["buckets"] == [1, 0, 1, 1, 0, 0, 0, 0, 0]
    assert (d14["first_answer"]["median"], d14["first_answer"]["p90"]) == ({"le": 60}, {"le": 120})
    # durations 5 min, 20 min, 70 min, 2 min: median the 2nd (<= 5 min), p90 the 4th (over an hour)
    assert (d14["duration"]["median"], d14["duration"]["p90"]) == ({"le": 300}, {"gt": 3600})
    # 23:30 UTC on the 14th is 01:30 on the 15th in Helsinki
    d15 = days["2026-01-15"]
    assert (d15["chats"], d15["answered"], d15["first_answer"]["median"]) == (1, 1, {"le": 30})
    hours = r["hours"]
    assert [h for h, n in enumerate(hours) if n] == [1, 10, 11, 12, 13] and sum(hours) == 5
    assert r["totals"]["chats"] == 5 and r["totals"]["missed"] == 1 and r["totals"]["offline_messages"] == 1
    agents = {a["name"]: a for a in r["agents"]}
    assert agents["Aino Agentti"]["chats_answered"] == 2 and agents["Aino Agentti"]["first_answer"]["median"] == {
        "le": 15}
    assert agents["Bert Agentti"]["chats_answered"] == 2 and agents["Bert Agentti"]["first_answer"]["p90"] == {
        "le": 120}
    # the range is the register's days: the 15th alone holds only the late chat
    assert report(in_process, "2026-01-15", "2026-01-15")["totals"]["chats"] == 1


def test_a_close_counts_once_however_often_it_runs(in_process, clock):
    who = scenario(in_process, clock)
    before = report(in_process)["totals"]
    rt = in_process.rt
    in_process.call(chat.close, rt, conversation_id=who["a"], by="agent", agent_id=who["aino"])  # closed already

    async def count_again():
        async with rt.db.reader() as s:
            conv = await s.get(Conversation, who["b"])
        return await rt.db.write_core(lambda conn: reports.core_count_closed(
            conn, conv, rt.clock.now(), time_zone="Europe/Helsinki", per_agent=True))
    assert in_process.call(count_again) is False  # the flag says it was counted
    assert report(in_process)["totals"] == before


def test_aggregates_outlive_retention_and_hold_no_personal_data(in_process, clock, settings):
    """The chats are deleted by `jutella retention run` (the command, in a
    process of its own); the aggregates stay, and no byte of their rows holds
    a name, an email or a text of the chats."""
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(days=settings.retention.chat_days + 30))
    start = clock.now()
    for i, secret in enumerate(SECRETS):
        one_chat(in_process, clock, start=start + timedelta(hours=i), text=secret, close=90, by="visitor")
    in_process.call(offline.submit, in_process.rt, name=SECRETS[3], email=SECRETS[4], message=SECRETS[5],
                    reason="no_agent", meta=collect(None, None, None, "fi"))
    first = reports.cell_of(start, "Europe/Helsinki")[0]

    def totals():
        return in_process.call(reports.daily, in_process.rt, start=first, end=first + timedelta(days=1))["totals"]
    before = totals()
    assert before["chats"] == len(SECRETS) and before["missed"] == len(SECRETS)
    # the command in this process (run_cli): a real `jutella retention run` process is
    # test_retention_and_notice.py's test_retention_run_command_prints_counts
    env = {"JUTELLA_DATABASE_URL": settings.database_url, "JUTELLA_DATA_DIR": str(settings.data_dir)}
    run = run_cli("retention", "run", env=env)
    assert run.returncode == 0, run.stderr
    assert f"conversations: {len(SECRETS)}" in run.stdout

    async def rows():
        async with in_process.rt.db.connection() as conn:
            left = (await conn.execute(select(func.count()).select_from(Conversation))).scalar_one()
            cells = [tuple(r) for table in ("report_daily", "report_agent_daily")
                     for r in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
        return left, cells
    left, cells = in_process.call(rows)
    assert left == 0 and cells
    assert totals() == before
    blob = repr(cells).encode()
    for secret in SECRETS + ["site.example", "Firefox"]:
        assert secret.encode() not in blob and secret.lower().encode() not in blob.lower(), secret


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_api_answers_admins_refuses_others_and_bad_ranges(live, clock):
    scenario(live, clock)
    add_staff(live, "boss@example.org", ["admin"])
    boss, agent = sign_in(live, "boss@example.org"), sign_in(live, "aino@example.org")
    q = {"from": "2026-01-13", "to": "2026-01-15"}
    r = boss.get("/api/v1/reports/daily", params=q)
    assert r.status_code == 200
    body = r.json()
    assert body["totals"]["chats"] == 5 and body["time_zone"] == "Europe/Helsinki"
    assert {a["name"] for a in body["agents"]} == {"Aino Agentti", "Bert Agentti"}
    csv_text = boss.get("/api/v1/reports/daily.csv", params=q)
    assert csv_text.status_code == 200 and csv_text.headers["content-type"].startswith("text/csv")
    lines = csv_text.text.strip().splitlines()
    assert lines[0].startswith("day,chats,answered,missed,offline_messages,messages,first_answer_median_s")
    assert lines[2] == "2026-01-14,4,3,1,1,7,60,120,300,>3600,0,0,0,1,1"
    assert agent.get("/api/v1/reports/daily", params=q).status_code == 403
    assert agent.get("/api/v1/reports/daily.csv", params=q).status_code == 403
    for bad, code in (({"from": "2026-1-13", "to": "2026-01-15"}, "bad_date"),
                      ({"from": "2026-02-30"}, "bad_date"),
                      ({"from": "2026-01-16", "to": "2026-01-15"}, "bad_range"),
                      ({"from": "2025-01-14", "to": "2026-01-15"}, "range_too_long")):
        r = boss.get("/api/v1/reports/daily", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (bad, r.text)
        assert r.json()["error"]["message"]
    assert boss.get("/api/v1/reports/daily", params={"from": "2025-01-15", "to": "2026-01-15"}).status_code == 200
    dept = boss.get("/api/v1/reports/daily", params={**q, "department": 99}).json()
    assert dept["totals"]["chats"] == 0  # no chat was in that department
    live.rt.settings.reports_per_agent = False
    assert "agents" not in boss.get("/api/v1/reports/daily", params=q).json()
