"""The chat socket builds its outgoing text frames' headers itself
(realtime/wsserver.text_frame_header); they must be byte for byte what
websockets' own sans-I/O protocol sends, at every length boundary."""

from __future__ import annotations

import pytest
from websockets.protocol import Protocol, Side, State

from jutella.realtime.wsserver import text_frame_header


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_the_header_and_payload_are_what_websockets_sends(size):
    payload = b"x" * size
    proto = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
    proto.send_text(payload)
    assert b"".join(proto.data_to_send()) == text_frame_header(size) + payload


def test_a_client_parses_them_back():
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    data = "".join(["ä€😀"] * 300).encode()
    client.receive_data(text_frame_header(len(data)) + data + text_frame_header(2) + b"{}")
    frames = client.events_received()
    assert [f.data for f in frames] == [data, b"{}"]
    assert all(f.fin and f.opcode.name == "TEXT" for f in frames)
