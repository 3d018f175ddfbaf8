"""The README's per-user `curl` examples, run as written against a live gateway and stream
worker on the embedded broker.

Each ```sh block with a `curl` in the "For each user" section runs in bash with the
variables the README tells the reader to set (GATEWAY, WORKER, TOKEN; PICKUP_ID for the
cancel), and its answer is checked: an example that stops working, or disappears, fails
here.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.auth.tokens import TokenStore
from services.broker import free_port
from streams.network import load_network
from streams.topics import Topics
from tests.helpers import wait_until
from tests.integration.helpers import PACKLOOP, REPO, WorkerProcess, terminate

NET = load_network()
HEAVY_VILLAGE = "H01-V003"


def readme_blocks(section: str) -> list[str]:
    """The ```sh blocks with a curl under the README heading ``### {section}``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n### {section}\n")
    end = min(i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1))
              if i > 0)
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.DOTALL)
    return [b for b in blocks if "curl " in b]


class Gateway:
    """`packloop gateway` as a user starts it, pointed at the worker with --worker-url."""

    def __init__(self, worker: WorkerProcess, token_db: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**worker.env(), "PACKLOOP_TOKEN_DB_URL": token_db,
               "PACKLOOP_GATEWAY_WEBHOOKS": "false", "PACKLOOP_WEBHOOK_ALLOW_PRIVATE": "true"}
        env.pop("PACKLOOP_WORKER_URL")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*PACKLOOP, "gateway", "--port", str(self.port), "--worker-url", worker.url,
                 "--log-level", "warning"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[[WorkerProcess, str], Gateway]]:
    made: list[Gateway] = []

    def make(worker: WorkerProcess, token_db: str) -> Gateway:
        gw = Gateway(worker, token_db, tmp_path / f"gateway-{len(made)}.log")
        made.append(gw)
        return gw

    yield make
    for gw in made:
        terminate(gw.proc)


def run_block(block: str, env: dict[str, str]) -> str:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block],
                            env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"{block}\nexit {result.returncode}: {result.stderr}"
    return result.stdout


def heavy_shipments(n: int) -> list[dict[str, Any]]:
    """Enough cardboard for the worker to request a pickup of HEAVY_VILLAGE."""
    start = datetime.now(UTC) - timedelta(hours=2)
    return [{
        "type": "shipment", "schema_version": 1, "event_id": str(uuid.uuid4()),
        "occurred_at": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "hub_id": "H01", "village_id": HEAVY_VILLAGE, "shipment_id": f"S-{i}",
        "direction": "down", "temperature_class": "ambient", "weight_grams": 5000,
        "packaging": [{"material": "cardboard", "count": 1, "grams": 2500}], "containers": [],
    } for i in range(n)]


def test_the_readme_curl_examples_work_as_written(
        topics_factory: Callable[..., Topics], workers: Callable[..., WorkerProcess],
        gateway_factory: Callable[[WorkerProcess, str], Gateway], tmp_path: Path) -> None:
    topics = topics_factory(4)
    worker = workers(topics.prefix).start()
    token_db = f"sqlite:///{tmp_path}/tokens.db"
    store = TokenStore(token_db)
    _, token = store.add("hub", "H01")
    store.close()
    gateway = gateway_factory(worker, token_db)
    worker.wait_ready()
    wait_until(lambda: httpx.get(f"{gateway.url}/readyz", timeout=5).status_code == 200, 90,
               "the gateway to be ready")
    env = {"GATEWAY": gateway.url, "WORKER": worker.url, "TOKEN": token}
    checked: list[str] = []

    for block in readme_blocks("Hub operators"):
        answer = orjson.loads(run_block(block, env))
        if "/v1/hubs/H01/villages" in block:
            ids = [v["village_id"] for v in answer["villages"]]
            assert ids == sorted(v.village_id for v in NET.villages.values() if v.hub_id == "H01")
            checked.append("villages")
        elif "/v1/events" in block:
            assert (answer["accepted"], answer["rejected"]) == (1, 0), answer
            # accepted means counted: the worker applies the README's event
            wait_until(lambda: worker.get("/villages/H01-V001").json().get(
                "events", {}).get("applied") == 1, 60, "the worker to count the README's event")
            checked.append("events")
        elif "/v1/webhook" in block:
            assert answer["hub_id"] == "H01" and answer["secret"], answer
            checked.append("webhook")

    headers = {"Authorization": f"Bearer {token}"}
    sent = httpx.post(f"{gateway.url}/v1/events", json=heavy_shipments(30), headers=headers,
                      timeout=30)
    assert sent.status_code == 200 and sent.json()["accepted"] == 30, sent.text

    def open_pickup() -> str | None:
        rows = httpx.get(f"{gateway.url}/v1/pickups", headers=headers, timeout=10).json()
        return next((p["pickup_id"] for p in rows.get("pickups", [])
                     if p["village_id"] == HEAVY_VILLAGE), None)

    pickup_id = wait_until(open_pickup, 90, "the worker to request a pickup")
    env["PICKUP_ID"] = pickup_id
    for block in readme_blocks("Collectors"):
        answer = orjson.loads(run_block(block, env))
        if "/cancel" in block:
            assert answer["status"] == "cancel_requested" and answer["pickup_id"] == pickup_id
            wait_until(lambda: open_pickup() != pickup_id, 60, "the worker to close it")
            checked.append("cancel")
        elif "/v1/pickups" in block:
            assert pickup_id in [p["pickup_id"] for p in answer["pickups"]], answer
            checked.append("pickups")

    for block in readme_blocks("Environmental officers"):
        out = run_block(block, env)
        assert '"villages"' in out and '"hub_id":"H01"' in out.replace(" ", "")
        assert re.search(r"^packloop_events_total\{", out, flags=re.MULTILINE), out[-500:]
        checked.append("worker state")

    assert sorted(checked) == sorted(["villages", "events", "webhook", "pickups", "cancel",
                                      "worker state"])
