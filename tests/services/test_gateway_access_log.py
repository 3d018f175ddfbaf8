"""Tokens never appear in a log line (docs/services.md), not even when a client puts one in
the URL: uvicorn's access log line of such a request has the value redacted, on the
gateway and on the planner (:mod:`services.http.access_log`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from services.broker import free_port
from services.gateway import GatewayConfig
from services.gateway import create_app as create_gateway
from services.http.access_log import REDACTED, redact_query
from services.planner import JobStore, PlannerConfig
from services.planner import create_app as create_planner
from streams.kafka import KafkaConnection
from tests.helpers import wait_until
from tests.services.helpers import NETWORK, TOPICS, FakeKafkaIO, FakeWorker

SECRET = "plk_0123456789ab_SeCrEtVaLuE"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def access_log_of(app: Any) -> Iterator[tuple[str, Records]]:
    """``app`` served by uvicorn with its own logging set-up (as ``packloop gateway`` runs
    it, access log on at info), and the records its access logger passes on."""
    access = logging.getLogger("uvicorn.access")
    saved = access.level, list(access.handlers), access.propagate
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    records = Records()
    try:
        wait_until(lambda: server.started, 60, "uvicorn to start")
        access.addHandler(records)  # after uvicorn's dictConfig, which replaces handlers
        yield f"http://127.0.0.1:{port}", records
    finally:
        server.should_exit = True
        thread.join(30)
        access.setLevel(saved[0])
        access.handlers[:] = saved[1]
        access.propagate = saved[2]


def lines_for(records: Records, path: str) -> list[str]:
    wait_until(lambda: any(path in r.getMessage() for r in records.records), 10,
               "the access log line")
    return [r.getMessage() for r in records.records if path in r.getMessage()]


def test_the_gateways_access_log_holds_no_token(token_store) -> None:
    """``curl "$GATEWAY/v1/hubs/H01/villages?token=$TOKEN"`` used to log the token whole."""
    app = create_gateway(GatewayConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=token_store,
        kafka_io=FakeKafkaIO(), worker_transport=httpx.MockTransport(FakeWorker().handler),
        webhooks=False))
    with access_log_of(app) as (url, records):
        resp = httpx.get(f"{url}/v1/hubs/H01/villages",
                         params={"token": SECRET, "Access_Token": SECRET, "status": "open"})
        assert resp.status_code == 401
        [line] = lines_for(records, "/v1/hubs/H01/villages")
    assert SECRET not in line
    assert f"?token={REDACTED}&Access_Token={REDACTED}&status=open" in line, line


def test_the_planners_access_log_holds_no_token(token_store, tmp_path) -> None:
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    app = create_planner(PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                                       tokens=token_store, jobs=jobs, kafka_io=FakeKafkaIO()))
    try:
        with access_log_of(app) as (url, records):
            httpx.get(f"{url}/v1/plans", params={"limit": 5, "API_KEY": SECRET})
            [line] = lines_for(records, "/v1/plans")
    finally:
        jobs.close()
    assert SECRET not in line
    assert f"/v1/plans?limit=5&API_KEY={REDACTED}" in line, line


@pytest.mark.parametrize(("target", "redacted"), [
    ("/a?token=s", f"/a?token={REDACTED}"),
    ("/a?x=1&Password=s&secret=s#f", f"/a?x=1&Password={REDACTED}&secret={REDACTED}#f"),
    ("/a?key=s&api-key=s&api_key=s", f"/a?key={REDACTED}&api-key={REDACTED}&api_key={REDACTED}"),
    ("/a?tok%65n=s", f"/a?tok%65n={REDACTED}"),  # a key as the server decodes it
    ("/a?next=/b?token=s", f"/a?next=/b?token={REDACTED}"),
    ("/a?token=", "/a?token="),
    ("/a?tokens=kept&monkey=kept&hub=H01", "/a?tokens=kept&monkey=kept&hub=H01"),
    # a token under any key or in a path keeps only its id
    ("/a?h=Bearer%20plk_ab_s3c-r_t", f"/a?h=Bearer%20plk_ab_{REDACTED}"),
    ("/a?foo=plk_0a1_s&bar=plk_ff_t", f"/a?foo=plk_0a1_{REDACTED}&bar=plk_ff_{REDACTED}"),
    ("/v1/plk_0a_XYZ-_1/x", f"/v1/plk_0a_{REDACTED}/x"),
    # a framework's decorations around the key (an outside audit: logged in clear)
    ("/a?token[]=s&password%00=s&hub[]=H01",
     f"/a?token[]={REDACTED}&password%00={REDACTED}&hub[]=H01"),
])
def test_which_query_values_are_redacted(target, redacted) -> None:
    assert redact_query(target) == redacted


@pytest.mark.parametrize(("target", "redacted"), [
    # the tester's: ``_`` sent as %5F, and the keys clients put a bearer token under
    ("/a?auth=plk%5F0a1b%5FSeCrEt", f"/a?auth={REDACTED}"),
    ("/a?Authorization=Bearer%20plk%5F0a%5FSeCrEt", f"/a?Authorization={REDACTED}"),
    ("/v1/hubs/plk%5F0a%5FSeCrEt/x", f"/v1/hubs/plk%5F0a%5F{REDACTED}/x"),
    ("/a?bearer=0a1b_SeCrEt", f"/a?bearer={REDACTED}"),
    ("/a?x=plk%5f0a_SeCrEt&y=1", f"/a?x=plk%5f0a_{REDACTED}&y=1"),
    # any character encoded, or the whole token encoded twice: redacted once decoded
    ("/a?x=%70lk%5F0a%5FSeCrEt&y=1", f"/a?x=plk_0a_{REDACTED}&y=1"),
    ("/a?x=Bearer+%70lk_0a_SeCrEt", f"/a?x=Bearer%20plk_0a_{REDACTED}"),
    ("/v1/plk%255F0a%255FSeCrEt", f"/v1/plk_0a_{REDACTED}"),
    ("/a?%61uth=SeCrEt", f"/a?%61uth={REDACTED}"),
    ("/a?x=%41%42&hub=H01", "/a?x=%41%42&hub=H01"),
])
def test_a_percent_encoded_token_is_redacted(target, redacted) -> None:
    """Before: only a literal ``plk_`` was found, so ``plk%5F<id>%5F<secret>`` was logged
    whole, and so was ``?bearer=<id>_<secret>``."""
    assert redact_query(target) == redacted
    assert "SeCrEt" not in redact_query(target)


def test_a_percent_encoded_token_never_reaches_the_access_log(token_store) -> None:
    """The tester's requests against a served gateway."""
    app = create_gateway(GatewayConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=token_store,
        kafka_io=FakeKafkaIO(), worker_transport=httpx.MockTransport(FakeWorker().handler),
        webhooks=False))
    encoded = SECRET.replace("_", "%5F")
    with access_log_of(app) as (url, records):
        for target in (f"/v1/hubs/H01/villages?auth={encoded}",
                       f"/v1/hubs/H01/villages?Authorization=Bearer%20{encoded}",
                       f"/v1/hubs/{encoded}/villages",
                       "/v1/hubs/H01/villages?bearer=0123456789ab_SeCrEtVaLuE"):
            httpx.get(url + target)
        wait_until(lambda: len(lines_for(records, "/villages")) == 4, 10, "four lines")
        lines = lines_for(records, "/villages")
    assert not [line for line in lines if "SeCrEtVaLuE" in line], lines
