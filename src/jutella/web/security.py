"""Response headers on everything jutella serves, as one small ASGI wrapper.

A strict Content-Security-Policy (no inline script anywhere), nosniff, no
referrer, and no framing except the widget's own frame, which only the sites
that may embed the widget may frame (chat/sites.py ``allowed_origins``: the
setting and the sites admins added in the console, read per request from a
cache of about a second).

``Cache-Control: no-store`` on every ``/api/`` answer that does not say
otherwise: staff JSON is personal data (``/me`` carries the CSRF token) and so
are the visitor's own answers (transcript, history), and no browser cache or
proxy should keep a copy. HSTS (a year, subdomains included) when
``JUTELLA_PUBLIC_URL`` is https, so a browser that has been there once never
speaks plain HTTP to it again.

The widget's scripts and style sheets (the loader ``/widget.js`` and
``/static/widget/*.js|css``) carry only what a script or a style sheet
obeys: nosniff (served as what they are, never run or rendered as anything
else), Cross-Origin-Resource-Policy and HSTS. A Content-Security-Policy,
Permissions-Policy, X-Frame-Options or Cross-Origin-Opener-Policy applies to
a document (or a worker), and the page or frame that loads these files has
its own; a style sheet's Referrer-Policy would govern only its own url()s,
and the widget's have none. These files are on the wire of every page view
of every site that embeds the widget (issue 17: at most 5 KiB before the
chat is opened, 30 KiB after, headers included; docs/performance.md), and
the policy headers were about 400 bytes on each of them. Every HTML page
keeps the full set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")

BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; media-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, frame_origins: Callable[[Scope], Awaitable[Iterable[str]]],
                 hsts: bool = False):
        self.app = app
        self.frame_origins = frame_origins
        # per allowed-sites list: (origins, frame headers, probe headers), remade when the list changes
        self._ancestors: tuple[frozenset[str], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]] | None = None
        transport = [HSTS] if hsts else []
        common = transport + [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
            (b"cross-origin-resource-policy", b"same-site"),
        ]
        self.default = common + [
            (b"content-security-policy", f"{BASE_CSP}; frame-ancestors 'none'".encode()),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.common = common
        # The loader runs on other sites' pages: they must be able to fetch it.
        self.loader = transport + [
            (b"x-content-type-options", b"nosniff"),
            (b"cross-origin-resource-policy", b"cross-origin"),
        ]
        # the frame's own scripts and style sheets (module docstring)
        self.widget_asset = transport + [
            (b"x-content-type-options", b"nosniff"),
            (b"cross-origin-resource-policy", b"same-site"),
        ]
        self.api = self.default + [NO_STORE]

    async def _framed(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Headers of what the allowed sites may frame: the widget's frame and
        files, and its storage probe, which runs one script of its own and
        nothing else (every first page view of a site loads it: its headers
        count too)."""
        origins = frozenset(await self.frame_origins(scope))
        made = self._ancestors
        if made is None or made[0] != origins:
            ancestors = " ".join(["'self'", *sorted(origins)])
            made = (origins,
                    self.common + [(b"content-security-policy",
                                    f"{BASE_CSP}; frame-ancestors {ancestors}".encode())],
                    self.common + [(b"content-security-policy",
                                    f"default-src 'none'; script-src 'self'; base-uri 'none'; "
                                    f"frame-ancestors {ancestors}".encode())])
            self._ancestors = made
        return made[1], made[2]

    async def _headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        path = scope["path"]
        if path == "/widget.js":
            return self.loader
        if path == "/widget/probe":
            return (await self._framed(scope))[1]
        if path.startswith("/static/widget/") and path.endswith((".js", ".css")):
            return self.widget_asset
        if path.startswith("/widget/") or path.startswith("/static/widget/"):
            return (await self._framed(scope))[0]
        if path.startswith("/api/"):
            return self.api
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = await self._headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
