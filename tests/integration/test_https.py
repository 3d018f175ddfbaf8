"""`packloop gateway` and `packloop planner` serving HTTPS (flags and environment), on the
embedded broker, with a test CA made here: what a hub and a planner client see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.auth.tokens import TokenStore
from services.broker import free_port
from services.http.client import httpx_client
from services.settings import Settings
from streams.consume import read_topic
from tests.helpers import wait_until
from tests.services.helpers import REPO, TINY, auth, shipment
from tests.services.tls_helpers import TestCA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = TestCA.create(d)
    cert, key = ca.issue(d, "services")
    return ca.cert, cert, key


class Service:
    """A `packloop` service process in its own process group, stopped whatever happens."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args], cwd=REPO, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=open(log, "wb"),  # noqa: SIM115
            start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def ready(client: httpx.Client, service: Service) -> Any:
    """Wait until the service answers /readyz over HTTPS (fail early if it exited)."""

    def answered() -> bool:
        assert service.proc.poll() is None, service.log.read_text("utf-8")
        return client.get("/readyz").status_code == 200

    return wait_until(answered, 120, "the service to be ready over HTTPS")


def test_a_hub_posts_to_the_gateway_over_https(kafka, topics, pki, tmp_path,
                                               services) -> None:
    ca, cert, key = pki
    db = f"sqlite:///{tmp_path}/tokens.db"
    _, token = TokenStore(db).add("hub", "H01")
    port = free_port()
    gateway = Service(["gateway", "--tls-cert", str(cert), "--tls-key", str(key)], {
        "PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "PACKLOOP_TOPIC_PREFIX": topics.prefix, "PACKLOOP_TOKEN_DB_URL": db,
        "PACKLOOP_GATEWAY_PORT": str(port), "PACKLOOP_GATEWAY_WEBHOOKS": "false",
    }, tmp_path / "gateway.log")
    services.append(gateway)
    url = f"https://127.0.0.1:{port}"
    with httpx_client(Settings(ca_file=ca), base_url=url, timeout=10) as client:
        ready(client, gateway)
        event = shipment()
        resp = client.post("/v1/events", json=event, headers=auth(token))
        assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
    [record] = read_topic(kafka, topics.hub_events, expected=1)
    assert orjson.loads(record.value)["event_id"] == event["event_id"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert "gateway on https://" in gateway.log.read_text("utf-8")


def test_a_plan_is_submitted_to_the_planner_over_https(kafka, topics, pki, tmp_path,
                                                       services) -> None:
    """The planner's certificate from PACKLOOP_PLANNER_TLS_CERT / _KEY."""
    ca, cert, key = pki
    db = f"sqlite:///{tmp_path}/tokens.db"
    _, token = TokenStore(db).add("planner", "ops")
    port = free_port()
    planner = Service(["planner", "--workers", "1"], {
        "PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "PACKLOOP_TOPIC_PREFIX": topics.prefix, "PACKLOOP_TOKEN_DB_URL": db,
        "PACKLOOP_PLANNER_DB_URL": f"sqlite:///{tmp_path}/plans.db",
        "PACKLOOP_PLANNER_PORT": str(port), "PACKLOOP_PLANNER_TLS_CERT": str(cert),
        "PACKLOOP_PLANNER_TLS_KEY": str(key),
    }, tmp_path / "planner.log")
    services.append(planner)
    with httpx_client(Settings(ca_file=ca), base_url=f"https://127.0.0.1:{port}",
                      headers=auth(token), timeout=30) as client:
        ready(client, planner)
        resp = client.post("/v1/plans", json=TINY)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        job = wait_until(lambda: (j := client.get(f"/v1/plans/{job_id}").json())["status"]
                         in ("done", "failed") and j, 120, "the plan job to finish")
    assert job["status"] == "done", job
