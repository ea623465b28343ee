"""Who the client is: the one rule that turns a connection's peer address and
its ``X-Forwarded-For`` headers into the address every per-client limit is
keyed by (HTTP routes through web/auth.py ``client_address``, the chat
sockets through realtime/wsserver.py and realtime/asgi.py).

A reverse proxy in ``JUTELLA_TRUSTED_PROXIES`` (settings.py parses it into
networks) is believed about the hops before it: ``X-Forwarded-For`` is read
right to left, every trusted hop is skipped, and the first untrusted one is
the client. Anything else, whatever it sends, is the client itself: a header
a client writes is believed only as far as a trusted proxy vouches for it,
and nginx's ``$proxy_add_x_forwarded_for`` puts the address it saw on the
right of whatever the client claimed. An entry that is not an IP address
(``unknown``, an obfuscated name, garbage) ends the walk: the hop that passed
it on, a trusted one, is taken as the client. Nothing here raises.

The address is only ever a throttle key (HMAC'd by accounts/throttle.py,
held in memory or Redis); it is never stored or logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Network = IPv4Network | IPv6Network
IP = IPv4Address | IPv6Address

UNKNOWN = "unknown"  # no peer address at all (a Unix socket)
MAX_HOPS = 32  # entries read from the right; a longer chain is not believed past this


def _parse(text: str) -> IP | None:
    """An address as proxies write it: ``1.2.3.4``, ``2001:db8::1``, also with
    a port (``1.2.3.4:5678``, ``[2001:db8::1]:443``); IPv4-mapped IPv6 as
    IPv4. None for anything else."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        ip = ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address):
        if ip.scope_id is not None:
            return None
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def _trusted(ip: IP, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` is the connection's remote address,
    ``forwarded_for`` the values of every ``X-Forwarded-For`` header in the
    order received, ``trusted`` the proxies' networks."""
    if not peer:
        return UNKNOWN
    current = _parse(peer)
    if current is None:
        return peer  # not an IP address (never trusted): the peer itself
    if not trusted or not _trusted(current, trusted):
        return str(current)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    seen = 0
    for hop in reversed(hops):
        if not hop.strip():
            continue  # an empty list element says nothing
        seen += 1
        ip = _parse(hop) if seen <= MAX_HOPS else None
        if ip is None:
            break  # garbage: the trusted hop that passed it on is the client
        if not _trusted(ip, trusted):
            return str(ip)
        current = ip
    return str(current)


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """``JUTELLA_TRUSTED_PROXIES``: comma-separated (or, in the TOML file, a
    list of) addresses and networks. ValueError names the bad entry."""
    from ipaddress import ip_network

    parts = text.split(",") if isinstance(text, str) else list(text)
    out: list[Network] = []
    for part in parts:
        entry = str(part).strip()
        if not entry:
            continue
        try:
            out.append(ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network like 127.0.0.1 or 10.0.0.0/8 "
                             f"({exc})") from None
    return tuple(out)


def is_trusted_peer(peer: str, trusted: Sequence[Network]) -> bool:
    """Whether a TCP peer is one of the trusted proxies (the slow-client cap
    does not count a proxy's connections: it reads its clients' headers itself)."""
    ip = _parse(peer)
    return ip is not None and _trusted(ip, trusted)
