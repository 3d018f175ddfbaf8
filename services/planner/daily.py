"""The daily dispatch plan: at ``PACKLOOP_DISPATCH_AT`` (local time), plan tomorrow from the
live state, a week ahead as look-ahead.

It is a plan job like any other (source ``dispatch``, name ``dispatch YYYY-MM-DD``, its
options carrying the date), so it runs on the planner workers with their leases and
hand-over; the worker that stores the plan publishes one run sheet per hub of the network
on the ``dispatch`` topic together with its plan-results message (retried by the sweeper
like that one). A date with a queued, running or finished dispatch job is not planned
again — tomorrow is fixed once planned.

Catching up (``at`` mode): whenever the local time is past today's ``at`` and tomorrow
has no queued, running or finished job — the planner started after ``at``, or the last
try failed (the scenario or the queueing raised, or the job ended failed) — tomorrow is
planned at once, and looked at again every `CATCH_UP_EVERY_S` until its job is done or the
local date changes; not after `MAX_FAILED_TRIES` failed jobs, and not when the last job
was cancelled (whoever cancelled it plans it again with POST /v1/dispatch). A try that
raises before any job exists (the stream worker or Kafka unavailable) is transient and has
no cap: it is tried every `CATCH_UP_EVERY_S` until midnight.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from services.http.kafka_io import KafkaIO, KafkaUnavailable, Record
from services.planner.from_state import Earlier
from services.planner.store import DISPATCH_JOB_PREFIX, DISPATCH_SOURCE

if TYPE_CHECKING:
    from services.planner.app import PlannerConfig

log = logging.getLogger("packloop.planner.dispatch")

#: ``submitted_by`` of the jobs the schedule queues itself (POST /v1/dispatch stores the
#: planner's token owner instead)
SCHEDULER = "dispatch-scheduler"
#: seconds between looks at tomorrow's dispatch while it is not done, once past the day's
#: firing (a planner started late, a try that failed, a job still queued or running)
CATCH_UP_EVERY_S = 300.0
#: failed jobs of one date after which the timer stops planning it again (an infeasible
#: day failed every five minutes until midnight, each try a solve of up to its time limit)
MAX_FAILED_TRIES = 3


def parse_clock(text: str, field: str) -> time:
    """``HH:MM`` as a time; a ValueError naming ``field`` otherwise."""
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a time of day HH:MM") from None


@dataclass(frozen=True)
class DispatchSchedule:
    """When and how the dispatch is planned.

    at: local time of the daily run (None: only runs asked for explicitly);
    every_s: run this often instead (tests, demos);
    horizon_days: tomorrow plus the look-ahead days;
    shift_start: when the vans' first trips leave (the run sheet's times).
    """

    at: time | None = None
    every_s: float | None = None
    horizon_days: int = 7
    time_limit_s: float = 300.0
    mip_gap: float = 0.02
    shift_start: time = time(8, 0)

    @classmethod
    def from_settings(cls, settings: Any) -> DispatchSchedule:
        return cls(
            at=parse_clock(settings.dispatch_at, "PACKLOOP_DISPATCH_AT")
            if settings.dispatch_at else None,
            every_s=settings.dispatch_every_s, horizon_days=settings.dispatch_horizon_days,
            time_limit_s=settings.dispatch_time_limit_s, mip_gap=settings.dispatch_gap,
            shift_start=parse_clock(settings.dispatch_shift_start,
                                    "PACKLOOP_DISPATCH_SHIFT_START"),
        )

    @property
    def enabled(self) -> bool:
        return self.at is not None or self.every_s is not None

    def next_run(self, now: datetime) -> datetime:
        """The first firing after ``now`` (aware, in the network's timezone)."""
        if self.every_s is not None:
            return now + timedelta(seconds=self.every_s)
        today = self.firing(now.date(), now.tzinfo)
        return today if today > now else today + timedelta(days=1)

    def firing(self, day: date, tz: tzinfo | None) -> datetime:
        """The daily run on ``day`` (``at`` mode)."""
        assert self.at is not None
        return datetime.combine(day, self.at, tzinfo=tz)


def dispatch_window(tz: tzinfo | str, now: datetime | None = None) -> tuple[date, date]:
    """The dates a dispatch may be planned for now: today in the network's time zone (a
    missed day, planned late; a date, once planned, stays fixed, and a plan made from
    today's state is not an earlier day's) and tomorrow. Not later: a plan made now for
    a later day starts from today's state as if the days between did not happen (the same
    493 kg of recyclables collected on each of three days, an audit) and fixes that date
    before the run the evening before could plan it from its own state."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    today = (now or datetime.now(zone)).astimezone(zone).date()
    return today, today + timedelta(days=1)


def job_name(day: date) -> str:
    return f"{DISPATCH_JOB_PREFIX}{day.isoformat()}"


class DispatchPending(RuntimeError):
    """The day before's dispatch is still being planned: this day's plan must wait for it
    (see `still_to_run`)."""


class DispatchConflict(RuntimeError):
    """The day after already has a dispatch: this day's, planned now, would collect what
    that one planned to collect."""


def still_to_run(config: PlannerConfig, day: date, now: datetime) -> Earlier:
    """What the dispatch of the day before ``day`` still does at stops not reached yet at
    ``now`` (the live state cannot show it): the recyclables and empties it collects per
    village, the reusable boxes it drops per hub. Raises DispatchPending while that day's
    plan is queued or running.

    Why: today's and tomorrow's dispatches planned together (a missed day, POSTed after
    midnight, then tomorrow's) both came from one state, and both sent H10's van for the
    same 51,080 g (an outside audit); tomorrow's would also count on boxes today's last
    stops take away. A stop whose planned arrival has passed is taken as done and
    reported (hubs send their collections and issues as they happen)."""
    before = day - timedelta(days=1)
    held = config.jobs.holder(DISPATCH_SOURCE, job_name(before))
    if held is None:
        return Earlier()
    job = config.jobs.get(held, columns=("scenario", "result"))
    if job is None:
        return Earlier()
    if job["status"] != "done" or not job.get("result"):
        raise DispatchPending(
            f"the dispatch of {before} (job {held}) is {job['status']}: {day}'s plan waits "
            "for it, or both would collect the same waste")
    spec = (job.get("options") or {}).get("dispatch") or {}
    zone = str(spec.get("timezone") or config.network.timezone)
    from services.planner.dispatch import run_sheets

    try:
        sheets = run_sheets(job["scenario"], job["result"], before, job_id=held,
                            timezone=zone, shift_start=parse_clock(
                                spec.get("shift_start", "08:00"), "shift_start"))
    except Exception:  # noqa: BLE001 - no sheets were published of it either
        log.exception("dispatch for %s: the sheets of %s (job %s) cannot be cut; nothing "
                      "of them is left out", day, before, held)
        return Earlier()
    grams: dict[str, float] = defaultdict(float)
    boxes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    empties: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sheet in sheets:
        for trip in sheet.trips:
            for stop in trip.stops:
                if datetime.fromisoformat(stop.arrive_at) <= now:
                    continue
                grams[stop.village_id] += stop.recyclables_grams
                for ct, n in stop.boxes_to_drop.items():
                    boxes[sheet.hub_id][ct] += n
                for ct, n in stop.empties_to_collect.items():
                    empties[stop.village_id][ct] += n
    return Earlier(grams={v: g for v, g in grams.items() if g > 0},
                   boxes_dropped={h: dict(m) for h, m in boxes.items()},
                   empties={v: dict(m) for v, m in empties.items()},
                   why=f"the dispatch of {before} (job {held}) before this plan's first day")


def submit(config: PlannerConfig, kafka_io: KafkaIO, schedule: DispatchSchedule, day: date,
           submitted_by: str = SCHEDULER, now: datetime | None = None) -> tuple[str, bool]:
    """(job id, whether it was created now) of ``day``'s dispatch plan. Raises what
    building a scenario from the state raises, DispatchPending while the day before's plan
    is queued or running, DispatchConflict when the day after is planned already, and
    KafkaUnavailable when the job could not be
    queued (then nothing is stored)."""
    from services.planner.from_state import FromState, build_scenario

    name = job_name(day)
    held = config.jobs.holder(DISPATCH_SOURCE, name)
    if held is not None:
        return held, False
    after = config.jobs.holder(DISPATCH_SOURCE, job_name(day + timedelta(days=1)))
    if after is not None:
        raise DispatchConflict(
            f"the dispatch of {day + timedelta(days=1)} (job {after}) was planned first, "
            f"from a state without {day}'s trips: {day}'s would collect the same waste. "
            f"Cancel that job, plan {day}, then plan {day + timedelta(days=1)} again")
    earlier = still_to_run(config, day, now or datetime.now(UTC))
    request = FromState(horizon_days=schedule.horizon_days, name=name, containers_on_hand=True)
    scenario, inputs = build_scenario(request, config.network, kafka_io, config.topics,
                                      config.worker_url, config.worker_transport,
                                      earlier=earlier)
    options = {
        "time_limit_s": schedule.time_limit_s, "mip_gap": schedule.mip_gap,
        "baselines": False,
        # the network's hubs, each of which gets a sheet (those the scenario leaves out, with
        # no activity in the state, an empty one)
        "dispatch": {"date": day.isoformat(), "timezone": str(config.network.timezone),
                     "shift_start": schedule.shift_start.strftime("%H:%M"),
                     "hubs": {h: hub.name for h, hub in sorted(config.network.hubs.items())}},
    }
    # another scheduler or POST /v1/dispatch may have created it while the scenario was
    # built: the date's name goes to one job only
    job_id, created = config.jobs.create_once(scenario, options, DISPATCH_SOURCE, submitted_by,
                                              name, inputs)
    if not created:
        return job_id, False
    try:
        [failure] = kafka_io.produce([Record(config.topics.plan_requests, job_id.encode(),
                                             orjson.dumps({"job_id": job_id}))])
    except KafkaUnavailable as exc:
        failure = exc
    if failure is not None:
        config.jobs.delete(job_id)
        raise KafkaUnavailable(f"the dispatch plan for {day} could not be queued "
                               f"({type(failure).__name__}: {failure})")
    log.info("dispatch for %s: job %s queued (%d-day horizon)", day, job_id,
             schedule.horizon_days)
    return job_id, True


class DailyDispatch:
    """The planner service's timer: plans tomorrow at each firing of the schedule, and in
    ``at`` mode catches up when past the day's firing tomorrow has no live job (see the
    module's docstring). ``now``: the clock (tests)."""

    def __init__(self, config: PlannerConfig, kafka_io: KafkaIO, schedule: DispatchSchedule,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.kafka_io = kafka_io
        self.schedule = schedule
        self.tz = ZoneInfo(str(config.network.timezone))
        self.now = now or (lambda: datetime.now(self.tz))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the firing the timer last waited for (a check then is no catching up)
        self._firing: datetime | None = None
        #: dates this timer tried to plan (a try that raised leaves no job to tell of it)
        self._tried: set[date] = set()
        #: dates whose failed tries reached MAX_FAILED_TRIES (said once)
        self._gave_up: set[date] = set()

    def fire(self, now: datetime) -> None:
        """Plan the day after ``now``'s local date; a failure is logged, the next firing
        tries again (``every_s`` mode)."""
        day = now.astimezone(self.tz).date() + timedelta(days=1)
        try:
            submit(self.config, self.kafka_io, self.schedule, day, now=now)
        except Exception as exc:  # noqa: BLE001 - the service keeps running; next firing
            log.warning("dispatch for %s not planned: %s: %s", day, type(exc).__name__, exc)

    def tick(self, now: datetime) -> float:
        """``at`` mode: plan tomorrow if it is due or overdue at ``now`` and has no live job;
        the seconds to wait before the next look — until today's firing before it; until
        tomorrow's once tomorrow's job is done; else at most `CATCH_UP_EVERY_S`."""
        local = now.astimezone(self.tz)
        firing = self.schedule.firing(local.date(), self.tz)
        if local < firing:
            self._firing = firing
            return firing.timestamp() - local.timestamp()
        on_time, self._firing = self._firing == firing, None
        done = self._plan_tomorrow(local.date() + timedelta(days=1), on_time)
        following = self.schedule.firing(local.date() + timedelta(days=1), self.tz)
        until = max(0.0, following.timestamp() - local.timestamp())
        if done or until <= CATCH_UP_EVERY_S:
            self._firing = following
            return until
        return CATCH_UP_EVERY_S

    def _plan_tomorrow(self, day: date, on_time: bool) -> bool:
        """Queue ``day``'s job unless it has a live one; whether that job is done (fixed:
        nothing left to watch)."""
        from services.planner.store import CANCELLED, DONE, FAILED

        name = job_name(day)
        try:
            held = self.config.jobs.holder(DISPATCH_SOURCE, name)
            if held is not None:
                job = self.config.jobs.get(held)
                return job is None or job["status"] == DONE
            earlier = self.config.jobs.named(DISPATCH_SOURCE, name)
            if earlier and earlier[0]["status"] == CANCELLED:
                # someone cancelled it: theirs to plan again (POST /v1/dispatch), not the
                # timer's five minutes later
                return True
            failed = sum(1 for j in earlier if j["status"] == FAILED)
            if failed >= MAX_FAILED_TRIES:
                if day not in self._gave_up:
                    self._gave_up.add(day)
                    log.error("dispatch for %s: %d tries failed, not trying again (the "
                              "planners' job list says why; POST /v1/dispatch plans it)",
                              day, failed)
                return True
            if not on_time:
                log.warning("dispatch for %s: catching up (%s)", day, self._why_late(day))
            self._tried.add(day)
            submit(self.config, self.kafka_io, self.schedule, day, now=self.now())
        except Exception as exc:  # noqa: BLE001 - the service keeps running; tried again
            log.warning("dispatch for %s not planned: %s: %s (tried again within %.0f s)",
                        day, type(exc).__name__, exc, CATCH_UP_EVERY_S)
        return False

    def _why_late(self, day: date) -> str:
        assert self.schedule.at is not None
        jobs = self.config.jobs.named(DISPATCH_SOURCE, job_name(day))
        if jobs:  # the last one failed (a cancelled one is not planned again)
            return f"the last try failed: job {jobs[0]['job_id']} {jobs[0]['status']}"
        if day in self._tried:
            return "the last try failed"
        return f"planner started after {self.schedule.at.strftime('%H:%M')}"

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.schedule.every_s is None:
                wait = self.tick(self.now())
                if self._stop.wait(max(0.0, wait)):
                    break
                continue
            now = self.now()
            due = self.schedule.next_run(now)
            if self._stop.wait(max(0.0, (due - now).total_seconds())):
                break
            self.fire(due)

    def start(self) -> DailyDispatch:
        if self._thread is None and self.schedule.enabled:
            self._thread = threading.Thread(target=self._run, name="daily-dispatch",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
