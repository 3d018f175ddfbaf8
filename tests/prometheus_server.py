"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for the tests that query one.

Both the infra test (synthetic exporters) and the end-to-end test (a real worker) start
it the same way: packloop's rule files, every target scraped and every rule evaluated
once a second, a free loopback port, a temporary config and storage directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.broker import free_port
from tests.helpers import wait_until
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
        wait_until(
            lambda: len(self.query(f'timestamp(up{{job="{job}"}} == 1) > {t:.3f}')) >= targets,
            timeout, f"{targets} target(s) of {job} scraped after {t:.3f}")

    def wait_rules_evaluated_after(self, t: float, timeout: float = 30) -> list[dict[str, Any]]:
        """Every loaded rule once all have been evaluated after time ``t`` (Unix seconds)."""

        def evaluated() -> list[dict[str, Any]] | None:
            rules = self.rules()
            if rules and all(_unix(r["lastEvaluation"]) > t for r in rules):
                return rules
            return None

        return wait_until(evaluated, timeout, f"every rule evaluated after {t:.3f}")


def _unix(rfc3339: str) -> float:
    """Prometheus' RFC 3339 times carry nanoseconds; datetime reads microseconds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", rfc3339)).timestamp()


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
    port = free_port()
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

    def ready() -> bool:
        if proc.poll() is not None:
            # pytest.fail is no Exception: it ends the wait at once
            pytest.fail(f"Prometheus exited: {(tmp / 'prometheus.log').read_text()}",
                        pytrace=False)
        urllib.request.urlopen(f"{base}/-/ready", timeout=1).close()
        return True

    try:
        wait_until(ready, 30, f"Prometheus on {base} to be ready")
        yield Prometheus(base)
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
