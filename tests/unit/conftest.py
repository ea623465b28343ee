"""tests/unit holds tests that need no server, no database and no browser, so
that they run in seconds; asking here for a fixture that starts one is a
mistake this hook reports at collection (the test belongs in
tests/integration or tests/browser; tests/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent

HEAVY = {"live", "database_url", "backend", "settings", "server_process", "in_process", "browser", "page",
         "browser_context_factory", "smtp", "pg_template", "sqlite_template"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        heavy = HEAVY & set(getattr(item, "fixturenames", ()))
        if heavy:
            raise pytest.UsageError(f"{item.nodeid} is in tests/unit but uses {sorted(heavy)}: "
                                    "move it to tests/integration or tests/browser")
