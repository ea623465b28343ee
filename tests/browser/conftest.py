"""Fixtures of the browser tests only: Debian's Chromium driven by Playwright.
The servers and databases they talk to come from tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import need

# expect()'s limit (5 s by default) as a loaded 2-core CI machine needs; a limit, not a wait
expect.set_options(timeout=10_000)

CHROMIUM = os.environ.get("JUTELLA_TEST_CHROMIUM", "/usr/bin/chromium")


# -- the browser -------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(os.path.exists(CHROMIUM), f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def browser_context_factory(browser: Any) -> Iterator[Any]:
    """New, empty browser profiles (a visitor, an agent, ...), closed after the test."""
    contexts: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("locale", "en-GB")
        ctx = browser.new_context(**kwargs)
        ctx.set_default_timeout(20_000)  # a limit, not a wait: CI's first minute runs three Chromium-heavy tests on 2 cores
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(browser_context_factory: Any) -> Any:
    return browser_context_factory().new_page()
