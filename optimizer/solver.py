"""Hand a Pyomo model to HiGHS and read the answer back: time limit, MIP gap, threads,
warm start, progress callbacks and infeasibility explanation.

Named ``solver`` (not ``solve``) so that it does not shadow the public ``optimizer.solve``.

Interface choice (measured, see bench/optimizer_interfaces.py and docs/optimizer.md): Pyomo's
``LinearStandardFormCompiler`` produces the sparse matrix in one pass and ``highspy.passModel``
hands it over as arrays; that is faster for a first solve than ``appsi_highs`` (which adds
rows one Python call at a time) and gives us the highspy object itself, so callbacks,
``setSolution`` warm starts and ``feasibilityRelaxation`` are all available.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

INF = highspy.kHighsInf


@dataclass(frozen=True)
class Progress:
    """One progress report of a running MIP solve."""

    incumbent: float
    bound: float
    gap: float
    elapsed_s: float
    label: str = ""


ProgressFn = Callable[[Progress], None]
# improves a feasible start within the seconds given: (compiled model, start, seconds) ->
# (values no worse than the start, what it did)
Polish = Callable[["CompiledModel", list[float], float], tuple[list[float], dict[str, float]]]


@dataclass
class SolveResult:
    status: str  # optimal | feasible | infeasible | time_limit | error
    objective: float | None
    bound: float | None
    gap: float | None
    highs_s: float
    compile_s: float
    handover_s: float
    load_s: float
    num_cols: int
    num_rows: int
    num_integers: int
    nonzeros: int
    violated_rows: list[tuple[str, float]] = field(default_factory=list)
    # objective rechecks (see run_highs): counts and CNY, summed into the plan's stats
    rechecks: dict[str, float] = field(default_factory=dict)
    # what `polish` did before the solve (see run_highs)
    polished: dict[str, float] = field(default_factory=dict)


def relative_gap(obj: float, bound: float) -> float:
    if not (math.isfinite(obj) and math.isfinite(bound)):
        return math.inf
    return abs(obj - bound) / max(abs(obj), 1e-9) if abs(obj - bound) > 1e-9 else 0.0


@dataclass
class CompiledModel:
    lp: Any
    columns: list
    rows: list
    offset: float
    compile_s: float


def compile_model(model: pyo.ConcreteModel) -> CompiledModel:
    """Pyomo -> arrays in HiGHS's own column-wise layout."""
    t0 = time.perf_counter()
    info = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=pyo.minimize)
    A = info.A.tocsc()
    n_rows, n_cols = A.shape
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    c = info.c.toarray().ravel() if info.c.shape[0] else np.zeros(n_cols)
    lp.col_cost_ = c.astype(np.float64)
    lp.offset_ = float(info.c_offset[0]) if len(info.c_offset) else 0.0
    lo = np.empty(n_cols)
    hi = np.empty(n_cols)
    integrality = []
    any_int = False
    for k, v in enumerate(info.columns):
        lb, ub = v.bounds
        lo[k] = -INF if lb is None else lb
        hi[k] = INF if ub is None else ub
        if v.is_integer():
            integrality.append(highspy.HighsVarType.kInteger)
            any_int = True
        else:
            integrality.append(highspy.HighsVarType.kContinuous)
    lp.col_lower_ = lo
    lp.col_upper_ = hi
    rhs = np.asarray(info.rhs, dtype=np.float64)
    sense = np.array([r[1] for r in info.rows], dtype=np.int8)
    lp.row_lower_ = np.where(sense >= 0, np.where(sense == 0, rhs, -INF), rhs)
    lp.row_upper_ = np.where(sense <= 0, np.where(sense == 0, rhs, INF), rhs)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.a_matrix_.num_col_ = n_cols
    lp.a_matrix_.num_row_ = n_rows
    if any_int:
        lp.integrality_ = integrality
    return CompiledModel(lp, list(info.columns), list(info.rows), lp.offset_,
                         time.perf_counter() - t0)


@contextlib.contextmanager
def _quiet_stdout():
    """HiGHS prints its banner from C++ straight to file descriptor 1 when an instance is
    created, before output_flag can be switched off; that would corrupt `--json` output."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def make_highs(time_limit_s: float | None, mip_gap: float | None, threads: int | None,
               lp_solver: str | None = None,
               options: dict[str, Any] | None = None) -> highspy.Highs:
    with _quiet_stdout():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    if threads is not None:
        # HiGHS sizes one process-wide thread pool on its first solve and then refuses
        # (model status "error") any instance asking for another size: a process that
        # solved with 2 threads could not solve with 1. Start each solve with a fresh pool
        # (cheap; solves in one process do not run concurrently here).
        highspy.Highs.resetGlobalScheduler(True)
        h.setOptionValue("threads", int(threads))
    if lp_solver is not None:
        h.setOptionValue("mip_lp_solver", lp_solver)
    h.setOptionValue("random_seed", 0)
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    return h


def relaxed_highs(comp: CompiledModel, time_limit_s: float | None, threads: int | None,
                  options: dict[str, Any] | None = None) -> highspy.Highs:
    """A HiGHS instance holding `comp`'s model with every column continuous, not yet run:
    callers that re-solve it after bound changes keep the instance for its warm basis."""
    h = make_highs(time_limit_s, None, threads, options=options)
    h.passModel(comp.lp)
    n = comp.lp.num_col_
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                            np.array([highspy.HighsVarType.kContinuous] * n))
    return h


def attach_progress(h: highspy.Highs, progress: ProgressFn | None, deadline: float | None,
                    label: str, t0: float) -> None:
    """Report incumbents and bounds; interrupt at our own deadline, because HiGHS's
    time_limit is only checked between phases and overshoots on large models."""
    last = [0.0]

    def report(e) -> None:
        out = e.data_out
        if progress is not None:
            now = time.perf_counter()
            if e.callback_type == highspy.cb.HighsCallbackType.kCallbackMipLogging and \
                    now - last[0] < 1.0:
                return
            last[0] = now
            progress(Progress(out.mip_primal_bound, out.mip_dual_bound, out.mip_gap,
                              now - t0, label))

    def interrupt(e) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            e.interrupt()

    if progress is not None:
        h.cbMipImprovingSolution.subscribe(report)
        h.cbMipLogging.subscribe(report)
    if deadline is not None:
        h.cbMipInterrupt.subscribe(interrupt)


def objective_of(comp: CompiledModel, values: np.ndarray) -> float:
    """c·x + offset: the cost of the values themselves, whatever the solver reports."""
    return float(np.dot(np.asarray(comp.lp.col_cost_), values)) + comp.offset


# the solver's objective and the one computed from its values may differ by this much
OBJECTIVE_RTOL = 1e-6
#: a plan whose gap is at most this is "optimal": the contract's (issue 5: "optimal" only
#: when optimality is proven, gap ≤ 1e-9). A frontier's lexicographic cost cap is looser
#: than the least cost by half of it (`frontier_model.COST_CAP_REL`), so its cost-optimal
#: end, proven, stays within it
PROVEN_GAP = 1e-9


def objectives_agree(a: float, b: float) -> bool:
    return abs(a - b) <= OBJECTIVE_RTOL * max(1.0, abs(a), abs(b))


@dataclass
class _Run:
    """One HiGHS run on a compiled model: its status, HiGHS's own objective and bound, and
    the values (integers rounded), or None without a solution."""

    status: str
    highs_objective: float | None
    bound: float | None
    values: np.ndarray | None
    highs_s: float
    handover_s: float


def _run_once(comp: CompiledModel, start: list[float] | None, *, time_limit_s: float | None,
              mip_gap: float | None, threads: int | None, lp_solver: str | None,
              options: dict[str, Any] | None, progress: ProgressFn | None, label: str,
              t0: float) -> _Run:
    if comp.lp.num_col_ == 0:
        return _empty_run(comp)
    h = make_highs(time_limit_s, mip_gap, threads, lp_solver, options)
    t1 = time.perf_counter()
    h.passModel(comp.lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = start
        sol.value_valid = True
        h.setSolution(sol)
    handover = time.perf_counter() - t1
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s * 1.05 + 1
    attach_progress(h, progress, deadline, label, t0)
    t2 = time.perf_counter()
    h.run()
    highs_s = time.perf_counter() - t2
    ms = h.getModelStatus()
    info = h.getInfo()
    has_int = comp.lp.integrality_ is not None and len(comp.lp.integrality_) > 0
    sol_ok = info.primal_solution_status == 2  # kSolutionStatusFeasible
    MS = highspy.HighsModelStatus
    if ms == MS.kInfeasible or (ms == MS.kUnboundedOrInfeasible and not sol_ok):
        status = "infeasible"
    elif ms == MS.kOptimal:
        status = "optimal"
    elif ms in (MS.kTimeLimit, MS.kInterrupt, MS.kIterationLimit, MS.kSolutionLimit):
        status = "time_limit" if sol_ok else "time_limit_no_solution"
    else:
        status = "feasible" if sol_ok else "error"
    if not sol_ok:
        return _Run(status, None, None, None, highs_s, handover)
    objective = float(info.objective_function_value)
    if has_int:
        bound: float | None = float(info.mip_dual_bound)
    else:
        bound = objective if status == "optimal" else None
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    is_int = np.array([v.is_integer() for v in comp.columns], dtype=bool)
    values[is_int] = np.round(values[is_int])
    values[~is_int & (np.abs(values) < 1e-9)] = 0.0
    return _Run(status, objective, bound, values, highs_s, handover)


def _empty_run(comp: CompiledModel) -> _Run:
    """A model without columns (nothing to move: a quiet day planned from the live state,
    a scenario of zero-parcel groups). HiGHS answers kModelEmpty, with no solution, which
    read as a solver error; its only plan is the empty one, feasible when every row holds
    with nothing in it, at the objective's constant."""
    lo = np.asarray(comp.lp.row_lower_, dtype=np.float64)
    hi = np.asarray(comp.lp.row_upper_, dtype=np.float64)
    if np.any(lo > 1e-9) or np.any(hi < -1e-9):
        return _Run("infeasible", None, None, None, 0.0, 0.0)
    return _Run("optimal", comp.offset, comp.offset, np.zeros(0), 0.0, 0.0)


def run_highs(
    model: pyo.ConcreteModel,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    warm_start: bool = False,
    progress: ProgressFn | None = None,
    label: str = "",
    lp_solver: str | None = None,
    explain_infeasible: bool = True,
    options: dict[str, Any] | None = None,
    polish: Polish | None = None,
    polish_s: float = 0.0,
    finish: Polish | None = None,
    finish_s: float = 0.0,
    finish_above_gap: float = 0.0,
) -> SolveResult:
    """Solve `model` with HiGHS and load the values back into its variables.

    With `polish` and a warm start, `polish` first improves the start for up to `polish_s`
    of the time limit (`optimizer.neighbourhood`); HiGHS then starts from its plan with the
    time left, so that the bound still comes from the whole model. With `finish`, a plan
    HiGHS returns when its time limit stopped it above the gap is improved by `finish` for up
    to `finish_s` after HiGHS (the caller's budget absorbs that time) when its gap is also
    above `finish_above_gap`; the bound stays HiGHS's, the objective is the finished plan's.

    With `warm_start`, the variables' current values are handed to HiGHS as a starting
    incumbent (they must form a feasible solution, as the sequential plan does for the joint
    model), so the result is never worse than that start even when the solve stops early.

    The objective returned is c·x + offset of the values returned, never HiGHS's own figure
    alone: HiGHS 1.16, given a start with presolve on, reported as optimal an objective (equal
    to its bound) that the solution it returned did not have. When the two differ by more than
    `OBJECTIVE_RTOL`, the model is solved again with presolve off and no start, and
    `rechecks` records it (`objective_resolves`, and the difference in
    `objective_mismatch`)."""
    t0 = time.perf_counter()
    try:
        comp = compile_model(model)
    except InfeasibleConstraintException as exc:
        # a row with no free variable left that cannot hold (trips fixed to a plan that
        # needs vehicles a what-if took away): infeasible, named, without a solve
        found = re.search(r"'([^']+)'", str(exc))
        return SolveResult("infeasible", None, None, None, 0.0, time.perf_counter() - t0,
                           0.0, 0.0, 0, 0, 0, 0,
                           violated_rows=[(found.group(1) if found else str(exc), math.inf)])
    start = [v.value if v.value is not None else 0.0 for v in comp.columns] if warm_start else None
    polished: dict[str, float] = {}
    if start is not None and polish is not None and polish_s > 0:
        t_p = time.perf_counter()
        start, polished = polish(comp, start, polish_s)
        if time_limit_s is not None:
            time_limit_s = max(0.1, time_limit_s - (time.perf_counter() - t_p))
    once = functools.partial(_run_once, comp, time_limit_s=time_limit_s, mip_gap=mip_gap,
                             threads=threads, lp_solver=lp_solver, progress=progress,
                             label=label, t0=t0)
    run = once(start, options=options)
    highs_s, handover = run.highs_s + polished.get("search_s", 0.0), run.handover_s
    rechecks: dict[str, float] = {}
    if run.values is not None and run.highs_objective is not None:
        own = objective_of(comp, run.values)
        if not objectives_agree(own, run.highs_objective):
            rechecks = {"objective_resolves": 1.0,
                        "objective_mismatch": abs(own - run.highs_objective)}
            again = once(None, options={**(options or {}), "presolve": "off"})
            highs_s += again.highs_s
            if again.values is not None:
                run = again
            else:  # keep the first solution, at its own cost, with the re-solve's bound
                run = _Run(run.status, own, again.bound, run.values, 0.0, 0.0)
    if (finish is not None and finish_s > 0 and run.values is not None
            and run.status == "time_limit" and run.bound is not None
            and relative_gap(objective_of(comp, run.values), run.bound)
            > max(1e-4 if mip_gap is None else mip_gap, finish_above_gap)):
        values, done = finish(comp, run.values.tolist(), finish_s)
        polished = {**polished, **done}
        highs_s += done.get("finish_s", 0.0)
        run = dataclasses.replace(run, values=np.asarray(values, dtype=np.float64))
    objective = bound = gap = None
    status = run.status
    t3 = time.perf_counter()
    if run.values is not None:
        objective = objective_of(comp, run.values)
        bound = run.bound
        if bound is not None and bound > objective:
            bound = objective
        gap = relative_gap(objective, bound) if bound is not None else None
        if status == "optimal" and gap is not None and gap > PROVEN_GAP:
            status = "feasible"  # stopped at the requested gap: optimality not proven
        for v, x in zip(comp.columns, run.values.tolist(), strict=True):
            v.set_value(x, skip_validation=True)
    load_s = time.perf_counter() - t3
    violated: list[tuple[str, float]] = []
    if status == "infeasible" and explain_infeasible:
        violated = explain(comp)
    return SolveResult(
        status=status,
        objective=objective,
        bound=bound,
        gap=gap,
        highs_s=highs_s,
        compile_s=comp.compile_s,
        handover_s=handover,
        load_s=load_s,
        num_cols=comp.lp.num_col_,
        num_rows=comp.lp.num_row_,
        num_integers=sum(1 for v in comp.columns if v.is_integer()),
        nonzeros=len(comp.lp.a_matrix_.value_),
        violated_rows=violated,
        rechecks=rechecks,
        polished=polished,
    )


def explain(comp: CompiledModel, limit: int = 20, time_limit_s: float = 30.0
            ) -> list[tuple[str, float]]:
    """Which constraints must be violated, and by how much, to make the model feasible.

    An elastic copy of the model (each row gets a surplus and a slack column costing 1, the
    original objective dropped, integrality kept) minimises the total violation; the rows it
    has to bend name the demand or capacity that cannot be met. Built by hand rather than with
    HiGHS's feasibilityRelaxation, which hung on MIPs here (highspy 1.16).

    Valid inequalities (`IMPLIED_ROWS`) are left out of it: bent, they were named as the
    cause (a hub one van short read "the milk runs cost less than their least possible
    cost"). The trip counts' upper bounds are dropped (`ROW_BOUNDED_VARS`): they repeat the
    fleet rows, and as hard bounds they kept `fleet_hub` from being the row that gives.
    """
    from optimizer.diagnose import IMPLIED_ROWS, ROW_BOUNDED_VARS

    lp = comp.lp
    n, m = lp.num_col_, lp.num_row_
    implied = np.array([str(r[0].name).split("[", 1)[0] in IMPLIED_ROWS for r in comp.rows],
                       dtype=bool)
    free_upper = np.array([c.parent_component().name in ROW_BOUNDED_VARS
                           for c in comp.columns], dtype=bool)
    a = lp.a_matrix_
    start = np.asarray(a.start_, dtype=np.int64)
    index = np.asarray(a.index_, dtype=np.int32)
    value = np.asarray(a.value_, dtype=np.float64)
    rows = np.arange(m, dtype=np.int32)
    new_start = np.concatenate([start, start[-1] + 1 + np.arange(2 * m, dtype=np.int64)])
    el = highspy.HighsLp()
    el.num_col_ = n + 2 * m
    el.num_row_ = m
    el.col_cost_ = np.concatenate([np.zeros(n), np.ones(2 * m)])
    el.col_lower_ = np.concatenate([np.asarray(lp.col_lower_), np.zeros(2 * m)])
    upper = np.where(free_upper, INF, np.asarray(lp.col_upper_, dtype=np.float64))
    el.col_upper_ = np.concatenate([upper, np.full(2 * m, INF)])
    el.row_lower_ = np.where(implied, -INF, np.asarray(lp.row_lower_, dtype=np.float64))
    el.row_upper_ = np.where(implied, INF, np.asarray(lp.row_upper_, dtype=np.float64))
    el.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    el.a_matrix_.start_ = new_start.astype(np.int32)
    el.a_matrix_.index_ = np.concatenate([index, rows, rows])
    el.a_matrix_.value_ = np.concatenate([value, np.ones(m), -np.ones(m)])
    el.a_matrix_.num_col_ = n + 2 * m
    el.a_matrix_.num_row_ = m
    if lp.integrality_ is not None and len(lp.integrality_):
        el.integrality_ = list(lp.integrality_) + [highspy.HighsVarType.kContinuous] * (2 * m)
    h = make_highs(time_limit_s, 1e-4, None)
    h.passModel(el)
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return []
    x = np.asarray(h.getSolution().col_value)
    viol = x[n:n + m] + x[n + m:]
    out = []
    for k in np.argsort(-viol)[:limit]:
        if viol[k] <= 1e-6:
            break
        out.append((comp.rows[k][0].name, float(viol[k])))
    return out
