"""The planner's time limit end to end: `packloop plan solve` as a command and a planner job
on the real broker each end within their limit (10 % or 5 s over at most), model building,
baselines, report and hand-over included, with a plan; a running job's progress is the
county's objective and bound as they stand.

Wall-clock checks with a generous tolerance: the budget's rules themselves are tested on a
fake clock in ``tests/optimizer/test_cli_edges.py``. They assume a machine that is not
oversubscribed many times over (on one that is, the plan gives up with its reason instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from services.planner.store import FINAL
from tests.helpers import wait_until
from tests.services.helpers import NETWORK, big_scenario, with_time_limit

REPO = Path(__file__).resolve().parents[2]


def _allowed_s(limit_s: float) -> float:
    """The issue's tolerance: 10 % or 5 s, whichever is more."""
    return limit_s + max(0.1 * limit_s, 5.0)


#: the limit these tests give: 15 s was too short for every hub's first plan on a machine
#: about twice as slow as the one it was set on (session 25's CI: 3 and 4 of the hubs
#: planned, with another test on the second core), and the point is the limit kept
LIMIT_S = 30


def test_plan_solve_ends_within_its_time_limit(tmp_path) -> None:
    """Eight hubs for a week in LIMIT_S, report included: the command (interpreter start to
    exit) ends within the tolerance and prints a plan; before the budget it overran by far
    (each stage had a 1 s floor and nothing budgeted building the models)."""
    scenario = tmp_path / "eight_hubs.json"
    scenario.write_text(json.dumps(big_scenario(hubs=8)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", str(scenario), "--time-limit",
         str(LIMIT_S), "--out", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wall <= _allowed_s(LIMIT_S), f"{wall:.1f} s"
    plan = json.loads(proc.stdout)
    assert plan["trips"] and plan["objective"] is not None
    assert (tmp_path / "out" / "report.html").stat().st_size > 0
    assert "nan" not in proc.stderr and " inf" not in proc.stderr


@pytest.fixture
def planner_env(kafka, topics, tmp_path) -> Iterator[dict[str, Any]]:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=NETWORK, tokens=tokens,
                                   jobs=jobs, default_time_limit_s=30))
    worker = PlannerWorker(jobs, kafka, topics, group_id=f"g-{topics.prefix}", lease_s=4.0)
    thread: threading.Thread | None = None
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        thread = worker.start()
        yield {"client": client, "jobs": jobs}
    worker.stop()
    wait_until(lambda: thread is None or not thread.is_alive(), 30, "the planner worker to stop")
    jobs.close()
    tokens.close()


def test_a_job_ends_within_its_time_limit_with_county_progress(planner_env) -> None:
    """A six-hub week with a LIMIT_S limit: the job (claimed to stored) is done within the
    tolerance with a plan; while it runs, its progress shows the county's objective only
    once every hub group has a plan, and from then on it never rises."""
    client = planner_env["client"]
    job = client.post("/v1/plans", json=with_time_limit(big_scenario(hubs=6), LIMIT_S)).json()
    seen: list[dict[str, Any]] = []

    def final() -> dict[str, Any] | None:
        view = client.get(f"/v1/plans/{job['job_id']}").json()
        if view["status"] == "running" and view.get("progress"):
            seen.append(view["progress"])
        return view if view["status"] in FINAL else None

    done = wait_until(final, 120, "the job to finish", interval=0.2)
    assert done["status"] == "done", done.get("error")
    assert done["elapsed_s"] <= _allowed_s(LIMIT_S), done["elapsed_s"]
    assert done["summary"]["objective"] is not None and done["summary"]["trips"] > 0
    objectives = [p["incumbent"] for p in seen if p["incumbent"] is not None]
    # never rises (summing hub objectives in another order moves the last bit)
    pairs = zip(objectives, objectives[1:], strict=False)
    assert all(b <= a * (1 + 1e-12) for a, b in pairs), objectives
    for p in seen:
        assert p["incumbent"] is not None or "hub groups planned" in p["label"], p
