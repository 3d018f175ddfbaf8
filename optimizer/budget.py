"""The time budget of one plan: how a wall-clock limit for the whole plan is shared between
the hub groups, and between the stages inside a group, so that what HiGHS does not see —
building and compiling each model, reading its plan back, the KPIs at the end — fits in
the limit too. (A caller that writes the report keeps `optimizer.report_seconds` back.)

Pure functions of times and sizes, so that the rules can be tested without a solver; the
planner (`optimizer.planner`, `optimizer.stages`) asks them with the clock's readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["uncoordinated", "single_use", "sequential", "joint"]
#: the order a hub group's stages run in; each starts from the one before (docs/optimizer.md)
STAGES: tuple[Stage, ...] = ("uncoordinated", "single_use", "sequential", "joint")


@dataclass(frozen=True)
class BudgetParams:
    """Shares and reserves of the time budget. Sizes are in rows: the demand groups and
    outstanding-waste entries of a hub group (what its models grow with).

    - ``overhead_s_per_row`` (o): wall time of one stage outside HiGHS — Pyomo build,
      compile, hand-over, reading the plan back — per row, before any group has measured
      it (then the measured figure is used: it follows the machine's load; 0.3-2.3 ms
      were measured on 2 cores at load averages from 1 to 13, so the first guess errs
      high: a group budgeted too little leaves its time to the groups after it);
    - ``reuse_factor``: the joint stage reuses the sequential model (no build), so its
      overhead is this fraction of a built stage's;
    - ``first_plan_s_per_row``, ``first_plan_min_s``: the least HiGHS time given to the
      uncoordinated stage, the group's first plan, which everything after starts from
      (it is cut only by the group's budget, never skipped);
    - ``stage_share``: share of the time left (after the overheads still to come and the
      later stages' minimum) given to a stage when it starts; a stage that reaches its gap
      early hands the rest on, and the joint stage gets what is left ("sequential" is
      routing first's, which with its trips fixed needs hundredths of a second);
    - ``packaging_first_share``: the packaging-first baseline's share instead (it was
      never the better sequential plan on the county week, and stopped at its time limit
      on every hub; its time is the joint stage's search);
    - ``min_stage_s``: a later stage starts only with at least this much HiGHS time for it;
    - ``highs_margin_s``, ``highs_margin_share``: HiGHS stops a little after its limit;
      the joint stage's limit leaves this much before the group's deadline;
    - ``first_plan_share``: every hub group gets its first plan before any group goes on
      (so that every hub has a plan whatever the limit); in that first phase a group's
      budget is this times its size-proportional share of the whole phase's worker time
      (the uncoordinated stage usually stops at its gap well before), at least its least
      time;
    - ``hurry_share``: when the first plans of all groups are expected to take more than
      this share of the time left, they stop at HiGHS's first solution instead of the
      uncoordinated gap (`HURRY_OPTIONS`; the baseline then reports its wider gap);
    - ``overcommit``: in the second phase a group gets the least its later stages need
      (`later_least_s`) and this times its size-proportional share of the worker time
      beyond the leasts of every group still waiting (groups go out largest first and many
      stop at their gap early; a strictly proportional split leaves the workers idle at the
      end);
    - ``finish_s``, ``finish_s_per_row``: kept back at the end of a plan for combining the
      groups' plans and the KPIs of the plan and its baselines;
    - ``first_plan_grace``, ``first_plan_grace_max_s``: a hub group's first plan still
      starts when it fits before the deadline plus this share of the time limit (at most
      the maximum, within the 5 s a limit may be overrun): the plan then ends that much
      late instead of having no plan at all (later stages run past it only as far as a
      squeezed group's routing-first baseline and LP relaxation take,
      `stages.later_stages`);
    - ``min_second_pass_s``, ``second_pass_margin_s``: a second pass for groups stopped
      above the gap runs only with this much time left before the deadline, less the
      margin;
    - ``floors_share``, ``floors_min_s``: the trip-cost floors of a group's later stages
      (`optimizer.floors`) stop after this share of the time the group has left when they
      start, but get at least the minimum (the sweep pool's take 0.4 s per county-week
      hub; any subset is valid), or none where that minimum would keep routing first from
      being built (`floors_s`).
    - ``trunk_bound_share``, ``trunk_bound_max_s``, ``trunk_bound_min_s``: the trunk rounding
      bound (`optimizer.trunk_bound`: 1.0-3.5 s on a county-week hub whose relaxation runs
      fractional trucks, 0.2 s where it does not), computed before a group's joint stage
      where its model has trunk legs, gets this share of what the group has left, at most
      the maximum, and is not run when that is below the minimum (a quarter left it out
      of 9 of 20 county-week hubs at 120 s; half of what is left costs the joint stage's
      search little, which HiGHS's root cut rounds slow, docs/optimizer.md).
    """

    overhead_s_per_row: float = 1.5e-3
    reuse_factor: float = 0.35
    first_plan_s_per_row: float = 1.0e-3
    first_plan_min_s: float = 0.5
    stage_share: tuple[tuple[Stage, float], ...] = (
        ("uncoordinated", 0.35), ("single_use", 0.5), ("sequential", 0.3))
    min_stage_s: float = 0.3
    highs_margin_s: float = 0.2
    highs_margin_share: float = 0.05
    first_plan_share: float = 0.3
    hurry_share: float = 0.5
    overcommit: float = 1.25
    finish_s: float = 0.3
    finish_s_per_row: float = 0.05e-3
    first_plan_grace: float = 0.25
    first_plan_grace_max_s: float = 4.0
    min_second_pass_s: float = 6.0
    second_pass_margin_s: float = 2.0
    floors_share: float = 0.15
    floors_min_s: float = 1.0
    trunk_bound_share: float = 0.5
    trunk_bound_max_s: float = 3.0
    trunk_bound_min_s: float = 0.5
    packaging_first_share: float = 0.05

    def floors_s(self, left_s: float, build_s: float | None = None) -> float:
        """The floors' time in a group with `left_s` left. With `build_s` (a model build's
        time, given where routing first can still run: the group has a single-use plan) 0,
        none computed, where routing first would run without the floors but their least
        would leave the group more than a build past its budget, and so not built: its
        model's LP relaxation is the better bound, weaker without the floors' rows but far
        above the floors' own (`cost_floor`, a third of the plan for three of 40 groups at
        200 % of the county on a slow machine). A group already more than a build past its
        budget builds nothing more, and the floors are its bound."""
        if build_s is not None and -build_s < left_s < self.floors_min_s - build_s:
            return 0.0
        return max(self.floors_min_s, self.floors_share * left_s)

    def trunk_bound_s(self, left_s: float) -> float:
        """The trunk rounding bound's time in a group with `left_s` left; 0 (not run) below
        the minimum, where it would stop before its bound rose."""
        share = min(self.trunk_bound_max_s, self.trunk_bound_share * left_s)
        return share if share >= self.trunk_bound_min_s else 0.0

    def __post_init__(self) -> None:
        shares = dict(self.stage_share)
        if set(shares) != set(STAGES[:-1]) or not all(0 < v <= 1 for v in shares.values()):
            raise ValueError("stage_share: a share in (0, 1] for every stage but the joint")
        if self.overcommit < 1 or not 0 < self.reuse_factor <= 1:
            raise ValueError("overcommit must be >= 1 and reuse_factor in (0, 1]")
        if not 0 < self.first_plan_share <= 1 or not 0 < self.hurry_share <= 1:
            raise ValueError("first_plan_share and hurry_share must be in (0, 1]")
        if not 0 <= self.first_plan_grace < 1:
            raise ValueError("first_plan_grace must be in [0, 1)")


DEFAULT = BudgetParams()

#: HiGHS options of a first plan in a hurry: stop at the first solution found
HURRY_OPTIONS = {"mip_max_improving_sols": 1}


def stage_overhead_s(stage: Stage, built_overhead_s: float, p: BudgetParams = DEFAULT) -> float:
    """Expected wall time of `stage` outside HiGHS, given that of a stage that builds its
    model."""
    return built_overhead_s * (p.reuse_factor if stage == "joint" else 1.0)


def grace_s(time_limit_s: float, p: BudgetParams = DEFAULT) -> float:
    """How far past the deadline a first plan may still end (`first_plan_grace`)."""
    return min(p.first_plan_grace * time_limit_s, p.first_plan_grace_max_s)


def first_plan_s(rows: int, p: BudgetParams = DEFAULT) -> float:
    return max(p.first_plan_min_s, p.first_plan_s_per_row * rows)


def first_plan_s_per_row(p: BudgetParams = DEFAULT) -> float:
    """Wall time of a group's uncoordinated stage per row, before any group measured it."""
    return p.overhead_s_per_row + p.first_plan_s_per_row


def group_min_s(rows: int, s_per_row: float, p: BudgetParams = DEFAULT) -> float:
    """The least wall time a hub group needs: its first (uncoordinated) plan, at
    `s_per_row` (measured, or `first_plan_s_per_row`)."""
    return max(p.first_plan_min_s, s_per_row * rows)


def stage_limit(stage: Stage, left_s: float, built_overhead_s: float, rows: int,
                p: BudgetParams = DEFAULT, share: float | None = None) -> float | None:
    """HiGHS's time limit for `stage` when `left_s` of its group's budget remain, or None:
    skip this stage and the ones after it (the group keeps the plan it has).

    The uncoordinated stage always runs, with at least `first_plan_s`: without its plan the
    group has none. A later stage runs if its overhead and `min_stage_s` fit in what is
    left; it gets its share of what remains after its own overhead and the least the later
    stages need, never less than `min_stage_s` (`share` instead of the stage's own, for a
    baseline budgeted as part of it). The joint stage gets all that is left but its
    overhead and HiGHS's overshoot."""
    k = STAGES.index(stage)
    own = stage_overhead_s(stage, built_overhead_s, p)
    later = sum(stage_overhead_s(s, built_overhead_s, p) + p.min_stage_s for s in STAGES[k + 1:])
    if stage == "uncoordinated":
        floor = first_plan_s(rows, p)
        return max(floor, dict(p.stage_share)[stage] * (left_s - own - later))
    available = left_s - own
    if available < p.min_stage_s:
        return None
    if stage == "joint":
        limit = (available - p.highs_margin_s) / (1 + p.highs_margin_share)
        return max(p.min_stage_s, limit)
    own_share = dict(p.stage_share)[stage] if share is None else share
    return max(p.min_stage_s, own_share * (available - later))


def group_budget_s(left_s: float, workers: int, busy_s: list[float], weight: float,
                   weights_after: float, mins_after_s: list[float], min_own_s: float,
                   scale: float) -> float:
    """Wall-clock budget of the hub group that starts now on a free worker.

    `left_s` is the time to the deadline; `busy_s` the time each group still running on
    another worker is budgeted to take from now on; `weight` this group's size,
    `weights_after` that of the groups not started yet and `mins_after_s` the least time
    each of them needs. The group gets `scale` times its size-proportional share of the
    free worker time (`first_plan_share` for first plans, `overcommit` for the later
    stages), but leaves on its own worker the least time of the later groups that the
    other workers have no room for before the deadline (placed largest first), never
    takes more than `left_s`, and never less than `min_own_s`."""
    left = max(0.0, left_s)
    room = [max(0.0, left - b) for b in busy_s] + [left] * max(0, workers - 1 - len(busy_s))
    overflow = 0.0
    for least in sorted(mins_after_s, reverse=True):
        k = max(range(len(room)), key=room.__getitem__) if room else -1
        if k >= 0 and room[k] >= least:
            room[k] -= least
        else:
            overflow += least
    share = scale * weight / (weight + weights_after) * free_worker_s(left, workers, busy_s)
    return max(min_own_s, min(share, left - overflow))


def free_worker_s(left_s: float, workers: int, busy_s: list[float]) -> float:
    """Worker time to the deadline that the running groups' budgets leave free."""
    left = max(0.0, left_s)
    return workers * left - sum(min(b, left) for b in busy_s)


def later_budget_cap_s(left_s: float, workers: int, busy_s: list[float], weight: float,
                       weights_after: float, mins_after_s: list[float], own_least_s: float,
                       own_min_s: float, overcommit: float) -> float:
    """The most a group starting its later stages gets: its own least (`own_least_s`,
    `later_least_s`) and `overcommit` times its size-proportional share of the worker time
    beyond its own and every waiting group's least, never below `own_min_s`. Where no
    group stops early (200 % of the county on a slow machine) the first groups' 1.25
    shares of all the time left the last ten with 0.7-1.3 s each, too little for a
    sequential plan."""
    spare = max(0.0, free_worker_s(left_s, workers, busy_s) - sum(mins_after_s)
                - own_least_s)
    return max(own_min_s, own_least_s + overcommit * weight / (weight + weights_after) * spare)


def later_min_s(rows: int, overhead_s_per_row: float, p: BudgetParams = DEFAULT) -> float:
    """The least wall time worth starting a group's later stages for: the single-use
    stage's overhead and `min_stage_s` of HiGHS."""
    return overhead_s_per_row * rows + p.min_stage_s


def later_least_s(rows: int, overhead_s_per_row: float, p: BudgetParams = DEFAULT) -> float:
    """The least wall time a group's later stages need to hand on a sequential plan with its
    joint model's LP relaxation as bound: the single-use stage (its overhead and
    `min_stage_s`), the trip-cost floors' least, and the routing-first build, whose model
    is the joint model (its 0.3 s of HiGHS and the LP, tenths of a second, left out: an
    estimate for sharing time, not a promise). What a group starting its later stages
    leaves for each group still waiting: without it the first groups took their
    overcommitted shares and the last ones never started (200 % of the county at 120 s on
    a slow machine: 6 of 40 groups kept their uncoordinated plans, with no bound, so the
    county had no gap)."""
    return later_min_s(rows, overhead_s_per_row, p) + p.floors_min_s + overhead_s_per_row * rows


#: the least time a group's LP relaxation gets in `planner._bound_worker` (a county-week
#: hub's takes 0.1-0.2 s of HiGHS)
BOUND_LP_MIN_S = 0.1


def bound_fits(left_s: float, rows: int, overhead_s_per_row: float) -> bool:
    """Whether a group whose later stages had no room (`later_min_s` above `left_s`) still
    gets its joint model's LP relaxation as bound (`planner._bound_worker`): its build
    fits before the deadline, and the LP is cut at the deadline. Asking for the later
    stages' least instead refused the first group the schedule refuses, always: it is
    refused for that very reason, and kept the county without a bound."""
    return left_s >= overhead_s_per_row * rows + BOUND_LP_MIN_S


def finish_reserve_s(rows: int, p: BudgetParams = DEFAULT) -> float:
    """Time `solve` keeps back after the hub groups for combining and the KPIs."""
    return p.finish_s + p.finish_s_per_row * rows
