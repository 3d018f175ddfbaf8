"""The stream-worker fixtures (from ``conftest_streams``) for every module here.

Found by pytest through this file, a test module asks for them by parameter alone
instead of importing each fixture by name (and silencing the linter about it).
"""

from tests.integration.conftest_streams import ready_worker, workers  # noqa: F401
