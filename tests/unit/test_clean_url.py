"""The one rule for a stored page address or referrer (chat/metadata.py
``clean_url``): scheme, host and path survive; query, fragment and any user
name or password never do, whatever a client sends (issue 16, item 2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from jutella.chat.metadata import clean_url

SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@", min_size=0, max_size=30)
HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
SEGMENTS = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@", max_size=12),
                    max_size=5)
SECRET = "s3cr3tTOKEN"  # appears only where the rule removes it


@given(scheme=st.sampled_from(["http", "https", "HTTP", "Https"]), host=HOSTS,
       port=st.one_of(st.none(), st.integers(1, 65535)), segments=SEGMENTS,
       user=st.booleans(), query=SAFE, fragment=SAFE, with_query=st.booleans(), with_fragment=st.booleans())
def test_only_scheme_host_and_path_are_kept(scheme, host, port, segments, user, query, fragment, with_query,
                                            with_fragment):
    path = "".join("/" + s for s in segments)
    url = (f"{scheme}://" + (f"{SECRET}:{SECRET}@" if user else "") + host + (f":{port}" if port else "") + path
           + (f"?{SECRET}{query}" if with_query else "") + (f"#{SECRET}{fragment}" if with_fragment else ""))
    cleaned = clean_url(url)
    default = {"http": 80, "https": 443}[scheme.lower()]
    assert cleaned == (f"{scheme.lower()}://{host}" + (f":{port}" if port and port != default else "") + path)
    assert SECRET not in cleaned
    parts = urlsplit(cleaned)
    assert (parts.query, parts.fragment, parts.username, parts.password) == ("", "", None, None)
    assert clean_url(cleaned) == cleaned  # stable: stored data cleans to itself


@given(st.text(max_size=300))
def test_any_text_is_dropped_or_cleaned(value):
    cleaned = clean_url(value)
    if cleaned is not None:
        parts = urlsplit(cleaned)
        assert parts.scheme in ("http", "https") and parts.hostname
        assert (parts.query, parts.fragment, parts.username, parts.password) == ("", "", None, None)
        assert "?" not in cleaned and "#" not in cleaned
        assert len(cleaned) <= 2000
        assert clean_url(cleaned) == cleaned


def test_the_issue_example():
    url = "https://user:pw@site/help?email=liisa%40example.fi&sid=abc#frag"
    assert clean_url(url) == "https://site/help"
    assert clean_url("http://[::1]:8080/a?b") == "http://[::1]:8080/a"
    assert clean_url("https://site.example:443/x") == "https://site.example/x"
    for dropped in ("javascript:alert(1)", "ftp://files.example/a", "https://", "https://[::1/", "https://h:99999/",
                    "", None, 42):
        assert clean_url(dropped) is None
