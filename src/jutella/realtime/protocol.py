"""The chat protocol as a pure state machine: no sockets, no asyncio, no database.

One :class:`Protocol` object per WebSocket connection. The endpoint feeds it
what arrives (:meth:`Protocol.receive`), what the hub says (:meth:`Protocol.event`
with ``live=True``), what the database says (:meth:`Protocol.event` during a
replay) and the time (:meth:`Protocol.tick`); the protocol answers with
*commands* for the endpoint to carry out (the ``Command`` dataclasses below) and
*frames* for the endpoint to send (:meth:`Protocol.data_to_send`).

What the protocol guarantees, whatever order the endpoint feeds it in:

* every ``event`` frame it emits for a conversation has a higher ``seq`` than
  the previous one it emitted for that conversation (the *watermark*,
  :meth:`Protocol.delivered`), so a client never sees an event twice or out of
  order;
* it never invents an event: each frame it emits is one the endpoint fed;
* a live event that reveals a gap (its seq is above watermark + 1) is held back
  and the endpoint is asked to read the missing events from the database
  (:class:`FetchSince`), so a client does not skip events either.

The wire protocol itself is in ``docs/protocol.md`` (from the agreed spec).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import orjson

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_BODY_CHARS",
    "MAX_CLIENT_ID",
    "MAX_TOKEN_CHARS",
    "MAX_URL_CHARS",
    "MAX_LANG_CHARS",
    "MAX_SUBSCRIPTIONS",
    "MAX_ID",
    "REPLAY_BUFFER_LIMIT",
    "MAX_FRUITLESS_FETCHES",
    "PING_INTERVAL",
    "DEAD_AFTER",
    "HELLO_TIMEOUT",
    "CLOSE_DEAD",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_NO_HELLO",
    "CLOSE_TRY_AGAIN",
    "CLOSE_RESTART",
    "ERROR_CODES",
    "PRESENCE_STATES",
    "VisitorHello",
    "AgentHello",
    "SendMessage",
    "PostNote",
    "Typing",
    "Seen",
    "EndChat",
    "PageView",
    "Accept",
    "Close",
    "SetPresence",
    "Subscribe",
    "Unsubscribe",
    "FetchSince",
    "Command",
    "Protocol",
]

# --------------------------------------------------------------------------- limits

MAX_FRAME_BYTES: Final = 16_384  # larger frames are refused unparsed ("too_large")
MAX_BODY_CHARS: Final = 4_000  # after stripping; counted in code points
MAX_CLIENT_ID: Final = 64
MAX_TOKEN_CHARS: Final = 512  # visitor tokens are server-made and much shorter
MAX_URL_CHARS: Final = 2_048  # hello.page / hello.referrer are truncated to this
MAX_LANG_CHARS: Final = 35  # longer hello.lang values are ignored (None)
MAX_SUBSCRIPTIONS: Final = 1_000  # conversations one agent connection may follow
MAX_ID: Final = 2**63 - 1  # conversation ids and seqs are SQL BIGINTs
REPLAY_BUFFER_LIMIT: Final = 1_000  # live events held per conversation during a replay
# Pass as an event's frame to move a client past a seq it must not see (a
# staff-only note, for a visitor): nothing is sent, and no gap is left behind.
HIDDEN: Final[dict[str, Any]] = {"hidden": True}
MAX_FRUITLESS_FETCHES: Final = 3  # refetches without progress before a gap is given up

PING_INTERVAL: Final = 20.0
DEAD_AFTER: Final = 60.0
HELLO_TIMEOUT: Final = 10.0

CLOSE_DEAD: Final = 4000
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_NO_HELLO: Final = 4408
CLOSE_TRY_AGAIN: Final = 1013  # the database is unavailable: reconnect later and resume
CLOSE_RESTART: Final = 1012  # the server is draining (SIGTERM): reconnect, to another worker or host

ERROR_CODES: Final = frozenset(
    {
        "malformed",
        "unknown_type",
        "empty",
        "too_long",
        "too_large",
        "not_ready",
        "rate_limited",
        "not_found",
        "forbidden",
        "conflict",
        "closed",
        # the database is locked, full or unreachable: nothing was stored, resend later
        "busy",
        "storage_full",
        "unavailable",
        "limit_reached",
        # the visitor chose a department the widget does not offer now
        "department_unavailable",
        # the pre-chat form's answers do not satisfy the site's form (chat/prechat.py)
        "prechat_invalid",
    }
)
PRESENCE_STATES: Final = frozenset({"online", "away", "offline"})

Role: TypeAlias = Literal["visitor", "agent"]
State: TypeAlias = Literal["awaiting_hello", "open", "closed"]

# ------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class VisitorHello:
    token: str | None
    last_seq: int
    lang: str | None
    page: str | None
    referrer: str | None


@dataclass(frozen=True, slots=True)
class AgentHello:
    subscriptions: dict[int, int]  # conversation id -> last seq the client has


@dataclass(frozen=True, slots=True)
class SendMessage:
    client_id: str
    body: str  # stripped, 1..MAX_BODY_CHARS characters
    conversation: int | None  # None on visitor connections
    department: int | None = None  # a visitor's chosen department (used when the message starts a conversation)
    # a visitor's pre-chat form answers (name, email, topic: strings), used when the message starts a conversation
    prechat: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class PostNote:
    """Agents only: an internal note (staff see it, the visitor never does)."""

    client_id: str
    body: str  # stripped, 1..MAX_BODY_CHARS characters
    conversation: int


@dataclass(frozen=True, slots=True)
class Typing:
    active: bool
    conversation: int | None


@dataclass(frozen=True, slots=True)
class Seen:
    seq: int
    conversation: int | None


@dataclass(frozen=True, slots=True)
class EndChat:
    pass


@dataclass(frozen=True, slots=True)
class PageView:
    """Visitors only: the host page the visitor is on now (``page``, cut to
    MAX_URL_CHARS; None for ""). The endpoint cleans and stores it."""

    page: str | None


@dataclass(frozen=True, slots=True)
class Accept:
    conversation: int


@dataclass(frozen=True, slots=True)
class Close:
    conversation: int


@dataclass(frozen=True, slots=True)
class SetPresence:
    state: str  # "online" | "away" | "offline"


@dataclass(frozen=True, slots=True)
class Subscribe:
    conversation: int
    last_seq: int  # as the client sent it; the FetchSince that follows has the effective value


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    conversation: int


@dataclass(frozen=True, slots=True)
class FetchSince:
    """Read the conversation's events with seq > after_seq from the database, feed
    each to ``event()`` in seq order, then call ``end_replay(conversation)``.
    The conversation is already in replay when this command is handed out."""

    conversation: int
    after_seq: int


Command: TypeAlias = (
    VisitorHello
    | AgentHello
    | SendMessage
    | PostNote
    | Typing
    | Seen
    | EndChat
    | PageView
    | Accept
    | Close
    | SetPresence
    | Subscribe
    | Unsubscribe
    | FetchSince
)

# ------------------------------------------------------------------------ internals

_PING: Final = b'{"type":"ping"}'
_PONG: Final = b'{"type":"pong"}'
_ID_KEY = re.compile(r"[1-9][0-9]{0,18}")  # a JSON object key naming a conversation

_AWAITING: Final = "awaiting_hello"
_OPEN: Final = "open"
_CLOSED: Final = "closed"


# An event's frame is the same bytes for every connection it goes to (the
# visitor's tabs, each agent's consoles): encoded once. Keyed by the frame
# dict's identity and kept with it (so the id is not reused while the entry
# lives); the hub hands every subscriber the same dict and nobody changes a
# frame once published (a connection that shows something else, a localised
# system text, builds a new dict). Bounded: cleared when full.
_ENCODED: dict[int, tuple[dict[str, Any], int, int, bytes]] = {}
_ENCODED_MAX: Final = 512


def _encoded_event(conversation: int, seq: int, frame: dict[str, Any]) -> bytes:
    """``frame`` as an event frame of ``conversation`` at ``seq``, UTF-8 JSON."""
    entry = _ENCODED.get(id(frame))
    if entry is not None and entry[0] is frame and entry[1] == conversation and entry[2] == seq:
        return entry[3]
    data = orjson.dumps({**frame, "type": "event", "conversation": conversation, "seq": seq})
    if len(_ENCODED) >= _ENCODED_MAX:
        _ENCODED.clear()
    _ENCODED[id(frame)] = (frame, conversation, seq, data)
    return data


class _Invalid(Exception):
    """A client frame that fails validation; becomes an error frame."""

    __slots__ = ("code", "message", "client_id")

    def __init__(self, code: str, message: str, client_id: str | None = None):
        self.code = code
        self.message = message
        self.client_id = client_id


class _Replay:
    """Per-conversation replay state; exists only while a replay is running."""

    __slots__ = ("buffer", "start", "tries", "overflowed")

    def __init__(self, start: int, tries: int = 0):
        self.buffer: dict[int, dict[str, Any]] = {}  # seq -> live frame held back
        self.start = start  # watermark when the current fetch was asked for
        self.tries = tries  # consecutive fetches that did not move the watermark
        self.overflowed = False  # live events were dropped; must refetch


def _malformed(message: str, client_id: str | None = None) -> _Invalid:
    return _Invalid("malformed", message, client_id)


def _int(msg: dict[str, Any], key: str, *, minimum: int, default: int | None = None,
         client_id: str | None = None) -> int:
    value = msg.get(key, default)
    # type() rather than isinstance(): bool is an int subclass and must not pass.
    if type(value) is not int or not minimum <= value <= MAX_ID:
        raise _malformed(f"{key} must be an integer >= {minimum}", client_id)
    return value


def _conversation(msg: dict[str, Any], client_id: str | None = None) -> int:
    return _int(msg, "conversation", minimum=1, client_id=client_id)


def _optional_text(msg: dict[str, Any], key: str, limit: int, *, truncate: bool) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if type(value) is not str or "\x00" in value:
        raise _malformed(f"{key} must be a string or null")
    if not value:
        return None
    if len(value) > limit:
        if not truncate:
            return None
        value = value[:limit]
    return value


def _client_id(msg: dict[str, Any]) -> str:
    value = msg.get("client_id")
    if type(value) is not str or not 1 <= len(value) <= MAX_CLIENT_ID or "\x00" in value:
        raise _malformed(f"client_id must be a string of 1..{MAX_CLIENT_ID} characters")
    return value


def _body(msg: dict[str, Any], client_id: str) -> str:
    value = msg.get("body")
    if type(value) is not str or "\x00" in value:
        raise _malformed("body must be a string", client_id)
    value = value.strip()
    if not value:
        raise _Invalid("empty", "the message is empty", client_id)
    if len(value) > MAX_BODY_CHARS:
        raise _Invalid("too_long", f"the message is over {MAX_BODY_CHARS} characters", client_id)
    return value


PRECHAT_KEYS: Final = ("name", "email", "topic")
MAX_PRECHAT_CHARS: Final = 300  # per answer; chat/prechat.py sets the stored limits


def _prechat(msg: dict[str, Any], client_id: str) -> dict[str, str] | None:
    """A visitor's pre-chat answers: an object of at most name, email and
    topic, each a string (their content is checked by chat/prechat.py)."""
    value = msg.get("prechat")
    if value is None:
        return None
    if type(value) is not dict or set(value) - set(PRECHAT_KEYS):
        raise _malformed("prechat must be an object of name, email and topic", client_id)
    out: dict[str, str] = {}
    for key, answer in value.items():
        if answer is None:
            continue
        if type(answer) is not str or "\x00" in answer or len(answer) > MAX_PRECHAT_CHARS:
            raise _malformed(f"prechat.{key} must be a string of at most {MAX_PRECHAT_CHARS} characters", client_id)
        out[key] = answer
    return out


def _active(msg: dict[str, Any]) -> bool:
    value = msg.get("active")
    if type(value) is not bool:
        raise _malformed("active must be true or false")
    return value


# ------------------------------------------------------------------------- protocol


class Protocol:
    """The sans-I/O state of one chat WebSocket connection (see the module doc)."""

    __slots__ = (
        "role",
        "state",
        "close_code",
        "close_reason",
        "_out",
        "_pending",
        "_delivered",
        "_replays",
        "_opened_at",
        "_last_recv",
        "_last_ping",
        "_hello_received",
        "_queue_told",
    )

    def __init__(self, role: Role, now: float):
        if role not in ("visitor", "agent"):
            raise ValueError(f"role must be 'visitor' or 'agent', not {role!r}")
        self.role: Role = role
        self.state: State = _AWAITING
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._out: list[bytes] = []
        self._pending: list[Command] = []
        self._delivered: dict[int, int] = {}  # tracked conversation -> watermark
        self._replays: dict[int, _Replay] = {}  # only conversations in replay
        self._opened_at = now
        self._last_recv = now
        self._last_ping = now  # the first ping comes PING_INTERVAL after the last sign of life
        self._hello_received = False
        self._queue_told: tuple[int, int, int | None] | None = None  # the last queue frame sent

    # ------------------------------------------------------------ incoming frames

    def receive(self, data: str | bytes, now: float) -> list[Command]:
        """Parse and validate one frame from the client.

        Returns the commands it asks for; an invalid frame queues an error frame
        and returns ``[]``. Never raises on any input.
        """
        if self.state == _CLOSED:
            return []
        self._last_recv = now  # any frame, valid or not, is a sign of life
        try:
            return self._receive(data)
        except _Invalid as invalid:
            self.error(invalid.code, invalid.message, invalid.client_id)
            return []

    def _receive(self, data: Any) -> list[Command]:
        if isinstance(data, str):
            if len(data) > MAX_FRAME_BYTES:  # each character is at least one byte
                raise _Invalid("too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
            try:
                data = data.encode()
            except UnicodeEncodeError:  # lone surrogates
                raise _malformed("frames must be UTF-8 JSON") from None
        elif isinstance(data, memoryview):
            data = data.tobytes()
        elif not isinstance(data, (bytes, bytearray)):
            raise _malformed("frames must be UTF-8 JSON")
        if len(data) > MAX_FRAME_BYTES:
            raise _Invalid("too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
        try:
            msg = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError, RecursionError):
            raise _malformed("frames must be UTF-8 JSON") from None
        if type(msg) is not dict:
            raise _malformed("a frame must be a JSON object")
        kind = msg.get("type")
        if type(kind) is not str:
            raise _malformed("a frame needs a string type")

        if kind == "ping":
            self._out.append(_PONG)
            return []
        if kind == "pong":
            return []
        if kind == "hello":
            if self._hello_received:
                raise _malformed("hello was already received")
            commands = self._visitor_hello(msg) if self.role == "visitor" else self._agent_hello(msg)
            self._hello_received = True
            return commands
        if self.state != _OPEN:
            raise _Invalid("not_ready", "send hello and wait for welcome first")
        handler = _HANDLERS[self.role].get(kind)
        if handler is None:
            raise _Invalid("unknown_type", "unknown frame type")
        return handler(self, msg)

    def _visitor_hello(self, msg: dict[str, Any]) -> list[Command]:
        token = msg.get("token")
        if token is not None and (
            type(token) is not str or not 1 <= len(token) <= MAX_TOKEN_CHARS or "\x00" in token
        ):
            raise _malformed("token must be null or a token string")
        return [
            VisitorHello(
                token=token,
                last_seq=_int(msg, "last_seq", minimum=0, default=0),
                lang=_optional_text(msg, "lang", MAX_LANG_CHARS, truncate=False),
                page=_optional_text(msg, "page", MAX_URL_CHARS, truncate=True),
                referrer=_optional_text(msg, "referrer", MAX_URL_CHARS, truncate=True),
            )
        ]

    def _agent_hello(self, msg: dict[str, Any]) -> list[Command]:
        raw = msg.get("subscriptions", {})
        if raw is None:
            raw = {}
        if type(raw) is not dict:
            raise _malformed("subscriptions must be an object")
        if len(raw) > MAX_SUBSCRIPTIONS:
            raise _Invalid("forbidden", f"at most {MAX_SUBSCRIPTIONS} subscriptions")
        subscriptions: dict[int, int] = {}
        for key, last_seq in raw.items():
            if not _ID_KEY.fullmatch(key) or int(key) > MAX_ID:
                raise _malformed("subscription keys must be conversation ids")
            if type(last_seq) is not int or not 0 <= last_seq <= MAX_ID:
                raise _malformed("subscription values must be integers >= 0")
            subscriptions[int(key)] = last_seq
        commands: list[Command] = [AgentHello(subscriptions)]
        for conversation, last_seq in subscriptions.items():
            commands.append(self._track(conversation, last_seq))
        return commands

    def _message(self, msg: dict[str, Any]) -> list[Command]:
        client_id = _client_id(msg)
        conversation = None if self.role == "visitor" else _conversation(msg, client_id)
        department = None
        if self.role == "visitor" and msg.get("department") is not None:
            department = _int(msg, "department", minimum=1, client_id=client_id)
        prechat = _prechat(msg, client_id) if self.role == "visitor" else None
        return [SendMessage(client_id, _body(msg, client_id), conversation, department, prechat)]

    def _note(self, msg: dict[str, Any]) -> list[Command]:
        client_id = _client_id(msg)
        conversation = _conversation(msg, client_id)
        return [PostNote(client_id, _body(msg, client_id), conversation)]

    def _typing(self, msg: dict[str, Any]) -> list[Command]:
        conversation = None if self.role == "visitor" else _conversation(msg)
        return [Typing(_active(msg), conversation)]

    def _seen(self, msg: dict[str, Any]) -> list[Command]:
        conversation = None if self.role == "visitor" else _conversation(msg)
        return [Seen(_int(msg, "seq", minimum=0), conversation)]

    def _end(self, msg: dict[str, Any]) -> list[Command]:
        return [EndChat()]

    def _page(self, msg: dict[str, Any]) -> list[Command]:
        return [PageView(_optional_text(msg, "page", MAX_URL_CHARS, truncate=True))]

    def _accept(self, msg: dict[str, Any]) -> list[Command]:
        return [Accept(_conversation(msg))]

    def _close(self, msg: dict[str, Any]) -> list[Command]:
        return [Close(_conversation(msg))]

    def _presence(self, msg: dict[str, Any]) -> list[Command]:
        state = msg.get("state")
        if type(state) is not str or state not in PRESENCE_STATES:
            raise _malformed("state must be online, away or offline")
        return [SetPresence(state)]

    def _subscribe(self, msg: dict[str, Any]) -> list[Command]:
        conversation = _conversation(msg)
        last_seq = _int(msg, "last_seq", minimum=0, default=0)
        if conversation not in self._delivered and len(self._delivered) >= MAX_SUBSCRIPTIONS:
            raise _Invalid("forbidden", f"at most {MAX_SUBSCRIPTIONS} subscriptions")
        return [Subscribe(conversation, last_seq), self._track(conversation, last_seq)]

    def _unsubscribe(self, msg: dict[str, Any]) -> list[Command]:
        conversation = _conversation(msg)
        self.unsubscribe(conversation)
        return [Unsubscribe(conversation)]

    # ------------------------------------------------------------ outgoing frames

    def welcome(self, **fields: Any) -> None:
        """Queue ``{"type": "welcome", **fields}`` and open the connection.

        Call it once, after the hello was accepted and before any event."""
        if self.state == _CLOSED:
            return
        if not self._hello_received:
            raise RuntimeError("welcome() before a hello was received")
        if self.state == _OPEN:
            raise RuntimeError("welcome() was already sent")
        self._queue({"type": "welcome", **fields})
        self.state = _OPEN

    def ack(self, client_id: str, conversation: int, seq: int) -> None:
        """Queue an ack; call it only after the message is committed."""
        self._queue({"type": "ack", "client_id": client_id, "conversation": conversation, "seq": seq})

    def error(self, code: str, message: str, client_id: str | None = None) -> None:
        """Queue an error frame (never closes the connection)."""
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if client_id is not None:
            frame["client_id"] = client_id
        self._queue(frame)

    def send(self, frame: dict[str, Any]) -> None:
        """Queue any other server frame (typing, seen, presence, conversation, ...).

        ``event`` frames must go through :meth:`event`, which keeps the watermark."""
        kind = frame.get("type")
        if type(kind) is not str:
            raise ValueError("a frame needs a string type")
        if kind == "event":
            raise ValueError("send event frames with event(), which de-duplicates them")
        self._queue(frame)

    def queue(self, conversation: int, position: int, typical_wait_s: int | None) -> None:
        """Visitor connections: where the followed conversation stands while it
        waits for an agent. Queues ``{"type": "queue", "conversation",
        "position", "typical_wait_s"}``: ``position`` 1 is next, and
        ``typical_wait_s`` is the recent typical wait in whole seconds, or None
        when there is too little data to say. Nothing is queued before the
        welcome, for a conversation this connection does not follow (a late
        word about the previous one), or when it repeats the last frame sent
        for this conversation (every queue change tells every waiting visitor;
        most of them did not move; a state event of the conversation makes
        the next one news again)."""
        if self.role != "visitor":
            raise RuntimeError("queue() is for visitor connections")
        if type(conversation) is not int or not 1 <= conversation <= MAX_ID:
            raise ValueError("conversation must be a positive integer")
        if type(position) is not int or position < 1:
            raise ValueError("position must be a positive integer")
        if typical_wait_s is not None and (type(typical_wait_s) is not int or typical_wait_s < 0):
            raise ValueError("typical_wait_s must be a non-negative integer or None")
        if self.state != _OPEN or conversation != self.conversation:
            return
        told = (conversation, position, typical_wait_s)
        if told == self._queue_told:
            return
        self._queue_told = told
        self._queue({"type": "queue", "conversation": conversation, "position": position,
                     "typical_wait_s": typical_wait_s})

    def _queue(self, frame: dict[str, Any]) -> None:
        if self.state != _CLOSED:
            self._out.append(orjson.dumps(frame))

    def data_to_send(self) -> list[bytes]:
        """Drain the queued frames: UTF-8 JSON, to be sent as text frames."""
        out, self._out = self._out, []
        return out

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return any frame (without draining)."""
        return bool(self._out)

    def pending_commands(self) -> list[Command]:
        """Drain commands that arose outside :meth:`receive` (gap and refetch
        :class:`FetchSince`). Call it after :meth:`event` and :meth:`end_replay`."""
        pending, self._pending = self._pending, []
        return pending

    def has_pending_commands(self) -> bool:
        """Whether :meth:`pending_commands` would return any (without draining)."""
        return bool(self._pending)

    # ---------------------------------------------------------- conversations

    @property
    def conversation(self) -> int | None:
        """The conversation a visitor connection follows (None before follow())."""
        if self.role != "visitor":
            return None
        return next(iter(self._delivered), None)

    def follow(self, conversation: int, last_seq: int = 0) -> None:
        """Visitor connections: follow ``conversation`` from ``last_seq`` on.

        Following another conversation forgets the previous one (watermark,
        replay buffer and any pending fetch). Following the same one again keeps
        the higher of the two watermarks. No fetch is started: call
        :meth:`begin_replay`, feed the rows after :meth:`delivered` and call
        :meth:`end_replay` (after subscribing to the hub, so nothing falls between)."""
        if self.role != "visitor":
            raise RuntimeError("follow() is for visitor connections; agents subscribe")
        if type(conversation) is not int or conversation < 1:
            raise ValueError("conversation must be a positive integer")
        if type(last_seq) is not int or last_seq < 0:
            raise ValueError("last_seq must be a non-negative integer")
        current = self.conversation
        if current == conversation:
            self._delivered[conversation] = max(self._delivered[conversation], last_seq)
            return
        if current is not None:
            self.unsubscribe(current)
        self._delivered[conversation] = last_seq

    def unsubscribe(self, conversation: int) -> None:
        """Stop tracking a conversation (forget its watermark, replay buffer and
        pending fetches). Later events for it are dropped. Safe to repeat."""
        self._delivered.pop(conversation, None)
        self._replays.pop(conversation, None)
        if self._pending:
            self._pending = [
                c for c in self._pending
                if not (type(c) is FetchSince and c.conversation == conversation)
            ]

    def hide(self, conversation: int) -> None:
        """Agents: the conversation may no longer be seen here (a restriction,
        a role or a membership gone). Stop tracking it, drop what was held of
        it, and queue ``{"type": "hidden", "conversation": id}`` so the
        client removes it from its lists and views. Later events of it are
        dropped; a replay of it is never asked for again. Safe to repeat."""
        if self.role != "agent":
            raise RuntimeError("hide() is for agent connections")
        self.unsubscribe(conversation)
        self._queue({"type": "hidden", "conversation": conversation})

    def tracked(self) -> list[int]:
        """Every conversation this connection follows."""
        return list(self._delivered)

    def is_tracking(self, conversation: int) -> bool:
        """Whether events for this conversation reach the client."""
        return conversation in self._delivered

    def is_replaying(self, conversation: int) -> bool:
        return conversation in self._replays

    def delivered(self, conversation: int) -> int:
        """The watermark: the highest seq sent (or already held by the client) for
        this conversation; 0 for a conversation the connection does not track."""
        return self._delivered.get(conversation, 0)

    def _track(self, conversation: int, last_seq: int) -> FetchSince:
        """Register a conversation (or raise its watermark), enter replay for it
        and return the FetchSince that the endpoint must answer."""
        watermark = max(self._delivered.get(conversation, 0), last_seq)
        self._delivered[conversation] = watermark
        replay = self._replays.get(conversation)
        if replay is None:
            self._replays[conversation] = _Replay(watermark)
        else:
            replay.start = watermark
        if self._pending:  # this fetch supersedes a queued one for the same conversation
            self._pending = [
                c for c in self._pending
                if not (type(c) is FetchSince and c.conversation == conversation)
            ]
        return FetchSince(conversation, watermark)

    # ------------------------------------------------------------------ events

    def begin_replay(self, conversation: int) -> None:
        """Start a replay the endpoint itself initiated (the visitor's, after
        follow()): live events that cannot be sent yet are buffered until
        :meth:`end_replay`. No-op for an untracked conversation or one already
        in replay (every FetchSince the protocol hands out already began one)."""
        if conversation in self._delivered and conversation not in self._replays:
            self._replays[conversation] = _Replay(self._delivered[conversation])

    def event(self, conversation: int, seq: int, frame: dict[str, Any], *, live: bool = False) -> None:
        """Offer one event of a conversation to the client.

        ``live=False``: a database row being replayed (feed rows in seq order).
        ``live=True``: a hub notification, in any order, possibly repeated.
        The frame is sent (with type "event", conversation and seq set; the
        caller's dict is not modified) only when it keeps the client's view
        gap-free and in order; otherwise it is held back or dropped."""
        watermark = self._delivered.get(conversation)
        if watermark is None or seq <= watermark or self.state == _CLOSED:
            return  # untracked, or the client already has it
        replay = self._replays.get(conversation)
        if not live or seq == watermark + 1:
            # A replayed row is the database speaking: whatever seq it has, there
            # is nothing between the watermark and it. A live event right after
            # the watermark can go out at once, replay or not.
            self._emit(conversation, seq, frame)
            if replay is not None and replay.buffer:
                self._drain(conversation, replay)
            return
        # A live event beyond watermark + 1: hold it until the gap is filled.
        if replay is None:
            replay = self._replays[conversation] = _Replay(watermark)
            self._pending.append(FetchSince(conversation, watermark))
        buffer = replay.buffer
        if seq not in buffer and len(buffer) >= REPLAY_BUFFER_LIMIT:
            buffer.clear()  # the database has them all; ask again at end_replay
            replay.overflowed = True
        buffer[seq] = frame

    def end_replay(self, conversation: int) -> None:
        """The endpoint has fed every row of the current fetch (call it even if
        the read failed). Buffered live events that now follow the watermark
        go out in seq order; if a gap remains, another FetchSince is queued."""
        replay = self._replays.pop(conversation, None)
        if replay is None or conversation not in self._delivered:
            return
        watermark = self._delivered[conversation]
        buffer = replay.buffer
        for seq in [s for s in buffer if s <= watermark]:
            del buffer[seq]
        if buffer:
            self._drain(conversation, replay)
        if not buffer and not replay.overflowed:
            return  # caught up: back to plain live delivery
        watermark = self._delivered[conversation]
        tries = 0 if watermark > replay.start else replay.tries + 1
        if tries >= MAX_FRUITLESS_FETCHES:
            # The database keeps saying there is nothing after the watermark
            # although live events beyond it arrived (e.g. they were erased
            # since). Drop them rather than loop; the next live event re-checks.
            return
        again = _Replay(watermark, tries)
        again.buffer = buffer
        self._replays[conversation] = again
        self._pending.append(FetchSince(conversation, watermark))

    def _emit(self, conversation: int, seq: int, frame: dict[str, Any]) -> None:
        if frame is not HIDDEN:
            self._out.append(_encoded_event(conversation, seq, frame))
            if frame.get("kind") == "state":
                self._queue_told = None  # taken, closed or back in a queue: the next queue frame is news
        self._delivered[conversation] = seq

    def _drain(self, conversation: int, replay: _Replay) -> None:
        """Send buffered live events that directly follow the watermark."""
        buffer = replay.buffer
        watermark = self._delivered[conversation]
        while (frame := buffer.pop(watermark + 1, None)) is not None:
            watermark += 1
            self._emit(conversation, watermark, frame)

    # ------------------------------------------------------------------- time

    def tick(self, now: float, *, backlog: bool = False) -> None:
        """Advance the clock (monotonic seconds, the same clock as receive()).

        Closes with 4408 if no hello came within HELLO_TIMEOUT, with 4000 if
        nothing came from the peer for DEAD_AFTER; otherwise queues a ping after
        every PING_INTERVAL of silence from the peer. ``backlog``: frames of
        ours (perhaps the ping itself) are still waiting to reach the peer, so
        its silence proves nothing yet: a console taking in ten thousand queue
        updates is busy, not dead. (A peer that never reads is closed by the
        endpoint's backlog limit instead.)"""
        if self.state == _CLOSED:
            return
        if not self._hello_received and now - self._opened_at >= HELLO_TIMEOUT:
            self.close(CLOSE_NO_HELLO, "no hello")
        elif now - self._last_recv >= DEAD_AFTER and not backlog:
            self.close(CLOSE_DEAD, "no sign of life")
        elif now - max(self._last_recv, self._last_ping) >= PING_INTERVAL:
            self._out.append(_PING)
            self._last_ping = now

    def next_deadline(self) -> float:
        """When tick() next has something to do (for the endpoint's sleep)."""
        deadline = min(
            self._last_recv + DEAD_AFTER,
            max(self._last_recv, self._last_ping) + PING_INTERVAL,
        )
        if not self._hello_received:
            deadline = min(deadline, self._opened_at + HELLO_TIMEOUT)
        return deadline

    def close(self, code: int, reason: str = "") -> None:
        """Decide to close: sets close_code/close_reason (the first decision
        wins). Frames already queued stay in data_to_send(); nothing new is
        queued and no further command is produced."""
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        self.close_code = code
        self.close_reason = reason
        self._pending = []
        self._replays = {}


_Handler: TypeAlias = Callable[[Protocol, dict[str, Any]], list[Command]]
_COMMON: dict[str, _Handler] = {
    "message": Protocol._message,
    "typing": Protocol._typing,
    "seen": Protocol._seen,
}
_HANDLERS: dict[str, dict[str, _Handler]] = {
    "visitor": {**_COMMON, "end": Protocol._end, "page": Protocol._page},
    "agent": {
        **_COMMON,
        "note": Protocol._note,
        "accept": Protocol._accept,
        "close": Protocol._close,
        "presence": Protocol._presence,
        "subscribe": Protocol._subscribe,
        "unsubscribe": Protocol._unsubscribe,
    },
}
