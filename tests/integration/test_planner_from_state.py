"""A plan `from_state` after simulated days uses what the real stream worker reports.

Two simulated days of hubs H01 and H02 go through a real `packloop worker`; the planner
then builds its scenario from the worker and the topic. The test compares the scenario's
outstanding waste and container pools with the worker's own `/status`, and its demand with
a count made from the simulated input; then a planner worker solves it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from streams.network import load_network
from tests.integration.helpers import (
    ReadyWorker,
    WorkerProcess,
    packloop,
    produce,
    wait_settled,
)
from tests.services.helpers import wait_for_job

NET = load_network()
HUBS = ("H01", "H02")


def simulate(days: int, out: Path) -> list[bytes]:
    done = packloop("simulate", "--days", str(days), "--seed", "5", "--out", str(out),
                    "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    return [line for line in out.read_bytes().splitlines()
            if orjson.loads(line)["hub_id"] in HUBS]


def test_from_state_plan_uses_the_streams_waste_pools_and_demand(
        broker: Any, kafka, ready_worker: ReadyWorker, tmp_path: Path) -> None:
    lines = simulate(2, tmp_path / "days.jsonl")
    topics, worker = ready_worker(4)
    produce(broker.bootstrap, topics.hub_events, lines)
    status = wait_settled([worker], len(lines))
    assert status["events"]["applied"] > 0

    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=NET, tokens=tokens,
                                   jobs=jobs, worker_url=worker.url))
    planner = PlannerWorker(jobs, kafka, topics, group_id=f"fs-{topics.prefix}", lease_s=10)
    planner_thread = planner.start()
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            resp = client.post("/v1/plans", json={
                "from_state": {"horizon_days": 1, "hubs": list(HUBS)},
                "options": {"time_limit_s": 30, "baselines": False}})
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            assert resp.json()["source"] == "from_state"
            built = client.get(f"/v1/plans/{job_id}/scenario").json()
            scenario, inputs = built["scenario"], built["inputs"]

            # outstanding waste: what the worker reports now, village by village
            live = httpx_status(worker)
            expected_waste = {
                vid: float(sum(v["outstanding_grams"].values()))
                for vid, v in live["villages"].items()
                if NET.villages[vid].hub_id in HUBS and sum(v["outstanding_grams"].values()) > 0
            }
            got_waste = {w["village_id"]: w["grams"] for w in scenario["outstanding_waste"]}
            assert expected_waste and got_waste == pytest.approx(expected_waste)

            # container pools: the hub's stock minus what the stream has out, lost or damaged
            expected_pools = {}
            for hub in HUBS:
                stock = NET.hubs[hub].extra["container_pool"]
                seen = live["hubs"].get(hub, {}).get("containers", {})
                for ct, owned in stock.items():
                    f = seen.get(ct, {})
                    away = f.get("in_circulation", 0) + f.get("lost", 0) + f.get("damaged", 0)
                    expected_pools[(hub, ct)] = max(0, owned - away)
            got_pools = {(p["hub_id"], p["container_type"]): p["count"]
                         for p in scenario["container_pools"]}
            assert got_pools == expected_pools
            assert any(live["hubs"][h]["containers"]["insulated_box"]["in_circulation"] > 0
                       for h in HUBS if h in live["hubs"]), "the simulation issued no boxes"
            assert got_pools[("H01", "insulated_box")] < NET.hubs["H01"].extra[
                "container_pool"]["insulated_box"] or got_pools[("H02", "insulated_box")] < \
                NET.hubs["H02"].extra["container_pool"]["insulated_box"]

            # containers out at the villages (issued, not returned, not lost), counted from
            # the events themselves: the plan expects to collect them from day 0
            out: Counter[tuple[str, str]] = Counter()
            for line in lines:
                e = orjson.loads(line)
                if e["type"] == "shipment":
                    for ref in e.get("containers", []):
                        out[(e["village_id"], ref["container_type"])] += 1
                elif e["type"] == "packaging_return":
                    out[(e["village_id"], e["container_type"])] -= e["count"]
            expected_out = {k: float(n) for k, n in out.items()
                            if n > 0 and NET.villages[k[0]].hub_id in HUBS}
            got_out = {(c["village_id"], c["container_type"]): c["count"]
                       for c in scenario["containers_out"]}
            assert expected_out and got_out == expected_out
            assert {c["day"] for c in scenario["containers_out"]} == {0}
            assert inputs["containers_out"] == sum(expected_out.values())

            # demand: the last simulated local day, per village x class x direction
            counts: Counter[tuple[str, str, str, str]] = Counter()
            for line in lines:
                e = orjson.loads(line)
                if e["type"] == "shipment":
                    day = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")) \
                        .astimezone(NET.timezone).date().isoformat()
                    counts[(e["village_id"], day, e["temperature_class"], e["direction"])] += 1
            last_day = max(k[1] for k in counts)
            expected_demand = {(v, c, d): n for (v, day, c, d), n in counts.items()
                               if day == last_day}
            got_demand = {(g["village_id"], g["class_id"], g["direction"]): g["parcels"]
                          for g in scenario["demand"]}
            assert {g["day"] for g in scenario["demand"]} == {0}
            assert got_demand == expected_demand
            assert inputs["demand_last_day"] == last_day
            assert set(inputs["open_pickups"]) == {
                v["open_pickup"] for vid, v in live["villages"].items()
                if v["open_pickup"] and NET.villages[vid].hub_id in HUBS}

            # and the job runs to a plan
            job = wait_for_job(client, job_id, timeout_s=180)
            assert job["status"] == "done", job
            assert job["summary"]["kpis"]["joint"]["trips"] > 0
    finally:
        planner.stop()
        planner_thread.join(30)
        assert not planner_thread.is_alive(), "the planner worker did not stop"
        jobs.close()
        tokens.close()


def httpx_status(worker: WorkerProcess) -> dict[str, Any]:
    resp = worker.get("/status")
    assert resp.status_code == 200
    return resp.json()
