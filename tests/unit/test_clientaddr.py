"""Who the client is (jutella/clientaddr.py): the peer, or what a trusted
proxy's X-Forwarded-For says, read right to left. The address is every
per-client limit's key, so a client must not be able to choose it."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jutella.clientaddr import client_address, parse_networks
from jutella.settings import SettingsError, load_settings

NGINX = parse_networks("127.0.0.1")
CHAIN = parse_networks("127.0.0.1, 10.0.0.0/8, fd00::/8, ::1")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_claims():
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


def test_a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address():
    # sent straight to jutella, past the proxy: the header is ignored
    assert client_address("127.0.0.2", ["127.0.0.3"], NGINX) == "127.0.0.2"
    assert client_address("203.0.113.7", ["10.0.0.1, 127.0.0.1"], CHAIN) == "203.0.113.7"


def test_through_a_trusted_proxy_the_address_it_saw_is_the_client():
    # nginx's $proxy_add_x_forwarded_for: what the client claimed, then the address nginx saw
    assert client_address("127.0.0.1", ["127.0.0.2"], NGINX) == "127.0.0.2"
    assert client_address("127.0.0.1", ["198.51.100.9, 127.0.0.2"], NGINX) == "127.0.0.2"


def test_trusted_hops_are_skipped_right_to_left():
    # client -> load balancer 10.0.0.5 -> nginx 127.0.0.1 -> jutella
    assert client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7, 10.0.0.5"], CHAIN) == "203.0.113.7"
    # the same chain in two header lines
    assert client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7", "10.0.0.5"], CHAIN) == "203.0.113.7"
    # every hop trusted: the left-most of them is as far as anyone vouches
    assert client_address("127.0.0.1", ["10.0.0.9, 10.0.0.5"], CHAIN) == "10.0.0.9"
    assert client_address("127.0.0.1", [], CHAIN) == "127.0.0.1"


def test_ipv6_and_the_ways_proxies_write_addresses():
    assert client_address("::1", ["2001:DB8:0::1"], CHAIN) == "2001:db8::1"  # one key per address, not per spelling
    assert client_address("::1", ["[2001:db8::1]:4711"], CHAIN) == "2001:db8::1"
    assert client_address("::1", ["203.0.113.7:4711"], CHAIN) == "203.0.113.7"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7"], CHAIN) == "203.0.113.7"  # a dual-stack listener
    assert client_address("::1", ["::ffff:203.0.113.7"], CHAIN) == "203.0.113.7"
    assert client_address("fd00::2", ["2001:db8::5, fd12::1"], CHAIN) == "2001:db8::5"


@pytest.mark.parametrize("garbage", ["unknown", "_hidden", "nginx", "1.2.3", "1.2.3.4.5", "::g", "[::1",
                                     "[::1]x", "1.2.3.4:port", "fe80::1%eth0", "1.2.3.4 5.6.7.8", "\x00",
                                     "999.1.1.1", "1" * 100])
def test_garbage_is_never_believed_the_hop_that_passed_it_on_is_the_client(garbage):
    assert client_address("127.0.0.1", [garbage], NGINX) == "127.0.0.1"
    assert client_address("127.0.0.1", [f"203.0.113.7, {garbage}, 10.0.0.5"], CHAIN) == "10.0.0.5"
    # garbage to the left of the client does not matter
    assert client_address("127.0.0.1", [f"{garbage}, 203.0.113.7"], NGINX) == "203.0.113.7"


def test_no_peer_address():
    assert client_address(None, ["203.0.113.7"], NGINX) == "unknown"
    assert client_address("", [], NGINX) == "unknown"


def test_a_very_long_chain_of_trusted_hops_is_not_followed_to_its_end():
    hops = ", ".join(["203.0.113.7"] + ["10.0.0.1"] * 1000)
    assert client_address("127.0.0.1", [hops], CHAIN) == "10.0.0.1"


# -- properties over any header a client can send -----------------------------------
def _norm(address: str) -> str:
    ip = ip_address(address)
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def _trusted(address: str) -> bool:
    ip = ip_address(_norm(address))
    return any(ip.version == net.version and ip in net for net in CHAIN)


ADDRESS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
HEADER_TEXT = st.text(st.characters(codec="latin-1"), max_size=200)
PEER = st.one_of(ADDRESS, st.sampled_from(["127.0.0.1", "10.1.2.3", "::1", "fd00::7"]))


@settings(max_examples=150, deadline=None)
@given(peer=PEER, headers=st.lists(HEADER_TEXT, max_size=4))
def test_any_header_text_gives_an_address_never_an_error(peer, headers):
    got = client_address(peer, headers, CHAIN)
    ip_address(got)
    if got != _norm(peer):
        assert _trusted(peer)  # only a trusted peer's header is read at all


NOT_AN_ADDRESS = st.text(st.characters(codec="latin-1", exclude_characters="0123456789abcdefABCDEF:.,[]%"),
                         min_size=1, max_size=20)
TRUSTED_HOP = st.sampled_from(["10.0.0.5", "10.9.9.9", "fd00::3", "::1", "127.0.0.1"])


@settings(max_examples=300, deadline=None)
@given(peer=PEER, hops=st.lists(st.one_of(ADDRESS, TRUSTED_HOP, NOT_AN_ADDRESS), max_size=8),
       lines=st.integers(1, 3))
def test_the_client_is_the_right_most_untrusted_hop_a_trusted_chain_vouches_for(peer, hops, lines):
    # the model: walk from the peer leftwards while every hop so far is trusted
    expected = _norm(peer)
    if _trusted(peer):
        for hop in reversed(hops):
            if not hop.strip():
                continue
            try:
                ip = _norm(hop.strip())
            except ValueError:
                break  # garbage: the trusted hop before it is the client
            expected = ip
            if not _trusted(ip):
                break
    # the same list as one header or as several lines (joined in order, RFC 9110 5.3)
    size = -(-len(hops) // lines) or 1
    headers = [", ".join(hops[i:i + size]) for i in range(0, len(hops), size)]
    assert client_address(peer, headers, CHAIN) == expected


@settings(max_examples=150, deadline=None)
@given(peer=ADDRESS, headers=st.lists(HEADER_TEXT, max_size=4))
def test_an_untrusted_peer_is_the_client_whatever_it_sends(peer, headers):
    if _trusted(peer):
        return
    assert client_address(peer, headers, CHAIN) == _norm(peer)


@settings(max_examples=150, deadline=None)
@given(claimed=HEADER_TEXT, client=st.ip_addresses(v=4).filter(lambda ip: not ip.is_private).map(str),
       trusted_hops=st.lists(st.sampled_from(["10.0.0.5", "10.9.9.9", "fd00::3", "::1"]), max_size=3))
def test_whatever_a_client_claims_to_the_left_the_proxy_recorded_address_wins(claimed, client, trusted_hops):
    # each trusted proxy appends the address it saw; the client wrote ``claimed``
    header = ", ".join([claimed, client, *trusted_hops])
    assert client_address("127.0.0.1", [header], CHAIN) == client


# -- the setting --------------------------------------------------------------------
def test_the_setting_takes_addresses_and_networks_of_both_families(monkeypatch):
    monkeypatch.setenv("JUTELLA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1 ,fd00::/8")
    assert [str(n) for n in load_settings().trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128",
                                                                  "fd00::/8"]
    monkeypatch.delenv("JUTELLA_TRUSTED_PROXIES")
    assert load_settings().trusted_proxies == ()


@pytest.mark.parametrize("bad", ["nginx", "127.0.0.1;10.0.0.1", "10.0.0.1/8", "300.1.1.1", "*"])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(monkeypatch, bad):
    monkeypatch.setenv("JUTELLA_TRUSTED_PROXIES", bad)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith("setting JUTELLA_TRUSTED_PROXIES:") and "\n" not in str(err.value)
