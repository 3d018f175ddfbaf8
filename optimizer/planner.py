"""Plan a scenario: decompose by hub, compute the two baselines and the warm-started joint
plan with the same model code, and package the result.

Hubs share nothing but the county trunk fleet, so each hub is solved as its own sub-problem
(in parallel processes). The sum of the sub-problems' optima is a lower bound of the whole
problem (dropping the shared-fleet rows is a relaxation); when the combined plan also respects
the county fleet it is optimal for the whole problem, otherwise the whole problem is solved
in one model with the county fleet rows linking the hubs.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import math
import multiprocessing as mp
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from queue import Empty
from typing import Any

from optimizer.budget import (
    BOUND_LP_MIN_S,
    DEFAULT,
    BudgetParams,
    bound_fits,
    finish_reserve_s,
    first_plan_s,
    first_plan_s_per_row,
    grace_s,
    group_budget_s,
    group_min_s,
    later_budget_cap_s,
    later_least_s,
    later_min_s,
)
from optimizer.kpis import compute_kpis, reductions
from optimizer.marginal import by_hub, marginal_values, plan_trip_keys
from optimizer.model import build_model
from optimizer.plan import merge_plans, rounding_cost
from optimizer.result import PlanResult, PlanStatus
from optimizer.routes import DistanceOracle, active_villages, hub_routes
from optimizer.scenario import Scenario, ScenarioError
from optimizer.solver import PROVEN_GAP, Progress, ProgressFn, relative_gap
from optimizer.stages import (
    RELAXATION_LIMIT_S,
    SEQUENTIAL_MODES,
    StageOutcome,
    above_gap,
    best_plan,
    first_plan,
    group_rows,
    later_stages,
    no_worse_than_sequential,
    queue_reporter,
    refine_joint,
    relaxation_bound,
    solve_hubs,
    with_floor_bound,
)
from optimizer.trips import trips_per_shift, trunk_legs_per_shift

log = logging.getLogger(__name__)


class _County:
    """The county's objective and bound as they stand, for the caller's progress function.

    Every hub group reports the cost of each plan it finds and its joint solve's bound;
    the county's objective is the sum of the groups' best plans once every group has one
    (before that it is unknown, +inf, and the label says how many groups have a plan: a
    sum over some groups would rise as groups finish and look like the plan getting
    worse), and its bound the sum of the groups' joint bounds once every group has one
    (else -inf). Only the joint model's bound bounds the joint plan."""

    def __init__(self, progress: ProgressFn, groups: int, t0: float) -> None:
        self.progress, self.groups, self.t0 = progress, groups, t0
        self.best: dict[int, float] = {}
        self.bound: dict[int, float] = {}

    def report(self, key: int, p: Progress) -> None:
        if math.isfinite(p.incumbent):
            self.best[key] = min(self.best.get(key, math.inf), p.incumbent)
        if p.label.startswith("joint") and math.isfinite(p.bound):
            self.bound[key] = max(self.bound.get(key, -math.inf), p.bound)
        self.emit(p.label)

    def reporter(self, key: int) -> ProgressFn:
        return lambda p: self.report(key, p)

    def done(self, key: int, joint: StageOutcome, label: str) -> None:
        """A group's final plan and bound (those of the plan it hands on)."""
        if joint.objective is not None:
            self.best[key] = joint.objective
        if joint.bound is not None:
            self.bound[key] = joint.bound
        else:
            self.bound.pop(key, None)
        self.emit(label)

    def emit(self, label: str) -> None:
        planned = len(self.best)
        objective = sum(self.best.values()) if planned == self.groups else math.inf
        bound = sum(self.bound.values()) if len(self.bound) == self.groups else -math.inf
        if planned < self.groups:
            label += f" ({planned}/{self.groups} hub groups planned)"
        self.progress(Progress(objective, bound, relative_gap(objective, bound),
                               time.perf_counter() - self.t0, label))


class _Schedule:
    """The hub groups' budgets, phase by phase, set as each group starts (largest first)
    from the time left, the worker time the running groups are budgeted and the least the
    groups still to start need (`optimizer.budget.group_budget_s`). What a stage costs
    outside HiGHS and what a first plan costs, per row, are the medians of what finished
    groups measured (the defaults until then)."""

    def __init__(self, rows: list[int], workers: int, deadline: float | None,
                 params: BudgetParams, clock: Callable[[], float] = time.time,
                 grace_s: float = 0.0) -> None:
        """`grace_s`: how far past the deadline a first plan may still end."""
        self.rows, self.workers, self.deadline, self.params = rows, workers, deadline, params
        self.clock, self.grace_s = clock, grace_s
        self.phase = "first"
        self.hurry = False
        self.pending: list[int] = []
        #: the rows of the phase's groups and the time to the deadline when it began
        self.phase_rows = 0
        self.phase_span: float | None = None
        self.running: dict[int, float] = {}
        self.started: dict[int, float] = {}
        self.overheads: list[float] = []
        self.first_plans: list[float] = []
        self.started_any = False
        #: groups queued again after a first try without a plan: the least time they need
        self.retried: dict[int, float] = {}

    @staticmethod
    def _median(samples: list[float], default: float) -> float:
        return sorted(samples)[len(samples) // 2] if samples else default

    @property
    def rate(self) -> float:
        """Seconds per row a stage that builds its model spends outside HiGHS."""
        return self._median(self.overheads, self.params.overhead_s_per_row)

    def least_s(self, key: int | None = None, rows: int = 0) -> float:
        """The least wall time group `key` (or a model of `rows` rows) needs for a plan."""
        least = group_min_s(self.rows[key] if key is not None else rows, self._median(
            self.first_plans, first_plan_s_per_row(self.params)), self.params)
        return max(least, self.retried.get(key, 0.0)) if key is not None else least

    def begin(self, phase: str, keys: list[int]) -> None:
        """Start a phase ("first": first plans; "later": the later stages) for `keys`."""
        self.phase = phase
        self.pending = sorted(keys, key=lambda k: -self.rows[k])
        self.phase_rows = sum(self.rows[k] + 1 for k in keys)
        self.phase_span = None if self.deadline is None else self.deadline - self.clock()
        if phase == "first" and self.deadline is not None:
            least = sum(self.least_s(k) for k in keys) / self.workers
            self.hurry = least > self.params.hurry_share * (self.deadline - self.clock())

    def start(self) -> tuple[int, float | None] | None:
        """The next group and its deadline (a `time.time()`, so that a worker process can
        read it; None without a time limit); None when the next group does not fit
        before the deadline any more. In the first phase the county then cannot have a
        plan in time, and no group starts any more; in the later phase the groups left
        keep their first plans, with a bound where its build fits (`solve`)."""
        if self.deadline is None:
            return self.pending.pop(0), None
        now = self.clock()
        key = self.pending[0]
        left = self.deadline - now
        first = self.phase == "first"
        # the first group of a run always tries while time is left: a try that finds no
        # plan costs at most that time, and the least time is an estimate (a job whose
        # process started slowly under load got ~1 s of its 5 and gave up in 0.1 s)
        if first and left + self.grace_s < self.least_s(key) and (self.started_any
                                                                  or left <= 0):
            return None
        later_min = later_min_s(self.rows[key], self.rate, self.params)
        if not first and left < later_min:
            return None
        self.pending.pop(0)
        # each group still waiting keeps the least it needs: a first plan, or later stages
        # that end with a sequential plan and a bound
        busy = [max(0.0, d - now) for d in self.running.values()]
        mins_after = [self.least_s(k) if first else later_least_s(self.rows[k], self.rate,
                                                                   self.params)
                      for k in self.pending]
        weight, after = self.rows[key] + 1, sum(self.rows[k] + 1 for k in self.pending)
        budget = group_budget_s(
            left, self.workers, busy, weight, after, mins_after,
            self.least_s(key) if first else later_min,
            self.params.first_plan_share if first else self.params.overcommit)
        if not first:
            budget = min(budget, later_budget_cap_s(
                left, self.workers, busy, weight, after, mins_after,
                later_least_s(self.rows[key], self.rate, self.params), later_min,
                self.params.overcommit))
        if first:
            # A first plan's share is of the whole phase's time, not of what is left when
            # it starts: the last groups of a big county took 0.3 of all the time left
            # (the later stages of every group included), on a slow machine 10-25 s each
            # of 120 s, and the later stages of a quarter of the groups never started.
            assert self.phase_span is not None
            budget = min(budget, max(self.least_s(key), self.params.first_plan_share * (
                self.rows[key] + 1) / self.phase_rows * self.workers * self.phase_span))
            budget = min(budget, max(0.0, left) + self.grace_s)  # never past the grace
        self.running[key] = now + budget
        self.started[key] = now
        self.started_any = True
        return key, now + budget

    def done(self, key: int, part: dict[str, StageOutcome]) -> None:
        """Group `key` finished its phase with `part`: learn what it cost. A first plan's
        cost is the wall time from its start here to its end here (hand-over to the worker
        process and back included), less HiGHS's time beyond the least it was given (a
        solve that used its budget to close its gap did not need it for a plan)."""
        self.running.pop(key, None)
        rows = max(1, self.rows[key])
        for mode in ("uncoordinated", "single_use", "sequential"):
            o = part.get(mode)
            if o is not None and "highs_s" in o.stats:
                self.overheads.append(o.stats["overhead_s"] / rows)
        unc = part.get("uncoordinated")
        if unc is not None and unc.plan is not None and key in self.started:
            beyond = max(0.0, unc.stats.get("highs_s", 0.0) - first_plan_s(rows, self.params))
            self.first_plans.append((self.clock() - self.started.pop(key) - beyond) / rows)

    def retry(self, key: int) -> bool:
        """Queue group `key` again after a first try that ended without a plan, to start
        when a worker is free with at least twice the wall time that try took; False (the
        county cannot have a plan) after its second try, or when the deadline has no room
        for that. A try cut short by a share of a long limit proves only that the share was
        too small: with `routing.pyvrp_pool` the county week's H02 found no plan in its
        ~4 s and the whole 120 s plan gave up at 12.5 s."""
        started = self.started.pop(key, None)
        if self.deadline is None or started is None or key in self.retried:
            return False
        need = 2.0 * max(0.0, self.clock() - started)
        if self.deadline + self.grace_s - self.clock() < need:
            return False
        self.retried[key] = need
        self.pending.append(key)
        return True

    def not_started(self) -> list[int]:
        """Give up the groups still waiting (see `start`)."""
        keys, self.pending = self.pending, []
        return keys


def _not_started(diagnosis: list[dict[str, Any]]) -> dict[str, StageOutcome]:
    return {m: StageOutcome("time_limit_no_solution", None, None, None,
                            diagnosis=diagnosis if m == "joint" else [])
            for m in ("uncoordinated", "single_use", "sequential", "joint")}


#: the scenario of this worker process's hub groups (see `_warm_up`)
_SCENARIO: Scenario | None = None
#: this worker process's end of the progress queue (see `_warm_up`)
_QUEUE: Any = None
#: what a task carries instead of a queue when its worker's `_QUEUE` is to be used
POOL_QUEUE = "pool"


def _warm_up(scenario: Scenario, queue: Any = None) -> None:
    """A worker process's one-off costs, paid before its first hub group's clock runs:
    the scenario, sent once instead of with every task (unpickling the county week takes
    0.2 s), the progress queue (a plain multiprocessing queue can only reach a worker
    when it starts; a `Manager` queue could go with each task, but its proxy connection
    lost sync under load and hung the planner for good in `queue.empty()`), and Pyomo's
    compiler and HiGHS, which set themselves up on first use (seconds on a loaded
    machine) and would otherwise come out of the first group's budget."""
    global _SCENARIO, _QUEUE
    _SCENARIO, _QUEUE = scenario, queue
    import pyomo.environ as pyo

    from optimizer.solver import compile_model, make_highs

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1), within=pyo.Integers)
    m.c = pyo.Constraint(expr=m.x <= 1)
    m.cost = pyo.Objective(expr=m.x)
    compile_model(m)
    make_highs(None, None, 1)


#: not "fork": HiGHS keeps a global thread pool that a forked child inherits broken.
#: (Callers from a script need the usual `if __name__ == "__main__":` guard.)
START_METHOD = "forkserver"


@contextmanager
def worker_pool(s: Scenario, workers: int, queue: Any = None
                ) -> Iterator[cf.ProcessPoolExecutor]:
    """`workers` processes that solve hub groups (the planner's, the frontier's hub by hub),
    each warmed up (`_warm_up`) and ready before the pool is handed out: budgets run from
    when the workers can start on them, and a worker's start (interpreter, imports, warm-up)
    takes seconds on a loaded machine. On any exception (Ctrl-C, SIGTERM) the workers are
    stopped now, not at their solves' time limits."""
    ctx = mp.get_context(START_METHOD)
    # the fork server imports the optimiser once, not each worker (when this process
    # starts it: a fork server that runs already keeps what it has)
    ctx.set_forkserver_preload(["optimizer"])
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_warm_up,
                                initargs=(s, queue)) as pool:
        try:
            cf.wait([pool.submit(_ready) for _ in range(workers)])
            yield pool
        except BaseException:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ready() -> int:
    time.sleep(0.05)  # so that each idle worker takes one
    return os.getpid()


def _queue(queue: Any) -> Any:
    """The task's progress queue: the worker's own (`POOL_QUEUE`), in-process, or none."""
    return _QUEUE if isinstance(queue, str) and queue == POOL_QUEUE else queue


def _refine_worker(args):
    s, hubs, prev, deadline, gap, threads, queue, key, marginals = args
    tl = max(1.0, deadline - time.time())
    return hubs, refine_joint(s, hubs, prev, tl, gap, threads,
                              queue_reporter(_queue(queue), key), marginals=marginals)


def _scenario(s: Scenario | None) -> Scenario:
    """The task's scenario, or the worker's (`_warm_up`) when the task left it out."""
    found = s if s is not None else _SCENARIO
    assert found is not None  # a pool's initializer sets it before any task
    return found


def _first_worker(args):
    """A hub group's first plan in a worker process, with the budget left before its
    deadline when it starts."""
    s, hubs, deadline, threads, queue, key, rate, hurry, params = args
    s = _scenario(s)
    tl = None if deadline is None else max(0.0, deadline - time.time())
    return first_plan(s, hubs, tl, threads, queue_reporter(_queue(queue), key),
                      hurry=hurry, overhead_s_per_row=rate, params=params)


def _later_worker(args):
    """A hub group's later stages in a worker process, from its first plan."""
    s, hubs, unc, start, deadline, gap, threads, queue, key, rate, params, marginals = args
    s = _scenario(s)
    tl = None if deadline is None else max(0.0, deadline - time.time())
    # the caller's BudgetParams, not the defaults: stage shares, floors' and trunk bound's
    # time apply inside the group (they were silently the defaults in worker processes)
    return later_stages(s, hubs, unc, start, tl, gap, threads,
                        queue_reporter(_queue(queue), key), overhead_s_per_row=rate,
                        params=params, marginals=marginals)


class _Direct:
    """The progress queue of groups solved in this process: straight to the county."""

    def __init__(self, county: _County) -> None:
        self.county = county

    def put(self, item: tuple[Any, ...]) -> None:
        key, *report = item
        self.county.report(key, Progress(*report))


def _first_plan_only(unc: StageOutcome, _start: Any, bound: float | None = None,
                     failed: list[dict[str, Any]] | None = None) -> dict[str, StageOutcome]:
    """A group that had no time for its later stages, or whose later stages failed
    (`failed`, what went wrong): its first plan is its joint plan, with `bound` (its joint
    model's LP relaxation, `_bound_worker`) where there was time for one."""
    why = "not started: no time left after the first plans" if failed is None else (
        "not finished: the hub group's later stages failed")
    skipped = {m: StageOutcome("time_limit_no_solution", None, None, None, diagnosis=[{
        "what": f"{m} plan", "why": why}]) for m in ("single_use", "sequential", "joint")}
    joint = best_plan(skipped["joint"], unc) if unc.plan is not None else StageOutcome(
        unc.status, None, None, None, diagnosis=unc.diagnosis)
    if bound is not None:
        joint = with_floor_bound(joint, bound, "relaxation")
    if failed:
        # kept on the plan itself: the county's result says why this group is not planned
        # jointly (best_plan keeps only the plan of the stage it hands on)
        joint = dataclasses.replace(joint, diagnosis=[*joint.diagnosis, *failed])
    return {"uncoordinated": unc, **skipped, "joint": joint}


def _failure(hubs: list[str], what: str, exc: BaseException) -> list[dict[str, Any]]:
    """A hub group's optional work (its later stages, its bound) that raised: logged with
    its traceback for a bug report, and named in the plan's diagnosis. The group keeps its
    first plan, a feasible plan, rather than the county losing every hub's plan to it."""
    log.error("hub group %s: %s failed; it keeps its first plan", ", ".join(hubs), what,
              exc_info=exc)
    return [{"what": "hubs " + ", ".join(hubs),
             "why": f"{what} failed ({type(exc).__name__}: {exc}); the group hands on its "
                    "first plan (a bug: please report it with the log)"}]


def _bound_worker(args: tuple[Any, ...]) -> float | None:
    """The LP relaxation of a hub group's joint model, for a group whose later stages had
    no room: its first plan's bound for the county's gap. About a second on a county-week
    hub (the build most of it; no trip-cost floors, which would take another), run only
    where that fits before the deadline. Without it
    the county had no bound at all: the last of 40 groups at 200 % of the county on a slow
    machine. The uncoordinated model's own bound does not bound the joint plan."""
    s, hubs, threads, deadline = args
    s = _scenario(s)
    b = build_model(s, hub_routes(s, hubs), mode="joint", hubs=hubs, trip_floors=False)
    if b.unservable:
        return None
    if deadline is None:
        return relaxation_bound(b, threads)
    return relaxation_bound(b, threads, min(RELAXATION_LIMIT_S, max(
        BOUND_LP_MIN_S, deadline - time.time())))


def _second_pass(s: Scenario, parts: list[dict[str, StageOutcome]], pool, deadline,
                 mip_gap, workers: int, queue, drain,
                 on_refined: Callable[[int, StageOutcome], None] | None = None,
                 params: BudgetParams = DEFAULT, marginals: bool = False) -> None:
    """Give the time the quick hub groups left over to the groups that stopped above the
    gap at their budget, most absolute gap first, until the deadline.

    Budgets are set when a group starts, before anyone knows which groups are hard: most
    groups reach the gap in a fraction of their budget, while one or two may hold the
    county gap above the target. Progress of group k (its index in `parts`) goes to
    `queue` under key k, and `on_refined(k, outcome)` hears of its new outcome."""
    if deadline is None:
        return

    def abs_gap(p: dict[str, StageOutcome]) -> float:
        o = p["joint"]
        assert o.objective is not None and o.bound is not None  # above_gap checked both
        return o.objective - o.bound

    todo = sorted((k for k, p in enumerate(parts) if above_gap(p["joint"], mip_gap)
                   and p["joint"].start is not None),
                  key=lambda k: -abs_gap(parts[k]))
    margin = params.second_pass_margin_s
    if not todo or deadline - margin - time.time() < params.min_second_pass_s:
        return
    joint = _combine(parts, "joint")
    if joint.plan is None or not _county_fleet_ok(s, joint.plan):
        return  # the linked whole-county solve replaces these plans and needs the time
    waiting = list(todo)
    futs: dict = {}

    def submit() -> None:
        # each gets its share of the time left among the groups still to refine
        while waiting and len(futs) < workers:
            left = deadline - margin - time.time()
            share = left * min(1.0, workers / (len(waiting) + len(futs)))
            if share < params.min_second_pass_s:
                waiting.clear()
                return
            k = waiting.pop(0)
            plan = parts[k]["joint"].plan
            assert plan is not None  # solve_hubs keeps a start only with a plan
            args = (s, plan["hubs"], parts[k]["joint"], time.time() + share, mip_gap, 1, queue,
                    k, marginals)
            futs[pool.submit(_refine_worker, args)] = k

    submit()
    while futs:
        finished, _ = cf.wait(set(futs), timeout=0.5, return_when=cf.FIRST_COMPLETED)
        drain()
        for f in finished:
            k = futs.pop(f)
            p = parts[k]
            try:
                _hubs, refined = f.result()
            except BrokenProcessPool:
                raise
            except Exception as exc:
                # the group keeps the joint plan it has; the failure is named on it
                p["joint"] = dataclasses.replace(p["joint"], diagnosis=[
                    *p["joint"].diagnosis,
                    *_failure(p["joint"].plan["hubs"] if p["joint"].plan else [],
                              "its second pass", exc)])
                continue
            p["_second_pass"] = StageOutcome("ok", p["joint"].objective, p["joint"].bound, None)
            p["joint"] = refined
            if on_refined is not None:
                on_refined(k, refined)
        submit()


def _combine(parts: list[dict[str, StageOutcome]], mode: str) -> StageOutcome:
    outs = [p[mode] for p in parts if mode in p]
    if not outs:
        return StageOutcome("error", None, None, None)
    diag = [d for o in outs for d in o.diagnosis]
    plans = [o.plan for o in outs if o.plan is not None]
    if len(plans) < len(outs):
        bad = [o.status for o in outs if o.plan is None]
        return StageOutcome("infeasible" if "infeasible" in bad else bad[0], None, None, None,
                            diagnosis=diag)
    objectives = [o.objective for o in outs if o.objective is not None]
    assert len(objectives) == len(outs)  # every stage that returns a plan has its objective
    obj = sum(objectives)
    bounds = [o.bound for o in outs if o.bound is not None]
    bound = sum(bounds) if len(bounds) == len(outs) else None
    statuses = {o.status for o in outs}
    status = "optimal" if statuses == {"optimal"} else (
        "time_limit" if "time_limit" in statuses else "feasible")
    stats: dict[str, float] = defaultdict(float)
    for o in outs:
        for k, v in o.stats.items():
            stats[k] += v
    methods = {o.method for o in outs}
    method = methods.pop() if len(methods) == 1 else "per_hub"
    return StageOutcome(status, obj, bound, merge_plans(plans), dict(stats), diag, method=method)


#: what each hub group's stages report beside their times: the searches' work and gains,
#: the bounds' time and source (`bound_from_*`), so that a plan shows per hub where its
#: plan and its bound came from
HUB_SEARCH_STATS = frozenset({
    "search_s", "search_windows", "search_improved", "search_gain_cny", "drop_s",
    "drop_gain_cny", "finish_s", "finish_gain_cny", "floors_s", "trunk_bound_s",
    "replaced_by_sequential", "objective_resolves", "past_budget", "relaxation_build_s",
    "marginal_s", "lp_completion_cny"})


def _hub_stats(part: dict[str, StageOutcome], hubs: list[str]) -> dict[str, Any]:
    """Per hub group: each stage's objective, bound, gap and HiGHS time (where the county's
    time and gap come from), and its `HUB_SEARCH_STATS` where it has them."""
    t = part.get("_time_s")
    out: dict[str, Any] = {"hubs": list(hubs),
                           "time_s": t.objective if t else None,
                           "budget_s": t.bound if t else None}
    second = part.get("_second_pass")
    if second is not None:
        out["second_pass"] = {"objective_before": second.objective, "bound_before": second.bound}
    for m, o in part.items():
        if m.startswith("_"):
            continue
        out[m] = {"status": o.status, "objective": o.objective, "bound": o.bound,
                  "gap": None if o.objective is None or o.bound is None
                  else relative_gap(o.objective, o.bound),
                  "highs_s": o.stats.get("highs_s"), "build_s": o.stats.get("build_s"),
                  "compile_s": o.stats.get("compile_s"), "overhead_s": o.stats.get("overhead_s"),
                  "wall_s": o.stats.get("wall_s"),
                  **{k: v for k, v in o.stats.items()
                     if k in HUB_SEARCH_STATS or k.startswith("bound_from_")}}
    return out


#: marginal values stop this long before the solve's time limit (a hub's LP is a second or
#: two at county scale)
MARGINAL_MARGIN_S = 2.0


def uncoordinated_trunk_shortfall(s: Scenario) -> tuple[int, float, float] | None:
    """(day, vehicle-days needed, vehicle-days the county has) on the first day on which
    the uncoordinated operation cannot run with the county's trunk fleet, or None.

    Each trunk trip of the uncoordinated baseline carries one class (`model/sets.py`) on
    the demand's own day, so a hub with loads of k classes on day d needs at least k trunk
    legs that day, each at least 1/m of a vehicle-day (m: the most legs of that hub any
    county vehicle type runs a day). Recyclables (any day) are left out. Over the fleet,
    no plan exists: the linked model then needs no time to say so. None where any county
    vehicle type has no count (an unlimited fleet) or the count allows it."""
    county = [vt for vt in s.vehicle_types if vt.base == "county"]
    if not county or any(vt.count is None for vt in county):
        return None
    oracle = DistanceOracle(s)
    hub_of = {v.village_id: v.hub_id for v in s.villages}
    share: dict[str, float] = {}  # least vehicle-day share of one trunk leg per hub
    for h in {h.hub_id for h in s.hubs}:
        most = max(trunk_legs_per_shift(vt, oracle.trunk_km(h)) for vt in county)
        if most > 0:
            share[h] = 1.0 / most
    classes: dict[tuple[int, str], set[str]] = defaultdict(set)
    for g in s.demand:
        hub = hub_of.get(g.village_id)
        if hub in share and (g.parcels > 0 or (g.volume_litres or 0) > 0):
            classes[(g.day, hub)].add(g.class_id)
    need: dict[int, float] = defaultdict(float)
    for (d, h), cs in classes.items():
        need[d] += len(cs) * share[h]
    have = float(sum(vt.count or 0 for vt in county))
    for d in sorted(need):
        if need[d] > have + 1e-9:
            return d, need[d], have
    return None


def _without_infeasible(parts: list[dict[str, StageOutcome]], groups: list[list[str]]
                        ) -> tuple[list[dict[str, StageOutcome]], dict[str, str]]:
    """The hub groups that have a plan or may yet (out of time is not infeasible), and each
    hub of the others with why it has none. All infeasible: nothing is left out (the
    county is infeasible, and says why)."""
    keep, left_out = [], {}
    for part, hubs in zip(parts, groups, strict=True):
        joint = part["joint"]
        if joint.plan is None and joint.status == "infeasible":
            why = "; ".join(f"{d.get('what')}: {d.get('why')}" for d in joint.diagnosis) or (
                "no plan satisfies its constraints")
            left_out.update({h: why for h in hubs})
        else:
            keep.append(part)
    return (parts, {}) if not keep else (keep, left_out)


def _county_fleet_ok(s: Scenario, plan: dict[str, Any]) -> bool:
    return _county_fleet_excess(s, plan) is None


def _county_fleet_excess(s: Scenario, plan: dict[str, Any]
                         ) -> tuple[str, int, float, int] | None:
    """(vehicle type, day, vehicle-days used, count) of the first county vehicle type and
    day `plan` uses more of than the county has, or None."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    used: dict[tuple[str, int], float] = defaultdict(float)  # vehicle-days (model/fleet.py)
    for t in plan["trips"]:
        if t["kind"] == "trunk":
            vt = vts[t["vehicle_type"]]
            used[(t["vehicle_type"], t["day"])] += 1.0 / trips_per_shift(vt, t["minutes"])
    for (v, d), n in sorted(used.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        count = vts[v].count
        if count is not None and n > count + 1e-6:
            return v, d, n, count
    return None


def solve(
    scenario: Scenario,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    baselines: bool = True,
    decompose: bool = True,
    params: BudgetParams = DEFAULT,
    marginals: bool = True,
    marginal_vehicles: bool = False,
    leave_out_infeasible: bool = False,
) -> PlanResult:
    """Plan `scenario`: joint plan, KPIs, and the uncoordinated and sequential baselines.

    `time_limit_s` is the wall clock of this call, building the models, the baselines and
    the KPIs included (`optimizer.budget`); a caller that does more afterwards (a report)
    passes what it leaves for this call. A hub group that runs out of time hands on the
    best plan it has; `progress` hears the county's objective and bound as they stand.

    A single-visit scenario (CVRP set partitioning, as imported from CVRPLIB) is another
    problem with its own solver, `optimizer.solve_cvrp`; it is refused here.

    With `marginals` the plan reports what one more box per pool and unit of cleaning
    capacity is worth (`optimizer.marginal`), with `marginal_vehicles` also one more vehicle
    of each type per hub, in the time the limit leaves (hubs not reached are listed).

    With `leave_out_infeasible` (tomorrow's dispatch), hubs planned apart whose own
    constraints admit no plan are left out, so that the other hubs still get theirs: the
    plan covers the rest, `stats["left_out"]` maps each left-out hub to why, and the
    diagnosis names it. Without it, one such hub makes the county infeasible."""
    t0 = time.perf_counter()
    s = scenario
    if s.routing.single_visit:
        raise ScenarioError([("routing.single_visit", "a single-visit (CVRP) scenario is "
                              "solved by optimizer.solve_cvrp, not by the joint planner")])
    active = active_villages(s)
    vill_hub = {v.village_id: v.hub_id for v in s.villages}
    busy = sorted({vill_hub[i] for i in active})
    if not busy and s.hubs:
        # nothing to deliver, pick up or collect (a quiet day planned from the live state):
        # one hub's model, with no trips in it, gives the empty plan at cost 0, which is a
        # plan, not an infeasibility
        busy = [s.hubs[0].hub_id]
    if not s.hubs:
        return PlanResult.infeasible([{"what": "the scenario", "why": "it has no hubs"}],
                                     factor_set=s.factor_set)
    groups = [[h] for h in busy] if decompose else [busy]
    rows = [group_rows(s, g) for g in groups]
    workers = max(1, min(len(groups), threads or os.cpu_count() or 1))
    reserve = finish_reserve_s(sum(rows), params)
    deadline = None if time_limit_s is None else time.time() + time_limit_s - reserve
    schedule = _Schedule(rows, workers, deadline, params,
                         grace_s=grace_s(time_limit_s or 0.0, params))
    county = _County(progress, len(groups), t0) if progress is not None else None
    inline = len(groups) == 1 or workers == 1
    hub_threads = threads if len(groups) == 1 else 1
    firsts: dict[int, tuple[StageOutcome, Any]] = {}
    by_key: dict[int, dict[str, StageOutcome]] = {}
    timeline: dict[str, float] = {}  # seconds from the start when each phase ended

    def finished(key: int, part: dict[str, StageOutcome]) -> None:
        by_key[key] = part
        schedule.done(key, {m: o for m, o in part.items() if m != "uncoordinated"})
        if county is not None:
            county.done(key, part["joint"], f"hub {len(by_key)}/{len(groups)} done")

    def first_done(key: int, outcome: tuple[StageOutcome, Any]) -> None:
        firsts[key] = outcome
        schedule.done(key, {"uncoordinated": outcome[0]})
        if (outcome[0].plan is None and outcome[0].status.startswith("time_limit")
                and (gave_up or not schedule.retry(key))):
            give_up()  # a group without a first plan in its time: no county plan

    gave_up: list[bool] = []

    def give_up() -> None:
        gave_up.append(True)
        keys = schedule.not_started()
        if not keys:
            return
        needed = sum(schedule.least_s(k) for k in keys) / workers
        why = [{"what": "hubs " + ", ".join(h for k in keys for h in groups[k]),
                "why": f"not planned: their first plans need about {needed:.1f} s more at "
                       "this run's speed, past the time limit (give a longer one)"}]
        for n, key in enumerate(keys):
            firsts[key] = (_not_started(why if n == 0 else [])["joint"], None)

    # worker processes have the scenario from their initializer; the inline path passes it
    task_s = s if inline else None
    # the groups work out boxes and cleaning (`stages.with_marginals`); with vehicles too,
    # everything is worked out after the plan, and the groups' work would be thrown away
    in_groups = marginals and not marginal_vehicles

    def first_task(key: int, group_deadline: float | None, queue) -> tuple[Any, ...]:
        # a second try stops at its first plan: a plan at all is what it is for
        return (task_s, groups[key], group_deadline, hub_threads, queue, key,
                schedule.rate, schedule.hurry or key in schedule.retried, params)

    def later_task(key: int, group_deadline: float | None, queue) -> tuple[Any, ...]:
        unc, start = firsts[key]
        return (task_s, groups[key], unc, start, group_deadline, mip_gap, hub_threads, queue,
                key, schedule.rate, params, in_groups)

    def run_phases(submit: Callable[..., cf.Future], queue, drain) -> None:
        """First plans of every group, then the later stages of each with the time left:
        every hub has a plan before any group spends time improving one, and the
        county's objective is known from the end of the first phase."""
        timeline["workers_ready"] = time.perf_counter() - t0
        for phase, fn, task, on_done in (("first", _first_worker, first_task, first_done),
                                         ("later", _later_worker, later_task, None)):
            # after a group went without a first plan for lack of time there is no
            # county plan to improve: no later stages at all
            schedule.begin(phase, list(range(len(groups))) if phase == "first" or not gave_up
                           else [])
            running: dict[cf.Future, tuple[int, bool]] = {}  # key, whether a bound only
            # later phase: groups left without room for their later stages, which keep
            # their first plans and get a bound only (see `_bound_worker`)
            bounds: list[int] = []
            while schedule.pending or bounds or running:
                while (schedule.pending or bounds) and len(running) < workers:
                    if not schedule.pending:
                        key = bounds.pop(0)
                        # only where its build fits before the deadline, its LP cut there:
                        # the time limit holds (eight hubs in 15 s ran 3 s past it with the
                        # first plans' grace); a group without one keeps no bound
                        if deadline is None or bound_fits(deadline - time.time(), rows[key],
                                                          schedule.rate):
                            running[submit(_bound_worker, (task_s, groups[key],
                                                           hub_threads, deadline))] = (key, True)
                        continue
                    started = schedule.start()
                    if started is None:
                        if phase == "first":
                            give_up()
                            break
                        bounds += [k for k in schedule.not_started()
                                   if firsts[k][0].plan is not None]
                        continue
                    key, group_deadline = started
                    running[submit(fn, task(key, group_deadline, queue))] = (key, False)
                if not running:
                    break
                done, _ = cf.wait(set(running), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                drain()
                for f in done:
                    key, bound_only = running.pop(f)
                    try:
                        got = f.result()
                    except BrokenProcessPool:
                        raise  # a worker died: the pool is gone with it
                    except Exception as exc:
                        if phase == "first":
                            raise  # without its first plan the county has no plan
                        failed = _failure(groups[key], "its bound" if bound_only
                                          else "its later stages", exc)
                        finished(key, _first_plan_only(*firsts[key], failed=failed))
                        continue
                    if bound_only:
                        finished(key, _first_plan_only(*firsts[key], bound=got))
                    elif on_done is not None:
                        on_done(key, got)
                    else:
                        finished(key, got)
            timeline[f"{phase}_done"] = time.perf_counter() - t0
            if phase == "later":
                for key in range(len(groups)):
                    if key not in by_key:  # no time left for its later stages
                        finished(key, _first_plan_only(*firsts[key]))

    if inline:
        def submit_inline(fn: Callable[..., Any], args: tuple[Any, ...]) -> cf.Future:
            # as an executor does: a task's exception is its future's, not the caller's
            f: cf.Future = cf.Future()
            try:
                f.set_result(fn(args))
            except Exception as exc:
                f.set_exception(exc)
            return f

        run_phases(submit_inline, None if county is None else _Direct(county), lambda: None)
        parts = [by_key[k] for k in range(len(groups))]
    else:
        queue = mp.get_context(START_METHOD).Queue() if progress is not None else None
        task_queue = POOL_QUEUE if queue is not None else None

        def drain() -> None:
            # the workers' reports (each group's plans, the joint solve's bound) arrive here;
            # never a blocking call: a worker killed mid-put must not stop the plan
            while queue is not None:
                try:
                    key, inc, bnd, gp, el, label = queue.get(timeout=0.01)
                except (Empty, EOFError, OSError):
                    return
                assert county is not None  # the queue exists only for a progress callback
                county.report(key, Progress(inc, bnd, gp, el, label))

        try:
            with worker_pool(s, workers, queue) as pool:
                run_phases(pool.submit, task_queue, drain)
                parts = [by_key[k] for k in range(len(groups))]
                _second_pass(s, parts, pool, deadline, mip_gap, workers, task_queue, drain,
                             on_refined=None if county is None else (
                                 lambda k, o: county.done(k, o, "second pass")),
                             params=params, marginals=in_groups)
        finally:
            if queue is not None:
                drain()
                queue.close()
                queue.cancel_join_thread()
    all_parts = parts
    left_out: dict[str, str] = {}
    if leave_out_infeasible:
        parts, left_out = _without_infeasible(parts, groups)
        busy = [h for h in busy if h not in left_out]
    modes = ["joint", *SEQUENTIAL_MODES, "single_use"] + (
        ["uncoordinated"] if baselines else [])
    combined = {m: _combine(parts, m) for m in modes}
    linked: list[str] = []
    if len(groups) > 1:
        # (combined's keys are `modes`, in order)
        linked = [m for m, c in combined.items()
                  if c.plan is not None and not _county_fleet_ok(s, c.plan)]
        # The county fleet binds: all hubs in one model, linked by its rows. The hub plans
        # break that fleet, so the joint chain's solve gets at least the time a first plan
        # of the whole county needs, past the deadline by at most the first plans' grace
        # (else it is not run); the uncoordinated baseline's only within the deadline.
        least = schedule.least_s(rows=sum(rows))
        left = None if deadline is None else max(least, deadline - time.time())
        whole_county = None if county is None else _County(county.progress, 1, t0)
        if "uncoordinated" in linked:
            # A baseline, unlike the joint plan, is not worth running past the deadline:
            # at 200 % of the county its linked model took 28 s past a 120 s limit and
            # found no plan in them. Without the time it is reported missing, and why.
            # Where a count of trunk legs already proves it has no plan (200 % of the
            # county: 55 vehicle-days needed on day 0, 40 there), it is not run at all.
            unc_left = None if deadline is None else deadline - time.time()
            short = uncoordinated_trunk_shortfall(s)
            if short is not None:
                day, need, have = short
                combined["uncoordinated"] = StageOutcome(
                    "infeasible", None, None, None, diagnosis=[{
                        "what": "uncoordinated plan",
                        "why": f"with one class per trunk leg the hubs need at least "
                               f"{need:.1f} vehicle-days of county trunk vehicles on day "
                               f"{day}; the county has {have:.0f}"}])
            elif unc_left is None or unc_left >= least:
                combined["uncoordinated"] = _combine([solve_hubs(
                    s, busy, unc_left, mip_gap, threads, None, True,
                    only_uncoordinated=True, overhead_s_per_row=schedule.rate,
                    params=params)], "uncoordinated")
            else:
                combined["uncoordinated"] = StageOutcome(
                    "time_limit_no_solution", None, None, None, diagnosis=[{
                        "what": "uncoordinated plan",
                        "why": "the hubs' own uncoordinated plans together need more county "
                               "trunk vehicles than the county has, and a model of all hubs "
                               f"linked by that fleet needs about {least:.1f} s, past the "
                               "time limit (give a longer one)"}])
        chain = set(linked) & {"joint", *SEQUENTIAL_MODES, "single_use"}
        over = None if deadline is None else least - (deadline - time.time())
        if chain and over is not None and over > schedule.grace_s:
            # A first plan of all hubs linked needs far more than the time left (200 % of
            # the county, under load: 27 s): it ran 86 s past the limit and ended with no
            # plan and a reason that named a budget. Said at once, with the county's count.
            excess = _county_fleet_excess(s, combined["joint"].plan or {"trips": []})
            used = "" if excess is None else (
                f"the hubs' plans together need {excess[2]:.1f} vehicle-days of "
                f"{excess[0]} on day {excess[1]}, the county has {excess[3]}; ")
            why = (f"{used}a model linking all hubs by the county trunk fleet needs about "
                   f"{least:.1f} s, {over:.1f} s past the time limit (give a longer one)")
            for m in chain:
                combined[m] = StageOutcome("time_limit_no_solution", None, None, None,
                                           diagnosis=[{"what": f"{m} plan", "why": why}])
        elif chain:
            if left is not None and deadline is not None:
                left = max(least, deadline - time.time())
            whole = solve_hubs(s, busy, left, mip_gap, threads,
                               None if whole_county is None else whole_county.reporter(0),
                               False, skip_joint="joint" not in chain,
                               overhead_s_per_row=schedule.rate, params=params)
            for m in (*SEQUENTIAL_MODES, "single_use"):
                if m in chain or m in whole:
                    combined[m] = whole.get(m, StageOutcome(
                        "time_limit_no_solution", None, None, None,
                        diagnosis=[{"what": f"{m} plan", "why": "the county trunk fleet binds "
                                    "and the linked model found no plan in the time left"}]))
            if "joint" in chain:
                combined["joint"] = whole["joint"]
            combined["joint"] = no_worse_than_sequential(
                combined["joint"], combined["sequential"], status="feasible")
    result = _result(s, combined, t0, {"groups": len(groups), "workers": workers,
                                     "time_limit_s": time_limit_s, "finish_reserve_s": reserve,
                                     "overhead_s_per_row": schedule.rate,
                                     "timeline_s": timeline, "hurry": schedule.hurry,
                                     "linked_by_county_fleet": linked,
                                     "hubs": [_hub_stats(p, g) for p, g
                                              in zip(all_parts, groups, strict=True)],
                                     **({"left_out": left_out} if left_out else {})})
    if not marginals or result.plan is None:
        return result
    end = None if time_limit_s is None else (
        time.time() + time_limit_s - (time.perf_counter() - t0) - MARGINAL_MARGIN_S)
    tm = time.perf_counter()
    # the groups' own values where they hold for the final plan's trips (a linked county
    # re-solve or a substituted plan has others; those hubs are worked out here)
    computed: dict[str, dict[str, Any]] = {}
    if not marginal_vehicles:
        for p in parts:
            o = p.get("joint")
            if o is None or o.marginals is None or o.plan is None:
                continue
            hubs = list(o.plan["hubs"])
            if o.marginals_on == plan_trip_keys(result.plan, hubs):
                computed.update(by_hub(o.marginals))
    values = marginal_values(s, result.plan, deadline=end, vehicles=marginal_vehicles,
                             threads=threads, computed=computed)
    return dataclasses.replace(result, marginal_values=values,
                               stats={**result.stats, "marginal_s": time.perf_counter() - tm})


def _result(s: Scenario, combined: dict[str, StageOutcome], t0: float,
            extra: dict[str, Any]) -> PlanResult:
    joint = combined["joint"]
    base: dict[str, Any] = {}
    for name in ("uncoordinated", *SEQUENTIAL_MODES):
        c = combined.get(name)
        if c is None:
            continue
        entry: dict[str, Any] = {"status": c.status, "objective": c.objective,
                                 "bound": c.bound,
                                 "gap": None if c.objective is None or c.bound is None
                                 else relative_gap(c.objective, c.bound)}
        if c.method:
            entry["method"] = c.method
        if c.plan is not None:
            entry["kpis"] = compute_kpis(c.plan, s)
            entry["trips"] = len(c.plan["trips"])
        else:
            entry["diagnosis"] = c.diagnosis
        base[name] = entry
    kpis = compute_kpis(joint.plan, s) if joint.plan is not None else None
    if kpis is not None:
        for name in base:
            if "kpis" in base[name]:
                base[name]["reduction_by_joint"] = reductions(kpis, base[name]["kpis"])
    gap = None
    if joint.objective is not None and joint.bound is not None:
        gap = relative_gap(joint.objective, joint.bound)
    status: PlanStatus
    if joint.plan is not None:
        status = "optimal" if gap is not None and gap <= PROVEN_GAP else (
            "time_limit" if joint.status.startswith("time_limit") else "feasible")
    elif joint.status.startswith("time_limit"):
        status = "time_limit"
    elif joint.status == "error":
        status = "error"
    else:
        status = "infeasible"
    stats = {"wall_s": time.perf_counter() - t0, **extra, "joint": joint.stats,
             "stages": {m: c.stats for m, c in combined.items() if m != "joint"}}
    diagnosis = list(joint.diagnosis)
    for hub, why in (extra.get("left_out") or {}).items():
        diagnosis.append({"what": f"hub {hub}", "why": f"left out of the plan: {why}"})
    if joint.plan is not None and not any(vt.base == "county" for vt in s.vehicle_types):
        # a trunk vehicle typed base 'hub' by mistake halved tiny.yaml's cost, silently
        diagnosis.append({"what": "trunk legs", "why": "no vehicle type has base 'county', "
                          "so the legs from the depot to the hubs are neither planned nor "
                          "costed (trunk vehicles need base 'county')"})
    return PlanResult(
        status=status,
        objective=joint.objective,
        bound=joint.bound,
        gap=gap,
        plan=joint.plan,
        kpis=kpis,
        baselines=base,
        stats=stats,
        diagnosis=diagnosis,
        factor_set=s.factor_set,
        rounding=rounding_cost(joint.plan, s) if joint.plan is not None else {},
    )

