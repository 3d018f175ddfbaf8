"""HTTPS for the gateway and the planner, with a test CA made here: served by uvicorn with
the services' certificate, verified by the command line's client against PACKLOOP_CA_FILE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from services.cli import cli
from services.gateway import GatewayConfig
from services.gateway import create_app as create_gateway
from services.http.client import connection_problem, httpx_client
from services.http.tls import TlsError, client_context, server_tls
from services.planner import JobStore, PlannerConfig
from services.planner import create_app as create_planner
from services.settings import Settings
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import NETWORK, FakeKafkaIO, FakeWorker, auth, shipment
from tests.services.tls_helpers import TestCA, serve

TOPICS = Topics("t-")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """The county's CA and the gateway's certificate; another CA nobody here trusts."""
    d = tmp_path_factory.mktemp("pki")
    ca = TestCA.create(d, "county-ca")
    cert, key = ca.issue(d, "gateway")
    other = TestCA.create(d, "other-ca")
    other_cert, other_key = other.issue(d, "impostor")
    return {"ca": ca.cert, "cert": cert, "key": key, "other_ca": other.cert,
            "other_cert": other_cert, "other_key": other_key}


@pytest.fixture
def gateway(token_store, fake_kafka) -> Any:
    return create_gateway(GatewayConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=token_store,
        kafka_io=fake_kafka, worker_transport=httpx.MockTransport(FakeWorker().handler),
        webhooks=False))


@pytest.fixture
def https_gateway(gateway, pki) -> Iterator[str]:
    with serve(gateway, pki["cert"], pki["key"]) as url:
        yield url


def test_a_hub_posts_over_https_trusting_the_test_ca(https_gateway, pki, token_store,
                                                     fake_kafka) -> None:
    _, token = token_store.add("hub", "H01")
    with httpx_client(Settings(ca_file=pki["ca"]), base_url=https_gateway) as client:
        resp = client.post("/v1/events", json=shipment(), headers=auth(token))
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
    assert len(fake_kafka.records[TOPICS.hub_events]) == 1


def test_plain_http_to_the_tls_port_fails(https_gateway, token_store, fake_kafka) -> None:
    _, token = token_store.add("hub", "H01")
    plain = https_gateway.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{plain}/v1/events", json=shipment(), headers=auth(token), timeout=10)
    assert fake_kafka.records[TOPICS.hub_events] == []


def test_a_client_with_the_wrong_ca_gets_one_clear_error_line(https_gateway, pki) -> None:
    settings = Settings(ca_file=pki["other_ca"])
    with httpx_client(settings, base_url=https_gateway) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            client.get("/healthz")
    line = connection_problem(failed.value, https_gateway, settings)
    assert "\n" not in line
    assert line.startswith(f"the TLS certificate of {https_gateway} is not trusted by "
                           f"PACKLOOP_CA_FILE={pki['other_ca']}")
    assert "set PACKLOOP_CA_FILE to the CA that signed it" in line


def test_the_system_store_does_not_trust_the_test_ca(https_gateway) -> None:
    """Without PACKLOOP_CA_FILE the client verifies against the system's trust store."""
    settings = Settings(ca_file=None)
    with httpx_client(settings, base_url=https_gateway) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            client.get("/healthz")
    assert "not trusted by the system's trust store" in connection_problem(
        failed.value, https_gateway, settings)


def test_https_to_a_plain_http_service_is_named_as_such(gateway, pki) -> None:
    with serve(gateway) as plain:
        url = plain.replace("http://", "https://")
        settings = Settings(ca_file=pki["ca"])
        with httpx_client(settings, base_url=url) as client:
            with pytest.raises(httpx.ConnectError) as failed:
                client.get("/healthz")
    assert connection_problem(failed.value, url, settings) == \
        f"{url} does not speak HTTPS (is it a plain http:// service?)"


def test_the_planner_serves_https(tmp_path, pki, token_store) -> None:
    _, token = token_store.add("planner", "ops")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    app = create_planner(PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                                       tokens=token_store, jobs=jobs, kafka_io=FakeKafkaIO()))
    with serve(app, pki["cert"], pki["key"]) as url:
        with httpx_client(Settings(ca_file=pki["ca"]), base_url=url) as client:
            resp = client.get("/v1/plans", headers=auth(token))
    jobs.close()
    assert resp.status_code == 200 and resp.json() == {"jobs": []}


def test_the_plan_commands_trust_the_ca_file(tmp_path, pki, token_store, monkeypatch) -> None:
    """`packloop plan list|submit|…` verify the planner against PACKLOOP_CA_FILE as every
    other client of the command line does (they used the system store alone)."""
    _, token = token_store.add("planner", "ops")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    app = create_planner(PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                                       tokens=token_store, jobs=jobs, kafka_io=FakeKafkaIO()))
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", token)
    with serve(app, pki["cert"], pki["key"]) as url:
        monkeypatch.setenv("PACKLOOP_PLANNER_URL", url)
        monkeypatch.setenv("PACKLOOP_CA_FILE", str(pki["ca"]))
        trusted = CliRunner().invoke(cli, ["plan", "list", "--json"])
        monkeypatch.setenv("PACKLOOP_CA_FILE", str(pki["other_ca"]))
        untrusted = CliRunner().invoke(cli, ["plan", "list"])
    jobs.close()
    assert trusted.exit_code == 0, trusted.output
    assert trusted.stdout.strip() == "[]"
    assert untrusted.exit_code == 1
    [line] = untrusted.output.strip().splitlines()
    assert "is not trusted by PACKLOOP_CA_FILE=" in line and "Traceback" not in line


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_an_unusable_ca_file_is_one_line(tmp_path, content) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    with pytest.raises(TlsError) as failed:
        client_context(ca)
    assert str(failed.value).startswith(f"PACKLOOP_CA_FILE={ca} ")
    assert "\n" not in str(failed.value)


def test_a_certificate_needs_its_own_key(pki, tmp_path) -> None:
    assert server_tls(None, None, "PACKLOOP_GATEWAY_TLS") is None
    assert server_tls(pki["cert"], pki["key"], "X") == (str(pki["cert"]), str(pki["key"]))
    with pytest.raises(TlsError, match="PACKLOOP_GATEWAY_TLS_KEY"):
        server_tls(pki["cert"], None, "PACKLOOP_GATEWAY_TLS")
    with pytest.raises(TlsError, match="not a PEM certificate and its private key"):
        server_tls(pki["cert"], pki["other_key"], "X")
    with pytest.raises(TlsError, match="cannot read"):
        server_tls(tmp_path / "missing.pem", pki["key"], "X")


@pytest.mark.parametrize("command", ["gateway", "planner"])
def test_the_services_refuse_to_start_with_an_unusable_certificate(command, pki,
                                                                  monkeypatch) -> None:
    """One line, before Kafka is even tried (the bootstrap address here has no broker)."""
    monkeypatch.setenv("PACKLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv(f"PACKLOOP_{command.upper()}_TLS_KEY", str(pki["other_key"]))
    result = CliRunner().invoke(cli, [command, "--tls-cert", str(pki["cert"])])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot serve HTTPS: ")
    assert "not a PEM certificate and its private key" in result.output
    assert "Kafka" not in result.output and "Traceback" not in result.output


def test_the_compose_certificates_script_makes_what_the_services_serve(tmp_path, gateway,
                                                                      token_store) -> None:
    """infra/tls/make_certs.py: the gateway serves gateway.pem, a client trusting ca.pem
    (as hubs and Prometheus do) verifies it; the keys are the owner's only."""
    import subprocess
    import sys

    from tests.services.helpers import REPO

    subprocess.run([sys.executable, str(REPO / "infra/tls/make_certs.py"), "--out",
                    str(tmp_path), "--gateway-name", "hubs.county.example"],
                   check=True, capture_output=True, timeout=120)
    assert (tmp_path / "gateway.key").stat().st_mode & 0o077 == 0
    with serve(gateway, tmp_path / "gateway.pem", tmp_path / "gateway.key") as url:
        with httpx_client(Settings(ca_file=tmp_path / "ca.pem"), base_url=url) as client:
            assert client.get("/healthz").status_code == 200
