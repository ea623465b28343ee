"""The console's socket, ``/ws/agent``: who may come in (accounts/guard.py,
the same decision as the HTTP routes'), what an agent follows and may see
(chat/access.py, by the socket's own ``Viewer``), the commands, and live
revocation: when who may see what changes, the socket checks again what it
follows and tells the console (docs/protocol.md, "Access changes")."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from starlette.requests import cookie_parser

from jutella.accounts import actions as accounts
from jutella.accounts.actions import SESSION_COOKIE
from jutella.accounts.errors import AccountError
from jutella.accounts.guard import NOT_SIGNED_IN, authorize_staff
from jutella.chat import access
from jutella.chat import actions as chat
from jutella.chat.departments import channels_for
from jutella.chat.notes import post_note
from jutella.chat.presence import publish_presence
from jutella.chat.revocation import ACCESS_CHANGED, read_access_version
from jutella.i18n import gettext, negotiate
from jutella.runtime import Runtime
from jutella.store.models import StaffAccount

from . import protocol as P
from .coalesce import ListUpdates
from .connection import Connection, Socket, origin_allowed

SESSION_TOUCH_EVERY = 60.0
VISIBILITY_TTL = 5.0  # seconds an agent connection trusts a "may see this conversation"


class AgentConnection(Connection):
    role = "agent"

    def __init__(self, rt: Runtime, ws: Socket, lang: str, account, session, viewer: access.Viewer):
        super().__init__(rt, ws, lang)
        self.account = account
        self.session = session
        self.conn_id = secrets.token_hex(8)
        self._visible: dict[int, float] = {}  # conversation -> until when a "may see" holds
        self.lists = ListUpdates(self.loop, self._wake.set)  # list updates held for send_coalesced
        self.presence_state = "online"
        self.dept_channels: set[str] = set()  # department queues (set by agent_ws before run)
        self.access_version = 0  # the access version the last check saw (set by agent_ws before run)
        self.viewer = viewer  # who this socket is to chat/access.py; revalidate rebuilds it

    def initial_channels(self) -> list[str]:
        return [chat.AGENTS_CHANNEL, chat.agent_channel(self.account.id), f"account:{self.account.id}",
                *sorted(self.dept_channels)]

    async def follow_departments(self) -> None:
        """Memberships changed: subscribe to the department queues now in effect."""
        wanted = await channels_for(self.rt, self.account.id, "admin" in self.account.role_names)
        for channel in self.dept_channels - wanted:
            self.sub.remove(channel)
        for channel in wanted - self.dept_channels:
            self.sub.add(channel)
        self.dept_channels = wanted

    def extra_tasks(self) -> list[Any]:
        return [self.keep_session()]

    async def keep_session(self) -> None:
        """An open console keeps its session alive (and notices when it ends).
        It also notices an access change whose hub event it never got (the
        event is published after the commit, and a publish can fail): the
        access version moved, so what it follows is checked again."""
        while True:
            await asyncio.sleep(SESSION_TOUCH_EVERY)
            if not await accounts.touch(self.rt, self.session.id):
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")
                await self.flush()
                return
            if self.proto.state == "open" and await self._access_moved():
                await self.revalidate(None)
                self._flush()

    async def _access_moved(self) -> bool:
        """Whether the access version moved since this socket last checked
        (one primary-key read)."""
        async with self.rt.db.connection() as conn:
            return await read_access_version(conn) != self.access_version

    async def resync(self) -> None:
        """The hub lost notifications: an access change among them, perhaps
        (the access version says), so check that before the catch-up reads."""
        if self.proto.state == "open" and await self._access_moved():
            await self.revalidate(None)
        await super().resync()

    async def revalidate(self, named: list[int] | None) -> None:
        """Who may see what changed (docs/protocol.md, "Access changes"):
        re-read the account, forget every cached "may see", check again each
        conversation this socket follows, stop following (and tell the
        console ``hidden``) those it may no longer see, and follow the
        department queues now in effect. ``named``: the only conversations
        whose visibility changed (a restriction names them): only those are
        checked, and the account is not re-read. The outbound task awaits
        this before it handles the next hub event, so a message published
        after the change reaches no socket that is no longer allowed it."""
        if named is None:
            async with self.rt.db.reader() as s:
                self.access_version = await read_access_version(s)
                account = await s.get(StaffAccount, self.account.id)  # its roles load with it (selectin)
                if account is None or account.disabled_at is not None or "agent" not in account.role_names:
                    self.proto.close(4403, "role removed" if account is not None and account.disabled_at is None
                                     else "account disabled")
                    return
                self.viewer = await access.viewer_in(s, account)  # its roles and memberships now
            self.account = account
        self._visible.clear()
        followed = set(self.proto.tracked())
        followed |= {int(c[5:]) for c in getattr(self.sub, "channels", ()) if c.startswith("conv:")}
        check = followed if named is None else set(named)
        still_seen = False
        for conversation in sorted(check):
            if await self._may_see(conversation):
                still_seen = True
                continue
            self.lists.drop(conversation)
            if conversation in followed:
                self.sub.remove(chat.conv_channel(conversation))
            if self.proto.state == "open":
                self.proto.hide(conversation)
        if named is None:
            await self.follow_departments()
        # the console reloads its lists: after any change of the account or its
        # memberships, and when a named conversation may be seen (a restriction
        # lifted); a restriction that only hides needs no reload (``hidden`` did it)
        if self.proto.state == "open" and (named is None or still_seen):
            self.proto.send({"type": ACCESS_CHANGED})

    def _note_version(self, version: Any) -> None:
        """An access_changed event was handled: its version is this socket's
        if it is the next one (a gap means an event this socket did not get,
        another account's, say: the minute's check then looks at everything)."""
        if type(version) is int and version == self.access_version + 1:
            self.access_version = version

    async def closed(self) -> None:
        self.lists.cancel()
        if self.proto.state != "awaiting_hello":
            self.rt.presence.disconnect(self.account.id, self.conn_id)
            await publish_presence(self.rt)

    async def handle(self, cmd: Any) -> None:
        rt = self.rt
        try:
            if isinstance(cmd, P.AgentHello):
                if await self._access_moved():  # between the sign-in read and the hub subscription
                    await self.revalidate(None)
                    if self.proto.close_code is not None:
                        return
                self.rt.presence.connect(self.account.id, self.conn_id, self.presence_state)
                self.proto.welcome(agent={"id": self.account.id, "name": self.account.name},
                                   presence=self.rt.presence.state_of(self.account.id))
                await publish_presence(rt)
                for conversation in cmd.subscriptions:
                    if await self._may_see(conversation):
                        self.sub.add(chat.conv_channel(conversation))
                    else:
                        self.proto.unsubscribe(conversation)
            elif isinstance(cmd, P.Subscribe):
                if await self._may_see(cmd.conversation):
                    self.sub.add(chat.conv_channel(cmd.conversation))  # before the replay reads the database
                else:
                    self.proto.unsubscribe(cmd.conversation)
                    self.proto.error("not_found", gettext(self.lang, "No such conversation."))
            elif isinstance(cmd, P.Unsubscribe):
                self.sub.remove(chat.conv_channel(cmd.conversation))
            elif isinstance(cmd, P.FetchSince):
                if self.proto.is_tracking(cmd.conversation):
                    await self.replay(cmd.conversation, cmd.after_seq)
            # a restricted person's chat: not to be touched either (test_ws_fuzz.py)
            # (a message is checked inside its own write: the hot path reads nothing more)
            elif isinstance(cmd, (P.PostNote, P.Accept, P.Close, P.Typing, P.Seen)) and \
                    not await self._may_see(cmd.conversation):
                self.proto.error("not_found", gettext(self.lang, "No such conversation."),
                                 getattr(cmd, "client_id", None))
            elif isinstance(cmd, P.SendMessage):
                started = self.loop.time()
                try:
                    posted = await chat.post_agent_message(
                        rt, agent_id=self.account.id, conversation_id=cmd.conversation, client_id=cmd.client_id,
                        body=cmd.body, viewer=self.viewer)
                except AccountError as exc:
                    self.error(exc, cmd.client_id)
                    return
                self.proto.ack(cmd.client_id, posted.conversation.id, posted.event.seq)
                rt.metrics.message_seconds.observe(self.loop.time() - started)
                self._messages_in.inc()
            elif isinstance(cmd, P.PostNote):
                try:
                    noted = await post_note(rt, agent_id=self.account.id, conversation_id=cmd.conversation,
                                            client_id=cmd.client_id, body=cmd.body, viewer=self.viewer)
                except AccountError as exc:
                    self.error(exc, cmd.client_id)
                    return
                self.proto.ack(cmd.client_id, noted.conversation.id, noted.event.seq)
            elif isinstance(cmd, P.Accept):
                await chat.accept(rt, agent_id=self.account.id, conversation_id=cmd.conversation, viewer=self.viewer)
            elif isinstance(cmd, P.Close):
                await chat.close(rt, conversation_id=cmd.conversation, by="agent", agent_id=self.account.id,
                                 viewer=self.viewer)
            elif isinstance(cmd, P.Typing):
                await chat.typing(rt, conversation_id=cmd.conversation, author="agent", active=cmd.active)
            elif isinstance(cmd, P.Seen):
                await chat.mark_seen(rt, conversation_id=cmd.conversation, by="agent", seq=cmd.seq)
            elif isinstance(cmd, P.SetPresence):
                self.presence_state = cmd.state
                rt.presence.set_state(self.account.id, self.conn_id, cmd.state)
                self.proto.send({"type": "presence", "state": cmd.state})
                await publish_presence(rt)
        except AccountError as exc:
            self.error(exc)

    async def _may_see(self, conversation: int) -> bool:
        """Exists, and is not restricted (unless this member of staff has the privacy role).

        A yes is remembered for VISIBILITY_TTL seconds, so an agent typing and
        answering does not read the database for every frame; a list update
        marking the person restricted forgets it at once (on_hub), and the
        actions themselves still refuse a conversation that is gone."""
        now = self.loop.time()
        if self._visible.get(conversation, 0.0) > now:
            return True
        async with self.rt.db.connection() as conn:  # memberships are read live by the rule itself
            seen = await access.may_see_conversation(conn, self.viewer, conversation)
        if seen:
            if len(self._visible) > 1000:
                self._visible = {c: t for c, t in self._visible.items() if t > now}
            self._visible[conversation] = now + VISIBILITY_TTL
        return seen

    async def _may_see_update(self, event: dict[str, Any]) -> bool:
        """A list update reaches only those who may see its conversation: a
        restricted person's only staff with the privacy role, as the HTTP
        lists do. The actions say whether the person is restricted when they
        build the frame, and the frame carries the department and the agent,
        so the rule is decided on the frame (access.decide_conversation, by
        this socket's Viewer); where the action could not say, ask the
        database."""
        kind = event.get("type")
        flag = event.get("restricted")
        if kind == "conversation" and flag is not None:
            conv = event["conversation"]
            if access.decide_conversation(self.viewer, department_id=conv.get("department_id"),
                                          agent_id=conv.get("agent_id"), restricted=flag):
                return True
            self._visible.pop(conv["id"], None)  # a "may see" remembered from before no longer holds
            return False
        if self.viewer.sees_restricted:
            return True
        if kind == "conversation":
            return await self._may_see(event["conversation"]["id"])
        if kind == "offline":
            return await self._may_see_offline(event["message"]["id"])
        return True  # outbox states: ids only

    def send_coalesced(self) -> None:
        """Send the list updates held (coalesce.py) when they are due."""
        frame = self.lists.take()
        if frame is not None and self.proto.state == "open":
            self.proto.send(frame)

    async def _may_see_offline(self, message_id: int) -> bool:
        async with self.rt.db.connection() as conn:
            return await access.may_see_offline(conn, self.viewer, message_id)

    async def on_hub(self, channel: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "event":
            self.live_event(event)
        elif kind == "conversation":
            if self.proto.state == "open":
                if await self._may_see_update(event):
                    self.lists.hold(event)
                else:  # nor what was held of it from before
                    self.lists.drop(event["conversation"]["id"])
        elif kind in ("offline", "outbox"):
            if self.proto.state == "open" and await self._may_see_update(event):
                self.proto.send({k: v for k, v in event.items() if k != "restricted"})
        elif kind in ("typing", "seen"):
            other = event.get("author", event.get("by"))
            if other == "visitor" and self.proto.is_tracking(event.get("conversation", 0)):
                self.proto.send(event)
        elif kind == "page":  # the visitor's current page: to the consoles following the chat (subscribed: may see)
            if self.proto.is_tracking(event.get("conversation", 0)):
                self.proto.send(event)
        elif kind == "departments_changed":
            await self.follow_departments()
            if self.proto.state == "open":
                self.proto.send(event)  # the console reloads its lists
        elif kind in (ACCESS_CHANGED, "account_changed"):
            named = event.get("conversations") if channel == chat.AGENTS_CHANNEL else None
            await self.revalidate(named if isinstance(named, list) else None)
            self._note_version(event.get("version"))
        elif kind == "sessions_ended":
            if event.get("keep") != self.session.id:
                self.rt.presence.disconnect(self.account.id, self.conn_id)
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")
        elif kind == "session_ended":
            if event.get("session") == self.session.id:
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")


# how the socket closes for each refusal of accounts/guard.py (before the
# console's hello: the close code and reason are all it learns)
_REFUSALS = {NOT_SIGNED_IN: (P.CLOSE_UNAUTHORIZED, "sign in first"),
             "forbidden": (4403, "the agent role is needed"),
             "totp_enrollment_required": (4403, "two-factor sign-in required")}


async def agent_ws(rt: Runtime, ws: Socket) -> None:
    if not await origin_allowed(ws, rt, widget=False):
        await ws.close(1008)
        return
    await ws.accept()
    async with rt.db.connection() as db:  # before the account is read: a change after it shows (AgentHello)
        version = await read_access_version(db)
    try:
        account, session = await authorize_staff(
            rt, cookie_parser(ws.headers.get("cookie") or "").get(SESSION_COOKIE), roles=("agent",))
    except AccountError as exc:
        await ws.close(*_REFUSALS.get(exc.code, (4403, "forbidden")))
        return
    lang = account.language or negotiate(ws.headers.get("accept-language"))
    conn = AgentConnection(rt, ws, lang, account, session, await access.viewer_for(rt, account))
    conn.dept_channels = await channels_for(rt, account.id, "admin" in account.role_names)
    conn.access_version = version
    await conn.run()
