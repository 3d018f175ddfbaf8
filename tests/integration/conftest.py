"""Every test under ``tests/integration/`` is an integration test: it is marked so here,
by where it lives, and ``make test-unit`` (``-m "not integration"``) leaves it out. The
commands the tests start keep their default databases in one temporary data folder.

The fixtures of ``fixtures.py`` are exposed to every module here by importing them.
"""

from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default databases of every command the tests start (they inherit the
    environment) in a temporary folder, never in the user's data folder."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACKLOOP_DATA_DIR", str(folder))
        yield folder
