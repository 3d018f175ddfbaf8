"""Fixtures of the services' unit tests, which run without a broker: the apps get a
:class:`~tests.services.helpers.FakeKafkaIO`. Tests of real broker behaviour live in
``tests/integration/``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from services.planner import JobStore, PlannerConfig, PlannerWorker
from services.planner import create_app as create_planner
from streams.kafka import KafkaConnection
from tests.services.helpers import NETWORK, TOPICS, FakeKafkaIO, FakeWorker


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


@pytest.fixture
def make_client(fake_kafka, token_store) -> Iterator[Callable[..., TestClient]]:
    """Gateway clients on the in-memory Kafka and a stand-in worker (``client.fake_worker``);
    keyword arguments override :class:`GatewayConfig` fields."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        worker = overrides.pop("worker", None) or FakeWorker()
        values: dict[str, Any] = dict(
            kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=token_store,
            kafka_io=fake_kafka, worker_transport=httpx.MockTransport(worker.handler),
            webhooks=False, produce_timeout_s=3.0, rate_per_s=1000, rate_burst=1000,
        )
        values.update(overrides)
        client = TestClient(create_app(GatewayConfig(**values)))
        client.__enter__()
        client.fake_worker = worker  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def planner_env(fake_kafka: FakeKafkaIO, tmp_path) -> Iterator[dict[str, Any]]:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    app = create_planner(PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                                       tokens=tokens, jobs=jobs, kafka_io=fake_kafka,
                                       default_time_limit_s=30))
    worker = PlannerWorker(jobs, KafkaConnection(), TOPICS, kafka_io=fake_kafka)
    handed: list[int] = [0]

    def run_queued() -> list[str]:
        """Run the jobs announced on plan-requests since the last call, in order."""
        requests = fake_kafka.records[TOPICS.plan_requests][handed[0]:]
        handed[0] += len(requests)
        ids = [orjson.loads(r.value)["job_id"] for r in requests]
        for job_id in ids:
            worker.process(job_id)
        return ids

    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield {"client": client, "jobs": jobs, "run_queued": run_queued, "token": token,
               "tokens": tokens, "worker": worker}
    jobs.close()
    tokens.close()
