"""The stream-worker fixtures (from ``conftest_streams``) for every module here, and one
data folder for the session.

Found by pytest through this file, a test module asks for them by parameter alone
instead of importing each fixture by name (and silencing the linter about it).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest_streams import ready_worker, workers  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default databases of every command the tests start (they inherit the
    environment) in a temporary folder, never in the user's data folder."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACKLOOP_DATA_DIR", str(folder))
        yield folder
