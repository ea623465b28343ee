"""jutella's own outbound HTTPS: webhook deliveries (mail/webhooks.py) and
single sign-on's calls to the provider (accounts/oidc.py) make their clients
here (:func:`client`), with one policy: no redirects followed, no proxy or
certificate settings read from the environment, certificates verified.

A new ``httpx.AsyncClient`` otherwise builds a new SSL context and loads the
system's CA bundle into it: about 20 ms of CPU, on the event loop, for every
delivery and every sign-in. The context is made once per process, in a
thread, and shared; it is the one those clients would each have made
(certificates verified against the system's bundle, no environment
variables read: the clients are ``trust_env=False``)."""

from __future__ import annotations

import asyncio
import functools
import ssl

import httpx


@functools.cache
def _context() -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=True, trust_env=False)


async def client(timeout: float) -> httpx.AsyncClient:
    """A client for one outbound call (``async with await client(t) as c``),
    on the shared TLS context."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout, verify=await tls_context())


async def tls_context() -> ssl.SSLContext:
    """The shared context (made in a thread the first time, never on the loop;
    afterwards handed out at once, without a thread hop)."""
    if _context.cache_info().currsize:
        return _context()
    return await asyncio.to_thread(_context)
