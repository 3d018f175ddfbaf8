"""Every test under ``tests/integration/`` is an integration test: it is marked so here,
by where it lives, and ``make test-unit`` (``-m "not integration and not slow"``) leaves it out. The
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
# Modules whose tests solve plans with HiGHS on both cores against a wall-clock limit:
# `make test` runs the integration tests two at a time (pytest-xdist, --dist loadgroup) and
# keeps these on one worker, one after the other, so that two of them never share the cores.
PLANNER_MODULES = frozenset({
    "test_demo.py", "test_dispatch.py", "test_planner_edges.py", "test_planner_from_state.py",
    "test_planner_service.py", "test_planner_workers.py"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker, and before xdist's grouping
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)
            if item.path.name in PLANNER_MODULES:
                item.add_marker(pytest.mark.xdist_group("planner"))


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default databases of every command the tests start (they inherit the
    environment) in a temporary folder, never in the user's data folder."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACKLOOP_DATA_DIR", str(folder))
        yield folder
