"""The shared TLS context of webhooks and single sign-on (jutella/outbound.py)."""

import ssl

from jutella import outbound

from tests.conftest import run_async


def test_one_context_per_process_and_it_verifies_certificates():
    async def twice():
        return await outbound.tls_context(), await outbound.tls_context()

    first, second = run_async(twice())  # a thread of its own: a browser test's loop may run here
    assert first is second  # made once, not per delivery or sign-in
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname  # as each client's own would
    assert first.cert_store_stats()["x509_ca"] > 0  # the system's CA bundle is loaded


def test_every_outbound_client_has_the_one_policy():
    """Webhooks and single sign-on get their clients from outbound.client:
    no redirect followed, nothing read from the environment, the shared
    context's verification, the caller's timeout."""
    async def made():
        async with await outbound.client(7.5) as client:
            return client, await outbound.tls_context()

    client, context = run_async(made())
    assert client.follow_redirects is False and client.trust_env is False
    assert client.timeout.read == 7.5 and client.timeout.connect == 7.5
    pool = client._transport._pool  # httpx's connection pool carries the SSL context it was given
    assert pool._ssl_context is context
