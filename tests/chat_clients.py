"""Protocol-speaking test clients (the real wire protocol over real sockets)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from websockets.sync.client import ClientConnection, connect


class WsClient:
    def __init__(self, conn: ClientConnection):
        self.conn = conn
        self.frames: list[dict[str, Any]] = []  # everything received, in order
        self.unread: list[dict[str, Any]] = []  # received but not yet matched by until()
        self._batched: list[dict[str, Any]] = []  # the rest of a "conversations" frame
        self.batches = 0  # "conversations" frames received

    def send(self, **frame: Any) -> None:
        self.conn.send(json.dumps(frame))

    def recv(self, timeout: float = 5) -> dict[str, Any]:
        if self._batched:
            return self._batched.pop(0)
        frame = json.loads(self.conn.recv(timeout=timeout))
        if frame.get("type") == "conversations":  # list updates sent together: one frame each, as the console does
            assert frame["items"] and all(item["type"] == "conversation" for item in frame["items"]), frame
            self.batches += 1
            self.frames.extend(frame["items"])
            self._batched = frame["items"][1:]
            return frame["items"][0]
        self.frames.append(frame)
        if frame.get("type") == "ping":
            self.send(type="pong")
        return frame

    def until(self, pred, timeout: float = 5) -> dict[str, Any]:
        """The first frame, earlier unmatched ones included, that matches."""
        import time

        for i, frame in enumerate(self.unread):
            if pred(frame):
                del self.unread[i]
                return frame
        deadline = time.time() + timeout
        while True:
            frame = self.recv(timeout=max(0.05, deadline - time.time()))
            if pred(frame):
                return frame
            self.unread.append(frame)

    def message(self, body: str, client_id: str | None = None, **extra: Any) -> str:
        client_id = client_id or uuid.uuid4().hex
        self.send(type="message", client_id=client_id, body=body, **extra)
        return client_id

    def close(self) -> None:
        self.conn.close()


def _connect(url: str, *, origin: str, headers: dict[str, str], source: str | None) -> ClientConnection:
    sock = None
    if source:  # connect from another loopback address, e.g. 127.0.0.2
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect((parts.hostname, parts.port))
    return connect(url, origin=origin, additional_headers=headers, open_timeout=5, sock=sock)


def visitor(live, *, token: str | None = None, last_seq: int = 0, origin: str | None = None,
            source: str | None = None,
            user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                              "Chrome/124.0.0.0 Safari/537.36",
            page: str = "https://site.example/help", referrer: str = "https://search.example/?q=help",
            lang: str = "en") -> tuple[WsClient, dict[str, Any]]:
    conn = _connect(live.ws_url + "/ws/visitor", origin=origin or live.url, headers={"User-Agent": user_agent},
                    source=source)
    c = WsClient(conn)
    c.send(type="hello", token=token, last_seq=last_seq, lang=lang, page=page, referrer=referrer)
    welcome = c.until(lambda f: f["type"] == "welcome")
    return c, welcome


def agent(live, http_client, *, subscriptions: dict | None = None,
          source: str | None = None) -> tuple[WsClient, dict[str, Any]]:
    """An agent's socket; with two servers (pg+redis) it goes to the other one."""
    side = getattr(live, "agent_side", live)
    cookie = "; ".join(f"{k}={v}" for k, v in http_client.cookies.items())
    conn = _connect(side.ws_url + "/ws/agent", origin=side.url, headers={"Cookie": cookie}, source=source)
    c = WsClient(conn)
    c.send(type="hello", subscriptions={str(k): v for k, v in (subscriptions or {}).items()})
    welcome = c.until(lambda f: f["type"] == "welcome")
    return c, welcome
