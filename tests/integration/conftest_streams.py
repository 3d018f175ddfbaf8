"""Fixtures and helpers for the stream-worker integration tests (real broker, real
worker processes started with `packloop worker`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from streams.topics import Topics

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProcess:
    """One `packloop worker` subprocess; always killed by the fixture that made it."""

    def __init__(self, bootstrap: str, prefix: str, log_dir: Path, extra_env: dict | None = None):
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PACKLOOP_KAFKA_BOOTSTRAP": self.bootstrap,
                "PACKLOOP_TOPIC_PREFIX": self.prefix,
                "PACKLOOP_WEB_PORT": str(self.port),
                "PACKLOOP_WORKER_URL": self.url,
                "PACKLOOP_WORKER_LOG_LEVEL": "info",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> WorkerProcess:
        self.starts += 1
        log = open(self.log_dir / f"worker-{self.port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from services.cli import main; main()", "worker"],
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=10)
        return r

    def status(self) -> dict[str, Any] | None:
        try:
            r = self.get("/status")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_ready(self, timeout: float = 90, partitions: int | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"worker exited: see {self.log_dir}")
            try:
                r = self.get("/local/status")
                if r.status_code == 200:
                    parts = r.json()["worker"]["partitions"]
                    if parts and (partitions is None or len(parts) >= partitions):
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker on {self.url} not ready after {timeout} s")


def produce(
    bootstrap: str, topic: str, lines: list[bytes], partitioner: Callable | None = None
) -> None:
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
        import threading

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

    Not until the end offsets: the embedded broker reports them short by up to a batch,
    which made a test miss the last pickup notices now and then.
    """
    from streams.consume import iter_topic
    from streams.kafka import KafkaConnection

    records = iter_topic(KafkaConnection(bootstrap_servers=bootstrap), topic,
                         idle_timeout_s=2.0, max_wait_s=timeout_s * 6)
    return [orjson.loads(r.value) for r in records]


def wait_settled(
    workers: list[WorkerProcess], total: int, timeout: float = 180, quiet_s: float = 3.0
) -> dict[str, Any]:
    """Wait until every record is accounted for and the figures stop moving."""
    deadline = time.monotonic() + timeout
    last: Any = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        st = None
        for w in workers:
            if w.alive():
                st = w.status()
                if st is not None:
                    break
        if st is not None:
            ev = st["events"]
            key = orjson.dumps([st["events"], st["pickups"]])
            if key != last:
                last, since = key, time.monotonic()
            seen = ev["applied"] + ev["duplicates"] + ev["dead_lettered"]
            if seen >= total and time.monotonic() - since >= quiet_s:
                return st
        time.sleep(0.5)
    raise AssertionError(f"workers did not settle: last status {last!r}")


@pytest.fixture
def workers(broker: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    made: list[WorkerProcess] = []

    def make(prefix: str, **env: str) -> WorkerProcess:
        w = WorkerProcess(broker.bootstrap, prefix, tmp_path, env)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill9()


ReadyWorker = Callable[[int], tuple[Topics, WorkerProcess]]


@pytest.fixture
def ready_worker(
    topics_factory: Callable[..., Topics], workers: Callable[..., WorkerProcess]
) -> ReadyWorker:
    """Fresh topics (``partitions`` of them) and one worker on them that owns partitions.

    How most worker tests begin. The worker is returned only once it is assigned, so what
    a test does next (produce, kill, ask) meets a consumer in its group, not one starting.
    """

    def start(partitions: int = 4) -> tuple[Topics, WorkerProcess]:
        topics = topics_factory(partitions)
        w = workers(topics.prefix).start()
        w.wait_ready()
        return topics, w

    return start
