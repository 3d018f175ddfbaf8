"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for the tests that query one.

Both the infra test (synthetic exporters) and the end-to-end test (a real worker) start
it the same way: packloop's rule files, every target scraped and every rule evaluated
once a second, a free loopback port, a temporary config and storage directory.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.infra.tools import tool


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class Prometheus:
    """The HTTP API of a running Prometheus, answering what the tests ask it."""

    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = _get(f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert data["status"] == "success", (expr, data)
        result = data["data"]["result"]
        return result if isinstance(result, list) else [result]

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def by(self, expr: str, *labels: str) -> dict[Any, float]:
        out = {}
        for r in self.query(expr):
            key = tuple(r["metric"].get(k, "") for k in labels)
            out[key[0] if len(key) == 1 else key] = float(r["value"][1])
        return out

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health and last evaluation, over all groups."""
        groups = _get(f"{self.base}/api/v1/rules")["data"]["groups"]
        return [r for g in groups for r in g["rules"]]

    def wait_scrape_after(self, t: float, job: str, targets: int, timeout: float = 30) -> None:
        """Wait until every target of ``job`` has been scraped (up) after time ``t``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.query(f'timestamp(up{{job="{job}"}} == 1) > {t:.3f}')
            if len(res) >= targets:
                return
            time.sleep(0.5)
        raise AssertionError(f"no scrape of {job} after {t} within {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prometheus_server(
    jobs: dict[str, list[str]], rule_files: Sequence[Path], tmp: Path
) -> Iterator[Prometheus]:
    """Prometheus scraping each job's targets every second, ready when entered.

    ``rule_files`` are loaded in the order given. Killed on exit rather than stopped:
    its storage is a temporary directory, there is nothing worth flushing.
    """
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": targets}],
            }
            for job, targets in jobs.items()
        ],
    }
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), "utf-8")
    port = _free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "Prometheus did not become ready"
                time.sleep(0.2)
        yield Prometheus(base)
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
