"""What the planner job service adds to a solve: submit → done through the API, the
plan-requests topic, a worker and its solve process, against the solve alone.

    python bench/services_planner.py [--jobs 3] [--scenario examples/scenarios/tiny.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from streams import KafkaConnection, Topics, create_topics, load_network

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--scenario", default=str(REPO / "examples/scenarios/tiny.yaml"))
    args = parser.parse_args()
    scenario = yaml.safe_load(Path(args.scenario).read_text())

    import optimizer

    direct = []
    for _ in range(args.jobs):
        t = time.perf_counter()
        optimizer.solve(optimizer.load_scenario(scenario), time_limit_s=60)
        direct.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        kafka = KafkaConnection(bootstrap_servers=broker.bootstrap)
        topics = Topics("bench-")
        create_topics(kafka, topics)
        tokens = TokenStore(f"sqlite:///{tmp}/t.db")
        jobs = JobStore(f"sqlite:///{tmp}/p.db")
        _, token = tokens.add("planner", "bench")
        worker = PlannerWorker(jobs, kafka, topics, group_id="bench")
        worker.start()
        app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=load_network(),
                                       tokens=tokens, jobs=jobs))
        through: list[float] = []
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            for _ in range(args.jobs):
                t = time.perf_counter()
                job_id = client.post("/v1/plans", json={"scenario": scenario, "options": {
                    "time_limit_s": 60}}).json()["job_id"]
                while client.get(f"/v1/plans/{job_id}").json()["status"] in ("queued",
                                                                              "running"):
                    time.sleep(0.05)
                through.append(time.perf_counter() - t)
        worker.stop()
        time.sleep(1)
    d, s = statistics.median(direct), statistics.median(through)
    print(f"solve alone: median {d:.2f} s; through the job service: median {s:.2f} s "
          f"(overhead {s - d:.2f} s: queueing, group poll, spawned solve process, report)")
    print(f"first job through the service (includes the worker's group join): "
          f"{through[0]:.2f} s")


if __name__ == "__main__":
    main()
