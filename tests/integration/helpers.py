"""Plain helpers of the integration tests: packloop's processes, records in and out,
and the waits on what a running worker, gateway or planner reports.

Fixtures are in ``fixtures.py`` (every module here gets them through ``conftest.py``);
test modules import helpers from here, never from another ``test_*.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.broker import free_port
from streams.consume import iter_topic
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.helpers import WaitTimeout, wait_until

REPO = Path(__file__).resolve().parents[2]

#: The CLI as an operator runs it: a fresh interpreter on this checkout.
PACKLOOP = (sys.executable, "-m", "services.cli")


@dataclass(frozen=True)
class NotYet:
    """A falsy answer for ``wait_until`` that carries what was seen, so a wait that times
    out reports it (``last: NotYet(seen=...)``)."""

    seen: object

    def __bool__(self) -> bool:
        return False


def packloop(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``packloop <args>`` to completion; ``env`` is the whole environment (default:
    this process's)."""
    return subprocess.run([*PACKLOOP, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start_planner_worker(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``packloop planner --no-api --workers 1`` in its own session, stderr to ``log``."""
    with open(log, "wb") as stderr:
        return subprocess.Popen([*PACKLOOP, "planner", "--no-api", "--workers", "1"],
                                cwd=REPO, env=dict(env), stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)


def terminate(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class WorkerProcess:
    """One ``packloop worker`` subprocess; always killed by the fixture that made it."""

    def __init__(self, bootstrap: str, prefix: str, log_dir: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PACKLOOP_KAFKA_BOOTSTRAP": self.bootstrap,
            "PACKLOOP_TOPIC_PREFIX": self.prefix,
            "PACKLOOP_WEB_PORT": str(self.port),
            "PACKLOOP_WORKER_URL": self.url,
            "PACKLOOP_WORKER_LOG_LEVEL": "info",
            **self.extra_env,
        }

    def start(self) -> WorkerProcess:
        self.starts += 1
        with open(self.log_dir / f"worker-{self.port}-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen([*PACKLOOP, "worker"], cwd=REPO, env=self.env(),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """What the current run has logged so far."""
        path = self.log_dir / f"worker-{self.port}-{self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)

    def status(self) -> dict[str, Any] | None:
        """The cluster-wide ``/status``, or None while the worker cannot answer."""
        try:
            r = self.get("/status")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def applied(self) -> int:
        """Events applied so far (0 while the worker cannot answer)."""
        st = self.status()
        return int(st["events"]["applied"]) if st else 0

    def partitions(self) -> set[int]:
        """The hub-events partitions this worker owns now."""
        r = self.get("/local/status")
        r.raise_for_status()
        return set(r.json()["worker"]["partitions"])

    def wait_ready(self, timeout: float = 90, partitions: int | None = None) -> None:
        """Until it owns a partition (``partitions`` of them, if given)."""

        def ready() -> bool:
            if not self.alive():
                # pytest.fail is no Exception: it ends the wait at once
                pytest.fail(f"worker exited: see {self.log_dir}", pytrace=False)
            owned = self.partitions()
            return bool(owned) and (partitions is None or len(owned) >= partitions)

        wait_until(ready, timeout, f"worker on {self.url} to own "
                                   f"{partitions or 'a'} partition(s)")


def produce(
    bootstrap: str, topic: str, lines: list[bytes], partitioner: Callable | None = None
) -> None:
    """Each line keyed by its village, flushed before returning."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=5, batch_size=256 * 1024)
    try:
        for line in lines:
            key = orjson.loads(line)["village_id"].encode()
            kwargs: dict[str, Any] = {}
            if partitioner is not None:
                kwargs["partition"] = partitioner(key)
            producer.send(topic, key=key, value=line, **kwargs)
        producer.flush(60)
    finally:
        producer.close()


class BackgroundProducer:
    """Produce lines at a steady rate from a thread, so a worker can be killed mid-run."""

    def __init__(self, bootstrap: str, topic: str, lines: list[bytes], rate: float) -> None:
        self.bootstrap, self.topic, self.lines, self.rate = bootstrap, topic, lines, rate
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            chunk = 250
            for i in range(0, len(self.lines), chunk):
                produce(self.bootstrap, self.topic, self.lines[i : i + chunk])
                self.sent = min(len(self.lines), i + chunk)
                # the rate is the point: a clock paces the chunks
                delay = t0 + self.sent / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def start(self) -> BackgroundProducer:
        self.thread.start()
        return self

    def join(self, timeout: float = 300) -> None:
        self.thread.join(timeout)
        if self.error:
            raise self.error
        assert self.sent == len(self.lines)


def read_topic(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """Every record of the topic, read until polls stay empty for a while.

    Not until the end offsets: the embedded broker reports them short by up to a batch.
    """
    records = iter_topic(KafkaConnection(bootstrap_servers=bootstrap), topic,
                         idle_timeout_s=2.0, max_wait_s=timeout_s * 6)
    return [orjson.loads(r.value) for r in records]


def wait_settled(
    workers: list[WorkerProcess], total: int, timeout: float = 180, quiet_s: float = 3.0
) -> dict[str, Any]:
    """The ``/status`` once every record is accounted for and the figures stopped moving.

    "Stopped moving" is unchanged for ``quiet_s``: a late duplicate or pickup notice
    has no other sign.
    """
    seen: dict[str, Any] = {"figures": None, "since": time.monotonic()}

    def settled() -> dict[str, Any] | NotYet:
        st = next((s for w in workers if w.alive() and (s := w.status()) is not None), None)
        if st is None:
            return NotYet("no worker answers /status")
        figures = (st["events"], st["pickups"])
        if figures != seen["figures"]:
            seen["figures"], seen["since"] = figures, time.monotonic()
        ev = st["events"]
        counted = ev["applied"] + ev["duplicates"] + ev["dead_lettered"]
        if counted >= total and time.monotonic() - seen["since"] >= quiet_s:
            return st
        return NotYet(figures)

    try:
        return wait_until(settled, timeout, f"{total} records accounted for and the figures "
                                            f"unchanged for {quiet_s:g} s", interval=0.5)
    except WaitTimeout as exc:
        # CI keeps only the failure text: say there what each worker owned and logged
        raise WaitTimeout(f"{exc}\n{worker_report(workers)}") from None


def worker_report(workers: list[WorkerProcess], lines: int = 25) -> str:
    """Each worker's partitions and the last warnings and packloop lines of its log."""
    out = []
    for w in workers:
        try:
            owned: object = sorted(w.partitions()) if w.alive() else "not running"
        except Exception as exc:  # it may not answer: that is worth seeing too
            owned = repr(exc)
        keep = [ln for ln in w.log().splitlines()
                if "packloop:" in ln or "[WARNING]" in ln or "[ERROR]" in ln
                or "Worker ready" in ln or "assigned partitions" in ln]
        out.append(f"--- worker {w.url} partitions {owned}, log {w.log_dir}")
        out.extend(ln[:240] for ln in keep[-lines:])
    return "\n".join(out)


ReadyWorker = Callable[[int], tuple[Topics, WorkerProcess]]


def notice(kind: str, hub: str, village: str, event_id: str) -> dict[str, Any]:
    """A pickup notice as the stream worker writes it to pickup-requests."""
    return {"type": kind, "schema_version": 1, "event_id": event_id,
            "occurred_at": "2026-11-11T08:00:00Z", "hub_id": hub, "village_id": village,
            "pickup_id": f"P-{village}-1", "outstanding_grams": {"cardboard": 60000},
            "reasons": ["outstanding_grams"]}


PROBE_HUB = "PROBE"


def wait_webhooks_reading(client: Any, kafka: KafkaConnection, topics: Topics,
                          timeout: float = 30) -> None:
    """Until the gateway's webhook dispatcher reads what is produced from now on.

    Its consumer starts at the latest offset, found only after it joined its group: a
    notice produced before that is never delivered. Probe notices for a hub without a
    webhook are produced until one shows in ``/metrics`` as skipped.
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(acks="all", **kafka.kafka_python_kwargs())
    skipped = f'hub="{PROBE_HUB}",outcome="skipped"'
    probes = iter(range(1_000_000))

    def read() -> bool:
        n = next(probes)
        probe = notice("pickup_requested", PROBE_HUB, f"{PROBE_HUB}-V{n}", f"probe-{n}")
        producer.send(topics.pickup_requests, key=probe["village_id"].encode(),
                      value=orjson.dumps(probe)).get(10)
        return skipped in client.get("/metrics").text

    try:
        wait_until(read, timeout, "the webhook dispatcher to read a probe notice",
                   interval=0.2)
    finally:
        producer.close()
