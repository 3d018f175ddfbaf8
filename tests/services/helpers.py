"""Helpers for the services' tests (unit and integration): events, scenarios, an in-memory
Kafka, a stand-in stream worker, and the schemathesis driver."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.http.kafka_io import Record
from services.planner.store import FINAL
from streams.network import load_network
from streams.topics import Topics
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
NETWORK = load_network()
TINY: dict[str, Any] = yaml.safe_load((REPO / "examples/scenarios/tiny.yaml").read_text())
#: the topics of the gateway unit tests (on a FakeKafkaIO)
TOPICS = Topics("t-")


CHINA = timezone(timedelta(hours=8))


def stamp(at: datetime, tz: timezone = UTC) -> str:
    """RFC 3339 with the offset of ``tz`` (``Z`` for UTC), whole seconds."""
    return at.astimezone(tz).isoformat(timespec="seconds").replace("+00:00", "Z")


def days_ago(days: float) -> str:
    """A time ``days`` before now (negative: ahead), as a hub in China stamps it."""
    return stamp(datetime.now(UTC) - timedelta(days=days), CHINA)


def shipment(hub: str = "H01", village: str = "H01-V007", **changes: Any) -> dict[str, Any]:
    """A valid shipment event of ``village`` dated a day ago (a fresh event_id each call):
    recent, so the gateway's time rules accept it whenever the tests run."""
    event = {
        "type": "shipment", "schema_version": 1, "event_id": str(uuid.uuid4()),
        "occurred_at": days_ago(1), "hub_id": hub, "village_id": village,
        "shipment_id": "S-1", "direction": "down", "temperature_class": "chilled",
        "weight_grams": 2300,
        "packaging": [{"material": "cardboard", "count": 1, "grams": 200}],
        "containers": [{"container_type": "insulated_box"}],
    }
    event.update(changes)
    return event


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def big_scenario(hubs: int = 6, seed: int = 1, days: int = 7) -> dict[str, Any]:
    """A scenario that takes HiGHS a while (several hubs, a week)."""
    import optimizer

    sc = optimizer.scenario_from_network(
        NETWORK.raw, hubs=[f"H{i:02d}" for i in range(1, hubs + 1)], horizon_days=days,
        seed=seed)
    return sc.model_dump(mode="json")


def with_time_limit(scenario: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """A plan request body: ``scenario`` with a solver time limit."""
    return {"scenario": scenario, "options": {"time_limit_s": limit_s}}


def wait_for_job(client: TestClient, job_id: str, statuses: Sequence[str] = FINAL,
                 timeout_s: float = 90) -> dict[str, Any]:
    """The job as the API shows it, once its status is one of ``statuses``."""

    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/plans/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_until(reached, timeout_s, f"plan job {job_id} to be {' or '.join(statuses)}")


class FakeKafkaIO:
    """An in-memory :class:`services.http.kafka_io.KafkaIO`, injected into an app the way an
    httpx client takes a mock transport: what the app produces is kept per topic.

    ``down`` (a reason) makes Kafka unavailable, as a failed probe does; ``refuse`` (an
    error) is what every record of the next produce calls fails with.
    """

    def __init__(self) -> None:
        self.records: dict[str, list[Record]] = defaultdict(list)
        self.down: str | None = None
        self.refuse: BaseException | None = None
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def unavailable(self, wait_s: float) -> str | None:
        return self.down

    def mark_failed(self, reason: str) -> None:
        self.down = reason

    def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        if self.refuse is not None:
            return [self.refuse for _ in records]
        for record in records:
            self.records[record.topic].append(record)
        return [None for _ in records]

    def read_since(self, topic: str, since_ms: int, max_wait_s: float) -> Iterator[bytes]:
        for record in self.records.get(topic, []):
            yield record.value


def hub_events(fake: FakeKafkaIO) -> list[dict[str, Any]]:
    """What the app produced to hub-events, decoded."""
    return [orjson.loads(r.value) for r in fake.records[TOPICS.hub_events]]


class FakeWorker:
    """The stream worker's /pickups contract, for the gateway's pickup routes."""

    def __init__(self) -> None:
        self.pickups: list[dict[str, Any]] = []
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.url.path == "/pickups"
        return httpx.Response(200, json={"status": request.url.params.get("status"),
                                         "count": len(self.pickups), "pickups": self.pickups})


SCHEMATHESIS_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def run_schemathesis(schema: schemathesis.BaseSchema, headers: dict[str, str],
                     examples: int) -> list[str]:
    """Every operation, positive and negative data; returns one line per failing operation.

    (Schemathesis' own pytest plugin does not load under pytest 9, so the operations'
    Hypothesis strategies are driven directly.)
    """
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=SCHEMATHESIS_CHECKS)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                continue
            except Exception as exc:  # noqa: BLE001 - collect, report all operations
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def cli_to_app(client: TestClient) -> Callable[..., httpx.Client]:
    """httpx.Client for the CLI, talking to the app in-process."""

    def transport(request: httpx.Request) -> httpx.Response:
        resp = client.request(request.method, request.url.raw_path.decode("ascii"),
                              content=request.content,
                              headers={k: v for k, v in request.headers.items()
                                       if k.lower() in ("authorization", "content-type",
                                                           "idempotency-key")})
        return httpx.Response(resp.status_code, content=resp.content, headers=resp.headers)

    real_client = httpx.Client

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(transport)
        return real_client(*args, **kwargs)

    return make


def answer_the_cli_with(monkeypatch: Any, answer: Any) -> None:
    """Make the planner CLI's HTTP client answer every request with ``answer(request)``."""
    real_client = httpx.Client

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(answer)
        return real_client(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
