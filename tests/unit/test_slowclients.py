"""The bookkeeping of connections waiting for their request headers (realtime/slowclients.py).

What a client sees of it is in tests/integration/test_slow_clients.py; here,
the parts no test server reaches: the exemption meant for trusted proxies,
no cap, and counts that go back to nothing."""

from __future__ import annotations

from jutella.realtime.slowclients import SlowClients


def rules(per_address: int = 2, exempt=None) -> tuple[SlowClients, list[str]]:
    refused: list[str] = []
    slow = SlowClients(header_timeout_s=10, per_address=per_address, key=lambda host: f"k:{host}",
                       exempt=exempt, on_refused=lambda: refused.append("refused"))
    return slow, refused


def test_an_address_gets_its_cap_and_no_more_and_its_places_come_back():
    slow, refused = rules()
    a = [slow.enter("192.0.2.1"), slow.enter("192.0.2.1")]
    assert slow.enter("192.0.2.1") is False and refused == ["refused"]
    assert slow.enter("192.0.2.2") == "k:192.0.2.2"  # another address is not touched
    assert slow.total == 3
    slow.leave(a[0])
    assert slow.enter("192.0.2.1") == "k:192.0.2.1"
    for key in (a[1], "k:192.0.2.1", "k:192.0.2.2"):
        slow.leave(key)
    assert slow.total == 0 and slow.waiting == {}  # nothing is kept of an address once its waits are over


def test_exempt_peers_and_connections_without_an_address_are_not_counted():
    slow, refused = rules(exempt=lambda host: host == "10.0.0.5")  # e.g. the trusted reverse proxy
    assert [slow.enter("10.0.0.5") for _ in range(5)] == [None] * 5
    assert slow.enter(None) is None  # a Unix socket has no peer address
    assert slow.total == 0 and not refused
    slow.leave(None)
    assert slow.total == 0


def test_no_cap_counts_nothing():
    slow, refused = rules(per_address=0)
    assert all(slow.enter("192.0.2.1") is None for _ in range(100))
    assert slow.total == 0 and not refused
