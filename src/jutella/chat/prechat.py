"""The pre-chat form per site (docs/prechat.md).

Off by default. An admin sets, per site origin (chat/sites.py's form of it;
'' is the default for every site without its own row), whether the widget
asks for a name, an email address and a topic before the chat starts, each
``off``, ``optional`` or ``required``, and the topics offered, each mapped to
a department: the chosen topic routes the chat there.

One rule each, asked by every path:

- :func:`form_for`: the form a site's widget shows (the socket's ``welcome``
  carries it as :func:`widget_config`);
- :func:`check_answers`: what a new conversation stores from the form (the
  socket refuses a starting message whose answers do not satisfy it; the
  widget checks the same before sending);
- :func:`fields_in_use`: the fields the register notice must list.

The forms are cached per process for :data:`CACHE_SECONDS` and dropped at
once in the process that changed them, as the sites are: every worker
follows a change within about a second, without a restart.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from jutella.accounts import audit
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.store.models import Department, PrechatForm

from .errors import ChatError
from .offline import FormError, validate_email, validate_name
from .sites import allowed_origins, normalise_origin, origin_of

MODES = ("off", "optional", "required")
FIELDS = ("name", "email", "topic")
LANGS = ("en", "fi", "sv")
MAX_TOPICS = 20
MAX_LABEL = 80
MAX_NAME = 100  # conversation.prechat_name
CACHE_SECONDS = 1.0
CACHE_KEY = "prechat_forms"
LAST_KEY = "prechat_forms_last"
DEFAULT = ""  # the origin key of the default form
_KEY = re.compile(r"^[a-z0-9]{1,16}$")
log = logging.getLogger("jutella.prechat")


@dataclass(frozen=True)
class Topic:
    key: str
    labels: dict[str, str]
    department_id: int | None

    def label(self, lang: str) -> str:
        """In the visitor's language, else English, else the first one given."""
        return self.labels.get(lang) or self.labels.get("en") or next(iter(self.labels.values()), "")

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "labels": dict(self.labels), "department_id": self.department_id}


@dataclass(frozen=True)
class Form:
    origin: str
    name: str = "off"
    email: str = "off"
    topic: str = "off"
    topics: tuple[Topic, ...] = field(default_factory=tuple)

    @property
    def active(self) -> bool:
        return any(self.mode(f) != "off" for f in FIELDS)

    def mode(self, name: str) -> str:
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "name": self.name, "email": self.email, "topic": self.topic,
                "topics": [t.as_dict() for t in self.topics]}


@dataclass(frozen=True)
class Answers:
    """What a new conversation stores from the form (None: not given)."""

    name: str | None = None
    email: str | None = None
    topic: str | None = None  # the topic's label in the visitor's language
    department_id: int | None = None  # the chosen topic's department


def _form(row: PrechatForm) -> Form:
    topics = tuple(Topic(str(t.get("key")), {k: str(v) for k, v in (t.get("labels") or {}).items() if v},
                         t.get("department_id")) for t in (row.topics or []) if isinstance(t, dict))
    return Form(row.origin, row.name_mode, row.email_mode, row.topic_mode, topics)


async def _load(rt: Runtime) -> dict[str, Form]:
    async with rt.db.reader() as s:
        return {r.origin: _form(r) for r in (await s.execute(select(PrechatForm))).scalars()}


async def forms(rt: Runtime) -> dict[str, Form]:
    """Every stored form by origin, at most :data:`CACHE_SECONDS` old. While
    the database cannot be read, the last forms read (or none)."""
    entry = rt.caches.get(CACHE_KEY)
    now = time.monotonic()
    if entry is not None and now - entry[0] < CACHE_SECONDS:
        return entry[1]
    try:
        found = await _load(rt)
        rt.caches[LAST_KEY] = (now, found)
    except Exception as exc:
        log.warning("pre-chat forms not read (%s); using the last known ones", storage_fault(exc) or exc)
        found = rt.caches.get(LAST_KEY, (0, {}))[1]
    rt.caches[CACHE_KEY] = (now, found)
    return found


def forget(rt: Runtime) -> None:
    rt.caches.pop(CACHE_KEY, None)


def site_of(page: str | None) -> str | None:
    """The site a widget is on, from the host page's address (its hello's
    ``page``): the origin by chat/sites.py's one rule (``origin_of``, also
    what ``sites.site_of`` reads); None when there is none."""
    return origin_of(page)


async def form_for(rt: Runtime, origin: str | None) -> Form | None:
    """The form a widget on ``origin`` shows: the site's own (even "all off",
    which means none), else the default; None when it asks nothing."""
    stored = await forms(rt)
    form = stored.get(origin) if origin else None
    if form is None:
        form = stored.get(DEFAULT)
    return form if form is not None and form.active else None


def widget_config(form: Form | None, lang: str) -> dict[str, Any] | None:
    """What ``welcome`` tells the widget (the topics' labels in its language,
    and each topic's department: the widget offers only the topics that
    :func:`topics_on_offer` keeps, as the departments it is told of change)."""
    if form is None:
        return None
    out: dict[str, Any] = {f: form.mode(f) for f in FIELDS}
    if form.topic != "off":
        out["topics"] = [{"key": t.key, "label": t.label(lang), "department": t.department_id} for t in form.topics]
    return out


def topics_on_offer(form: Form, offered: Iterable[int] | None) -> tuple[Topic, ...]:
    """The one rule for which topics a visitor may pick now: those of no
    department (the shared queue) and those whose department takes chats
    now (``offered``: presence.on_duty, what the widgets are told; None: all).
    A closed department's topic would start a chat nobody may take. When
    none is on offer, the form does not ask for a topic (even a required one);
    widget/prechat.js applies the same rule to what it shows."""
    if offered is None:
        return form.topics
    ids = set(offered)
    return tuple(t for t in form.topics if t.department_id is None or t.department_id in ids)


def check_answers(form: Form | None, given: dict[str, Any] | None, lang: str,
                  offered: Iterable[int] | None = None) -> Answers:
    """The answers a conversation starting under ``form`` stores. A required
    field left empty, a malformed email or an unknown topic is refused
    (``prechat_invalid``, the field named); fields the form does not ask are
    dropped, whatever a client sent. ``offered``: the departments taking
    chats now (:func:`topics_on_offer`; a required topic is not asked when
    none of the topics is on offer)."""
    if form is None:
        return Answers()
    given = given if isinstance(given, dict) else {}

    def text(key: str) -> str:
        value = given.get(key)
        return value.strip() if isinstance(value, str) else ""

    def refuse(field_name: str, message: str, **params: object) -> ChatError:
        error = ChatError("prechat_invalid", message, 400, **params)
        error.field = field_name  # type: ignore[attr-defined]
        return error

    name = email = topic = None
    department = None
    if form.name != "off" and (text("name") or form.name == "required"):
        try:
            name = validate_name(text("name"))
        except FormError as exc:
            raise refuse("name", exc.message, **exc.params) from None
        if len(name) > MAX_NAME:
            raise refuse("name", "The name is too long (at most {limit} characters).", limit=MAX_NAME)
    if form.email != "off" and (text("email") or form.email == "required"):
        try:
            email = validate_email(text("email"))
        except FormError as exc:
            raise refuse("email", exc.message, **exc.params) from None
    required_topic = form.topic == "required" and bool(topics_on_offer(form, offered))
    if form.topic != "off" and (text("topic") or required_topic):
        chosen = next((t for t in form.topics if t.key == text("topic")), None)
        if chosen is None:
            raise refuse("topic", "Choose a topic.")
        topic, department = chosen.label(lang)[:MAX_LABEL], chosen.department_id
    return Answers(name, email, topic, department)


async def fields_in_use(rt: Runtime) -> frozenset[str]:
    """The fields some site's widget asks for now (the register notice lists
    exactly these): the default form's and those of the allowed sites' own."""
    stored = await forms(rt)
    if not stored:
        return frozenset()
    allowed = await allowed_origins(rt)
    return frozenset(f for form in stored.values() if form.origin == DEFAULT or form.origin in allowed
                     for f in FIELDS if form.mode(f) != "off")


# -- editing (admins, the console's Embed page) ------------------------------------------------------
def _origin(value: str | None) -> str:
    return DEFAULT if not (value or "").strip() else normalise_origin(value or "")


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ChatError("prechat_mode_invalid", "Each field is off, optional or required.", 400)
    return value


async def save_form(rt: Runtime, *, actor_id: int, origin: str | None, name: Any, email: Any, topic: Any,
                    topics: Any) -> Form:
    """Store a site's form (or the default, origin ''), audited."""
    key = _origin(origin)
    modes = {"name": _mode(name), "email": _mode(email), "topic": _mode(topic)}
    if not isinstance(topics, list) or len(topics) > MAX_TOPICS:
        raise ChatError("prechat_topics_invalid", "At most {limit} topics.", 400, limit=MAX_TOPICS)
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in topics:
        if not isinstance(item, dict):
            raise ChatError("prechat_topics_invalid", "Give each topic a name.", 400)
        labels: dict[str, str] = {}
        for lang in LANGS:
            value = " ".join(str((item.get("labels") or {}).get(lang) or "").split())
            if len(value) > MAX_LABEL or any(ord(c) < 32 for c in value):
                raise ChatError("prechat_label_invalid", "A topic's name is at most {limit} characters.", 400,
                                limit=MAX_LABEL)
            if value:
                labels[lang] = value
        if not labels:
            raise ChatError("prechat_topics_invalid", "Give each topic a name.", 400)
        topic_key = str(item.get("key") or "")
        if not _KEY.match(topic_key) or topic_key in seen:
            topic_key = secrets.token_hex(4)
        seen.add(topic_key)
        department = item.get("department_id")
        if department is not None and (type(department) is not int or department < 1):
            raise ChatError("not_found", "No such department.", 404)
        cleaned.append({"key": topic_key, "labels": labels, "department_id": department})
    if modes["topic"] != "off" and not cleaned:
        raise ChatError("prechat_topics_invalid", "Add at least one topic, or turn the topic off.", 400)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        wanted = {t["department_id"] for t in cleaned if t["department_id"] is not None}
        if wanted:
            found = set((await s.execute(select(Department.id).where(Department.id.in_(wanted)))).scalars())
            if wanted - found:
                raise ChatError("not_found", "No such department.", 404)
        row = await s.get(PrechatForm, key)
        if row is None:
            row = PrechatForm(origin=key, updated_at=now)
            s.add(row)
        row.name_mode, row.email_mode, row.topic_mode = modes["name"], modes["email"], modes["topic"]
        row.topics, row.updated_at = cleaned, now
        await audit.record(s, now, actor_id=actor_id, action="prechat.change", target_type="prechat_form",
                           detail={"form": key, "asks": modes, "topics": len(cleaned)})
    forget(rt)
    return _form(row)


async def remove_form(rt: Runtime, *, actor_id: int, origin: str | None) -> None:
    """Remove a site's own form (the site then shows the default), or the
    default (no form where a site has none of its own). Audited."""
    key = _origin(origin)
    now = rt.clock.now()
    async with rt.db.transaction() as s:
        if await s.get(PrechatForm, key) is None:
            raise ChatError("not_found", "No such form.", 404)
        await s.execute(delete(PrechatForm).where(PrechatForm.origin == key))
        await audit.record(s, now, actor_id=actor_id, action="prechat.remove", target_type="prechat_form",
                           detail={"form": key})
    forget(rt)


async def list_forms(rt: Runtime) -> list[Form]:
    async with rt.db.reader() as s:
        rows = (await s.execute(select(PrechatForm).order_by(PrechatForm.origin))).scalars().all()
    return [_form(r) for r in rows]


async def department_names(rt: Runtime) -> list[tuple[int, str]]:
    """The departments a topic may route to (the editor's choice)."""
    async with rt.db.reader() as s:
        return [(i, n) for i, n in (await s.execute(select(Department.id, Department.name)
                                                    .order_by(Department.name))).all()]
