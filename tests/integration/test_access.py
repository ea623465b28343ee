"""Who may see what (chat/access.py, docs/access.md).

1. The rule itself: for each caller and record, the list clause, the
   one-record check and the in-write check agree with each other and with
   the table below, on SQLite and PostgreSQL.
2. The access matrix: every staff route of the route table and every agent
   socket command, for every caller and record, answers what its entry in
   ROUTES / COMMANDS and the access module say. A route or command without
   an entry fails ("add it to the matrix").
3. The defects of issue 14 this module closed: the offline close, reopen,
   assign and reply paths on a restricted person's message, and a
   restriction set by email only.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from jutella.accounts import actions as accounts
from jutella.chat import access, offline
from jutella.chat import departments as D
from jutella.chat.metadata import collect
from jutella.mail import outbox
from jutella.privacy import subjects
from jutella.realtime import protocol as P
from jutella.store.db import email_hash as store_email_hash
from jutella.store.models import ChatEvent, Conversation, Department, Label, MailOutbox, OfflineMessage, Visitor

from tests.chat_clients import WsClient, _connect
from tests.helpers import PASSWORD, add_staff, sign_in
from tests.integration.test_route_roles import guarded_routes
from tests.conftest import BOTH, run_async


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

RECORDS = ["plain", "restricted_visitor", "restricted_email", "other_department", "no_department", "handed"]
CALLERS = ["anonymous", "agent_a", "agent_b", "privacy", "admin", "disabled"]
WORD = "matrixword"

# What the rule says, written out by hand: conversations and offline messages
# (offline messages are one shared inbox: no department limit).
SEES_CONVERSATION = {
    "agent_a": {"plain", "no_department", "handed"},  # handed: in A, handed to agent_b
    "agent_b": {"other_department", "no_department", "handed"},
    "privacy": {"plain", "restricted_visitor", "restricted_email", "no_department", "handed"},
    "admin": {"plain", "other_department", "no_department", "handed"},
    "disabled": set(),
}
PUBLIC_FORMS = {"plain", "other_department", "no_department", "handed"}
SEES_OFFLINE = {"agent_a": PUBLIC_FORMS, "agent_b": PUBLIC_FORMS, "privacy": set(RECORDS), "admin": PUBLIC_FORMS,
                "disabled": set()}


@dataclass
class World:
    accounts: dict[str, int] = field(default_factory=dict)
    conversations: dict[str, int] = field(default_factory=dict)
    offline: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    label: int = 0
    emails: dict[str, str] = field(default_factory=dict)


def seed(live) -> World:
    """Departments A and B; the callers; for each record kind a visitor with a
    waiting chat (one message holding WORD) and an offline form with a reply
    mail; the two restrictions, set through the register's own action."""
    rt = live.rt
    w = World()
    roles = {"agent_a": ["agent"], "agent_b": ["agent"], "privacy": ["agent", "privacy"], "admin": ["admin"],
             "disabled": ["agent"]}
    for name, rs in roles.items():
        w.accounts[name] = add_staff(live, f"{name}@example.org", rs)

    async def build() -> None:
        now = rt.clock.now()
        async with rt.db.transaction() as s:
            a, b = Department(name="A", position=1, created_at=now), Department(name="B", position=2, created_at=now)
            label = Label(name="matrix", color="blue", created_at=now)
            s.add_all([a, b, label])
            await s.flush()
            w.label = label.id
            dept = {"plain": a.id, "restricted_visitor": a.id, "restricted_email": a.id, "other_department": b.id,
                    "no_department": None, "handed": a.id}
            for kind in RECORDS:
                v = Visitor(public_id="v-" + uuid.uuid4().hex[:12], token_hash=uuid.uuid4().hex * 2,
                            created_at=now, last_seen_at=now)
                s.add(v)
                await s.flush()
                handed = kind == "handed"
                c = Conversation(visitor_id=v.id, state="active" if handed else "waiting",
                                 agent_id=w.accounts["agent_b"] if handed else None, created_at=now,
                                 last_activity_at=now, last_seq=1, department_id=dept[kind])
                s.add(c)
                await s.flush()
                s.add(ChatEvent(conversation_id=c.id, seq=1, kind="message", author="visitor",
                                body=f"{WORD} {kind}", created_at=now))
                w.conversations[kind] = c.id
                w.emails[kind] = f"{kind.replace('_', '.')}@person.example"
                m = OfflineMessage(visitor_id=v.id, conversation_id=c.id, name=f"Name {kind}",
                                   email=w.emails[kind], body=f"Body {kind}", reason="no_agent", state="new",
                                   created_at=now, updated_at=now, department_id=dept[kind],
                                   marketing_consent_version="1", marketing_consent_at=now)  # in contacts.csv
                s.add(m)
                await s.flush()
                w.offline[kind] = m.id
                row = outbox.enqueue(s, rt, kind="reply", to_addr=m.email, to_name=m.name, subject="Re",
                                     body_text="reply", body_html=None, offline_message_id=m.id)
                await s.flush()
                w.outbox[kind] = row.id
        await D.set_members(rt, actor_id=None, department_id=a.id,
                            account_ids=[w.accounts["agent_a"], w.accounts["privacy"], w.accounts["disabled"]])
        await D.set_members(rt, actor_id=None, department_id=b.id, account_ids=[w.accounts["agent_b"]])
        await subjects.set_flag(rt, actor_id=None, kind="restriction", on=True,
                                sel=subjects.Selection(conversations={w.conversations["restricted_visitor"]}))
        await subjects.set_flag(rt, actor_id=None, kind="restriction", on=True, email=w.emails["restricted_email"])

    live.call(build)
    return w


def viewers(live, w: World) -> dict[str, access.Viewer | None]:
    return {name: live.call(access.load_viewer, live.rt, w.accounts[name]) for name in w.accounts}


# -- 1. the rule --------------------------------------------------------------------------------
def test_the_rule_has_one_answer_in_every_form(live):
    w = seed(live)
    live.call(accounts.set_disabled, live.rt, actor_id=None, account_id=w.accounts["disabled"], disabled=True)
    vs = viewers(live, w)
    assert vs["disabled"] is None  # a disabled account sees nothing at all
    rt = live.rt

    async def forms(v: access.Viewer) -> dict[str, dict[str, set[str]]]:
        by_conv = {i: k for k, i in w.conversations.items()}
        by_form = {i: k for k, i in w.offline.items()}
        by_mail = {i: k for k, i in w.outbox.items()}
        out: dict[str, dict[str, set[str]]] = {}
        async with rt.db.reader() as s:
            out["conversation"] = {
                "clause": {by_conv[i] for i in (await s.execute(
                    select(Conversation.id).where(*access.conversation_clause(v)))).scalars()},
                "one": {k for k, i in w.conversations.items() if await access.may_see_conversation(s, v, i)}}
            out["offline"] = {
                "clause": {by_form[i] for i in (await s.execute(
                    select(OfflineMessage.id).where(*access.offline_clause(v)))).scalars()},
                "one": {k for k, i in w.offline.items() if await access.may_see_offline(s, v, i)}}
            out["outbox"] = {
                "clause": {by_mail[i] for i in (await s.execute(
                    select(MailOutbox.id).where(MailOutbox.id.in_(by_mail), *access.outbox_clause(v)))).scalars()},
                "one": {k for k, i in w.outbox.items() if await access.may_see_outbox(s, v, i)}}

        def core(conn):
            return ({k for k, i in w.conversations.items() if access.core_may_see_conversation(conn, v, i)},
                    {k for k, i in w.offline.items() if access.core_may_see_offline(conn, v, i)})

        out["conversation"]["core"], out["offline"]["core"] = await rt.db.write_core(core)
        async with rt.db.reader() as s:
            rows = (await s.execute(select(Conversation.id, Conversation.department_id, Conversation.agent_id,
                                           access.conversation_restricted()))).all()
        out["conversation"]["values"] = {by_conv[i] for i, dept, agent, restricted in rows if
                                         access.decide_conversation(v, department_id=dept, agent_id=agent,
                                                                    restricted=bool(restricted))}
        return out

    for name in ("agent_a", "agent_b", "privacy", "admin"):
        got = live.call(forms, vs[name])
        for kind, expected in (("conversation", SEES_CONVERSATION[name]), ("offline", SEES_OFFLINE[name]),
                               ("outbox", SEES_OFFLINE[name])):
            for form, seen in got[kind].items():
                assert seen == expected, f"{name} / {kind} / {form}: {sorted(seen)} != {sorted(expected)}"


def test_the_sql_email_hash_is_the_registers(live):
    """SQLite runs the Python function; PostgreSQL its own sha256: both give
    the register's hash for a stored (validated) address."""
    addresses = ["liisa.virtanen@student.example.fi", "  Mixed.Case@Example.COM ", "a+b@xn--exmple-cua.fi"]

    async def q():
        async with live.rt.db.reader() as s:
            return [(await s.execute(select(access.email_hash_sql(a)))).scalar_one() for a in addresses]

    assert live.call(q) == [subjects.email_hash(a) for a in addresses] == [store_email_hash(a) for a in addresses]


# -- 2. the matrix -----------------------------------------------------------------------------------
# Each staff route: the roles its guard admits, the record its path points at
# (conversation, offline, outbox, register_conversation, register_offline),
# a list it returns (conversation_list, offline_list, search), or None; and
# what the request carries so that it reaches the access decision.
AGENT, ADMIN, PRIV = ("agent",), ("admin",), ("privacy",)
STAFF, AUDIT, ANY = ("agent", "admin"), ("admin", "privacy"), ()


@dataclass(frozen=True)
class Entry:
    roles: tuple[str, ...]
    record: str | None = None
    json: Any = None
    query: dict[str, Any] | None = None
    upload: bool = False
    own_session: bool = False  # ends the caller's session: run on a session of its own


ROUTES: dict[tuple[str, str], Entry] = {
    ("GET", "/api/v1/me"): Entry(ANY),
    ("POST", "/api/v1/me/logout"): Entry(ANY, own_session=True),
    ("POST", "/api/v1/me/password"): Entry(ANY, json={}),
    ("POST", "/api/v1/me/totp/begin"): Entry(ANY),
    ("POST", "/api/v1/me/totp/confirm"): Entry(ANY, json={}),
    ("POST", "/api/v1/me/totp/disable"): Entry(ANY, json={}),
    ("PUT", "/api/v1/me/language"): Entry(ANY, json={}),
    ("GET", "/api/v1/accounts"): Entry(ADMIN),
    ("POST", "/api/v1/accounts"): Entry(ADMIN, json={}),
    ("PATCH", "/api/v1/accounts/{account_id}"): Entry(ADMIN, json={}),
    ("POST", "/api/v1/accounts/{account_id}/disable"): Entry(ADMIN),
    ("POST", "/api/v1/accounts/{account_id}/enable"): Entry(ADMIN),
    ("POST", "/api/v1/accounts/{account_id}/invitation"): Entry(ADMIN),
    ("POST", "/api/v1/accounts/{account_id}/totp/reset"): Entry(ADMIN),
    ("GET", "/api/v1/sites"): Entry(ADMIN),
    ("POST", "/api/v1/sites"): Entry(ADMIN, json={}),
    ("DELETE", "/api/v1/sites/{site_id}"): Entry(ADMIN),
    ("GET", "/api/v1/prechat"): Entry(ADMIN),
    ("PUT", "/api/v1/prechat"): Entry(ADMIN, json={}),
    ("DELETE", "/api/v1/prechat"): Entry(ADMIN),
    ("GET", "/api/v1/webhooks"): Entry(ADMIN),
    ("POST", "/api/v1/webhooks"): Entry(ADMIN, json={}),
    ("PUT", "/api/v1/webhooks/{hook_id}"): Entry(ADMIN, json={}),
    ("DELETE", "/api/v1/webhooks/{hook_id}"): Entry(ADMIN),
    ("GET", "/api/v1/webhooks/deliveries"): Entry(ADMIN),
    ("POST", "/api/v1/webhooks/deliveries/{delivery}/redeliver"): Entry(ADMIN),
    ("GET", "/api/v1/sites/choices"): Entry(AGENT),
    ("PUT", "/api/v1/sites/default/profile"): Entry(ADMIN, json={}),
    ("PUT", "/api/v1/sites/{site_id}/profile"): Entry(ADMIN, json={}),
    ("PUT", "/api/v1/sites/default/logo"): Entry(ADMIN),
    ("DELETE", "/api/v1/sites/default/logo"): Entry(ADMIN),
    ("PUT", "/api/v1/sites/{site_id}/logo"): Entry(ADMIN),
    ("DELETE", "/api/v1/sites/{site_id}/logo"): Entry(ADMIN),
    ("GET", "/api/v1/hours"): Entry(ADMIN),
    ("PUT", "/api/v1/hours"): Entry(ADMIN, json={}),
    ("GET", "/api/v1/settings/security"): Entry(ADMIN),
    ("PUT", "/api/v1/settings/security"): Entry(ADMIN, json={}),
    ("GET", "/api/v1/audit/actors"): Entry(AUDIT),
    ("GET", "/api/v1/audit"): Entry(AUDIT),
    ("GET", "/api/v1/conversations"): Entry(AGENT, "conversation_list"),
    ("GET", "/api/v1/conversations/{conversation_id}"): Entry(AGENT, "conversation"),
    ("POST", "/api/v1/conversations/{conversation_id}/accept"): Entry(AGENT, "conversation"),
    ("POST", "/api/v1/conversations/{conversation_id}/close"): Entry(AGENT, "conversation"),
    ("GET", "/api/v1/search"): Entry(AGENT, "search", query={"q": WORD}),
    ("GET", "/api/v1/canned"): Entry(STAFF),
    ("POST", "/api/v1/canned"): Entry(STAFF, json={}),
    ("PUT", "/api/v1/canned/{canned_id}"): Entry(STAFF, json={}),
    ("DELETE", "/api/v1/canned/{canned_id}"): Entry(STAFF),
    ("GET", "/api/v1/labels"): Entry(STAFF),
    ("POST", "/api/v1/labels"): Entry(ADMIN, json={}),
    ("PUT", "/api/v1/labels/{label_id}"): Entry(ADMIN, json={}),
    ("DELETE", "/api/v1/labels/{label_id}"): Entry(ADMIN),
    ("PUT", "/api/v1/conversations/{conversation_id}/labels/{label_id}"): Entry(AGENT, "conversation"),
    ("DELETE", "/api/v1/conversations/{conversation_id}/labels/{label_id}"): Entry(AGENT, "conversation"),
    ("GET", "/api/v1/agents"): Entry(AGENT),
    ("POST", "/api/v1/conversations/{conversation_id}/notes"): Entry(
        AGENT, "conversation", json={"client_id": "matrix", "body": "a note"}),
    ("GET", "/api/v1/departments"): Entry(STAFF),
    ("POST", "/api/v1/departments"): Entry(ADMIN, json={}),
    ("PATCH", "/api/v1/departments/{department_id}"): Entry(ADMIN, json={}),
    ("DELETE", "/api/v1/departments/{department_id}"): Entry(ADMIN),
    ("PUT", "/api/v1/departments/{department_id}/members"): Entry(ADMIN, json={}),
    ("GET", "/api/v1/agents/load"): Entry(STAFF),
    ("PUT", "/api/v1/agents/{account_id}/max-chats"): Entry(ADMIN, json={}),
    ("POST", "/api/v1/conversations/{conversation_id}/transfer"): Entry(AGENT, "conversation", json={}),
    ("GET", "/api/v1/offline-messages/contacts.csv"): Entry(ADMIN, "contacts"),
    ("GET", "/api/v1/reports/daily"): Entry(ADMIN, query={"from": "2026-01-01", "to": "2026-01-31"}),
    ("GET", "/api/v1/reports/daily.csv"): Entry(ADMIN, query={"from": "2026-01-01", "to": "2026-01-31"}),
    ("GET", "/api/v1/tokens"): Entry(ADMIN),
    ("POST", "/api/v1/tokens"): Entry(ADMIN, json={}),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): Entry(ADMIN),
    ("GET", "/api/v1/offline-messages"): Entry(AGENT, "offline_list"),
    ("GET", "/api/v1/offline-messages/{message_id}"): Entry(AGENT, "offline"),
    # a file of a reply by email: its id is checked by validation after the guard (the visibility of its
    # message by chat/access.py, tests/integration/test_email_replies.py)
    ("GET", "/api/v1/offline-messages/{message_id}/files/{public_id}"): Entry(AGENT),
    ("POST", "/api/v1/offline-messages/{message_id}/reply"): Entry(AGENT, "offline", json={"body": "An answer"}),
    ("POST", "/api/v1/offline-messages/{message_id}/assign"): Entry(AGENT, "offline", json={"agent_id": None}),
    ("POST", "/api/v1/offline-messages/{message_id}/close"): Entry(AGENT, "offline"),
    ("POST", "/api/v1/offline-messages/{message_id}/reopen"): Entry(AGENT, "offline"),
    ("POST", "/api/v1/outbox/{outbox_id}/retry"): Entry(AGENT, "outbox"),
    ("GET", "/api/v1/privacy/subjects"): Entry(PRIV, query={"q": WORD}),
    ("POST", "/api/v1/privacy/export"): Entry(PRIV, json={}),
    ("POST", "/api/v1/privacy/rectify"): Entry(PRIV, json={}),
    ("POST", "/api/v1/privacy/flags"): Entry(PRIV, json={}),
    ("POST", "/api/v1/privacy/erase"): Entry(PRIV, json={}),
    ("GET", "/api/v1/privacy/conversations/{conversation_id}"): Entry(PRIV, "register_conversation"),
    ("GET", "/api/v1/privacy/offline-messages/{message_id}"): Entry(PRIV, "register_offline"),
    ("GET", "/api/v1/privacy/requests"): Entry(PRIV),
    ("POST", "/api/v1/privacy/requests"): Entry(PRIV, json={}),
    ("PATCH", "/api/v1/privacy/requests/{request_id}"): Entry(PRIV, json={}),
    ("GET", "/api/v1/privacy/record"): Entry(AUDIT),
    ("POST", "/api/v1/privacy/retention/run"): Entry(AUDIT),
    ("POST", "/api/v1/conversations/{conversation_id}/attachments"): Entry(AGENT, "conversation", upload=True),
    ("GET", "/api/v1/conversations/{conversation_id}/transcript"): Entry(AGENT, "conversation"),
    ("GET", "/api/v1/conversations/{conversation_id}/transcript-mails"): Entry(AGENT, "conversation"),
    ("POST", "/api/v1/conversations/{conversation_id}/transcript/email"): Entry(
        AGENT, "conversation", json={"email": "copy@person.example"}),
}

# Agent socket commands (protocol's agent frame types): whether they name a conversation.
COMMANDS: dict[str, bool] = {"message": True, "note": True, "typing": True, "seen": True, "accept": True,
                             "close": True, "subscribe": True, "unsubscribe": False, "presence": False}
ROLES_OF = {"anonymous": set(), "agent_a": {"agent"}, "agent_b": {"agent"}, "privacy": {"agent", "privacy"},
            "admin": {"admin"}, "disabled": {"agent"}}


def test_every_route_and_command_is_in_the_matrix(live):
    routes = {(m, r.path) for r, m, _ in guarded_routes(live.server.config.app)}
    assert sorted(routes - set(ROUTES)) == [], "add it to the matrix (tests/integration/test_access.py ROUTES)"
    assert sorted(set(ROUTES) - routes) == [], "no such route any more: remove it from ROUTES"
    agent_frames = set(P._HANDLERS["agent"])
    assert sorted(agent_frames - set(COMMANDS)) == [], "add it to the matrix (tests/integration/test_access.py COMMANDS)"
    for route, method, (guard,) in guarded_routes(live.server.config.app):
        assert set(guard.roles) == set(ROUTES[(method, route.path)].roles), f"{method} {route.path}"


def _fill(path: str, ids: dict[str, int]) -> str:
    def one(m: re.Match) -> str:
        return str(ids.get(m.group(1), 0))  # 0: no such id (validation refuses it after the guard)
    return re.sub(r"\{([^}]+)\}", one, path)


def _expect(entry: Entry, caller: str, visible: bool | None) -> str:
    if caller in ("anonymous", "disabled"):
        return "401"
    if entry.roles and not set(entry.roles) & ROLES_OF[caller]:
        return "403"
    if visible is False:
        return "404"
    return "pass"


def _outcome(status: int) -> str:
    return str(status) if status in (401, 403, 404) else "pass"


# Requests of the matrix in flight at once. Every answer is decided by the
# guard and the access rule, so the requests need not wait for each other,
# except where one could change what another meets: the routes run one after
# another in route-table order (a list is asked after the same earlier actions
# as before), but consecutive GET routes, which change nothing, together; and
# within a route, the callers' requests on one record run in CALLERS order
# (the same answers as one request at a time, and no two callers race to
# accept or unlabel the same conversation), the records and the requests that
# name none side by side.
MATRIX_CONCURRENCY = 12


@dataclass
class Case:
    caller: str
    method: str
    route: str
    path: str
    kind: str | None
    record: str | None
    expected: str
    kw: dict[str, Any]
    own_session: bool


def _matrix_cases(app, w: World, answers: dict) -> list[list[list[Case]]]:
    """Every (route x caller x record) request of the matrix and its expected
    answer, in batches (one after another) of chains (side by side) of
    requests (one after another): see MATRIX_CONCURRENCY."""
    batches: list[list[list[Case]]] = []
    for route, method, _ in guarded_routes(app):
        entry = ROUTES[(method, route.path)]
        kind = entry.record
        per_record = kind in ("conversation", "offline", "outbox", "register_conversation", "register_offline")
        chains: dict[Any, list[Case]] = {}
        for caller in CALLERS:
            # refused before any record is looked at (401, 403): one record is enough
            at_guard = caller in ("anonymous", "disabled") or bool(entry.roles and not set(entry.roles) &
                                                                   ROLES_OF[caller])
            for record in (RECORDS[:1] if at_guard else RECORDS) if per_record else [None]:
                ids: dict[str, int] = {}  # other ids stay 0: refused by validation, after the guard
                if record is not None:
                    ids.update(conversation_id=w.conversations[record], message_id=w.offline[record],
                               outbox_id=w.outbox[record], label_id=w.label)
                    question = "register_conversation" if kind.startswith("register") else kind
                    expected = _expect(entry, caller, answers[(caller, question, record)])
                else:
                    expected = _expect(entry, caller, None)
                kw: dict[str, Any] = {"params": entry.query}
                if entry.upload:
                    kw["files"] = {"file": ("x.txt", b"not an image", "text/plain")}
                elif entry.json is not None or method in ("POST", "PUT", "PATCH"):
                    kw["json"] = entry.json
                chains.setdefault(record or object(), []).append(Case(
                    caller, method, route.path, _fill(route.path, ids), kind, record, expected, kw,
                    entry.own_session and caller not in ("anonymous", "disabled")))
        if method == "GET" and batches and batches[-1][0][0].method == "GET":
            batches[-1] += chains.values()
        else:
            batches.append(list(chains.values()))
    return batches


def _run_matrix(live, clients: dict[str, httpx.Client],
                batches: list[list[list[Case]]]) -> list[tuple[Case, httpx.Response]]:
    """The batches one after another, each one's chains side by side (at most
    MATRIX_CONCURRENCY requests at once); every caller's requests on its own
    session (a copy of its cookies and CSRF header), ``own_session`` ones on a
    new one."""
    async def go() -> list[tuple[Case, httpx.Response]]:
        limit = asyncio.Semaphore(MATRIX_CONCURRENCY)
        # A connection idle as long as the server keeps it (uvicorn's 5 s keep-alive, httpx's default
        # expiry too) may be closed by the server just as a request goes out on it: httpx.ReadError,
        # seen twice on a loaded CI machine. The client lets its idle connections go first.
        limits = httpx.Limits(keepalive_expiry=2.0)
        made = {name: httpx.AsyncClient(base_url=live.url, timeout=15, cookies=c.cookies, headers=c.headers,
                                        limits=limits)
                for name, c in clients.items()}

        async def one(case: Case) -> tuple[Case, httpx.Response]:
            async with limit:
                if not case.own_session:
                    return case, await made[case.caller].request(case.method, case.path, **case.kw)
                async with httpx.AsyncClient(base_url=live.url, timeout=15, limits=limits) as own:
                    r = await own.post("/api/v1/public/staff/login", json={
                        "email": f"{case.caller}@example.org", "password": PASSWORD, "totp": None})
                    assert r.status_code == 200, r.text
                    own.headers["X-CSRF-Token"] = r.json()["csrf_token"]
                    return case, await own.request(case.method, case.path, **case.kw)

        async def chain(cases: list[Case]) -> list[tuple[Case, httpx.Response]]:
            return [await one(case) for case in cases]

        done: list[tuple[Case, httpx.Response]] = []
        try:
            for batch in batches:
                for answered in await asyncio.gather(*map(chain, batch)):
                    done += answered
        finally:
            for c in made.values():
                await c.aclose()
        return done

    return run_async(go())


def test_access_matrix(live):
    live.rt.settings.notice.marketing.enabled = True  # contacts.csv lists the consenting forms
    w = seed(live)
    with ThreadPoolExecutor(len(w.accounts)) as pool:
        signed_in = dict(zip(w.accounts, pool.map(lambda name: sign_in(live, f"{name}@example.org"), w.accounts)))
    clients = {"anonymous": live.client(), **signed_in}
    live.call(accounts.set_disabled, live.rt, actor_id=None, account_id=w.accounts["disabled"], disabled=True)
    vs = viewers(live, w)

    async def visible(v: access.Viewer | None, kind: str, record: str) -> bool:
        if v is None:
            return False
        async with live.rt.db.reader() as s:
            if kind == "conversation":
                return await access.may_see_conversation(s, v, w.conversations[record])
            if kind == "offline":
                return await access.may_see_offline(s, v, w.offline[record])
            if kind == "outbox":
                return await access.may_see_outbox(s, v, w.outbox[record])
            return access.may_use_register(v)  # register_conversation, register_offline

    async def all_answers() -> dict[tuple[str, str, str], bool]:
        return {(n, k, r): await visible(vs[n], k, r) for n in CALLERS if n != "anonymous"
                for k in ("conversation", "offline", "outbox", "register_conversation") for r in RECORDS}

    answers = live.call(all_answers)
    answers.update({("anonymous", k, r): False for k in ("conversation", "offline", "outbox",
                                                          "register_conversation") for r in RECORDS})
    failures: list[str] = []
    checked = 0
    for case, r in _run_matrix(live, clients, _matrix_cases(live.server.config.app, w, answers)):
        caller, kind, expected = case.caller, case.kind, case.expected
        checked += 1
        got = _outcome(r.status_code)
        where = f"{caller} {case.method} {case.route} [{case.record}]"
        if r.status_code >= 500:  # no answer, whatever the caller may see (a 500 would otherwise count as "pass")
            failures.append(f"{where}: {r.status_code}, a server error")
            continue
        if got != expected:
            failures.append(f"{where}: {r.status_code}, expected {expected}")
            continue
        if got != "pass" or kind not in ("conversation_list", "offline_list", "search", "contacts"):
            continue
        # lists: exactly the visible records (clause form) are in them
        if kind == "conversation_list":
            found = {c["id"] for c in r.json()} & set(w.conversations.values())
            want = {w.conversations[x] for x in RECORDS if answers[(caller, "conversation", x)]}
        elif kind == "search":
            found = {h["conversation"] for h in r.json()}
            want = {w.conversations[x] for x in RECORDS if answers[(caller, "conversation", x)]}
        elif kind == "offline_list":
            found = {m["id"] for m in r.json()}
            want = {w.offline[x] for x in RECORDS if answers[(caller, "offline", x)]}
        else:  # contacts: restricted people never, whoever asks
            found = {x for x in RECORDS if w.emails[x] in r.text}
            want = PUBLIC_FORMS
        if found != want:
            failures.append(f"{where}: lists {sorted(found)}, expected {sorted(want)}")
    assert failures == [], "\n".join(failures)
    assert checked > 500

    # the agent socket: who may open it, then every command on every record
    for caller in ("anonymous", "admin", "disabled"):
        assert _socket_refused(live, clients[caller]), caller
    for caller in ("agent_a", "agent_b", "privacy"):
        sock = _agent_socket(live, clients[caller])
        sentinel = w.conversations["other_department" if caller == "agent_b" else "plain"]
        try:
            # Commands run one after another, in the order sent: send them all (each followed by its
            # sentinel note), then read each one's answer up to its sentinel's ack.
            sent = []
            for n, (command, names_conversation) in enumerate(sorted(COMMANDS.items())):
                for record in (RECORDS if names_conversation else [None]):
                    conv = w.conversations[record] if record else 0
                    sock.send(**_command(command, conv, f"m{n}-{record}"))
                    marker = f"sentinel-{n}-{record}"
                    sock.send(type="note", client_id=marker, body="sentinel", conversation=sentinel)
                    sent.append((command, record, marker))
            for command, record, marker in sent:
                refused = _refused_before(sock, marker)
                expected = record is not None and not answers[(caller, "conversation", record)]
                if refused != expected:
                    failures.append(f"socket {caller} {command} [{record}]: refused={refused}")
        finally:
            sock.close()
    assert failures == [], "\n".join(failures)


def _command(command: str, conv: int, client_id: str) -> dict[str, Any]:
    return {"message": {"type": "message", "client_id": client_id, "body": "hello", "conversation": conv},
            "note": {"type": "note", "client_id": client_id, "body": "a note", "conversation": conv},
            "typing": {"type": "typing", "active": True, "conversation": conv},
            "seen": {"type": "seen", "seq": 1, "conversation": conv},
            "accept": {"type": "accept", "conversation": conv},
            "close": {"type": "close", "conversation": conv},
            "subscribe": {"type": "subscribe", "conversation": conv, "last_seq": 0},
            "unsubscribe": {"type": "unsubscribe", "conversation": conv or 1},
            "presence": {"type": "presence", "state": "online"}}[command]


def _agent_socket(live, http) -> WsClient:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    c = WsClient(_connect(live.ws_url + "/ws/agent", origin=live.url, headers={"Cookie": cookie}, source=None))
    c.send(type="hello", subscriptions={})
    c.until(lambda f: f["type"] == "welcome")
    return c


def _socket_refused(live, http) -> bool:
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    try:
        c = _agent_socket(live, http)
    except (ConnectionClosed, InvalidStatus, TimeoutError):
        return True
    c.close()
    return False


def _refused_before(sock: WsClient, marker: str) -> bool:
    """Frames up to the sentinel note's ack: was the command refused as not found?
    (Commands run one after another, so its answer comes before the sentinel's.)"""
    refused = False
    while True:
        frame = sock.recv()
        if frame.get("type") == "ack" and frame.get("client_id") == marker:
            return refused
        if frame.get("type") == "error":
            assert frame.get("client_id") != marker, frame
            refused = refused or frame.get("code") == "not_found"


# -- 3. the defects ----------------------------------------------------------------------------------
def _form(live, *, name: str, email: str, body: str, visitor_id: int | None = None) -> int:
    done = live.call(offline.submit, live.rt, name=name, email=email, message=body, reason="no_agent",
                     meta=collect(None, None, None, "fi"), visitor_id=visitor_id)
    return done.message.id


def _mails_for(live, message_id: int) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(MailOutbox).where(
                MailOutbox.offline_message_id == message_id))).scalar_one()
    return live.call(q)


def test_offline_actions_on_a_restricted_persons_message_answer_404_and_leak_nothing(live):
    """Issue 14: close, reopen and assign answered with the name, email and
    body preview, and reply with the whole body, and mailed the person."""
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "chair@example.org", ["privacy"])
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    mid = _form(live, name="Liisa Virtanen", email="liisa@student.example.fi", body="Salainen asia")
    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "offline_messages": [mid]})
    assert r.status_code == 200, r.text
    assert aino.get(f"/api/v1/offline-messages/{mid}").status_code == 404
    for path, body in ((f"/api/v1/offline-messages/{mid}/close", None),
                       (f"/api/v1/offline-messages/{mid}/reopen", None),
                       (f"/api/v1/offline-messages/{mid}/assign", {"agent_id": None}),
                       (f"/api/v1/offline-messages/{mid}/reply", {"body": "Vastaus"})):
        r = aino.post(path, json=body)
        assert r.status_code == 404, (path, r.status_code, r.text)
        for secret in ("Liisa", "liisa@student.example.fi", "Salainen"):
            assert secret not in r.text, (path, r.text)
    assert _mails_for(live, mid) == 0  # nothing to send to the restricted person

    async def state():
        async with live.rt.db.reader() as s:
            m = await s.get(OfflineMessage, mid)
            return m.state, m.assigned_agent_id
    assert live.call(state) == ("new", None)  # and nothing was changed


def test_a_restriction_by_email_only_hides_the_person_from_agents(live):
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "chair@example.org", ["privacy", "agent"])
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")
    email = "Liisa.Virtanen@Student.example.fi"
    mid = _form(live, name="Liisa Virtanen", email=email, body="Salainen asia")
    other = _form(live, name="Matti Meikäläinen", email="matti@example.fi", body="Tavallinen asia")
    r = chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "email": email.lower()})
    assert r.status_code == 200, r.text
    assert chair.get(f"/api/v1/privacy/offline-messages/{mid}").json()["restricted"] is True

    assert [m["id"] for m in aino.get("/api/v1/offline-messages").json()] == [other]
    r = aino.get(f"/api/v1/offline-messages/{mid}")
    assert r.status_code == 404 and "Liisa" not in r.text
    assert {m["id"] for m in chair.get("/api/v1/offline-messages").json()} == {mid, other}
    assert chair.get(f"/api/v1/offline-messages/{mid}").json()["email"] == email.split("@")[0] + "@student.example.fi"

    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "email": email, "on": False})
    assert {m["id"] for m in aino.get("/api/v1/offline-messages").json()} == {mid, other}


def test_a_restriction_by_email_only_hides_the_chats_of_the_visitor_who_gave_it(live):
    """The form names the visitor who left it: their chats are the same person's."""
    add_staff(live, "aino@example.org", ["agent"])
    add_staff(live, "chair@example.org", ["privacy"])
    aino, chair = sign_in(live, "aino@example.org"), sign_in(live, "chair@example.org")

    async def chat_of_new_visitor() -> tuple[int, int]:
        now = live.rt.clock.now()
        async with live.rt.db.transaction() as s:
            v = Visitor(public_id="v-" + uuid.uuid4().hex[:12], token_hash=uuid.uuid4().hex * 2, created_at=now,
                        last_seen_at=now)
            s.add(v)
            await s.flush()
            c = Conversation(visitor_id=v.id, state="waiting", created_at=now, last_activity_at=now, last_seq=0)
            s.add(c)
            await s.flush()
            return v.id, c.id

    visitor_id, conv = live.call(chat_of_new_visitor)
    _form(live, name="Liisa Virtanen", email="liisa@student.example.fi", body="Jatkan", visitor_id=visitor_id)
    assert aino.get(f"/api/v1/conversations/{conv}").status_code == 200
    chair.post("/api/v1/privacy/flags", json={"kind": "restriction", "email": "liisa@student.example.fi"})
    assert aino.get(f"/api/v1/conversations/{conv}").status_code == 404
    assert conv not in {c["id"] for c in aino.get("/api/v1/conversations").json()}
    assert chair.get(f"/api/v1/privacy/conversations/{conv}").json()["restricted"] is True

