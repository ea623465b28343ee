"""The automatic metadata of a conversation: browser and operating system
(family and version, parsed from the User-Agent header, whose raw string is not
kept), the host page's referrer, the page the chat was opened on, and the
visitor's language. Nothing else, and nothing that identifies the visitor."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from ua_parser import parse

MAX_URL = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Metadata:
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    referrer: str | None = None
    page_url: str | None = None
    language: str | None = None


@lru_cache(maxsize=512)
def parse_user_agent(ua: str) -> tuple[str | None, str | None, str | None, str | None]:
    if not ua:
        return None, None, None, None
    result = parse(ua[:1000])
    browser = result.user_agent.family if result.user_agent else None
    browser_version = result.user_agent.major if result.user_agent else None
    os_family = result.os.family if result.os else None
    os_version = None
    if result.os and result.os.major:
        os_version = result.os.major + (f".{result.os.minor}" if result.os.minor else "")
    return (browser[:64] if browser else None, browser_version[:16] if browser_version else None,
            os_family[:64] if os_family else None, os_version[:32] if os_version else None)


def clean_url(value: object) -> str | None:
    """The one rule for a page address or referrer that is stored (issue 16):
    an http(s) URL reduced to scheme, host, port (only when not the scheme's
    default) and path, at most 2,000 characters. The query string, the
    fragment and any user name or password are dropped whatever the client
    sent (a site may put an email or a session id there); anything that is not
    an http(s) URL with a host is dropped whole. It stays hostile text: the
    console shows it as text."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = urlsplit(value.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a malformed host or port
        return None
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    cleaned = urlunsplit((scheme, netloc, parts.path, "", ""))
    return cleaned[:MAX_URL]


def clean_language(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()[:16]
    return value if value and all(c.isalnum() or c in "-_" for c in value) else None


def collect(user_agent: str | None, page: object, referrer: object, language: object) -> Metadata:
    b, bv, o, ov = parse_user_agent(user_agent or "")
    return Metadata(browser=b, browser_version=bv, os=o, os_version=ov, referrer=clean_url(referrer),
                    page_url=clean_url(page), language=clean_language(language))
