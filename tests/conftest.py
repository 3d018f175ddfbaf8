"""Shared fixtures: a real Tansu broker for the whole session, fresh topics per test.

Integration tests never replace the broker with a fake; each test gets its own
topic prefix so tests do not see each other's records on the shared broker.

A test that uses a real service (the fixtures in ``REAL_SERVICES``) must be marked
``integration``: ``make test-unit`` deselects those and must start no service, so an
unmarked one fails before its fixtures start anything.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from services.broker import EmbeddedBroker
from streams.kafka import KafkaConnection
from streams.topics import Topics, create_topics

REAL_SERVICES = ("broker", "postgres_server")

_prefixes = itertools.count(1)


@pytest.hookimpl(tryfirst=True)  # before any fixture is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration") is not None:
        return
    used = [name for name in REAL_SERVICES if name in getattr(item, "fixturenames", ())]
    if used:
        pytest.fail(f"{item.nodeid} starts a real service ({', '.join(used)}) but is not "
                    "marked integration (pytest.mark.integration, or move it to "
                    "tests/integration/)", pytrace=False)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def kafka(broker: EmbeddedBroker) -> KafkaConnection:
    return KafkaConnection(bootstrap_servers=broker.bootstrap)


@pytest.fixture
def topics_factory(kafka: KafkaConnection) -> Callable[..., Topics]:
    """Create a fresh, uniquely prefixed set of packloop topics."""

    def make(partitions: int = 4) -> Topics:
        topics = Topics(prefix=f"t{os.getpid()}-{next(_prefixes)}-")
        create_topics(kafka, topics, partitions=partitions)
        return topics

    return make


@pytest.fixture
def topics(topics_factory: Callable[..., Topics]) -> Topics:
    return topics_factory()
