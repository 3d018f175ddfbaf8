"""What-ifs: the same scenario with more (or fewer) vehicles, boxes or cleaning capacity,
planned again and compared.

A change is `KEY=VALUE`, the value `+N`/`-N` (relative to the scenario) or `N` (absolute):

- `fleet.<vehicle_type>.count`: every hub's vehicles of that type (a county vehicle: the
  county's): `N` gives every hub N, its own count (`count_by_hub`) included; `+N`/`-N`
  changes every hub's count by N, each from its own, and refuses to take a hub below 0;
- `fleet.<vehicle_type>.count.<hub_id>`: one hub's;
- `pools.<hub_id>.<container_type>`: the hub's stated pool of containers at the start;
- `hubs.<hub_id>.cleaning_capacity_per_day`: containers the hub cleans a day.

The base plan is the planner's (`optimizer.solve`, as `plan solve` makes it, with its
marginal values). The variant is the whole-county joint model (`optimizer.frontier.
WholeModel`; a change of one hub's fleet or pool may move trunk legs shared by all hubs)
started from the base plan — its trips, completed by the LP — when those trips fit the
variant: a change that only adds vehicles, boxes or capacity leaves the base plan feasible,
so the variant is never dearer than the base even when its solve stops at the time limit.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from optimizer.frontier_model import WholeModel
from optimizer.marginal import marginal_values, plan_as_start
from optimizer.result import PlanResult
from optimizer.scenario import MAX_NUMBER, Scenario, ScenarioError, load_scenario
from optimizer.solver import ProgressFn


class WhatIfError(ValueError):
    """A change the scenario cannot take: unknown key, bad value, or a result that is no
    valid scenario. The message names the key."""


@dataclass(frozen=True)
class Change:
    key: str
    before: float | None
    after: float
    #: a `fleet.<vehicle_type>.count` change: (hub, before, after) of each hub whose count
    #: differs from the type's `before` or `after` (a hub with its own count); empty when
    #: every hub has the type's count
    by_hub: tuple[tuple[str, int | None, int], ...] = ()


_VALUE = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)$")


def known_keys(s: Scenario) -> list[str]:
    """Every key a what-if on `s` may set."""
    keys = []
    for vt in s.vehicle_types:
        keys.append(f"fleet.{vt.vehicle_type}.count")
        if vt.base == "hub":
            keys += [f"fleet.{vt.vehicle_type}.count.{h.hub_id}" for h in s.hubs]
    for h in s.hubs:
        keys += [f"pools.{h.hub_id}.{r.container_type}" for r in s.packaging.reusable]
        keys.append(f"hubs.{h.hub_id}.cleaning_capacity_per_day")
    return keys


def _number(key: str, text: str, integer: bool, what: str = "a vehicle count"
            ) -> tuple[str, float]:
    """`text`'s sign ("+", "-" or "" for absolute) and number, checked: a number, at most
    MAX_NUMBER, whole when `integer`."""
    m = _VALUE.match(text.strip())
    if m is None:
        raise WhatIfError(f"{key}: value {text!r} is not +N, -N or N")
    sign, number = m.groups()
    n = float(number)
    if not math.isfinite(n) or n > MAX_NUMBER:
        # refused here, naming the key, rather than as the changed scenario's field
        # (vehicle_types[1].count), which the user did not write
        shown = text if len(text) <= 24 else text[:20] + "…"
        raise WhatIfError(f"{key}: {shown} is too large: numbers in a scenario are at most "
                          f"{MAX_NUMBER:,.0f}")
    if integer and not n.is_integer():
        raise WhatIfError(f"{key}: {what} is a whole number, not {text!r}")
    return sign, n


def _value(key: str, text: str, before: float | None, integer: bool,
           what: str = "a vehicle count") -> float:
    sign, n = _number(key, text, integer, what)
    if sign:
        # no count, or a capacity left at its default (MAX_NUMBER: unlimited), was "1e9 + 5:
        # too large" for a hub's cleaning capacity
        if before is None or before >= MAX_NUMBER:
            raise WhatIfError(f"{key}: the scenario sets no limit (unlimited), so {text!r} "
                              "has nothing to add to; give an absolute N")
        after = before + n if sign == "+" else before - n
    else:
        after = n
    if after < 0:
        raise WhatIfError(f"{key}: {text} gives {after:g}, below 0")
    if after > MAX_NUMBER:
        raise WhatIfError(f"{key}: {text} gives {after:,.0f}, too large: numbers in a "
                          f"scenario are at most {MAX_NUMBER:,.0f}")
    return int(after) if integer else after  # a vehicle count reads "to": 2, not 2.0


def _every_hub(key: str, text: str, vt: dict[str, Any], hub_ids: list[str]
               ) -> tuple[int, tuple[tuple[str, int | None, int], ...]]:
    """`fleet.<vehicle_type>.count` = `text` on hub vehicle type `vt` (its raw dict, changed
    in place) with hubs of their own count (`count_by_hub`): N gives every hub N (the
    type's count N, the hubs' own counts dropped); ±N changes each hub's count by N, from
    its own. The type's count after, and (hub, before, after) of each hub whose count
    differs from the type's before or after. A hub taken below 0 is refused by name."""
    before: int | None = vt["count"]
    own: dict[str, int] = dict(vt["count_by_hub"])
    sign, n = _number(key, text, True)
    if not sign or before is None:  # hubs without their own count have unlimited: a
        after = int(_value(key, text, before, True))  # relative change is refused
        vt["count"], vt["count_by_hub"] = after, {}
        return after, tuple((h, c, after) for h, c in own.items() if c != before)
    delta = int(n) if sign == "+" else -int(n)
    counts = {h: own.get(h, before) for h in hub_ids}
    low = [h for h in hub_ids if counts[h] + delta < 0]
    if low:
        hubs = ", ".join(f"{h} ({counts[h]:,} → {counts[h] + delta:,})" for h in low)
        raise WhatIfError(f"{key}: {text} takes hub{'s' if len(low) > 1 else ''} {hubs} "
                          "below 0 vehicles")
    top = max([before, *own.values()]) + delta
    if top > MAX_NUMBER:
        raise WhatIfError(f"{key}: {text} gives {top:,} vehicles, too large: numbers in a "
                          f"scenario are at most {MAX_NUMBER:,.0f}")
    # the type's count is every hub's without its own; when every hub has its own, no
    # hub's, and it stays at least 0 (a valid scenario) without changing any hub
    after = max(0, before + delta)
    new_own = {h: c + delta for h, c in own.items()}
    vt["count"], vt["count_by_hub"] = after, new_own
    return after, tuple((h, own[h], c) for h, c in new_own.items()
                        if own[h] != before or c != after)


def apply_changes(s: Scenario, changes: list[tuple[str, str]]) -> tuple[Scenario, list[Change]]:
    """`s` with `changes` ((KEY, VALUE) pairs) applied in order; an unknown key raises
    WhatIfError naming it and the closest known key."""
    raw = s.model_dump(mode="json")
    known = set(known_keys(s))
    done: list[Change] = []
    vts = {v["vehicle_type"]: v for v in raw["vehicle_types"]}
    hubs = {h["hub_id"]: h for h in raw["hubs"]}
    for key, text in changes:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else (
                "; keys look like fleet.<vehicle_type>.count[.<hub_id>], "
                "pools.<hub_id>.<container_type>, hubs.<hub_id>.cleaning_capacity_per_day")
            raise WhatIfError(f"unknown key {key!r}{hint}")
        parts = key.split(".")
        by_hub: tuple[tuple[str, int | None, int], ...] = ()
        after: float
        if parts[0] == "fleet" and len(parts) == 3:
            vt = vts[parts[1]]
            before = vt["count"]
            if vt["base"] == "hub" and vt.get("count_by_hub"):  # hubs of their own count
                after, by_hub = _every_hub(key, text, vt, list(hubs))
            else:
                after = _value(key, text, before, True)
                vt["count"] = int(after)
        elif parts[0] == "fleet":
            vt, hub = vts[parts[1]], parts[3]
            before = (vt.get("count_by_hub") or {}).get(hub, vt["count"])
            after = _value(key, text, before, True)
            vt["count_by_hub"] = {**(vt.get("count_by_hub") or {}), hub: int(after)}
        elif parts[0] == "pools":
            hub, ct = parts[1], parts[2]
            rows = [p for p in raw["container_pools"]
                    if p["hub_id"] == hub and p["container_type"] == ct]
            before = sum(p["count"] for p in rows)
            # boxes are whole (2.5 was taken, and planned with, as given)
            after = _value(key, text, before, True, "a container count")
            raw["container_pools"] = [p for p in raw["container_pools"] if p not in rows]
            raw["container_pools"].append({"hub_id": hub, "container_type": ct,
                                           "count": after})
        else:
            h = hubs[parts[1]]
            before = h["cleaning_capacity_per_day"]
            after = _value(key, text, before, False)
            h["cleaning_capacity_per_day"] = after
        done.append(Change(key, before, after, by_hub))
    try:
        return load_scenario(raw), done
    except ScenarioError as exc:
        raise WhatIfError(f"the changed scenario is not valid: {exc}") from None


#: the figures a what-if compares: (name, path in the KPIs)
DELTA_KPIS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cost_cny", ("cost_cny", "total")),
    ("km", ("km",)),
    ("co2e_kg", ("co2e_kg", "total")),
    ("single_use_grams", ("single_use_grams",)),
    ("trips", ("trips",)),
)


def kpi_figures(r: PlanResult) -> dict[str, float] | None:
    if r.kpis is None:
        return None
    out = {}
    for name, path in DELTA_KPIS:
        v: Any = r.kpis
        for p in path:
            v = v[p]
        out[name] = v
    return out


@dataclass(frozen=True)
class WhatIf:
    changes: list[Change]
    base: PlanResult
    variant: PlanResult
    #: whether the variant's solve started from the base plan (its trips fit the variant)
    started_from_base: bool = False

    def deltas(self) -> dict[str, float] | None:
        a, b = kpi_figures(self.base), kpi_figures(self.variant)
        if a is None or b is None:
            return None
        # the same tolerance as the range's: two equal plans' costs differed by -9e-13
        return {k: _snap(b[k] - a[k], a[k]) for k in a}

    def cost_delta_range(self) -> tuple[float, float] | None:
        """Where the cost change between the two *optimal* plans lies, from the solves'
        objectives and bounds: [variant bound − base cost, variant cost − base bound].

        The delta of the plans found can be noise: on the county week's H04 cut at 20 s
        (gaps 1.6–1.8 %), one more insulated box "saved" 39.49 CNY where the base plan's
        marginal value said 0. When the range holds 0 the what-if has shown no effect."""
        b, v = self.base, self.variant
        if None in (b.objective, b.bound, v.objective, v.bound):
            return None
        assert b.objective is not None and b.bound is not None
        assert v.objective is not None and v.bound is not None
        # within the solver's tolerance a difference is 0: two proven optima of 6,727.2343
        # gave [-9.1e-13, -9.1e-13], read as "the change lowers the cost" (an audit)
        return _snap(v.bound - b.objective, b.objective), _snap(v.objective - b.bound,
                                                                 b.objective)

    def to_json_dict(self) -> dict[str, Any]:
        """The `plan whatif --json` document."""
        def side(r: PlanResult) -> dict[str, Any]:
            return {"status": r.status, "objective": r.objective, "bound": r.bound,
                    "gap": r.gap, **(kpi_figures(r) or {}), "diagnosis": r.diagnosis,
                    "marginal_values": r.marginal_values}

        return {"changes": [{"key": c.key, "from": c.before, "to": c.after,
                             **({"by_hub": {h: {"from": b, "to": a} for h, b, a in c.by_hub}}
                                if c.by_hub else {})}
                            for c in self.changes],
                "base": side(self.base), "variant": side(self.variant),
                "delta": self.deltas(),
                "optimal_cost_delta_range": None if (r := self.cost_delta_range()) is None
                else list(r),
                "cost_effect": None if r is None else cost_effect(r),
                "marginal_readings": marginal_readings(self.changes,
                                                       self.base.marginal_values or {}),
                "variant_started_from_base": self.started_from_base}


def marginal_readings(changes: list[Change], mv: dict[str, Any]) -> list[dict[str, Any]]:
    """For each pool or cleaning change, what the base plan's marginal value says of it:
    the value, for how many units it holds (`holds_for`, None: any number), whether the
    change is `within` that (None: not known) and then the cost it predicts if the trips
    stay. A key set twice is one change, from its first value to its last (each step priced
    alone had +1 and +1 both "within" a range of 1.35). In the JSON, not only in the
    text: a script acting on a what-if needs the verdict as much as a reader."""
    merged: dict[str, list[Any]] = {}
    for c in changes:
        if c.key in merged:
            merged[c.key][1] = c.after
        else:
            merged[c.key] = [c.before, c.after]
    out = []
    for key, (before, after) in merged.items():
        parts = key.split(".")
        if parts[0] == "pools" and len(parts) == 3:
            entries = [e for e in mv.get("pools", []) if e["hub_id"] == parts[1]
                       and e["container_type"] == parts[2]]
            value_key, range_key, unit, per = ("delta_cost_cny_per_box", "valid_for_boxes",
                                               "boxes", "a box")
        elif parts[0] == "hubs" and parts[-1] == "cleaning_capacity_per_day":
            entries = [e for e in mv.get("cleaning", []) if e["hub_id"] == parts[1]]
            value_key, range_key, unit, per = ("delta_cost_cny_per_unit_per_day",
                                               "valid_for_units", "boxes a day",
                                               "a box a day")
        else:
            continue
        if before is None or after is None or before >= MAX_NUMBER:
            continue  # from unlimited: no marginal value speaks of it
        step = after - before
        reading: dict[str, Any] = {"key": key, "change": step, "unit": unit, "per": per,
                                   "marginal_value": None, "holds_for": None, "within": None,
                                   "predicted_cost_delta_cny": None}
        if not entries:
            reading["why"] = next((n.get("why") for n in mv.get("not_computed", [])
                                   if n.get("hub_id") == parts[1]), None)
            out.append(reading)
            continue
        value = entries[0][value_key]
        reading["marginal_value"] = value
        rng = entries[0].get(range_key)
        if rng:
            held = rng.get("more" if step >= 0 else "fewer")
            within = held is None or abs(step) <= held + 1e-9
            reading.update(holds_for=held, within=within,
                           predicted_cost_delta_cny=step * value + 0.0 if within else None)
        out.append(reading)
    return out


#: relative difference of two costs below which they are the same (HiGHS's optimality
#: tolerances are 1e-7)
COST_TOLERANCE = 1e-6


def _snap(difference: float, scale: float) -> float:
    """`difference` of two figures of size `scale`, 0 within COST_TOLERANCE of it."""
    return 0.0 if abs(difference) <= COST_TOLERANCE * max(1.0, abs(scale)) else difference


def cost_effect(span: tuple[float, float] | list[float]) -> str:
    """What a what-if shows of its change on the cost, from `WhatIf.cost_delta_range`:
    "none" when the range holds 0, else "lowers" or "raises" (one verdict for every reader
    of the range)."""
    lo, hi = span
    return "none" if lo <= 0 <= hi else ("lowers" if hi < 0 else "raises")


#: an infeasible variant's diagnosis (`optimizer.solver.explain`) runs at least this long,
#: whatever its time limit has left, so that a variant whose solve used it all still says why
EXPLAIN_MIN_S = 2.0
#: and at most this long (all it gets without a time limit)
EXPLAIN_MAX_S = 30.0


def explain_seconds(limit_s: float | None, spent_s: float) -> float:
    """The diagnosis's time: what the variant's time limit `limit_s` has left after the
    `spent_s` its model and solve took, so that `plan whatif` keeps to its --time-limit;
    between EXPLAIN_MIN_S and EXPLAIN_MAX_S."""
    if limit_s is None:
        return EXPLAIN_MAX_S
    return min(EXPLAIN_MAX_S, max(EXPLAIN_MIN_S, limit_s - spent_s))


def _plan(wm: WholeModel, started_s: float) -> PlanResult:
    """The model's least-cost plan, with its marginal values (boxes, cleaning capacity), so
    that a what-if's deltas can be read against what the base plan said one more is worth;
    when there is none, why (diagnosed in what is left of the time limit since
    `started_s`, a `time.perf_counter()`)."""
    r = wm.solve("cost", wm.expr("cost"))
    if r.objective is None:
        from optimizer.diagnose import describe_rows

        rows = r.violated_rows
        if not rows and r.status == "infeasible":  # the frontier's solves do not explain
            from optimizer.solver import compile_model, explain

            compiled = compile_model(wm.b.model)
            rows = explain(compiled, time_limit_s=explain_seconds(
                wm.time_limit_s, time.perf_counter() - started_s))
        return PlanResult.infeasible(
            describe_rows(wm.s, rows, "plan", f"no plan ({r.status})"),
            factor_set=wm.s.factor_set)
    out = wm.result(r, r.bound, {"solves": wm.solves[-1:]})
    assert out.plan is not None
    return dataclasses.replace(out, marginal_values=marginal_values(wm.s, out.plan,
                                                                    threads=wm.threads))


def what_if(base: Scenario, changes: list[tuple[str, str]], *,
            time_limit_s: float | None = None, mip_gap: float | None = None,
            threads: int | None = None, progress: ProgressFn | None = None) -> WhatIf:
    """Plan `base` and `base` with `changes`, the variant started from the base plan;
    `time_limit_s` and `mip_gap` apply to each of the two solves. An infeasible variant's
    diagnosis takes what the variant's time limit has left (`explain_seconds`)."""
    from optimizer.planner import solve

    variant, done = apply_changes(base, changes)
    base_result = solve(base, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                        progress=progress, baselines=False, marginals=False)
    if base_result.plan is not None:  # in full, whatever the solve's time limit left
        base_result = dataclasses.replace(base_result, marginal_values=marginal_values(
            base, base_result.plan, threads=threads))
    started_s = time.perf_counter()
    try:
        v = WholeModel(variant, time_limit_s, mip_gap, threads, progress)
    except ScenarioError as exc:  # the change leaves demand no trip can serve: the answer
        return WhatIf(done, base_result, PlanResult.infeasible(
            [{"what": what, "why": why} for what, why in exc.problems],
            factor_set=variant.factor_set))
    if base_result.plan is not None:
        v.has_start = plan_as_start(v.b, base_result.plan, threads)
    return WhatIf(done, base_result, _plan(v, started_s), started_from_base=v.has_start)
