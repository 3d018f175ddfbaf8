"""Every test under ``tests/integration/`` is an integration test: it is marked so here,
by where it lives, and ``make test-unit`` (``-m "not integration"``) leaves it out.

The fixtures of ``fixtures.py`` are exposed to every module here by importing them.
"""

from pathlib import Path

import pytest

from tests.integration.fixtures import (
    pg_db_url,
    postgres_server,
    postgres_url,
    ready_worker,
    workers,
)

__all__ = ["pg_db_url", "postgres_server", "postgres_url", "ready_worker", "workers"]

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)
