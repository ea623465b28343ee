"""Issue 14: the actions decide who may see a conversation inside their own
write, and the routes only parse, call and shape.

1. accept, close, note, label, transfer and an agent's upload take the
   caller's Viewer and ask chat/access.py inside the same transaction as the
   change. So a conversation that turns hidden between a route's read of the
   caller and the action's write (the person restricted, the agent taken out
   of the department) is refused as "not found" and nothing is written; and
   a caller without a Viewer at hand (the agent socket, auto-assignment) is
   checked with one loaded from its account.
2. The list, search and detail reads moved from the routes into the
   subsystems, which write the audit rows the routes wrote before: the same
   kinds, actors, records and details; since issue 16 the lists too write
   one row naming the records they showed.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from jutella.accounts import actions as accounts
from jutella.accounts.errors import AccountError
from jutella.chat import access, notes, offline, transfers
from jutella.chat import actions as chat
from jutella.chat import attachments as att
from jutella.chat import departments as D
from jutella.chat import labels
from jutella.chat.metadata import collect
from jutella.privacy import subjects
from jutella.store.models import (Attachment, AuditEntry, ChatEvent, Conversation, ConversationLabel, Department,
                                  Label, Visitor)

from tests.helpers import add_staff, sign_in
from tests.conftest import BOTH


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

WORD = "routeword"


@dataclass
class World:
    aino: int = 0  # agent, department A
    bert: int = 0  # agent, department B
    dept_a: int = 0
    dept_b: int = 0
    label: int = 0
    visitors: dict[int, int] = field(default_factory=dict)  # conversation -> visitor


def seed(live) -> World:
    w = World(aino=add_staff(live, "aino@example.org", ["agent"]), bert=add_staff(live, "bert@example.org", ["agent"]))

    async def build() -> None:
        now = live.rt.clock.now()
        async with live.rt.db.transaction() as s:
            a, b = Department(name="A", position=1, created_at=now), Department(name="B", position=2, created_at=now)
            label = Label(name="route", color="blue", created_at=now)
            s.add_all([a, b, label])
            await s.flush()
            w.dept_a, w.dept_b, w.label = a.id, b.id, label.id
        await D.set_members(live.rt, actor_id=None, department_id=a.id, account_ids=[w.aino])
        await D.set_members(live.rt, actor_id=None, department_id=b.id, account_ids=[w.bert])

    live.call(build)
    return w


def new_chat(live, w: World, *, state: str = "waiting", agent_id: int | None = None) -> int:
    """A conversation of department A with one visitor message (holding WORD)."""
    async def build() -> int:
        now = live.rt.clock.now()
        async with live.rt.db.transaction() as s:
            v = Visitor(public_id="v-" + uuid.uuid4().hex[:12], token_hash=uuid.uuid4().hex * 2, created_at=now,
                        last_seen_at=now)
            s.add(v)
            await s.flush()
            c = Conversation(visitor_id=v.id, state=state, agent_id=agent_id, created_at=now, last_activity_at=now,
                             last_seq=1, department_id=w.dept_a, accepted_at=now if agent_id else None)
            s.add(c)
            await s.flush()
            s.add(ChatEvent(conversation_id=c.id, seq=1, kind="message", author="visitor", body=f"{WORD} hei",
                            created_at=now))
            w.visitors[c.id] = v.id
            return c.id
    return live.call(build)


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 255)).save(out, "PNG")
    return out.getvalue()


# Each action as a staff member with Viewer ``v`` calls it (``v`` None: as the
# agent socket does today, with the account id only).
def _accept(live, w, conv, v, agent):
    return chat.accept(live.rt, agent_id=agent, conversation_id=conv, viewer=v)


def _close(live, w, conv, v, agent):
    return chat.close(live.rt, conversation_id=conv, by="agent", agent_id=agent, viewer=v)


def _note(live, w, conv, v, agent):
    return notes.post_note(live.rt, agent_id=agent, conversation_id=conv, body="sisäinen", client_id="n-1", viewer=v)


def _label(live, w, conv, v, agent):
    return labels.set_label(live.rt, agent_id=agent, conversation_id=conv, label_id=w.label, on=True, viewer=v)


def _transfer(live, w, conv, v, agent):
    return transfers.transfer(live.rt, agent_id=agent, conversation_id=conv, to_department_id=w.dept_b, viewer=v)


def _upload(live, w, conv, v, agent):
    return att.add(live.rt, conversation_id=conv, agent_id=agent, data=png(), filename="kuva.png", viewer=v)


ACTIONS = {"accept": _accept, "close": _close, "note": _note, "label": _label, "transfer": _transfer,
           "upload": _upload}


def snapshot(live, conv: int) -> tuple[Any, ...]:
    """Everything the actions could change about a conversation."""
    async def q():
        async with live.rt.db.reader() as s:
            c = await s.get(Conversation, conv)
            events = (await s.execute(select(func.count()).select_from(ChatEvent).where(
                ChatEvent.conversation_id == conv))).scalar_one()
            links = (await s.execute(select(func.count()).select_from(ConversationLabel).where(
                ConversationLabel.conversation_id == conv))).scalar_one()
            files = (await s.execute(select(func.count()).select_from(Attachment).where(
                Attachment.conversation_id == conv))).scalar_one()
            return c.state, c.agent_id, c.department_id, c.last_seq, events, links, files
    return live.call(q)


def refused(live, fn, *args) -> AccountError | None:
    try:
        live.call(fn, live, *args)
    except AccountError as exc:
        return exc
    return None


def _chat_for(name: str, live, w: World) -> int:
    # a transfer is its agent's (or an administrator's) to make: the chat is Aino's
    return new_chat(live, w, state="active", agent_id=w.aino) if name == "transfer" else new_chat(live, w)


@pytest.mark.parametrize("change", ["restricted", "left_department"])
def test_an_action_refuses_a_conversation_hidden_after_the_callers_viewer_was_read(live, change):
    """The route reads the caller's Viewer (while Aino may see the chat);
    then the person is restricted, or Aino leaves department A; then the
    action runs with that Viewer. Each action asks the rule inside its own
    write, so each answers 404 and writes nothing. The same call on a chat
    that stayed visible goes through (the setup is right)."""
    w = seed(live)
    rt = live.rt
    for name, action in ACTIONS.items():
        if name == "transfer" and change == "left_department":
            continue  # a chat that is Aino's own stays hers to see (and hand on) whatever her departments
        visible, hidden = _chat_for(name, live, w), _chat_for(name, live, w)
        viewer = live.call(access.load_viewer, rt, w.aino)
        assert live.call(access.conversation_or_404, rt, viewer, hidden) is None  # the route's read: visible
        before = snapshot(live, visible)
        assert refused(live, action, w, visible, viewer, w.aino) is None, name  # the setup is right
        assert snapshot(live, visible) != before, name
        if change == "restricted":
            live.call(subjects.set_flag, rt, actor_id=None, kind="restriction", on=True,
                      sel=subjects.Selection(conversations={hidden}))
        else:
            live.call(D.set_members, rt, actor_id=None, department_id=w.dept_a, account_ids=[])
        before = snapshot(live, hidden)
        exc = refused(live, action, w, hidden, viewer, w.aino)
        assert exc is not None and (exc.status, exc.code) == (404, "not_found"), (name, exc)
        assert snapshot(live, hidden) == before, name
        live.call(D.set_members, rt, actor_id=None, department_id=w.dept_a, account_ids=[w.aino])
    assert live.call(_stored, rt) == live.call(_named, rt)  # a refused upload leaves no file behind


def test_an_action_called_without_a_viewer_checks_the_callers_own_account(live):
    """The agent socket calls accept, close and note with the account id
    only; the action loads that account's Viewer, so no path skips the rule.
    A disabled account sees nothing."""
    w = seed(live)
    rt = live.rt
    for name, action in ACTIONS.items():
        conv = _chat_for(name, live, w)
        live.call(subjects.set_flag, rt, actor_id=None, kind="restriction", on=True,
                  sel=subjects.Selection(conversations={conv}))
        before = snapshot(live, conv)
        exc = refused(live, action, w, conv, None, w.aino)
        assert exc is not None and exc.status == 404, (name, exc)
        assert snapshot(live, conv) == before, name
    conv = new_chat(live, w)
    live.call(accounts.set_disabled, rt, actor_id=None, account_id=w.aino, disabled=True)
    exc = refused(live, _accept, w, conv, None, w.aino)
    assert exc is not None and exc.status == 404
    assert snapshot(live, conv)[:2] == ("waiting", None)


def test_auto_assignment_passes_over_an_agent_who_may_not_see_the_person(live):
    """auto_assign goes through accept, and so through the rule: a restricted
    person's chat is not handed to an agent who could not open it."""
    w = seed(live)
    rt = live.rt
    conv = new_chat(live, w)
    live.call(subjects.set_flag, rt, actor_id=None, kind="restriction", on=True,
              sel=subjects.Selection(conversations={conv}))

    async def assign_with_aino_online():
        rt.presence.connect(w.aino, "c-1", "online")
        try:
            return await chat.auto_assign(rt, conv)
        finally:
            rt.presence.forget(w.aino)

    assert live.call(assign_with_aino_online) is None
    assert snapshot(live, conv)[:2] == ("waiting", None)


def test_an_upload_into_a_hidden_conversation_is_404_over_http_and_leaves_nothing(live):
    w = seed(live)
    conv = new_chat(live, w)
    bert = sign_in(live, "bert@example.org")  # department B: chats of A are not his
    before = snapshot(live, conv)
    r = bert.post(f"/api/v1/conversations/{conv}/attachments", files={"file": ("kuva.png", png(), "image/png")})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert snapshot(live, conv) == before
    assert live.call(_stored, live.rt) == []


async def _stored(rt) -> list[str]:
    """The keys in the cluster's file store (store/files.py)."""
    return sorted([e.key async for e in rt.files.entries()])


async def _named(rt) -> list[str]:
    """The files the attachment rows name (the uploads that were accepted)."""
    async with rt.db.reader() as s:
        return sorted((await s.execute(select(Attachment.storage_name))).scalars())


# -- 2. the reads' audit rows ------------------------------------------------------------------
def audit_since(live, seq: int) -> list[tuple]:
    async def q():
        async with live.rt.db.reader() as s:
            return [(e.action, e.actor_id, e.target_type, e.target_id, e.subject, e.detail) for e in (
                await s.execute(select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq))).scalars()]
    return live.call(q)


def last_seq(live) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.coalesce(func.max(AuditEntry.seq), 0)))).scalar_one()
    return live.call(q)


async def _event_with(live, word: str) -> int:
    async with live.rt.db.reader() as s:
        return (await s.execute(select(ChatEvent.id).where(ChatEvent.body.contains(word)))).scalar_one()


def test_lists_search_and_detail_reads_write_the_audit_rows_they_wrote_before(live):
    w = seed(live)
    rt = live.rt
    chief = add_staff(live, "chief@example.org", ["admin"])
    pia = add_staff(live, "pia@example.org", ["privacy"])
    conv = new_chat(live, w)
    visitor = w.visitors[conv]
    rt.settings.notice.marketing.enabled = True  # contacts.csv lists the consenting form
    form = live.call(offline.submit, rt, name="Liisa Virtanen", email="liisa@student.example.fi",
                     message="Hei", reason="no_agent", meta=collect(None, None, None, "fi"),
                     consent_version="1").message.id
    aino, boss, priv = (sign_in(live, f"{n}@example.org") for n in ("aino", "chief", "pia"))
    stored = live.call(att.add, rt, conversation_id=conv, agent_id=w.aino, data=png(), filename="kuva.png")

    def rows_of(client, method: str, path: str, **kw) -> list[tuple]:
        seq = last_seq(live)
        r = client.request(method, path, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return audit_since(live, seq)

    # the lists show previews, names and emails: one row naming what was shown (issue 16)
    listed = [c["id"] for c in aino.get("/api/v1/conversations").json()]
    assert conv in listed
    assert rows_of(aino, "GET", "/api/v1/conversations") == [
        ("conversation.list", w.aino, None, None, None, {"shown": {"conversations": sorted(listed)}})]
    assert rows_of(aino, "GET", "/api/v1/offline-messages") == [
        ("offline_message.list", w.aino, None, None, None, {"shown": {"offline_messages": [form]}})]
    assert rows_of(aino, "GET", "/api/v1/agents") == []
    assert rows_of(aino, "GET", f"/api/v1/conversations/{conv}") == [
        ("conversation.view", w.aino, "conversation", str(conv), f"visitor:{visitor}", {})]
    hit = live.call(_event_with, live, WORD)
    assert rows_of(aino, "GET", "/api/v1/search", params={"q": WORD}) == [
        ("conversation.search", w.aino, None, None, None,
         {"results": 1, "shown": {"conversations": [conv], "messages": [hit]}})]
    assert rows_of(aino, "GET", "/api/v1/search", params={"q": WORD, "state": "closed"}) == [
        ("conversation.search", w.aino, None, None, None,
         {"results": 0, "shown": {"conversations": [], "messages": []}})]
    assert rows_of(aino, "GET", f"/api/v1/offline-messages/{form}") == [
        ("offline_message.view", w.aino, "offline_message", str(form), None, {})]
    assert rows_of(aino, "GET", f"/api/v1/conversations/{conv}/transcript") == [
        ("conversation.view", w.aino, "conversation", str(conv), f"visitor:{visitor}", {})]
    assert rows_of(aino, "GET", f"/attachments/{stored.attachment.public_id}") == [
        ("attachment.view", w.aino, "attachment", str(stored.attachment.id), f"visitor:{visitor}", {})]
    assert rows_of(boss, "GET", "/api/v1/offline-messages/contacts.csv") == [
        ("contacts.export", chief, None, None, None, {"contacts": 1})]
    assert rows_of(priv, "GET", f"/api/v1/privacy/conversations/{conv}") == [
        ("subject.view", pia, "conversation", str(conv), None, {})]
    assert rows_of(priv, "GET", f"/api/v1/privacy/offline-messages/{form}") == [
        ("subject.view", pia, "offline_message", str(form), None, {})]
    assert rows_of(boss, "GET", "/api/v1/audit", params={"account": w.aino}) == [
        ("audit.view", chief, None, None, None, {"account": w.aino, "subject": False})]
    assert rows_of(boss, "GET", "/api/v1/audit", params={"subject": f"visitor:{visitor}"}) == [
        ("audit.view", chief, None, None, None, {"account": None, "subject": True})]
    # a hidden record: 404, and no row claims it was seen
    bert = sign_in(live, "bert@example.org")
    seq = last_seq(live)
    assert bert.get(f"/api/v1/conversations/{conv}").status_code == 404
    assert bert.get(f"/attachments/{stored.attachment.public_id}").status_code == 404
    assert audit_since(live, seq) == []
