"""Retention with the injected clock, and the privacy notice against the seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jutella.privacy import retention
from jutella.store.models import AuditEntry, Conversation, OfflineMessage

from tests.chat_clients import visitor
from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

def find_seed() -> Path | None:
    """shared/seed/ lies beside the checkout (the workplace and CI lay it so)."""
    here = Path(__file__).resolve()
    for base in (*here.parents[2:5], Path("/work")):
        candidate = base / "shared" / "seed"
        if (candidate / "register-notice.fi.txt").exists():
            return candidate
    return None


def counts(live):
    async def q():
        async with live.rt.db.reader() as s:
            conv = (await s.execute(select(func.count()).select_from(Conversation))).scalar_one()
            off = (await s.execute(select(func.count()).select_from(OfflineMessage))).scalar_one()
            meta = (await s.execute(select(func.count()).select_from(Conversation).where(
                Conversation.browser.isnot(None)))).scalar_one()
            return conv, off, meta
    return live.call(q)


async def conversation_ids(live) -> set:
    async with live.rt.db.reader() as s:
        return set((await s.execute(select(Conversation.id))).scalars())


def test_retention_deletes_what_is_past_its_time_and_only_that(live, clock):
    r = live.rt.settings.retention
    v, _ = visitor(live)
    v.message("old chat")
    v.until(lambda f: f["type"] == "ack")
    live.client().post("/api/v1/public/offline-messages", json={"name": "A", "email": "a@example.fi",
                                                                "message": "old form",
                                                                "page": "https://site.example/"})
    assert counts(live) == (1, 1, 1)
    clock.advance(days=r.metadata_days - 1)
    assert live.call(retention.run, live.rt)["metadata"] == 0
    clock.advance(days=2)  # metadata one day past its period
    assert live.call(retention.run, live.rt)["metadata"] == 2  # the chat's and the form's
    assert counts(live) == (1, 1, 0)
    clock.advance(days=r.chat_days - r.metadata_days - 2)  # one day short of the chat period
    result = live.call(retention.run, live.rt)
    assert result["conversations"] == 0 and result["offline_messages"] == 0
    clock.advance(days=2)  # one day past
    result = live.call(retention.run, live.rt)
    assert result["conversations"] == 1 and result["messages"] == 1 and result["offline_messages"] == 1
    assert counts(live) == (0, 0, 0)
    again = live.call(retention.run, live.rt)
    assert not any(again.values())  # twice deletes nothing more


def test_audit_rows_past_their_period_go_and_the_chain_still_verifies(in_process, clock):
    from jutella.accounts.audit import verify

    from tests.helpers import add_staff
    rt = in_process.rt  # actions and the database only: no server needed
    add_staff(in_process, "a@example.org", ["agent"])
    clock.advance(days=rt.settings.retention.audit_days + 1)
    add_staff(in_process, "b@example.org", ["agent"])
    assert in_process.call(retention.run, rt)["audit_rows"] == 1

    async def check():
        async with rt.db.reader() as s:
            return await verify(s)
    assert in_process.call(check).ok


def test_retention_run_command_prints_counts(tmp_path):
    import os
    r = subprocess.run([sys.executable, "-m", "jutella.cli", "retention", "run"], capture_output=True, text=True,
                       env={**os.environ, "JUTELLA_DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 0
    assert "conversations: 0" in r.stdout and "offline messages: 0" in r.stdout and "audit rows: 0" in r.stdout


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("lang", ["fi", "en", "sv"])
def test_privacy_notice_shows_every_section(live, lang):
    r = live.client().get("/privacy", params={"lang": lang})
    assert r.status_code == 200 and r.headers["content-language"] == lang
    html = r.text
    for section in ("controller", "contact", "register", "purpose", "content", "sources", "transfers",
                    "protection", "retention", "rights"):
        assert f'id="{section}"' in html
    rights = {"fi": ["Tarkastusoikeus", "oikaisemiseen", "poistamiseen", "rajoittamiseen", "siirtää",
                     "Vastustamisoikeus", "Tietosuojavaltuutetun toimisto"],
              "en": ["Right of access", "rectification", "erasure", "restriction", "portability", "object",
                     "Data Protection Ombudsman"],
              "sv": ["insyn", "rättelse", "radering", "begränsning", "dataportabilitet", "invända",
                     "Dataombudsmannens"]}[lang]
    for word in rights:
        assert word in html, word
    days = live.rt.settings.retention
    for n in (days.chat_days, days.offline_days, days.metadata_days, days.audit_days):
        assert f"{n} " in html


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_default_notice_holds_the_seeds_facts(live):
    seed = find_seed()
    # The facts below are asserted against the notice always; against the seed
    # too when shared/seed/ is beside the checkout.
    fi_seed = (seed / "register-notice.fi.txt").read_text() if seed else None
    en_seed = (seed / "register-notice.en.md").read_text() if seed else None
    fi = live.client().get("/privacy?lang=fi").text
    en = live.client().get("/privacy?lang=en").text
    # controller, address, phone numbers, contact person
    for fact in ("Jyväskylän Ammattikorkeakoulun Opiskelijakunta JAMKO", "Rajakatu 35", "40200",
                 "+358 50 3361 385", "+358 44 3211 500", "puheenjohtaja@jamko.fi"):
        assert fact in fi and fact in en, fact
        if seed:
            assert fact in fi_seed or fact in en_seed, f"test fact {fact} not in the seed"
    # purpose
    assert "give the customers of the JAMKO Online service better service" in en
    assert not seed or "better service" in en_seed
    # the three automatically collected items
    for item in ("web browser", "operating system", "referrer"):
        assert item in en and (not seed or item in en_seed)
    for item in ("verkkoselain", "käyttöjärjestelmä", "viittaava sivu"):
        assert item in fi
    # data content, sources
    for item in ("student number", "email address", "chat histories", "name, email address"):
        assert item in en
    # no transfer outside the EU/EEA
    assert "not transferred outside the European Union or the European Economic Area" in en
    assert "Euroopan unionin tai Euroopan talousalueen ulkopuolelle" in fi


@pytest.mark.parametrize("backend", ["sqlite"])
def test_record_of_processing_is_for_staff(live):
    from tests.helpers import add_staff, sign_in
    assert live.client().get("/api/v1/privacy/record").status_code == 401
    add_staff(live, "chair@example.org", ["privacy"])
    rec = sign_in(live, "chair@example.org").get("/api/v1/privacy/record").json()
    assert rec["controller"]["name"].startswith("Jyväskylän") and rec["transfers_outside_eea"] == "none"
    assert rec["retention_days"]["chat"] == live.rt.settings.retention.chat_days


def test_retention_writes_one_audit_row_per_run_that_deleted_something(live, clock):
    v, _ = visitor(live)
    v.message("x")
    v.until(lambda f: f["type"] == "ack")
    clock.advance(days=live.rt.settings.retention.chat_days + 1)
    live.call(retention.run, live.rt)
    live.call(retention.run, live.rt)

    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "retention.run"))).scalar_one()
    assert live.call(q) == 1


def test_the_first_daily_retention_runs_once_when_two_workers_start_together(settings):
    """Two workers (here: two runtimes on one database) starting at once both
    find no record of a retention run. The one that records it first runs it;
    the other, whose insert of the same record then fails, steps aside
    without an error in the log."""
    import asyncio
    import contextvars

    from jutella.app import _daily_retention
    from jutella.services import build_runtime
    from jutella.store.models import SystemSetting

    from tests.conftest import run_async

    async def race() -> bool:
        first, second = build_runtime(settings), build_runtime(settings)
        await first.db.migrate()
        try:
            async with first.db.transaction() as s:  # the first worker, between its check and its commit
                s.add(SystemSetting(key="retention_last_run", value={"at": first.clock.now().isoformat()}))
                await s.flush()
                # another worker: a task outside this one's transaction context
                other = asyncio.create_task(_daily_retention(second), context=contextvars.Context())
                await asyncio.sleep(0.5)
            return await asyncio.wait_for(other, 30)
        finally:
            await first.db.dispose()
            await second.db.dispose()

    assert run_async(race()) is False


def test_a_retention_run_its_housekeeper_did_not_finish_is_run_again_at_once_by_the_next(in_process, clock):
    """A housekeeper killed in the middle of the daily retention run leaves it
    recorded as started and not finished. The next housekeeper checks on
    taking over (app._housekeeping, at once, not after 15 minutes) and runs it
    again the same day, so what the first one had not deleted yet goes now;
    after that the day's run is finished and a further check runs nothing.
    (The takeover itself, two hosts and kill -9 of the housekeeper:
    tests/integration/test_housekeeper.py and test_two_hosts_nginx.py.)"""
    from datetime import timedelta

    from jutella.app import _daily_retention
    from jutella.chat import offline
    from jutella.chat.metadata import collect
    from jutella.store.models import SystemSetting

    rt = in_process.rt
    now = clock.now()
    clock.set(now - timedelta(days=rt.settings.retention.offline_days + 2))
    in_process.call(offline.submit, rt, name="Vanha Viesti", email="vanha@example.fi", message="past its date",
                    reason="no_agent", meta=collect(None, None, None, "fi"))
    clock.set(now)

    async def died_mid_run() -> None:  # what the killed housekeeper left: today's run claimed, not finished
        async with rt.db.transaction() as s:
            s.add(SystemSetting(key="retention_last_run",
                                value={"at": (now - timedelta(hours=1)).isoformat(), "done": False}))

    async def left() -> tuple[int, dict]:
        async with rt.db.reader() as s:
            return ((await s.execute(select(func.count()).select_from(OfflineMessage))).scalar_one(),
                    (await s.get(SystemSetting, "retention_last_run")).value)

    in_process.call(died_mid_run)
    assert in_process.call(_daily_retention, rt) is True
    count, record = in_process.call(left)
    assert count == 0 and record == {"at": now.isoformat(), "done": True}
    clock.advance(hours=23)
    assert in_process.call(_daily_retention, rt) is False  # today's run is finished: nothing runs again
    clock.advance(hours=2)
    assert in_process.call(_daily_retention, rt) is True  # the next day's


def test_retention_keeps_restricted_people_until_the_restriction_is_lifted(live, clock):
    """GDPR 18(1)(c): a restriction kept for a legal claim must outlive the
    retention period. A chat restricted by its visitor and a form restricted
    by its email survive a run past their time (hidden from an agent
    meanwhile); an unrestricted chat of the same age goes. After lifting, the
    next run deletes them."""
    from jutella.privacy import subjects
    from jutella.privacy.subjects import Selection

    from tests.helpers import add_staff, sign_in
    r = live.rt.settings.retention
    add_staff(live, "aino@example.org", ["agent"])
    kept, _ = visitor(live)
    kept.message("restricted chat")
    kept_conv = kept.until(lambda f: f["type"] == "ack")["conversation"]
    other, _ = visitor(live)
    other.message("ordinary chat")
    other.until(lambda f: f["type"] == "ack")
    assert live.client().post("/api/v1/public/offline-messages", json={
        "name": "Riita", "email": "riita@example.fi", "message": "restricted form"}).status_code == 201
    by_visitor = Selection(conversations={kept_conv})
    live.call(subjects.set_flag, live.rt, actor_id=None, kind="restriction", on=True, sel=by_visitor)
    live.call(subjects.set_flag, live.rt, actor_id=None, kind="restriction", on=True, email="Riita@example.fi")

    assert counts(live)[:2] == (2, 1)
    clock.advance(days=max(r.chat_days, r.offline_days) + 1)
    # The rows say what happened, not which run deleted them: the live server's
    # own daily run may get there before this call on a busy machine.
    live.call(retention.run, live.rt)
    assert counts(live)[:2] == (1, 1)  # the unrestricted chat gone; the restricted chat and form, kept
    assert live.call(conversation_ids, live) == {kept_conv}
    agent_http = sign_in(live, "aino@example.org")
    assert agent_http.get("/api/v1/conversations").json() == []  # and still hidden
    assert agent_http.get("/api/v1/offline-messages").json() == []
    assert not any(live.call(retention.run, live.rt).values())  # nothing more while restricted

    live.call(subjects.set_flag, live.rt, actor_id=None, kind="restriction", on=False, sel=by_visitor)
    live.call(subjects.set_flag, live.rt, actor_id=None, kind="restriction", on=False, email="riita@example.fi")
    live.call(retention.run, live.rt)
    assert counts(live) == (0, 0, 0)
