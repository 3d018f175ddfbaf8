"""One hub group's solves: the uncoordinated baseline, the single-use plan, the two sequential
baselines (:mod:`optimizer.baselines`) and the better of them, the joint plan warm-started from
it, and a second pass for a joint solve that stopped above its gap. What runs here runs in a
worker process; how the groups share the time and the workers, and how their plans combine,
is :mod:`optimizer.planner`'s business.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from optimizer.baselines import as_joint, fix_packaging, fix_routing, packaging_rule
from optimizer.budget import (
    DEFAULT,
    HURRY_OPTIONS,
    BudgetParams,
    Stage,
    first_plan_s,
    stage_limit,
)
from optimizer.diagnose import describe_rows, describe_unservable
from optimizer.floors import Floors
from optimizer.model import BuiltModel, build_model
from optimizer.model.covers import joint_floors
from optimizer.neighbourhood import (
    relaxation_values,
    search_seconds,
    trip_day_polish,
    trip_drop_finish,
)
from optimizer.plan import extract_plan
from optimizer.routes import hub_routes
from optimizer.scenario import Scenario
from optimizer.solver import (
    PROVEN_GAP,
    Progress,
    ProgressFn,
    SolveResult,
    compile_model,
    objective_of,
    relative_gap,
    run_highs,
)
from optimizer.trips import Mode, TripType
from optimizer.trunk_bound import TrunkBound, trunk_rounding_bound
from optimizer.warmstart import (
    Values,
    copy_values,
    set_values,
    uncoordinated_as_start,
    uncoordinated_values_as_start,
    values_of,
)

UNCOORDINATED_GAP = 0.03
#: under a time limit the single-use stage stops at this gap, or a wider one requested: its
#: plan is within 0.3 % of its bound once HiGHS's root ends, and without --gap it went on
#: towards HiGHS's default 0.01 % to the end of its share, time the joint stage needs
#: (county week at 120 s: gap 2.16 % -> 1.61 %; docs/optimizer.md, "Decomposition")
SINGLE_USE_GAP = 0.01


def baseline_gap(mip_gap: float | None, time_limited: bool) -> float | None:
    """The gap the single-use stage and the sequential baselines stop at: never looser than
    SINGLE_USE_GAP whatever `--gap` asks of the joint plan. A loose baseline makes the
    joint plan's gain look larger than it is: tiny's presale case at --gap 0.2 reported the
    joint plan 11.5 % cheaper than a routing-first plan built on single-use trips 19.6 % from
    their optimum, where at the default gap the two cost the same. Under a time limit the
    single-use stage stops at SINGLE_USE_GAP even when a tighter gap is asked (its time is
    the joint stage's; docs/optimizer.md, "Decomposition")."""
    if time_limited:
        return SINGLE_USE_GAP
    return mip_gap if mip_gap is None else min(mip_gap, SINGLE_USE_GAP)
# HiGHS options of the warm-started joint solve. Its start (the sequential plan) is usually
# within the requested gap of the optimum already; what the solve has to do is prove it, i.e.
# raise the bound, and HiGHS's default primal heuristics spend most of the time in sub-MIPs
# that do not improve that start (figures in docs/optimizer.md).
JOINT_WARM_OPTIONS: dict[str, Any] = {"mip_heuristic_effort": 0.0}
# ... unless the single-use stage stopped above max(3 x the requested gap, 3 %)
POOR_START_FACTOR = 3.0
POOR_START_MIN = 0.03
# a model's mode, or a sequential baseline (optimizer.baselines: a joint model with some
# decisions fixed)
StageMode = Mode | Literal["routing_first", "packaging_first"]
# the outcomes `solve_hubs` reports for them; `sequential` is the better of the two
SEQUENTIAL_MODES = ("sequential", "sequential_routing_first", "sequential_packaging_first")


def model_mode(mode: StageMode) -> Mode:
    """The model a stage builds: a sequential baseline is the joint model, partly fixed."""
    if mode == "routing_first" or mode == "packaging_first":
        return "joint"
    return mode


@dataclass
class StageOutcome:
    """One mode's plan for a set of hubs."""

    status: str
    objective: float | None
    bound: float | None
    plan: dict[str, Any] | None
    stats: dict[str, float] = field(default_factory=dict)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    # the joint solution by (variable name, index), kept when a hub group stopped above the
    # requested gap so that a second pass can start from it (see `refine_joint`)
    start: dict[tuple[str, Any], float] | None = None
    # for `sequential`: which of the sequential baselines it is
    method: str = ""
    # the marginal values of `plan` (`marginal.group_marginals`), worked out in the stage's
    # worker on the model it had built, and the plan's trip keys they hold for
    # (`marginal.plan_trip_keys`): the planner uses them only for that very plan
    marginals: dict[str, Any] | None = None
    marginals_on: list[Any] | None = None


# the stages whose plan, when HiGHS stops on its time limit above the gap, gets trips dropped
# (`neighbourhood.drop_trips`) for up to this share of its limit: the single-use plan is the
# joint solve's start and fixes the routing-first baseline's trips (not the packaging-first
# baseline: on the county week it never was the better one, and its time is the joint's)
FINISHED_MODES = ("single_use",)
FINISH_SHARE = 0.3
# ... when its gap is above this: closer, a drop gains at most that much, and a pass that
# drops nothing costs a big hub 0.5 s of its joint stage's search (H04)
FINISH_ABOVE_GAP = 0.005

# HiGHS's limit for the routing-first baseline of a group whose budget has no room left for
# it (`later_stages`): with every trip fixed it takes hundredths of a second
SQUEEZED_ROUTING_FIRST_S = 0.3

# HiGHS's own mip_rel_gap, which applies when the caller gives none
HIGHS_DEFAULT_GAP = 1e-4


def above_gap(o: StageOutcome, mip_gap: float | None) -> bool:
    gap = HIGHS_DEFAULT_GAP if mip_gap is None else max(mip_gap, 1e-9)
    return (o.objective is not None and o.bound is not None
            and relative_gap(o.objective, o.bound) > gap + 1e-12)


def queue_reporter(queue, key: int) -> ProgressFn | None:
    """Progress of hub group `key` in a worker process, sent to the parent's `drain`
    through `queue`."""
    if queue is None:
        return None

    def report(p: Progress) -> None:
        queue.put((key, p.incumbent, p.bound, p.gap, p.elapsed_s, p.label))
    return report


def group_rows(s: Scenario, hubs: list[str]) -> int:
    """What a hub group's models grow with: its demand groups and outstanding-waste rows."""
    mine = {v.village_id for v in s.villages if v.hub_id in set(hubs)}
    return sum(1 for g in s.demand if g.village_id in mine) + sum(
        1 for w in s.outstanding_waste if w.village_id in mine)


def _skipped(stage: str) -> StageOutcome:
    return StageOutcome("time_limit_no_solution", None, None, None, diagnosis=[{
        "what": f"{stage} plan", "why": "not started: the hub group's time budget was spent"}])


def best_plan(joint: StageOutcome, *earlier: StageOutcome | None) -> StageOutcome:
    """The joint outcome, or, when it has no plan, the cheapest plan an earlier stage found:
    each is a feasible plan of the joint problem, so a group cut short by its budget still
    hands a plan on (status "time_limit", the joint solve's bound if it ran)."""
    if joint.plan is not None:
        return joint
    found = [o for o in earlier if o is not None and o.plan is not None
             and o.objective is not None]
    if not found:
        return joint
    best = min(found, key=lambda o: o.objective if o.objective is not None else math.inf)
    return StageOutcome("time_limit", best.objective, joint.bound, best.plan, joint.stats)


def run_stage(
    s: Scenario, routes, hubs: list[str], mode: StageMode, time_limit_s, mip_gap, threads, progress,
    prepare: Callable[[BuiltModel], None] | None = None, warm_from: BuiltModel | None = None,
    options: dict[str, Any] | None = None, explain: bool = True,
    unc_start: tuple[list[TripType], Values] | None = None,
    floors: Floors | None = None,
) -> tuple[StageOutcome, BuiltModel]:
    """Build and solve one stage (mode) for `hubs`, started from `warm_from`'s solution
    when given; returns the model too, as the next stage's start. `prepare` turns the built
    model into a baseline's problem (fixes variables, adds rows) before the solve."""
    reused = warm_from is not None and mode == "joint" and warm_from.mode == "joint"
    if reused:
        # a sequential baseline's model *is* the joint model with some decisions fixed: free
        # them and start from its solution, instead of building the same model again
        assert warm_from is not None  # implied by `reused`
        b = warm_from
        as_joint(b)
        build_s = 0.0
    else:
        b = build_model(s, routes, mode=model_mode(mode), hubs=hubs,
                        trip_floors=floors_for(mode, floors))
        if prepare is not None:
            prepare(b)
        build_s = b.build_s
    if b.unservable:
        return StageOutcome("infeasible", None, None, None,
                            diagnosis=describe_unservable(s, b.unservable)), b
    warm = False
    if unc_start is not None:
        warm = uncoordinated_values_as_start(*unc_start, b)
    elif warm_from is not None and warm_from.mode == "uncoordinated":
        warm = uncoordinated_as_start(warm_from, b)
    elif warm_from is not None:
        if not reused:
            copy_values(warm_from.model, b.model)
        warm = True
    polish = finish = None
    if mode == "joint" and warm:
        polish = trip_day_polish(b, s, threads)
    elif mode in FINISHED_MODES and time_limit_s is not None:
        finish = trip_drop_finish(b, threads)
    r: SolveResult = run_highs(b.model, time_limit_s=time_limit_s, mip_gap=mip_gap,
                               threads=threads, warm_start=warm, progress=progress,
                               label=f"{mode}:{','.join(hubs) if len(hubs) < 4 else len(hubs)}",
                               options=options, explain_infeasible=explain,
                               polish=polish, polish_s=search_seconds(time_limit_s),
                               finish=finish, finish_s=FINISH_SHARE * (time_limit_s or 0.0),
                               finish_above_gap=FINISH_ABOVE_GAP)
    stats = {
        "build_s": build_s, "compile_s": r.compile_s, "handover_s": r.handover_s,
        "highs_s": r.highs_s, "load_s": r.load_s, "columns": r.num_cols, "rows": r.num_rows,
        "integers": r.num_integers, "nonzeros": r.nonzeros, **r.rechecks, **r.polished,
    }
    if r.objective is None:
        diag = describe_rows(s, r.violated_rows, "solver", f"no solution found ({r.status})")
        return StageOutcome(r.status, None, None, None, stats, diag), b
    plan = extract_plan(b, s)
    return StageOutcome(r.status, r.objective, r.bound, plan, stats), b


def floors_for(mode: StageMode, floors: Floors | None) -> bool | Floors:
    """The trip-cost floors a stage's model gets. Not the uncoordinated and single-use stages:
    on the county week the floors left their relaxations as they were (uncoordinated, hub
    H13: 28,539 CNY either way) or raised it but steered HiGHS's heuristics to worse plans
    in the few seconds those stages get (H13's single-use plan after 2.6 s: 22,576 CNY
    with floors, 21,071 without), and the single-use plan is the joint solve's start."""
    if mode in ("uncoordinated", "single_use"):
        return False
    return floors if floors is not None else True


# Solve one sequential baseline: its stage, and what turns the joint model into its problem;
# None when the hub group's time has no room for it.
BaselineRun = Callable[[StageMode, Callable[[BuiltModel], None]],
                       tuple[StageOutcome, BuiltModel] | None]


def sequential_baselines(
    s: Scenario, hubs: list[str], single_use: StageOutcome, b1: BuiltModel | None,
    run: BaselineRun, out: dict[str, StageOutcome],
) -> BuiltModel | None:
    """Solve both sequential baselines with `run` into `out` (`sequential_routing_first`,
    `sequential_packaging_first`) and the better of them as `sequential`; returns its model
    (the joint solve's start), or None without a plan.

    Each is reported with its own bound: a bound on the best plan that way of planning can
    make, so its gap says how far the baseline itself is from its own optimum."""
    found: list[tuple[StageOutcome, BuiltModel]] = []
    names = {"routing_first": "sequential_routing_first",
             "packaging_first": "sequential_packaging_first"}
    rule = packaging_rule(s, hubs)
    preparations: list[tuple[StageMode, Callable[[BuiltModel], None]]] = [
        ("packaging_first", lambda b: fix_packaging(b, s, rule))]
    if single_use.plan is not None and b1 is not None:
        start = b1
        preparations.insert(0, ("routing_first", lambda b: fix_routing(b, start)))
    for mode, prepare in preparations:
        done = run(mode, prepare)
        if done is None:
            out[names[mode]] = StageOutcome("time_limit_no_solution", None, None, None, diagnosis=[
                {"what": f"sequential {mode} plan", "why": "no time left for it"}])
            continue
        if mode == "routing_first":
            done = (on_single_use_trips(done[0], single_use), done[1])
        out[names[mode]] = done[0]
        found.append(done)
    if "sequential_routing_first" not in out:
        out["sequential_routing_first"] = StageOutcome(
            single_use.status, None, None, None, diagnosis=single_use.diagnosis or [
                {"what": "sequential routing_first plan", "why": "no single-use plan"}])
    with_plan = [(o, b) for o, b in found if o.objective is not None]
    if not with_plan:
        out["sequential"] = out["sequential_packaging_first"]
        return None
    seq, b_seq = min(with_plan, key=lambda ob: ob[0].objective or 0.0)
    name = "routing_first" if seq is out["sequential_routing_first"] else "packaging_first"
    out["sequential"] = dataclasses.replace(seq, method=name)
    return b_seq


def on_single_use_trips(rf: StageOutcome, single_use: StageOutcome) -> StageOutcome:
    """Routing first as the plan it is: stage 2 is solved on fixed trips, so its own bound
    is its objective, but it bounds the way of planning only when the single-use trips it
    is built on are proven optimal. Otherwise it has no bound (and no gap), and the status
    of the stage its trips come from; `stats.single_use_gap` says how far those trips were
    from their own optimum. (A routing-first plan of 1,081.95 CNY had been found beside
    "optimal" ones reported at 1,088.74 and 1,241.21 with bound = objective.)"""
    if rf.objective is None or single_use.objective is None:
        return rf
    su_gap = (None if single_use.bound is None
              else relative_gap(single_use.objective, single_use.bound))
    stats = rf.stats if su_gap is None else {**rf.stats, "single_use_gap": su_gap}
    if su_gap is not None and su_gap <= PROVEN_GAP:
        return dataclasses.replace(rf, stats=stats)
    status = "time_limit" if single_use.status.startswith("time_limit") else "feasible"
    return dataclasses.replace(rf, status=status, bound=None, stats=stats)


#: the uncoordinated plan as the single-use stage's start: its trips and non-zero values
UncoordinatedStart = tuple[list[TripType], Values]


class _Group:
    """One hub group's stages against its wall-clock budget (`time_limit_s`, building and
    reading back included): `optimizer.budget.stage_limit` shares it out as the stages
    start and skips the stages it has no room for."""

    def __init__(self, s: Scenario, hubs: list[str], time_limit_s: float | None,
                 threads: int | None, progress: ProgressFn | None,
                 overhead_s_per_row: float | None, params: BudgetParams) -> None:
        self.s, self.hubs, self.time_limit_s, self.threads = s, hubs, time_limit_s, threads
        self.progress, self.params = progress, params
        self.routes = hub_routes(s, hubs)
        self.rows = group_rows(s, hubs)
        self.t0 = time.perf_counter()
        # a built stage's overhead: estimated until a stage has measured it
        self.built_s = (params.overhead_s_per_row if overhead_s_per_row is None
                        else overhead_s_per_row) * self.rows
        self.label = ",".join(hubs) if len(hubs) < 4 else str(len(hubs))

    def left_s(self) -> float:
        assert self.time_limit_s is not None
        return self.time_limit_s - (time.perf_counter() - self.t0)

    def run(self, stage: Stage, mode: StageMode, gap: float | None,
            report: ProgressFn | None, limit_s: float | None = None,
            share: float | None = None, **kwargs: Any) -> tuple[StageOutcome, BuiltModel] | None:
        """Run `stage` with `limit_s`, or with what `stage_limit` gives it (None: skipped)."""
        tl = limit_s
        if self.time_limit_s is not None and tl is None:
            tl = stage_limit(stage, self.left_s(), self.built_s, self.rows, self.params, share)
            if tl is None:
                return None
        t = time.perf_counter()
        # Explaining an infeasible model is an elastic solve of up to 30 s that no budget
        # has room for: with a time limit only the joint stage (the county's diagnosis)
        # explains; a baseline's stage says "infeasible" without the why.
        o, b = run_stage(self.s, self.routes, self.hubs, mode, tl, gap, self.threads, report,
                         explain=self.time_limit_s is None or stage == "joint", **kwargs)
        o.stats["overhead_s"] = max(0.0, time.perf_counter() - t - o.stats.get("highs_s", 0.0))
        if o.status == "infeasible":  # an explanation is no overhead of the next stages
            o.stats["overhead_s"] = sum(o.stats.get(k, 0.0) for k in (
                "build_s", "compile_s", "handover_s", "load_s"))
        if stage != "joint" and "highs_s" in o.stats:
            self.built_s = o.stats["overhead_s"]
        if self.progress is not None and o.objective is not None:
            bound = o.bound if stage == "joint" and o.bound is not None else -math.inf
            self.progress(Progress(o.objective, bound, relative_gap(o.objective, bound),
                                   time.perf_counter() - self.t0, f"{stage}:{self.label}"))
        return o, b


def first_plan(
    s: Scenario, hubs: list[str], time_limit_s: float | None,
    threads: int | None, progress: ProgressFn | None, *, hurry: bool = False,
    overhead_s_per_row: float | None = None, params: BudgetParams = DEFAULT,
    retry: bool = True,
) -> tuple[StageOutcome, UncoordinatedStart | None]:
    """A hub group's first plan: the uncoordinated stage, with all of `time_limit_s` (at
    least `first_plan_s`), and the start it hands the single-use stage.

    It is solved to a looser gap (3 %, reported with it): it is tens of per cent
    worse than the joint plan, and its solve time is better spent proving the joint plan's
    bound. Every later stage starts from this plan and the county needs one from every
    group, so a try that found none is repeated once with what the budget has left (at
    least twice the first try's time); not with `retry` off (a baseline alone, which is
    not worth running past the deadline). In a `hurry` (`BudgetParams.hurry_share`) HiGHS
    stops at its first solution."""
    g = _Group(s, hubs, time_limit_s, threads, progress, overhead_s_per_row, params)
    options = HURRY_OPTIONS if hurry else None
    # 3 % whatever --gap says: looser, the uncoordinated baseline (and the joint plan's
    # gain over it) would follow the joint plan's own tolerance
    gap = UNCOORDINATED_GAP

    def limit() -> float | None:
        if time_limit_s is None:
            return None
        return max(first_plan_s(g.rows, params), g.left_s() - g.built_s)

    done = g.run("uncoordinated", "uncoordinated", gap, None, limit_s=limit(), options=options)
    assert done is not None  # a stage given its limit always runs
    unc, b0 = done
    if (retry and unc.plan is None and unc.status == "time_limit_no_solution"
            and time_limit_s is not None):
        spent = unc.stats.get("highs_s", 0.0) + unc.stats.get("overhead_s", 0.0)
        again = g.run("uncoordinated", "uncoordinated", gap, None,
                      limit_s=max(2 * first_plan_s(g.rows, params), g.left_s() - g.built_s),
                      options=options)
        assert again is not None
        unc, b0 = again
        unc.stats["first_try_s"] = spent
    start = (b0.trips, values_of(b0.model)) if unc.plan is not None else None
    unc.stats["wall_s"] = time.perf_counter() - g.t0
    return unc, start


def later_stages(
    s: Scenario, hubs: list[str], unc: StageOutcome, start: UncoordinatedStart | None,
    time_limit_s: float | None, mip_gap: float | None, threads: int | None,
    progress: ProgressFn | None, skip_joint: bool = False, *,
    overhead_s_per_row: float | None = None, params: BudgetParams = DEFAULT,
    marginals: bool = False,
) -> dict[str, StageOutcome]:
    """The stages after a group's first plan: single-use (started from the uncoordinated
    plan), stage 2 of the sequential baseline, joint; the outcomes by mode, "joint" the best
    plan found (`unc`'s, if nothing later had time). `progress` hears of the joint solve's
    incumbents and bounds, and of every stage's plan. With `marginals` the joint outcome
    carries its plan's marginal values (`with_marginals`), their time taken from the
    stages' (`MARGINAL_S_PER_ROW`)."""
    reserve = 0.0
    if marginals and time_limit_s is not None:
        reserve = min(MARGINAL_MAX_SHARE * time_limit_s, MARGINAL_S_PER_ROW * group_rows(s, hubs))
        time_limit_s -= reserve
    g = _Group(s, hubs, time_limit_s, threads, progress, overhead_s_per_row, params)
    out: dict[str, StageOutcome] = {"uncoordinated": unc}
    su_gap = baseline_gap(mip_gap, time_limit_s is not None)
    done = g.run("single_use", "single_use", su_gap, None, unc_start=start)
    seq1, b1 = done if done is not None else (_skipped("single_use"), None)
    out["single_use"] = seq1
    # At least `floors_min_s` even where less is left: for a group squeezed out of its
    # joint stage the floors are its bound (200 % county at 120 s: gap 12 % with them, 24 %
    # with the floors cut at the group's deadline). 0 s where that least would leave no
    # room for routing first's build, whose LP relaxation is the better bound
    # (`BudgetParams.floors_s`); routing first then runs whatever the clock says by the
    # time it starts (the floors' sets take a moment too).
    floors_s = None if time_limit_s is None else params.floors_s(
        g.left_s(), g.built_s if seq1.plan is not None else None)
    floors_skipped = floors_s == 0.0
    floors = joint_floors(s, g.routes, hubs, floors_s)
    def baseline(mode: StageMode, prepare: Callable[[BuiltModel], None]
                 ) -> tuple[StageOutcome, BuiltModel] | None:
        """Both sequential baselines are budgeted as the one "sequential" stage each. Routing
        first runs even when that budget has no room left: with every trip fixed HiGHS needs
        hundredths of a second, so its cost is building the model, and that model is the
        group's joint model. A group squeezed out of its later stages (the last ones at 200 %
        of the county) then still hands on a sequential plan instead of its single-use one,
        and gets its joint model's LP relaxation as bound (200 % county at 120 s: H20B's
        plan 18,454 -> 14,520 CNY). Not for a group already more than a build past its
        budget: something else is wrong there, and the plan's deadline comes first."""
        share = params.packaging_first_share if mode == "packaging_first" else None
        gap = baseline_gap(mip_gap, False)
        done = g.run("sequential", mode, gap, None, share=share, prepare=prepare,
                     floors=floors)
        if (done is None and mode == "routing_first" and time_limit_s is not None
                and (g.left_s() > -g.built_s or floors_skipped)):
            done = g.run("sequential", mode, gap, None, limit_s=SQUEEZED_ROUTING_FIRST_S,
                         prepare=prepare, floors=floors)
            if done is not None:
                done[0].stats["past_budget"] = 1.0
        return done

    warm = sequential_baselines(s, hubs, seq1, b1, baseline, out)
    if skip_joint:
        return out
    # Without primal heuristics only when the start is good: a single-use stage cut short
    # far above the gap (hub groups squeezed by the deadline) leaves a start that the
    # heuristics do improve.
    good_start = seq1.objective is not None and seq1.bound is not None and (
        relative_gap(seq1.objective, seq1.bound) <= max(POOR_START_FACTOR * (mip_gap or 0.0),
                                                        POOR_START_MIN))
    joint = _skipped("joint")
    trunk: TrunkBound | None = None
    trunk_s = 0.0 if time_limit_s is None else params.trunk_bound_s(g.left_s())
    if trunk_s > 0 and warm is not None and warm.has_trunk:
        # before the joint stage, which gets what this leaves: the joint stage cut short by
        # the time limit is the case this bound is for
        as_joint(warm)
        trunk = trunk_rounding_bound(warm, trunk_s, threads)
    if warm is not None:
        done = g.run("joint", "joint", mip_gap, progress, warm_from=warm,
                     options=JOINT_WARM_OPTIONS if good_start else None)
        if done is not None:
            joint, bj = done
            if above_gap(joint, mip_gap) and joint.plan is not None:
                joint.start = values_of(bj.model)
    cold: BuiltModel | None = None
    if warm is None and (time_limit_s is None or seq1.plan is None):
        # no sequential plan to start from (not a matter of time): the joint model cold
        done = g.run("joint", "joint", mip_gap, progress, floors=floors)
        if done is not None:
            joint, cold = done
    best = best_plan(no_worse_than_sequential(joint, out.get("sequential")), seq1, unc)
    if (joint.plan is None and best.objective is not None and seq1.objective is not None
            and seq1.objective < best.objective):
        # no joint solve, and a sequential plan cut short (routing first past the budget)
        # dearer than the single-use plan on the same trips: the group hands on the cheaper
        best = dataclasses.replace(best, objective=seq1.objective, plan=seq1.plan,
                                   stats={k: v for k, v in best.stats.items()
                                          if k != "replaced_by_sequential"})
    # the LP relaxation only where the trunk bound, which starts from it, did not solve it;
    # without the trunk bound (a group with under 2 s left) also when the joint solve stopped
    # above its gap: its search may have left HiGHS too little time to finish its root, whose
    # bound is then far below the relaxation (200 % county: 11,694 against 26,426 CNY)
    no_trunk = trunk is None or trunk.bound is None
    cut_short = no_trunk and above_gap(best, mip_gap)
    relax_from = (warm if warm is not None else cold) if no_trunk else None
    extra: dict[str, float] = {"floors_s": floors.seconds}
    if (warm is None and cold is None and time_limit_s is not None and g.left_s() > 0
            and needs_bound(best, floors.bound, cut_short)):
        # squeezed out before its sequential stage but with time left (routing first, which
        # builds the joint model, needs a single-use plan): the joint model is built for its
        # LP relaxation alone, about 0.5 s on a county-week hub, possibly past the group's
        # budget; without it the bound is the floors', 29 % of H20's plan at 200 % of the
        # county. A group whose budget is spent keeps the floors' bound.
        t = time.perf_counter()
        relax_from = build_model(s, g.routes, mode="joint", hubs=hubs, trip_floors=floors)
        if relax_from.unservable:
            relax_from = None
        extra["relaxation_build_s"] = time.perf_counter() - t
    best = bound_without_search(best, floors.bound, relax_from, threads, cut_short=cut_short)
    if trunk is not None:
        extra["trunk_bound_s"] = trunk.seconds
        if trunk.bound is not None:  # not branched: the LP relaxation, still a bound
            best = with_floor_bound(best, trunk.bound,
                                    "trunk_rounding" if trunk.branched else "relaxation")
    out["joint"] = dataclasses.replace(best, stats={**best.stats, **extra})
    built = warm if warm is not None else cold
    if marginals and (time_limit_s is None or (built is not None and g.left_s() + reserve > 0)):
        # not for a group squeezed out before its joint model was built (building one now,
        # 0.3-0.6 s a county hub, would run past its budget) or past its budget and the
        # reserve: the planner works those hubs' values out after the plan if its
        # deadline allows
        out["joint"] = with_marginals(s, hubs, out["joint"], built, threads)
    # wall time of these stages (objective) and the budget they were given (bound)
    out["_time_s"] = StageOutcome("ok", time.perf_counter() - g.t0, time_limit_s, None)
    return out


#: a hub group's marginal values (`with_marginals`) take about this long per row of its
#: demand (`group_rows`: 688-1,290 a county-week hub, whose values took 0.13-0.95 s on the
#: built model; H04: compiling 0.28 s, the LP 0.06 s, HiGHS's ranging 0.14 s); the later
#: stages leave them that much of their budget ...
MARGINAL_S_PER_ROW = 4e-4
#: ... but never more than this share of it
MARGINAL_MAX_SHARE = 0.05


def with_marginals(s: Scenario, hubs: list[str], o: StageOutcome, b: BuiltModel | None,
                   threads: int | None) -> StageOutcome:
    """`o` with the marginal values of its plan (`marginal.marginals_and_completion`), on the
    group's joint model `b` where the stages built one (its baseline fixings undone first).
    Why here: the model is built already, and worked out after the county's plan, at the
    end of its time limit, the county week's 20 hubs all ended "not computed".

    The LP they come from is the least-cost plan on `o`'s trips; when it is cheaper than
    `o`'s plan (a solve cut short leaves packaging, pools or loads that are not the best for
    its trips) it becomes the plan, so that the values describe the plan shown
    (`lp_completion_cny` in the stats: what it saved)."""
    from optimizer.marginal import marginals_and_completion, plan_trip_keys

    if o.plan is None:
        return o
    t = time.perf_counter()
    if b is not None:
        as_joint(b)
    values, cost, plan = marginals_and_completion(s, hubs, o.plan, b, threads)
    stats = {**o.stats}
    if (plan is not None and cost is not None and o.objective is not None
            and cost < o.objective - COMPLETION_MIN_GAIN * max(1.0, abs(o.objective))):
        stats["lp_completion_cny"] = o.objective - cost
        o = dataclasses.replace(o, objective=cost, plan=plan)
        if o.bound is not None and o.bound > cost:  # a bound is never above a plan's cost
            o = dataclasses.replace(o, bound=cost)
    stats["marginal_s"] = time.perf_counter() - t
    assert o.plan is not None  # checked above; the completion is a plan too
    return dataclasses.replace(o, marginals=values, marginals_on=plan_trip_keys(o.plan, hubs),
                               stats=stats)


#: the LP's plan on the same trips replaces a group's plan when it is cheaper by more than
#: this share of its cost (HiGHS's tolerances are 1e-7 to 1e-6)
COMPLETION_MIN_GAIN = 1e-6


def solve_hubs(
    s: Scenario, hubs: list[str], time_limit_s: float | None, mip_gap: float | None,
    threads: int | None, progress: ProgressFn | None, baselines: bool = True,
    only_uncoordinated: bool = False, skip_joint: bool = False, *,
    overhead_s_per_row: float | None = None, params: BudgetParams = DEFAULT,
) -> dict[str, StageOutcome]:
    """All stages for one group of hubs in one go: uncoordinated, sequential (2 stages),
    joint, within `time_limit_s` of wall clock (the first plan gets its share as the
    stage_limit of the whole budget). The uncoordinated stage runs also without
    `baselines` (then it is the others' start only; the caller leaves it unreported)."""
    t0 = time.perf_counter()
    first_s = time_limit_s
    if time_limit_s is not None and not only_uncoordinated:
        rows = group_rows(s, hubs)
        built = (params.overhead_s_per_row if overhead_s_per_row is None
                 else overhead_s_per_row) * rows
        first_s = built + (stage_limit("uncoordinated", time_limit_s, built, rows, params)
                           or 0.0)
    # the uncoordinated baseline alone (the linked model of a county whose fleet binds)
    # gets no second try past its time: at 200 % of the county that was 65 s
    unc, start = first_plan(s, hubs, first_s, threads, progress,
                            overhead_s_per_row=overhead_s_per_row, params=params,
                            retry=not only_uncoordinated)
    if only_uncoordinated:
        return {"uncoordinated": unc}
    left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - t0)
    out = later_stages(s, hubs, unc, start, left, mip_gap, threads, progress, skip_joint,
                       overhead_s_per_row=overhead_s_per_row, params=params)
    if "_time_s" in out:
        out["_time_s"] = StageOutcome("ok", time.perf_counter() - t0, time_limit_s, None)
    return out


#: HiGHS's limit for the LP relaxation that bounds a joint solve cut short
RELAXATION_LIMIT_S = 2.0


def relaxation_bound(b: BuiltModel, threads: int | None,
                     time_limit_s: float = RELAXATION_LIMIT_S) -> float | None:
    """The optimum of the joint model's LP relaxation (`b`, with a baseline's fixings undone),
    or None if HiGHS does not prove it within `time_limit_s`."""
    as_joint(b)
    comp = compile_model(b.model)
    values = relaxation_values(comp, threads, time_limit_s)
    return None if values is None else objective_of(comp, values)


def needs_bound(o: StageOutcome, floor: float, cut_short: bool = False) -> bool:
    """Whether a joint outcome's bound is worth an LP relaxation: it has a plan, and its solve
    never ran, stopped below `floor` (the bound known before any solve), or was `cut_short`
    above its gap."""
    return o.objective is not None and (o.bound is None or o.bound < floor or cut_short)


def bound_without_search(o: StageOutcome, floor: float, b: BuiltModel | None,
                         threads: int | None, cut_short: bool = False) -> StageOutcome:
    """A joint outcome that `needs_bound`, with the better of its bound, `floor` and, where
    the group's joint model `b` is built, its LP relaxation (a fraction of a second) as its
    bound."""
    source = "floors"
    if b is not None and needs_bound(o, floor, cut_short):
        lp = relaxation_bound(b, threads)
        if lp is not None and lp > floor:
            floor, source = lp, "relaxation"
    return with_floor_bound(o, floor, source)


def with_floor_bound(o: StageOutcome, floor: float, source: str = "floors") -> StageOutcome:
    """`o` with `floor` (a bound that needs no MIP search: `model.covers.cost_floor`, or the
    joint model's LP relaxation) as its bound where its joint solve gave none or a lower one,
    recorded as `bound_from_<source>` (replacing an earlier source's mark: the bound is from
    one place, and `plan solve`'s summary counts each group once)."""
    if o.objective is None or floor <= 0 or not math.isfinite(floor):
        return o
    if o.bound is not None and o.bound >= floor - 1e-6 * max(1.0, abs(floor)):
        # the joint solve's own bound, a hair (solver tolerances) below `floor` at most: the
        # tighter value is reported, but not as a bound from before the solve (the tiny
        # example's proven optimum said so, and that a longer limit would tighten it)
        tighter = max(o.bound, min(floor, o.objective))
        return o if tighter == o.bound else dataclasses.replace(o, bound=tighter)
    stats = {k: v for k, v in o.stats.items() if not k.startswith("bound_from_")}
    return dataclasses.replace(o, bound=min(floor, o.objective),
                               stats={**stats, f"bound_from_{source}": 1.0})


def no_worse_than_sequential(joint: StageOutcome, seq: StageOutcome | None,
                             status: str | None = None) -> StageOutcome:
    """The joint outcome, or the sequential plan in its place when the joint solve has no
    plan or a worse one. The warm start makes the latter impossible; this guards against
    HiGHS rejecting the start. Its status: `status`, else the joint solve's (no plan:
    "time_limit"). A substitution is recorded in the stats (`replaced_by_sequential`, 1 per
    hub group), so a plan that is the sequential one in disguise can be told apart."""
    if seq is None or seq.plan is None or seq.objective is None:
        return joint
    if joint.plan is not None and joint.objective is not None and (
            joint.objective <= seq.objective + 1e-6 * max(1.0, abs(seq.objective))):
        return joint
    status = status or (joint.status if joint.plan is not None else "time_limit")
    stats = {**joint.stats, "replaced_by_sequential": 1.0}
    return StageOutcome(status, seq.objective, joint.bound, seq.plan, stats)


def refine_joint(
    s: Scenario, hubs: list[str], prev: StageOutcome, time_limit_s: float,
    mip_gap: float | None, threads: int | None, progress: ProgressFn | None = None,
    marginals: bool = False,
) -> StageOutcome:
    """Second pass for a hub group whose joint solve hit its time budget above the gap:
    solve the joint model again from its incumbent with the time the quicker groups left.
    HiGHS's search tree is lost between the passes, but its root (cuts included) takes a
    few seconds and the bound then rises past where the first pass stopped. The better
    objective and the higher bound of the two passes are kept: both are valid."""
    t0 = time.perf_counter()
    routes = hub_routes(s, hubs)
    b = build_model(s, routes, mode="joint", hubs=hubs)
    set_values(b.model, prev.start or {})
    # `time_limit_s` is the pass's wall clock: building the model came out of it
    left = max(DEFAULT.min_stage_s, time_limit_s - (time.perf_counter() - t0))
    polish = trip_day_polish(b, s, threads) if prev.start else None
    r = run_highs(b.model, time_limit_s=left, mip_gap=mip_gap, threads=threads,
                  warm_start=bool(prev.start), progress=progress,
                  label=f"joint-refine:{','.join(hubs) if len(hubs) < 4 else len(hubs)}",
                  options=JOINT_WARM_OPTIONS,
                  polish=polish, polish_s=search_seconds(left))
    stats = dict(prev.stats)
    stats["refine_highs_s"] = r.highs_s
    stats.update({k: stats.get(k, 0.0) + v for k, v in {**r.rechecks, **r.polished}.items()})
    bound = prev.bound
    if r.bound is not None and (bound is None or r.bound > bound):
        bound = r.bound
    better = r.objective is not None and prev.objective is not None and (
        r.objective < prev.objective - 1e-9 * max(1.0, abs(prev.objective)))
    objective = r.objective if better else prev.objective
    out = StageOutcome("feasible", objective, bound, extract_plan(b, s) if better else prev.plan,
                       stats, prev.diagnosis)
    if above_gap(out, mip_gap):
        out.status = "time_limit"
    if marginals and better and time.perf_counter() - t0 < time_limit_s:
        # within the pass's share only; past it the planner works them out if it can
        out = with_marginals(s, hubs, out, b, threads)
    elif marginals:  # the plan is the first pass's, and so are its values
        out.marginals, out.marginals_on = prev.marginals, prev.marginals_on
    return out
