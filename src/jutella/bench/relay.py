"""The bare relay the benchmark compares jutella with: a WebSocket server
written with the websockets library that forwards each message from a
visitor to its paired agent and back, with no storage and no authentication.
It speaks just enough of jutella's protocol (hello, subscribe, message, ack,
event) for the same load driver to run against it."""

from __future__ import annotations

import asyncio
import itertools
import sys

import orjson
from websockets.asyncio.server import serve


async def main(port: int) -> None:
    visitors: dict[int, object] = {}  # conversation -> visitor socket
    agents: dict[int, object] = {}  # conversation -> agent socket
    seqs: dict[int, int] = {}
    ids = itertools.count(1)

    async def handler(ws) -> None:
        role = "agent" if ws.request.path.endswith("/agent") else "visitor"
        conv = None
        async for raw in ws:
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "hello":
                if role == "visitor":
                    conv = next(ids)
                    visitors[conv] = ws
                    seqs[conv] = 0
                    await ws.send(orjson.dumps({"type": "welcome", "token": str(conv), "conversation": None,
                                                "agents_online": True, "last_seq": 0}).decode())
                else:
                    await ws.send(orjson.dumps({"type": "welcome", "agent": {"id": 1, "name": "relay"}}).decode())
            elif kind == "subscribe":
                agents[frame["conversation"]] = ws
            elif kind == "accept":
                pass
            elif kind == "message":
                c = conv if role == "visitor" else frame["conversation"]
                seqs[c] = seq = seqs.get(c, 0) + 1
                event = {"type": "event", "conversation": c, "seq": seq, "kind": "message", "author": role,
                         "body": frame["body"], "client_id": frame["client_id"]}
                await ws.send(orjson.dumps({"type": "ack", "client_id": frame["client_id"], "conversation": c,
                                            "seq": seq}).decode())
                other = agents.get(c) if role == "visitor" else visitors.get(c)
                if other is not None:
                    try:
                        await other.send(orjson.dumps(event).decode())
                    except Exception:  # the other side left; the relay drops the frame  # nosec B110
                        pass
            elif kind == "ping":
                await ws.send('{"type":"pong"}')

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=65536, ping_interval=None):
        print("relay ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
