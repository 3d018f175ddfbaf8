"""Tomorrow's dispatch end to end on the embedded broker.

Two simulated days of hubs H01 and H02 go through a real `packloop worker`; the planner
service's schedule fires every second (PACKLOOP_DISPATCH_EVERY_S in production terms)
and plans tomorrow from the live state on a planner worker, which publishes one run sheet
per hub on the dispatch topic; the gateway stores them and serves each to its own hub's
token only, and still does after a restart (the broker is not where it keeps them). The
run sheets are checked against the plan they were cut from: every stop a village of the
hub with waste or parcels in the plan, the trips the plan's day-0 milk runs, and the
loads per stop and per village summed from the plan's own rows (packaging, recyclables,
demand) rather than the litres the sheet converts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

import optimizer
from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig
from services.gateway import create_app as create_gateway
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from services.planner.daily import DispatchSchedule, job_name
from streams.network import load_network
from tests.helpers import wait_until
from tests.integration.helpers import NotYet, ReadyWorker, packloop, produce, wait_settled

NET = load_network()
HUBS = ("H01", "H02")


def simulate(days: int, out: Path) -> list[bytes]:
    done = packloop("simulate", "--days", str(days), "--seed", "5", "--out", str(out),
                    "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    return [line for line in out.read_bytes().splitlines()
            if orjson.loads(line)["hub_id"] in HUBS]


def check_against_plan(sheet: dict[str, Any], scenario: dict[str, Any],
                       result: dict[str, Any]) -> None:
    hub = sheet["hub_id"]
    sc = optimizer.load_scenario(scenario)
    waste = {w.village_id for w in sc.outstanding_waste if w.grams > 0}
    served = {p["village_id"] for p in result["packaging"] if p["day"] == 0}
    served |= {g.village_id for g in sc.demand if g.day == 0}
    def with_work(t: dict[str, Any]) -> tuple[str, ...]:
        """The trip's stops where the plan loads anything (a tour can pass a village whose
        loads rode on another trip: the driver has nothing to do there)."""
        return tuple(v for v in t["stops"]
                     if any(x > 1e-3 for x in t["stop_loads"].get(v, {}).values()))

    plan_trips = [t for t in result["trips"]
                  if t["day"] == 0 and t["hub_id"] == hub and t["kind"] == "milk_run"
                  and with_work(t)]
    # the trips are the plan's day-0 milk runs, their stops with work in the plan's order
    assert Counter((t["vehicle_type"], with_work(t)) for t in plan_trips) == Counter(
        (t["vehicle_type"], tuple(s["village_id"] for s in t["stops"])) for t in sheet["trips"])
    by_route = {(t["vehicle_type"], with_work(t)): t for t in plan_trips}
    delivered: dict[tuple[str, str], float] = defaultdict(float)
    boxes: dict[tuple[str, str], float] = defaultdict(float)
    taken: dict[tuple[str, str], float] = defaultdict(float)
    grams: dict[str, float] = defaultdict(float)
    for trip in sheet["trips"]:
        stops = tuple(s["village_id"] for s in trip["stops"])
        planned = by_route[(trip["vehicle_type"], stops)]
        assert trip["depart_at"] < trip["return_at"]
        for stop in trip["stops"]:
            village = stop["village_id"]
            assert NET.villages[village].hub_id == hub, village
            assert village in waste or village in served, village
            assert trip["depart_at"] <= stop["arrive_at"] <= stop["depart_at"] <= \
                trip["return_at"]
            loads = planned["stop_loads"].get(village, {})
            # per stop: what the plan loads there, class by class
            for c in ("ambient", "chilled", "frozen"):
                assert (stop["deliver_parcels"].get(c, 0) > 0.005) == \
                    (loads.get(f"down_litres.{c}", 0) > 1e-3), (village, c)
                assert (stop["collect_parcels"].get(c, 0) > 0.005) == \
                    (loads.get(f"up_litres.{c}", 0) > 1e-3), (village, c)
            for ct in ("insulated_box", "reusable_crate"):
                assert stop["empties_to_collect"].get(ct, 0) == pytest.approx(
                    loads.get(f"empties.{ct}", 0), abs=0.01)
            assert stop["recyclables_grams"] == pytest.approx(
                loads.get("recyclables_grams", 0), abs=0.01)
            for c, n in stop["deliver_parcels"].items():
                delivered[(village, c)] += n
            for ct, n in stop["boxes_to_drop"].items():
                boxes[(village, ct)] += n
            for c, n in stop["collect_parcels"].items():
                taken[(village, c)] += n
            grams[village] += stop["recyclables_grams"]
    # per village: the day's parcels as packed, the boxes they go in, the farm parcels
    # asked for and the waste the plan collects that day, from the plan's other rows
    reusable = {r.container_type for r in sc.packaging.reusable}
    want_parcels: dict[tuple[str, str], float] = defaultdict(float)
    want_boxes: dict[tuple[str, str], float] = defaultdict(float)
    hub_villages = {v for v, x in NET.villages.items() if x.hub_id == hub}
    for p in result["packaging"]:
        if p["day"] == 0 and p["direction"] == "down" and p["village_id"] in hub_villages:
            want_parcels[(p["village_id"], p["class_id"])] += p["parcels"]
            if p["option"] in reusable:
                want_boxes[(p["village_id"], p["option"])] += p["parcels"]
    want_up: dict[tuple[str, str], float] = defaultdict(float)
    for g in sc.demand:
        if g.day == 0 and g.direction == "up" and g.village_id in hub_villages:
            want_up[(g.village_id, g.class_id)] += g.parcels
    want_grams = {r["village_id"]: r["grams"] for r in result["recyclables"]
                  if r["day"] == 0 and r["village_id"] in hub_villages}
    for name, got, want in (("parcels", delivered, want_parcels), ("boxes", boxes, want_boxes),
                            ("farm parcels", taken, want_up), ("grams", grams, want_grams)):
        keys = {k for k, v in {**got, **want}.items() if v > 0.05}
        assert {k: round(got.get(k, 0), 1) for k in keys} == pytest.approx(
            {k: round(want.get(k, 0), 1) for k in keys}, abs=0.2), name
    assert sum(want_parcels.values()) > 0, "no parcels on the sheet's day"


def test_daily_dispatch_reaches_each_hub_and_only_that_hub(
        broker: Any, kafka, ready_worker: ReadyWorker, tmp_path: Path) -> None:
    lines = simulate(2, tmp_path / "days.jsonl")
    topics, worker = ready_worker(4)
    produce(broker.bootstrap, topics.hub_events, lines)
    wait_settled([worker], len(lines), quiet_s=2.0)

    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    hub_tokens = {hub: tokens.add("hub", hub)[1] for hub in HUBS}
    schedule = DispatchSchedule(every_s=1.0, horizon_days=2, time_limit_s=40, mip_gap=0.02)
    planner_app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=NET,
                                           tokens=tokens, jobs=jobs, worker_url=worker.url,
                                           dispatch=schedule))
    # signed by the planner, checked by the gateway (services.auth.signing): the headers
    # travel through the broker
    pepper = "k9Tq-dispatch-test-secret"
    planner = PlannerWorker(jobs, kafka, topics, group_id=f"dsp-{topics.prefix}", lease_s=10,
                            signing_pepper=pepper)
    planner_thread = planner.start()
    gateway_config = GatewayConfig(kafka=kafka, topics=topics, network=NET, tokens=tokens,
                                   webhooks=False, dispatches=True, signing_pepper=pepper)
    tomorrow = (datetime.now(NET.timezone) + timedelta(days=1)).date().isoformat()
    try:
        with TestClient(planner_app), TestClient(create_gateway(gateway_config)) as gateway:
            def published() -> dict[str, dict[str, Any]] | NotYet:
                sheets = {}
                for hub, token in hub_tokens.items():
                    resp = gateway.get(f"/v1/hubs/{hub}/dispatch", params={"date": tomorrow},
                                       headers={"Authorization": f"Bearer {token}"})
                    if resp.status_code != 200:
                        return NotYet((hub, resp.status_code, jobs.named("dispatch",
                                                                         job_name_of(tomorrow))))
                    sheets[hub] = resp.json()
                return sheets

            sheets = wait_until(published, 150, "both hubs' run sheets at the gateway",
                                interval=1.0)
            for hub, other in (("H01", "H02"), ("H02", "H01")):
                denied = gateway.get(f"/v1/hubs/{other}/dispatch", params={"date": tomorrow},
                                     headers={"Authorization": f"Bearer {hub_tokens[hub]}"})
                assert denied.status_code == 403, denied.text
            # the schedule kept firing: still one job for the date
            assert len(jobs.named("dispatch", job_name_of(tomorrow))) == 1

        [job_row] = jobs.named("dispatch", job_name_of(tomorrow))
        job = jobs.get(job_row["job_id"], ("scenario", "result", "inputs"))
        assert job is not None and job["status"] == "done"
        assert job["scenario"]["horizon_days"] == 2
        assert sorted(job["inputs"]["hubs"]) == list(HUBS)
        for hub in HUBS:
            sheet = sheets[hub]
            assert sheet["hub_id"] == hub and sheet["date"] == tomorrow
            assert sheet["job_id"] == job["job_id"] and sheet["trips"], hub
            check_against_plan(sheet, job["scenario"], job["result"])

        # a gateway started afresh (no intake) answers from its database
        fresh = GatewayConfig(kafka=kafka, topics=topics, network=NET, tokens=tokens,
                              webhooks=False)
        with TestClient(create_gateway(fresh)) as again:
            resp = again.get("/v1/hubs/H01/dispatch", params={"date": tomorrow},
                             headers={"Authorization": f"Bearer {hub_tokens['H01']}"})
            assert resp.status_code == 200 and resp.json() == sheets["H01"]
    finally:
        planner.stop()
        planner_thread.join(30)
        assert not planner_thread.is_alive(), "the planner worker did not stop"
        jobs.close()
        tokens.close()


def job_name_of(day: str) -> str:
    return job_name(datetime.fromisoformat(day).date())
