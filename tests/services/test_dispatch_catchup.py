"""The daily dispatch catches up: a planner started after PACKLOOP_DISPATCH_AT, or a try
that failed (submit raised, the job ended failed), plans tomorrow at once and then
re-checks every CATCH_UP_EVERY_S until tomorrow's job is done or the local date changes.
The clock is injected; no test waits for the real one beyond a condition."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import orjson
import pytest

from services.auth.tokens import TokenStore
from services.http.kafka_io import KafkaUnavailable, Record
from services.planner import JobStore, PlannerConfig
from services.planner import daily as daily_module
from services.planner.daily import DailyDispatch, DispatchSchedule, job_name
from services.planner.store import DISPATCH_SOURCE as SOURCE
from services.planner.store import DONE, FAILED
from streams.kafka import KafkaConnection
from tests.helpers import wait_until
from tests.services.helpers import NETWORK, TINY, TOPICS, shipment

TZ = NETWORK.timezone
TODAY = date(2026, 12, 5)
TOMORROW = TODAY + timedelta(days=1)


def local(hour: int, minute: int = 0, day: date = TODAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def stream_worker(request: httpx.Request) -> httpx.Response:
    """A stream worker whose only news is 20 kg of waste at H01-V007."""
    if request.url.path == "/status":
        return httpx.Response(200, json={"events": {"applied": 1}, "hubs": {}, "villages": {
            "H01-V007": {"outstanding_grams": {"cardboard": 20000}}}})
    return httpx.Response(200, json={"pickups": []})


@pytest.fixture
def config(fake_kafka, tmp_path) -> Iterator[PlannerConfig]:
    fake_kafka.produce([Record(TOPICS.hub_events, b"H01-V007", orjson.dumps(shipment()))
                        for _ in range(3)])
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    yield PlannerConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=tokens, jobs=jobs,
        kafka_io=fake_kafka, worker_transport=httpx.MockTransport(stream_worker),
        dispatch=DispatchSchedule(at=time(18, 0), horizon_days=1, time_limit_s=30))
    jobs.close()
    tokens.close()


def finish(jobs: JobStore, job_id: str, status: str) -> None:
    assert jobs.claim(job_id, "test-worker", 30)
    assert jobs.finish(job_id, "test-worker", status, error="test")


def held(jobs: JobStore, day: date) -> str | None:
    return jobs.holder(SOURCE, job_name(day))


def test_a_planner_started_after_dispatch_at_plans_tomorrow_at_once_and_again_after_a_failure(
        config, fake_kafka, monkeypatch, caplog) -> None:
    """Started at 18:05 (DISPATCH_AT 18:00): tomorrow is planned at once from the live state,
    with the containers the hub holds (no purchases), and the job carries the network's
    hubs; when that job fails, the next re-check plans tomorrow again."""
    monkeypatch.setattr(daily_module, "CATCH_UP_EVERY_S", 0.05)
    jobs = config.jobs
    timer = DailyDispatch(config, fake_kafka, config.dispatch, now=lambda: local(18, 5))
    with caplog.at_level(logging.INFO, logger="packloop.planner.dispatch"):
        timer.start()
        try:
            first = wait_until(lambda: held(jobs, TOMORROW), 10, "tomorrow's dispatch job")
            assert f"dispatch for {TOMORROW}: catching up (planner started after 18:00)" \
                in caplog.text
            job = jobs.get(first, columns=("inputs", "scenario"))
            assert job is not None and job["status"] == "queued"
            assert job["inputs"]["from_state"]["containers_on_hand"] is True
            assert job["scenario"]["containers_on_hand"] is True
            spec = job["options"]["dispatch"]
            assert spec["date"] == TOMORROW.isoformat()
            assert sorted(spec["hubs"]) == sorted(NETWORK.hubs)
            assert spec["hubs"]["H02"] == NETWORK.hubs["H02"].name

            finish(jobs, first, FAILED)
            second = wait_until(lambda: (h := held(jobs, TOMORROW)) != first and h, 10,
                                "tomorrow planned again after its job failed")
            assert second != first
            assert f"dispatch for {TOMORROW}: catching up (the last try failed: job " \
                f"{first} failed)" in caplog.text
        finally:
            timer.stop()
    assert len(jobs.named(SOURCE, job_name(TOMORROW))) == 2
    assert not jobs.named(SOURCE, job_name(TODAY))


class FakeSubmit:
    """`daily.submit` queueing a tiny job, or raising while ``fail`` is set."""

    def __init__(self) -> None:
        self.days: list[date] = []
        self.fail = False

    def __call__(self, config: PlannerConfig, _kafka_io: Any, _schedule: Any, day: date,
                 submitted_by: str = "", now: Any = None) -> tuple[str, bool]:
        self.days.append(day)
        if self.fail:
            raise KafkaUnavailable("the broker is down")
        return config.jobs.create_once(TINY, {}, SOURCE, submitted_by, job_name(day))


def test_the_timer_rechecks_tomorrow_until_its_job_is_done_or_the_date_changes(
        config, fake_kafka, monkeypatch, caplog) -> None:
    """17:00: wait for 18:00. 18:00: the firing (submit raises). 18:05: catch up, queued.
    18:10: queued, only re-checked. 18:15: the job failed, planned again. 18:25: done, so
    the wait is to tomorrow's 18:00; a restart at 23:00 finds it done and plans nothing;
    after midnight the timer waits for 18:00."""
    monkeypatch.setattr(daily_module, "CATCH_UP_EVERY_S", 300.0)
    fake = FakeSubmit()
    monkeypatch.setattr(daily_module, "submit", fake)
    jobs = config.jobs
    timer = DailyDispatch(config, fake_kafka, config.dispatch)
    with caplog.at_level(logging.INFO, logger="packloop.planner.dispatch"):
        assert timer.tick(local(17, 0)) == pytest.approx(3600)
        assert fake.days == []
        fake.fail = True
        assert timer.tick(local(18, 0)) == pytest.approx(300)  # the firing itself
        assert fake.days == [TOMORROW] and "catching up" not in caplog.text
        assert "not planned: KafkaUnavailable: the broker is down" in caplog.text
        fake.fail = False
        assert timer.tick(local(18, 5)) == pytest.approx(300)
        assert f"dispatch for {TOMORROW}: catching up (the last try failed)" in caplog.text
        first = held(jobs, TOMORROW)
        assert first is not None and len(fake.days) == 2
        assert timer.tick(local(18, 10)) == pytest.approx(300)  # queued: only looked at
        assert len(fake.days) == 2

        finish(jobs, first, FAILED)
        assert timer.tick(local(18, 15)) == pytest.approx(300)
        second = held(jobs, TOMORROW)
        assert second not in (None, first) and len(fake.days) == 3
        assert f"job {first} failed" in caplog.text

        finish(jobs, second, DONE)
        assert timer.tick(local(18, 25)) == pytest.approx((23 * 60 + 35) * 60)
        restarted = DailyDispatch(config, fake_kafka, config.dispatch)
        assert restarted.tick(local(23, 0)) == pytest.approx(19 * 3600)
        after_midnight = local(0, 3, TOMORROW)
        assert restarted.tick(after_midnight) == pytest.approx(
            (local(18, 0, TOMORROW) - after_midnight).total_seconds())
    assert fake.days == [TOMORROW] * 3


def test_a_cancelled_dispatch_stays_cancelled_and_failures_stop_after_three(
        config, fake_kafka, monkeypatch, caplog) -> None:
    """A job someone cancelled is theirs to plan again (POST /v1/dispatch), not the timer's
    five minutes later; a day whose jobs fail (an infeasible day) is tried MAX_FAILED_TRIES
    times, not every five minutes until midnight, and the give-up is said once."""
    monkeypatch.setattr(daily_module, "CATCH_UP_EVERY_S", 300.0)
    fake = FakeSubmit()
    monkeypatch.setattr(daily_module, "submit", fake)
    jobs = config.jobs
    timer = DailyDispatch(config, fake_kafka, config.dispatch)
    to_next_firing = (local(18, 0, TOMORROW) - local(18, 20)).total_seconds()
    assert timer.tick(local(18, 0)) == pytest.approx(300)
    assert jobs.cancel(held(jobs, TOMORROW))
    assert timer.tick(local(18, 20)) == pytest.approx(to_next_firing)
    assert fake.days == [TOMORROW]  # not planned again

    other = DailyDispatch(config, fake_kafka, config.dispatch)
    day = TOMORROW + timedelta(days=1)
    with caplog.at_level(logging.INFO, logger="packloop.planner.dispatch"):
        for k in range(daily_module.MAX_FAILED_TRIES):
            assert other.tick(local(18, 5 * k, TOMORROW)) == pytest.approx(300)
            finish(jobs, held(jobs, day), FAILED)
        for minute in (30, 35):
            other.tick(local(18, minute, TOMORROW))
    assert fake.days[1:] == [day] * daily_module.MAX_FAILED_TRIES
    assert caplog.text.count(f"dispatch for {day}: 3 tries failed") == 1


def test_a_planner_started_late_in_the_day_catches_up_and_rechecks_until_midnight(
        config, fake_kafka, monkeypatch, caplog) -> None:
    """Started at 23:58 with tomorrow unplanned and the state unreadable: it tries at once,
    says why, and looks again within CATCH_UP_EVERY_S; at 00:01 the date has changed and
    the day after is not planned before its own 18:00."""
    monkeypatch.setattr(daily_module, "CATCH_UP_EVERY_S", 300.0)
    fake = FakeSubmit()
    fake.fail = True
    monkeypatch.setattr(daily_module, "submit", fake)
    timer = DailyDispatch(config, fake_kafka, config.dispatch)
    with caplog.at_level(logging.INFO, logger="packloop.planner.dispatch"):
        assert timer.tick(local(23, 58)) == pytest.approx(300)
    assert fake.days == [TOMORROW]
    assert f"dispatch for {TOMORROW}: catching up (planner started after 18:00)" in caplog.text
    assert timer.tick(local(0, 1, TOMORROW)) == pytest.approx((17 * 60 + 59) * 60)
    assert fake.days == [TOMORROW]


def test_every_s_mode_still_fires_on_its_period(config, fake_kafka, monkeypatch) -> None:
    """PACKLOOP_DISPATCH_EVERY_S keeps planning the day after each firing, as before."""
    fake = FakeSubmit()
    monkeypatch.setattr(daily_module, "submit", fake)
    schedule = DispatchSchedule(every_s=0.05, horizon_days=1)
    timer = DailyDispatch(config, fake_kafka, schedule, now=lambda: local(9, 0))
    timer.start()
    try:
        wait_until(lambda: len(fake.days) >= 2, 10, "two firings")
    finally:
        timer.stop()
    assert set(fake.days) == {TOMORROW}


@pytest.mark.slow
def test_tomorrows_dispatch_leaves_out_what_todays_collects_before_its_shift(config) -> None:
    """Today's dispatch (a missed day, planned after midnight) and tomorrow's came from one
    state, and both sent a van for the same waste (an outside audit: 51,080 g at H10-V001
    on both days). Tomorrow's plan waits for today's to be done, then leaves out what
    today's sheets collect at stops not reached yet; past them, the state reports what was
    collected, and nothing is left out."""
    from services.planner import PlannerWorker
    from services.planner.daily import DispatchPending, still_to_run, submit

    schedule = config.dispatch
    today, created = submit(config, config.kafka_io, schedule, TODAY, now=local(0, 25))
    assert created
    with pytest.raises(DispatchPending, match=f"dispatch of {TODAY}"):
        submit(config, config.kafka_io, schedule, TOMORROW, now=local(0, 26))
    PlannerWorker(config.jobs, KafkaConnection(), TOPICS, kafka_io=config.kafka_io).process(
        today)
    job = config.jobs.get(today, columns=("result",))
    assert job is not None and job["status"] == DONE
    planned = sum(t["stop_loads"].get("H01-V007", {}).get("recyclables_grams", 0.0)
                  for t in job["result"]["trips"] if t["day"] == 0 and t["kind"] == "milk_run")
    assert planned > 0  # today collects at H01-V007
    # after its last stop's planned arrival, today's collections are in the state
    assert not still_to_run(config, TOMORROW, local(23, 59))
    tomorrow, created = submit(config, config.kafka_io, schedule, TOMORROW, now=local(0, 30))
    assert created
    row = config.jobs.get(tomorrow, columns=("scenario", "inputs"))
    assert row is not None
    left = {w["village_id"]: w["grams"] for w in row["scenario"]["outstanding_waste"]}
    assert left.get("H01-V007", 0.0) == pytest.approx(max(0.0, 20000 - planned))
    [warning] = [w for w in row["inputs"]["warnings"] if "g outstanding" in w]
    assert warning.startswith("village H01-V007:") and f"dispatch of {TODAY}" in warning
    # the reusable boxes today's stops still drop leave the hub: tomorrow's plan cannot use
    # them (it counted on them, and its sheets could drop boxes the hub no longer held)
    first = config.jobs.get(today, columns=("inputs",))
    assert first is not None
    dropped: dict[str, float] = {}
    for p in job["result"]["packaging"]:
        if (p["day"] == 0 and p["direction"] == "down" and p["village_id"].startswith("H01-")
                and p["option"] in ("insulated_box", "reusable_crate")):
            dropped[p["option"]] = dropped.get(p["option"], 0.0) + p["parcels"]
    assert dropped  # today's plan packs some of H01's parcels in reusable boxes
    for ct, n in dropped.items():
        assert row["inputs"]["container_pools"]["H01"][ct] == pytest.approx(
            first["inputs"]["container_pools"]["H01"][ct] - n)
        assert any(w.startswith(f"hub H01: {n:,.2f} {ct} of its") for w in
                   row["inputs"]["warnings"]), row["inputs"]["warnings"]


def test_today_planned_after_tomorrow_is_refused(config) -> None:
    """The other order (a review): tomorrow POSTed first, then today, both from one state,
    collected the same waste too; today's is refused, saying what to do."""
    from services.planner.daily import DispatchConflict, submit

    _job, created = submit(config, config.kafka_io, config.dispatch, TOMORROW,
                           now=local(0, 25))
    assert created
    with pytest.raises(DispatchConflict, match=f"Cancel that job, plan {TODAY}"):
        submit(config, config.kafka_io, config.dispatch, TODAY, now=local(0, 26))
    assert held(config.jobs, TODAY) is None


def test_a_day_before_whose_sheets_cannot_be_cut_does_not_block_tomorrow(
        config, monkeypatch) -> None:
    """Its worker published no sheets of it either: tomorrow is planned, nothing left out
    (an exception there stopped tomorrow's dispatch every five minutes until midnight)."""
    from services.planner.daily import still_to_run

    job_id, _ = config.jobs.create_once(TINY, {"dispatch": {"date": TODAY.isoformat()}},
                                        SOURCE, "ops", job_name(TODAY))
    assert config.jobs.claim(job_id, "w", 30)
    assert config.jobs.finish(job_id, "w", DONE, result={"trips": "not a list"})

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("string indices must be integers")

    monkeypatch.setattr("services.planner.dispatch.run_sheets", broken)
    assert not still_to_run(config, TOMORROW, local(0, 30))


def test_empties_the_day_before_still_collects_are_not_out_for_tomorrow() -> None:
    """Tomorrow's plan sent a van for empties today's last stops bring back."""
    from services.planner.from_state import Earlier, _less_collected

    out = [{"village_id": "H01-V001", "container_type": "insulated_box", "count": 5.0,
            "day": 0},
           {"village_id": "H01-V002", "container_type": "insulated_box", "count": 2.0,
            "day": 0}]
    earlier = Earlier(empties={"H01-V001": {"insulated_box": 3.0},
                               "H01-V002": {"insulated_box": 2.0}}, why="today's sheets")
    warnings: list[str] = []
    left = _less_collected(out, earlier, warnings)
    assert left == [{**out[0], "count": 2.0}]
    assert warnings == [
        "village H01-V001: 3.00 insulated_box of its 5.00 out left out, to be collected by "
        "today's sheets",
        "village H01-V002: 2.00 insulated_box of its 2.00 out left out, to be collected by "
        "today's sheets"]
    assert not Earlier() and earlier
