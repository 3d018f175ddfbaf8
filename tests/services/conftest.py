"""Fixtures of the services' unit tests, which run without a broker: the apps get a
:class:`~tests.services.helpers.FakeKafkaIO`. Tests of real broker behaviour live in
``tests/integration/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.auth.tokens import TokenStore
from tests.services.helpers import FakeKafkaIO


@pytest.fixture(scope="session")
def broker() -> None:
    """Fails any test here that asks for the embedded broker (directly or through the
    ``kafka`` or ``topics`` fixtures): unit tests inject a FakeKafkaIO instead."""
    pytest.fail("tests/services run without a broker: inject FakeKafkaIO, or move the test "
                "to tests/integration/")


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every default database of a test (and of the commands it runs) in a folder of its
    own, never in the user's data folder."""
    folder = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("PACKLOOP_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def fake_kafka() -> FakeKafkaIO:
    return FakeKafkaIO()


@pytest.fixture
def token_store(tmp_path) -> Iterator[TokenStore]:
    store = TokenStore(f"sqlite:///{tmp_path}/tokens.db", pepper="test-pepper")
    yield store
    store.close()
