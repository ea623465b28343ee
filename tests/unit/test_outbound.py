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
