"""Tomorrow's dispatch without a broker: run sheets cut from a hand-made plan (parcels,
boxes and times computed by hand), van assignment, the text and A4 HTML renderings, the
gateway's store and route, and `packloop dispatch show`."""

from __future__ import annotations

import copy
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.cli import cli
from services.gateway.dispatch_intake import DispatchIntake
from services.http.kafka_io import Record
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from services.planner.daily import DispatchSchedule
from services.planner.dispatch import assign_vans, run_sheets
from services.reports.run_sheet import render_html, render_text
from streams.kafka import KafkaConnection
from tests.services.helpers import NETWORK, TINY, TOPICS, auth, shipment

TZ = "Asia/Shanghai"
DAY = date(2026, 12, 6)


def scenario() -> dict[str, Any]:
    """tiny.yaml with road distances, a named village (with markup in its name), a
    roomier insulated box and one multi-temperature van at 30 km/h, 10 min per stop."""
    sc = copy.deepcopy(TINY)
    sc["villages"][0]["name"] = "Dongcun <b>east</b>"
    sc["routing"] = {"distance_matrix_km": {
        "H01": {"H01-V001": 6, "H01-V002": 5, "H01-V003": 7},
        "H01-V001": {"H01-V002": 4, "H01-V003": 3}}}
    sc["packaging"]["reusable"][0]["litres_per_parcel"] = 24
    for vt in sc["vehicle_types"]:
        vt.update(speed_kmh=30, service_minutes_per_stop=10, shift_minutes=480)
    return sc


def trip(stops: list[str], minutes: float, km: float, stop_loads: dict[str, Any],
         day: int = 0, kind: str = "milk_run", vehicle: str = "multi_temp_van"
         ) -> dict[str, Any]:
    return {"day": day, "hub_id": "H01", "kind": kind, "vehicle_type": vehicle,
            "purpose": "all", "stops": stops, "km": km, "minutes": minutes,
            "loads": {}, "stop_loads": stop_loads}


def plan() -> dict[str, Any]:
    """Day 0: V001's chilled parcels (8 in EPS at 18 L, 4 in insulated boxes at 24 L:
    240 L) split 160/80 over two trips; V001's 40 ambient cartons (480 L); V002's waste,
    3 empties and 25 cartons; V003's farm shipment (5 parcels, 100 L)."""
    return {
        "status": "optimal", "gap": 0.0,
        "trips": [
            trip(["H01"], 30, 20, {}, kind="trunk", vehicle="trunk_reefer"),
            trip(["H01-V001", "H01-V002"], 50, 15, {
                "H01-V001": {"down_litres.ambient": 480.0, "down_litres.chilled": 160.0},
                "H01-V002": {"down_litres.ambient": 300.0, "empties.insulated_box": 3.0,
                             "recyclables_grams": 30000.0}}),
            trip(["H01-V001", "H01-V003"], 52, 16, {
                "H01-V001": {"down_litres.chilled": 80.0},
                "H01-V003": {"up_litres.ambient": 100.0}}),
            trip(["H01-V002"], 40, 10, {"H01-V002": {"down_litres.ambient": 360.0}}, day=1),
        ],
        "packaging": [
            {"village_id": "H01-V001", "day": 0, "class_id": "ambient", "option": "carton",
             "parcels": 40.0, "direction": "down"},
            {"village_id": "H01-V001", "day": 0, "class_id": "chilled",
             "option": "eps_box_ice", "parcels": 8.0, "direction": "down"},
            {"village_id": "H01-V001", "day": 0, "class_id": "chilled",
             "option": "insulated_box", "parcels": 4.0, "direction": "down"},
            {"village_id": "H01-V002", "day": 0, "class_id": "ambient", "option": "carton",
             "parcels": 25.0, "direction": "down"},
            {"village_id": "H01-V002", "day": 1, "class_id": "ambient", "option": "carton",
             "parcels": 30.0, "direction": "down"},
        ],
    }


def sheet() -> dict[str, Any]:
    [one] = run_sheets(scenario(), plan(), DAY, job_id="plan-abc", timezone=TZ,
                       shift_start=time(8, 0), planned_at="2026-12-05T10:00:00Z")
    return one.model_dump(mode="json")


def test_run_sheet_takes_day_zero_milk_runs_with_parcels_boxes_and_times() -> None:
    """Only day 0's milk runs, longest first on the one van; parcels from litres by the
    village's own parcels per litre (8 + 4 chilled parcels in 240 L: 160 L is 8 parcels,
    8 x 4/12 of them in boxes), farm parcels by the demand's 20 L each; times from the
    road km at 30 km/h and 10 minutes a stop from 08:00."""
    d = sheet()
    assert d["hub_id"] == "H01" and d["date"] == "2026-12-06" and d["job_id"] == "plan-abc"
    assert [[s["village_id"] for s in t["stops"]] for t in d["trips"]] == [
        ["H01-V001", "H01-V003"], ["H01-V001", "H01-V002"]]
    first, second = d["trips"]
    assert (first["van"], first["depart_at"], first["return_at"]) == (
        "multi_temp_van 1", "2026-12-06T08:00+08:00", "2026-12-06T08:52+08:00")
    assert (second["van"], second["depart_at"], second["return_at"]) == (
        "multi_temp_van 1", "2026-12-06T08:52+08:00", "2026-12-06T09:42+08:00")
    v001, v003 = first["stops"]
    assert (v001["arrive_at"], v001["depart_at"]) == ("2026-12-06T08:12+08:00",
                                                      "2026-12-06T08:22+08:00")
    assert (v003["arrive_at"], v003["depart_at"]) == ("2026-12-06T08:28+08:00",
                                                      "2026-12-06T08:38+08:00")
    assert v001["deliver_parcels"] == {"chilled": pytest.approx(4.0)}
    assert v001["boxes_to_drop"] == {"insulated_box": pytest.approx(1.33, abs=0.01)}
    assert v003["collect_parcels"] == {"ambient": pytest.approx(5.0)}
    assert v003["deliver_parcels"] == {} and v003["recyclables_grams"] == 0
    v001b, v002 = second["stops"]
    assert v001b["deliver_parcels"] == {"ambient": pytest.approx(40.0),
                                        "chilled": pytest.approx(8.0)}
    assert v001b["boxes_to_drop"] == {"insulated_box": pytest.approx(2.67, abs=0.01)}
    assert v001b["village_name"] == "Dongcun <b>east</b>"
    assert (v002["arrive_at"], v002["depart_at"]) == ("2026-12-06T09:22+08:00",
                                                      "2026-12-06T09:32+08:00")
    assert v002["deliver_parcels"] == {"ambient": pytest.approx(25.0)}
    assert v002["empties_to_collect"] == {"insulated_box": 3.0}
    assert v002["recyclables_grams"] == 30000.0
    assert d["containers_at_hub"] == {"insulated_box": 30.0}


def test_a_stop_with_nothing_to_do_is_left_off_its_trip() -> None:
    """A tour of the plan passes V002, whose loads rode on another trip: the run sheet sent
    the van there with nothing to deliver, drop or collect. The stop is left off, the trip
    timed over the stops kept (6 + 3 + 7 km at 30 km/h and two stops: 52 min), and a trip
    with no stop left is no trip."""
    p = plan()
    p["trips"][2] = trip(["H01-V001", "H01-V002", "H01-V003"], 80, 22, {
        "H01-V001": {"down_litres.chilled": 80.0}, "H01-V002": {"down_litres.ambient": 0.0},
        "H01-V003": {"up_litres.ambient": 100.0}})
    p["trips"].append(trip(["H01-V003"], 40, 14, {"H01-V003": {}}))
    [one] = run_sheets(scenario(), p, DAY, job_id="plan-abc", timezone=TZ,
                       shift_start=time(8, 0))
    d = one.model_dump(mode="json")
    assert [[s["village_id"] for s in t["stops"]] for t in d["trips"]] == [
        ["H01-V001", "H01-V003"], ["H01-V001", "H01-V002"]]
    first = d["trips"][0]
    assert first["km"] == pytest.approx(16.0) and first["minutes"] == pytest.approx(52.0)
    assert first["return_at"] == "2026-12-06T08:52+08:00"


def test_a_hub_without_milk_runs_gets_an_empty_sheet() -> None:
    """Nothing to do that day is an answer too: a sheet with no trips."""
    quiet = plan()
    quiet["trips"] = [t for t in quiet["trips"] if t["day"] != 0]
    [one] = run_sheets(scenario(), quiet, DAY, job_id="j", timezone=TZ)
    assert one.trips == []
    assert "no milk runs" in render_text(one.model_dump(mode="json"))


def test_every_hub_of_the_network_gets_a_sheet_an_idle_one_an_empty_one() -> None:
    """The plan holds only the hubs with activity; a hub it leaves out got no sheet, and
    its 404 read the same as a broken planner. Each hub given gets one: an idle hub's has
    no trips, the job's fields, its containers, and says there is nothing to do."""
    hubs = {"H01": "Township hub 1", "H02": "Yunfeng <quiet>"}
    sheets = run_sheets(scenario(), plan(), DAY, job_id="plan-abc", timezone=TZ,
                        planned_at="2026-12-05T10:00:00Z", hubs=hubs,
                        containers={"H02": {"reusable_crate": 12.0, "insulated_box": 4.0}})
    assert [s.hub_id for s in sheets] == ["H01", "H02"]
    busy, quiet = (s.model_dump(mode="json") for s in sheets)
    assert busy["trips"] and quiet["trips"] == [] and quiet["warnings"] == []
    assert quiet["hub_name"] == "Yunfeng <quiet>"
    for key in ("version", "date", "timezone", "job_id", "planned_at", "horizon_days",
                "plan_status", "gap"):
        assert quiet[key] == busy[key], key
    assert quiet["containers_at_hub"] == {"insulated_box": 4.0, "reusable_crate": 12.0}
    text = render_text(quiet)
    assert "nothing to do" in text and "0 trip(s)" in text
    assert "containers at hub: insulated_box 4, reusable_crate 12" in text
    html = render_html(quiet)
    assert html.index("本日无任务") < html.index("Nothing to do")
    assert "Yunfeng &lt;quiet&gt;" in html and "周转筐 reusable_crate 12" in html


def test_a_hub_left_without_a_plan_is_told_so_not_that_it_has_nothing_to_do() -> None:
    """One hub whose data admit no plan made the whole county's dispatch fail: no hub got a
    sheet. The planner now plans the others (`leave_out_infeasible`) and names it; its
    sheet has no trips, says there is no plan and why, and not "nothing to do"."""
    hubs = {"H01": "Township hub 1", "H02": "Yunfeng"}
    result = {**plan(), "stats": {"left_out": {
        "H02": "no vehicle at H02 has a 'chilled' compartment for farm shipments"}}}
    sheets = run_sheets(scenario(), result, DAY, job_id="plan-abc", timezone=TZ, hubs=hubs,
                        containers={"H02": {"insulated_box": 4.0}})
    busy, none = (s.model_dump(mode="json") for s in sheets)
    assert busy["trips"] and busy["no_plan"] is None and busy["plan_status"] == "optimal"
    assert none["trips"] == [] and none["plan_status"] == "infeasible"
    assert "no vehicle at H02 has a 'chilled' compartment" in none["no_plan"]
    assert none["containers_at_hub"] == {"insulated_box": 4.0}
    assert len(none["warnings"]) == 1 and none["warnings"][0].startswith(
        "no plan for this hub on this date")
    text = render_text(none)
    assert "WARNING: no plan for this hub" in text and "nothing to do" not in text
    html = render_html(none)
    assert "本枢纽本日没有可行的配送计划" in html and "Nothing to do" not in html


def test_the_sheet_shows_the_hubs_containers_and_warns_when_drops_exceed_them() -> None:
    """The hub holds 30 insulated boxes and the stops drop 4: shown, no warning. Holding 3,
    the sheet warns in the JSON, the text and (Chinese first) the HTML."""
    d = sheet()
    assert d["warnings"] == []
    assert "containers at hub: insulated_box 30" in render_text(d)
    assert "WARNING" not in render_text(d)
    html = render_html(d)
    assert html.index("枢纽现有周转箱") < html.index("Containers at hub")
    assert "保温箱 insulated_box 30" in html and "警告" not in html
    short = scenario()
    short["container_pools"][0]["count"] = 3
    [one] = run_sheets(short, plan(), DAY, job_id="plan-abc", timezone=TZ)
    d = one.model_dump(mode="json")
    [warning] = d["warnings"]
    assert "insulated_box" in warning and "drop 4" in warning and "holds 3" in warning
    text = render_text(d)
    assert f"WARNING: {warning}" in text
    assert text.index("WARNING") < text.index("multi_temp_van 1")
    html = render_html(d)
    assert html.index("警告") < html.index("WARNING") and "保温箱 insulated_box" in html
    assert "放下 4" in html and "只有 3" in html
    # a container type the hub holds none of
    none = scenario()
    none["container_pools"] = []
    [one] = run_sheets(none, plan(), DAY, job_id="plan-abc", timezone=TZ)
    assert one.containers_at_hub == {} and "holds 0" in one.warnings[0]
    assert "containers at hub: none" in render_text(one.model_dump(mode="json"))


def test_vans_take_trips_first_fit_decreasing_within_the_shift() -> None:
    """70, 60 and 50 minutes on two vans with 120-minute shifts: 70 and 50 on van 1
    (back to back), 60 on van 2; a trip that fits nowhere goes to the van free first."""
    trips = [{"vehicle_type": "v", "minutes": m, "stops": [str(m)]} for m in (50, 70, 60)]
    placed = [(t["minutes"], van, start) for t, van, start in
              assign_vans(trips, {"v": 2}, {"v": 120.0}, {"v": 3})]
    assert placed == [(70, 1, 0.0), (50, 1, 70.0), (60, 2, 0.0)]
    extra = trips + [{"vehicle_type": "v", "minutes": 40, "stops": ["40"]}]
    placed = [(t["minutes"], van, start) for t, van, start in
              assign_vans(extra, {"v": 2}, {"v": 120.0}, {"v": 3})]
    assert (40, 2, 60.0) in placed


def test_html_is_an_a4_sheet_per_van_chinese_first() -> None:
    """@page A4, one section (page break) per van, Chinese headings before the English,
    the village names escaped, every stop on it."""
    d = sheet()
    d["trips"][1]["van"] = "ambient_van 1"  # two vans
    html = render_html(d)
    assert "@page { size: A4" in html
    assert html.count('<section class="van">') == 2
    assert "page-break-after: always" in html
    assert html.index("配送单") < html.index("Run sheet")
    assert html.index("配送包裹") < html.index("Deliver parcels")
    assert "多温区冷藏车 1号车" in html and "常温厢式车 1号车" in html
    assert "<b>east</b>" not in html and "&lt;b&gt;east&lt;/b&gt;" in html
    for t in d["trips"]:
        for s in t["stops"]:
            assert s["village_id"] in html
    assert "保温箱 insulated_box 3" in html  # empties at V002
    assert "30.0 kg" in html


def test_text_lists_each_van_trip_and_stop() -> None:
    text = render_text(sheet())
    assert "multi_temp_van 1" in text
    assert "trip 1: 08:00-08:52" in text and "trip 2: 08:52-09:42" in text
    assert "1. 09:04-09:14 H01-V001" in text
    assert "empties: insulated_box 3" in text and "recyclables: 30.0 kg" in text
    # a few grams read "0.0 kg" on a stop that had nothing else
    d = sheet()
    d["trips"][1]["stops"][1]["recyclables_grams"] = 15.0
    assert "recyclables: 15 g" in render_text(d) and "15 g" in render_html(d)


def test_schedule_fires_daily_at_the_local_time_or_every_n_seconds() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(TZ)
    daily = DispatchSchedule(at=time(18, 0))
    assert daily.next_run(datetime(2026, 12, 5, 17, 0, tzinfo=tz)) == datetime(
        2026, 12, 5, 18, 0, tzinfo=tz)
    assert daily.next_run(datetime(2026, 12, 5, 18, 0, tzinfo=tz)) == datetime(
        2026, 12, 6, 18, 0, tzinfo=tz)
    fast = DispatchSchedule(every_s=5)
    assert fast.next_run(datetime(2026, 12, 5, 18, 0, tzinfo=tz)) == datetime(
        2026, 12, 5, 18, 0, 5, tzinfo=tz)
    assert not DispatchSchedule().enabled


# -- the gateway --------------------------------------------------------------------------


#: the key the planner gives H01's dispatch records
H01 = b"H01"


def intake(client: TestClient) -> DispatchIntake:
    gw = client.app.state.gateway  # type: ignore[attr-defined]
    return DispatchIntake(gw.config, gw.dispatches, metrics=gw.metrics)


def test_gateway_serves_a_dispatch_to_its_hub_only(make_client, token_store) -> None:
    """200 to the hub's own token, 403 to another hub's, 404 for a date without one, 422
    for a malformed date."""
    client = make_client()
    assert intake(client).handle(orjson.dumps(sheet()), H01) == "stored"
    _, h01 = token_store.add("hub", "H01")
    _, h02 = token_store.add("hub", "H02")
    ok = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-06"}, headers=auth(h01))
    assert ok.status_code == 200, ok.text
    assert ok.json() == sheet()
    other = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-06"},
                       headers=auth(h02))
    assert other.status_code == 403
    missing = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-07"},
                         headers=auth(h01))
    assert missing.status_code == 404
    bad = client.get("/v1/hubs/H01/dispatch", params={"date": "tomorrow"}, headers=auth(h01))
    assert bad.status_code == 422
    # a timestamp is no date (it was taken as 2026-12-06)
    stamp = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-06T00:00:00"},
                       headers=auth(h01))
    assert stamp.status_code == 422 and "YYYY-MM-DD" in stamp.text


def test_an_unknown_hub_id_is_a_404_that_says_so_not_another_hubs(make_client, token_store,
                                                                  monkeypatch) -> None:
    """Hub ids are case-sensitive: ``h01`` is no hub, so its own H01 token is told the hub is
    unknown (and which hub it differs from only in case), not that it is another hub's; a
    known hub that is not the token's stays a 403, and the sheet is never answered."""
    client = make_client()
    intake(client).handle(orjson.dumps(sheet()), H01)
    _, h01 = token_store.add("hub", "H01")
    lower = client.get("/v1/hubs/h01/dispatch", params={"date": "2026-12-06"},
                       headers=auth(h01))
    assert lower.status_code == 404, lower.text
    assert lower.json()["error"] == "not_found"
    assert lower.json()["message"] == ("unknown hub 'h01' (hub ids are case-sensitive: did "
                                       "you mean 'H01'?)")
    nowhere = client.get("/v1/hubs/H99/dispatch", params={"date": "2026-12-06"},
                         headers=auth(h01))
    assert nowhere.status_code == 404 and nowhere.json()["message"] == "unknown hub 'H99'"
    _, h02 = token_store.add("hub", "H02")
    for hub in ("H01", "h01"):
        other = client.get(f"/v1/hubs/{hub}/dispatch", params={"date": "2026-12-06"},
                           headers=auth(h02))
        assert other.status_code == (403 if hub == "H01" else 404), (hub, other.text)
        assert "trips" not in other.json()
    env = {"PACKLOOP_HUB_TOKEN": h01, "PACKLOOP_GATEWAY_URL": "http://gateway.test"}
    shown = run_show(monkeypatch, client, "h01", "--date", "2026-12-06", env=env)
    assert shown.exit_code == 1 and "HTTP 404: unknown hub 'h01'" in shown.output
    assert "did you mean 'H01'?" in shown.output and "not a token of hub" not in shown.output


def test_a_different_dispatch_for_a_published_date_is_rejected(make_client, token_store
                                                                ) -> None:
    """The same dispatch again (another job saying the same) is a no-op; a different one
    for the same hub and date is rejected and the first stays; junk is ignored."""
    client = make_client()
    take = intake(client)
    first = sheet()
    assert take.handle(orjson.dumps(first), H01) == "stored"
    again = {**first, "job_id": "plan-other", "planned_at": "2026-12-05T11:00:00Z"}
    assert take.handle(orjson.dumps(again), H01) == "same"
    changed = copy.deepcopy(first)
    changed["trips"][0]["stops"][0]["deliver_parcels"]["chilled"] = 5.0
    assert take.handle(orjson.dumps(changed), H01) == "rejected"
    assert take.handle(b"{not json", H01) == "invalid"
    assert take.handle(orjson.dumps({**first, "hub_id": "H99"}), b"H99") == "invalid"
    _, h01 = token_store.add("hub", "H01")
    got = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-06"}, headers=auth(h01))
    assert got.json() == first
    # each outcome counted, the rejection under its hub (what DispatchRejected alerts on)
    metrics = client.get("/metrics").text
    for hub, outcome, n in (("H01", "stored", 1), ("H01", "same", 1), ("H01", "rejected", 1),
                            ("", "invalid", 2)):
        assert (f'packloop_gateway_dispatches_total{{hub="{hub}",outcome="{outcome}"}} '
                f"{float(n)}") in metrics, (hub, outcome)


@pytest.mark.parametrize(("change", "key"), [
    ({}, b"H02"), ({}, None),
    ({"date": "2026-12-6"}, H01), ({"date": "2026-02-30"}, H01), ({"date": "20261206"}, H01),
    ({"date": "2026-12-06T00:00:00"}, H01),
], ids=["other-hubs-key", "no-key", "short", "no-such-day", "basic", "datetime"])
def test_a_record_not_keyed_by_its_hub_or_not_dated_is_refused(make_client, token_store, caplog,
                                                                change, key) -> None:
    """Anyone who may write to the topic could put a sheet for H01 in another hub's
    partition, or under a date no hub asks for (a 19-character one stalls the intake on
    PostgreSQL's 10-character column): refused and logged, and the real sheet for the
    date is then stored as the first."""
    client = make_client()
    take = intake(client)
    with caplog.at_level(logging.WARNING, logger="packloop.gateway.dispatch"):
        assert take.handle(orjson.dumps({**sheet(), **change}), key) == "invalid"
    assert "dispatch for H01 ignored" in caplog.text
    assert take.handle(orjson.dumps(sheet()), H01) == "stored"
    _, h01 = token_store.add("hub", "H01")
    got = client.get("/v1/hubs/H01/dispatch", params={"date": "2026-12-06"}, headers=auth(h01))
    assert got.json() == sheet()


# -- the command line ---------------------------------------------------------------------


def run_show(monkeypatch, client: TestClient | None, *args: str,
             env: dict[str, str] | None = None) -> Any:
    """`packloop dispatch show` with its HTTP client answering from ``client``'s app."""
    import services.http.client as http_client

    if client is not None:
        def fake(_settings: Any, **kwargs: Any) -> httpx.Client:
            kwargs.pop("timeout", None)
            return TestClient(client.app, **kwargs)

        monkeypatch.setattr(http_client, "httpx_client", fake)
    return CliRunner().invoke(cli, ["dispatch", "show", *args], env=env or {},
                              catch_exceptions=False)


@pytest.mark.slow
def test_cli_shows_the_sheet_and_says_why_not(make_client, token_store, monkeypatch) -> None:
    """text, json and html for the hub's own token; one clear line for 403 and 404; usage
    errors exit 2; a missing token is named."""
    client = make_client()
    intake(client).handle(orjson.dumps(sheet()), H01)
    _, h01 = token_store.add("hub", "H01")
    _, h02 = token_store.add("hub", "H02")
    env = {"PACKLOOP_HUB_TOKEN": h01, "PACKLOOP_GATEWAY_URL": "http://gateway.test"}
    text = run_show(monkeypatch, client, "H01", "--date", "2026-12-06", env=env)
    assert text.exit_code == 0, text.output
    assert "trip 1: 08:00-08:52" in text.output
    as_json = run_show(monkeypatch, client, "H01", "--date", "2026-12-06", "--format", "json",
                       env=env)
    assert orjson.loads(as_json.output) == sheet()
    html = run_show(monkeypatch, client, "H01", "--date", "2026-12-06", "--format", "html",
                    env=env)
    assert html.exit_code == 0 and "@page { size: A4" in html.output
    forbidden = run_show(monkeypatch, client, "H01", "--date", "2026-12-06",
                         env={**env, "PACKLOOP_HUB_TOKEN": h02})
    assert forbidden.exit_code == 1 and "HTTP 403" in forbidden.output
    assert "not a token of hub H01" in forbidden.output
    none = run_show(monkeypatch, client, "H01", "--date", "2026-12-09", env=env)
    assert none.exit_code == 1 and "HTTP 404" in none.output and "2026-12-09" in none.output
    for loose in ("06/12/2026", "20261206", "2026-W49-7"):  # the last two: Python's, not ours
        usage = run_show(monkeypatch, None, "H01", "--date", loose, env=env)
        assert usage.exit_code == 2 and "YYYY-MM-DD" in usage.output, loose
    usage = run_show(monkeypatch, None, "H01", "--date", "2026-12-06", "--format", "pdf",
                     env=env)
    assert usage.exit_code == 2
    no_token = run_show(monkeypatch, None, "H01", "--date", "2026-12-06",
                        env={"PACKLOOP_GATEWAY_URL": "http://gateway.test"})
    assert no_token.exit_code == 1 and "PACKLOOP_HUB_TOKEN" in no_token.output
    # HUB is one path segment: "H01/../H02" asked for H02's sheet with H01's token
    sneaky = run_show(monkeypatch, client, "H01/../H02", "--date", "2026-12-06", env=env)
    assert sneaky.exit_code == 1 and "/v1/hubs/H01%2F..%2FH02/dispatch" in sneaky.output
    assert "trip 1" not in sneaky.output
    empty = run_show(monkeypatch, None, "", "--date", "2026-12-06", env=env)
    assert empty.exit_code == 2 and "HUB" in empty.output
    # the gateway's "no dispatch" names the date; a server without the route gets a hint
    assert "is PACKLOOP_GATEWAY_URL" not in none.output
    from services.planner import JobStore, PlannerConfig
    from services.planner import create_app as planner_app
    from streams.kafka import KafkaConnection
    from streams.topics import Topics

    other = TestClient(planner_app(PlannerConfig(
        kafka=KafkaConnection(), topics=Topics("t-"), network=client.app.state.gateway.config
        .network, tokens=token_store, jobs=JobStore("sqlite://"))))
    wrong = run_show(monkeypatch, other, "H01", "--date", "2026-12-06", env=env)
    assert wrong.exit_code == 1 and "is PACKLOOP_GATEWAY_URL" in wrong.output, wrong.output


# -- the planner: POST /v1/dispatch, and the worker that publishes ------------------------


def stream_worker(request: httpx.Request) -> httpx.Response:
    """A stream worker whose only news is 20 kg of waste at H01-V007."""
    if request.url.path == "/status":
        return httpx.Response(200, json={"events": {"applied": 1}, "hubs": {}, "villages": {
            "H01-V007": {"outstanding_grams": {"cardboard": 20000}}}})
    return httpx.Response(200, json={"pickups": []})


@pytest.mark.slow
def test_planning_a_date_queues_one_job_and_its_worker_publishes_a_sheet_per_hub(
        fake_kafka, tmp_path) -> None:
    """POST /v1/dispatch queues the date's plan (202), asking again answers the same job
    (200); the worker that stores the plan publishes one run sheet per hub, keyed by hub,
    with plan-results; a cancelled date is planned afresh."""
    fake_kafka.produce([Record(TOPICS.hub_events, b"H01-V007", orjson.dumps(shipment()))
                        for _ in range(3)])
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    schedule = DispatchSchedule(horizon_days=1, time_limit_s=30)
    app = create_app(PlannerConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=tokens, jobs=jobs,
        kafka_io=fake_kafka, worker_transport=httpx.MockTransport(stream_worker),
        dispatch=schedule))
    worker = PlannerWorker(jobs, KafkaConnection(), TOPICS, kafka_io=fake_kafka)
    # dates from today on, in the network's time zone (a past date is refused)
    today = datetime.now(NETWORK.timezone).date()
    first_day, next_day = today.isoformat(), (today + timedelta(days=1)).isoformat()
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            first = client.post("/v1/dispatch", json={"date": first_day})
            assert first.status_code == 202, first.text
            job_id = first.json()["job_id"]
            assert first.json()["source"] == "dispatch"
            again = client.post("/v1/dispatch", json={"date": first_day})
            assert again.status_code == 200 and again.json()["job_id"] == job_id
            assert client.post("/v1/dispatch", json={"date": "06.12.2026"}).status_code == 422
            # a number was read as a timestamp: "Datetimes provided to dates should have
            # zero time"
            number = client.post("/v1/dispatch", json={"date": 20261208})
            assert number.status_code == 422 and "must be a date YYYY-MM-DD" in number.text
            [request] = fake_kafka.records[TOPICS.plan_requests]
            worker.process(orjson.loads(request.value)["job_id"])
            assert jobs.get(job_id)["status"] == "done"
            sheets = fake_kafka.records[TOPICS.dispatch]
            # every hub of the network: those the plan leaves out told they are idle
            assert [r.key for r in sheets] == [h.encode() for h in sorted(NETWORK.hubs)]
            by_hub = {r.key: orjson.loads(r.value) for r in sheets}
            sheet = by_hub[b"H01"]
            idle = by_hub[b"H02"]
            assert (idle["trips"], idle["date"], idle["job_id"]) == ([], first_day, job_id)
            assert idle["hub_name"] == NETWORK.hubs["H02"].name
            assert idle["containers_at_hub"]  # the network's stock, from the job's inputs
            assert (sheet["hub_id"], sheet["date"], sheet["job_id"]) == (
                "H01", first_day, job_id)
            stops = {s["village_id"] for t in sheet["trips"] for s in t["stops"]}
            assert "H01-V007" in stops
            assert len(fake_kafka.records[TOPICS.plan_results]) == 1

            assert client.delete(f"/v1/plans/{job_id}").status_code == 409  # done: fixed
            other = client.post("/v1/dispatch", json={"date": next_day})
            assert other.status_code == 202
            assert client.delete(f"/v1/plans/{other.json()['job_id']}").status_code == 200
            retry = client.post("/v1/dispatch", json={"date": next_day})
            assert retry.status_code == 202
            assert retry.json()["job_id"] != other.json()["job_id"]
    finally:
        jobs.close()
        tokens.close()


def test_with_a_pepper_only_the_planners_signed_records_are_stored(make_client) -> None:
    """Whoever could write the dispatch topic published the first run sheet of a (hub,
    date), which the gateway then serves and keeps. With a server secret the gateway takes
    only records signed with it for dispatch: unsigned, signed with another secret, signed
    for another purpose, signed over other bytes or carrying two signatures, a record is
    refused and nothing is stored; without a secret unsigned records are taken."""
    import dataclasses

    from services.auth.signing import HEADER, signature, signed_headers

    client = make_client()
    gw = client.app.state.gateway  # type: ignore[attr-defined]
    secret = "k9Tq-dispatch-unit-secret"
    take = DispatchIntake(dataclasses.replace(gw.config, signing_pepper=secret),
                          gw.dispatches, metrics=gw.metrics)
    value = orjson.dumps(sheet())
    good = signed_headers(secret, "dispatch", value)
    for headers in ([], [(HEADER, signature("another", "dispatch", value))],
                    [(HEADER, signature(secret, "events", value))],
                    [(HEADER, signature(secret, "dispatch", value + b" "))],
                    [*good, *good], [(HEADER, None)]):
        assert take.handle(value, H01, headers) == "invalid", headers
    assert gw.dispatches.get("H01", "2026-12-06") is None
    # counted under the hub it names, so that hub's lost sheet shows
    refused = gw.metrics.dispatches.labels("H01", "invalid")._value.get()
    assert refused == 6
    assert take.handle(value, H01, good) == "stored"
    assert signed_headers(None, "dispatch", value) == ()


def test_times_past_midnight_are_marked_with_the_day() -> None:
    """A shift from 20:00 printed a trip 22:10-00:19 and a stop at 23:59 with no day mark,
    as if the van came back before it left."""
    from services.reports.run_sheet import render_html, render_text

    d = sheet()
    trip = d["trips"][0]
    trip["depart_at"], trip["return_at"] = "2026-12-06T22:10+08:00", "2026-12-07T00:19+08:00"
    text, html = render_text(d), render_html(d)
    assert "22:10-00:19+1d" in text
    assert "22:10–00:19+1d" in html
    assert "22:10+" not in text  # the sheet's own day is not marked


def test_vans_in_number_order_and_each_printed_page_says_whose_it_is() -> None:
    """"van 10" came before "van 2" (sorted as text), and a trip's table running onto a
    second A4 page repeated its column heads but not the hub, date or van (an audit)."""
    from services.reports.run_sheet import render_html, vans

    d = sheet()
    [first] = d["trips"][:1]
    d["trips"] = [{**first, "van": f"ambient_van {n}", "trip_no": 1} for n in (10, 2, 1)]
    assert list(vans(d)) == ["ambient_van 1", "ambient_van 2", "ambient_van 10"]
    html = render_html(d)
    heads = html.split("<thead>")[1:]
    assert len(heads) == 3
    for head in heads:
        head = head.split("</thead>")[0]
        assert d["hub_id"] in head and d["date"] in head and "号车" in head
    assert "thead { display: table-header-group; }" in html


def test_a_sheet_from_a_plan_far_from_its_bound_says_so() -> None:
    """A dispatch plan that stopped 63 % from its bound printed like a proven one: only the
    JSON's `gap` told (an outside audit). At 5 % or more the sheet warns, in the JSON, the
    text and the HTML; a sheet with no trips has nothing to load and no such warning."""
    far = plan()
    far.update(status="time_limit", gap=0.63)
    [one] = run_sheets(scenario(), far, DAY, job_id="j", timezone=TZ)
    d = one.model_dump(mode="json")
    [warning] = d["warnings"]
    assert "63% from its bound" in warning and "time_limit" in warning
    assert f"WARNING: {warning}" in render_text(d)
    assert "距下界 63%" in render_html(d)
    near = plan()
    near.update(status="time_limit", gap=0.049)
    [one] = run_sheets(scenario(), near, DAY, job_id="j", timezone=TZ)
    assert one.warnings == []
    idle = dict(far, trips=[t for t in far["trips"] if t["day"] != 0])
    [one] = run_sheets(scenario(), idle, DAY, job_id="j", timezone=TZ)
    assert one.warnings == []


def test_a_sheet_stored_before_no_plan_existed_matches_itself_delivered_again() -> None:
    """Every sheet now carries "no_plan": null; one stored before the field existed and
    delivered again after the upgrade hashed differently, and came back "rejected" (a
    review). A no_plan that says something is content, and counts."""
    from services.gateway.dispatch_store import digest

    new = sheet()
    old = {k: v for k, v in new.items() if k != "no_plan"}
    assert new["no_plan"] is None
    assert digest(new) == digest(old)
    assert digest({**new, "no_plan": "no van with a chilled compartment"}) != digest(old)


def test_a_hub_left_out_of_the_newest_dispatch_is_exported_until_one_plans_it(
        tmp_path) -> None:
    """Before, a hub the dispatch left out had its own "no plan" sheet and a log line, and
    no metric or alert told the county. The planner exports packloop_dispatch_no_plan for
    the successful dispatch job of the latest date only: another kind of job, or an earlier
    date's dispatch, finishing later changes nothing; the next date's dispatch that plans
    the hub clears it."""
    from prometheus_client import CollectorRegistry, generate_latest

    from services.planner.app import PlanCollector
    from services.planner.daily import job_name
    from services.planner.store import DISPATCH_SOURCE as SOURCE
    from services.planner.store import DONE, FAILED, JobStore
    from services.planner.worker import summarise

    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    registry = CollectorRegistry()
    registry.register(PlanCollector(jobs))

    def finish(source: str, name: str, left_out: dict[str, str]) -> None:
        job_id = jobs.create({}, {}, source, "ops", name)
        assert jobs.claim(job_id, "w1", 60)
        result = {**plan(), "stats": {"left_out": left_out} if left_out else {}}
        assert jobs.finish(job_id, "w1", DONE, result=result, summary=summarise(result))

    def exported() -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines()
                if line.startswith("packloop_dispatch_no_plan{")]

    assert exported() == []
    finish(SOURCE, job_name(date(2026, 12, 8)), {"H02": "no van with a chilled compartment"})
    assert exported() == ['packloop_dispatch_no_plan{date="2026-12-08",hub="H02"} 1.0']
    finish("api", "a what-if", {})
    assert exported() == ['packloop_dispatch_no_plan{date="2026-12-08",hub="H02"} 1.0']
    finish(SOURCE, job_name(date(2026, 12, 9)), {})
    assert exported() == []
    # a catch-up of an earlier date finishing later is not the newest dispatch
    finish(SOURCE, job_name(date(2026, 12, 7)), {"H02": "no van with a chilled compartment"})
    assert exported() == []
    # a dispatch that failed as a whole (every hub infeasible, or no plan in time) leaves
    # every hub of its scenario without a plan; before, it exported nothing, and the date
    # before's hubs stood for it
    scenario = {"hubs": [{"hub_id": "H01"}, {"hub_id": "H03"}]}
    failed = jobs.create(scenario, {}, SOURCE, "ops", job_name(date(2026, 12, 10)))
    assert jobs.claim(failed, "w1", 60)
    assert jobs.finish(failed, "w1", FAILED, error="infeasible: every hub")
    assert exported() == ['packloop_dispatch_no_plan{date="2026-12-10",hub="H01"} 1.0',
                          'packloop_dispatch_no_plan{date="2026-12-10",hub="H03"} 1.0']
    # planned again for that date and done: the new job is the one that counts
    finish(SOURCE, job_name(date(2026, 12, 10)), {})
    assert exported() == []
    jobs.close()
