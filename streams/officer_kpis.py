"""The officer's KPIs: one definition each, the same at village, township and county level.

An officer is held to the State Post Bureau's green-packaging campaigns and the plastic
rules, not to grams per village, so the monthly report speaks their terms. Every KPI is
computed from a month's figures (one village's row of ``GET /months/{YYYY-MM}``, or the sum
of several: :func:`add_rows`), so a township's KPIs are those of its villages' summed
figures, never an average of their ratios. The mass balance is settled per village and
material first (what a village recovered beyond its own on hand + generated is its
unrecorded recovery, and never counts against another village's waste), then summed.

Definitions (``docs/operations.md`` repeats them for people):

- ``parcels``: down shipments in the month.
- ``generated_grams`` / ``recovered_grams``: by material, in the month.
- ``on_hand_start_grams``: outstanding waste by material at 00:00 local on the month's
  first day.
- ``recovery_ratio``: a mass balance per material, summed: recovered ÷ (on hand at the
  start + generated), where a material's recovered grams count up to its on hand + generated;
  what was recovered beyond that (waste collected that was never recorded as generated) is
  ``unrecorded_recovered_grams``, so the ratio never exceeds 1. Returned reusable containers
  count as neither generated nor recovered. None when there was nothing to recover.
- ``no_second_packaging_rate``: parcels without a second (outer) box ÷ parcels that say.
- ``tape_le_45mm_rate``: parcels sealed with tape ≤ 45 mm ÷ parcels that give a width; its
  coverage is over the parcels sealed with tape (a tape line or a width): a bag needs none.
- ``reusable_share``: parcels in reusable packaging ÷ parcels.
- ``cartons_reused``: parcels whose carton was a reused one.
- ``nondegradable_plastic_grams``: plastic items marked not degradable (film, bags, tape,
  foam, hard plastic); ``degradable_known_grams`` how many plastic grams said either way.
  None when no plastic item said (``degradable_known_grams`` 0): a month whose events never
  say is unknown, not a month that met the "no non-degradable plastic" target.
- ``grams_per_parcel``: single-use packaging generated ÷ parcels. A damaged or lost
  reusable container is waste the village's tallies count (generated, and recovered at once
  when handed back damaged), but not single-use packaging: given the containers' masses,
  its grams are left out here and in ``packaging_co2e_kg`` (its making is in the reuse's
  own emissions), where they made a village breaking more boxes read 1,400 g a parcel for
  500 of single-use packaging (an outside audit). The recovery ratio keeps them: it is a
  mass balance of the waste the village's figures hold.
- ``containers_damaged`` / ``containers_lost``; ``pickups_requested`` / ``_completed`` /
  ``_overdue``.
- ``packaging_co2e_kg``: making the single-use packaging generated in the month (kg CO2e
  per kg of each material, the facts file's ``materials_kg_co2e_per_kg``).
- ``co2e_avoided_kg``: against the stated no-action baseline — the same parcels with no
  reusable containers (each container issued replaced by the single-use packaging it
  stands for), no reused cartons (each a new one) and no collection (the plastic counted as
  recovered burnt with the municipal waste instead) — less what the reuse itself emits
  (washing each container and its production spread over its cycle life). Recycling
  credits for recovered board are not counted: the figure errs low.
- ``recovered_scrap_value_cny``: what the recovered material (as counted in the mass
  balance) sells for at the facts file's scrap prices.

The CO2e and scrap figures need factors from the facts file, which lives outside this
package: the caller passes :class:`Co2eFactors`; without them these three are None.

A rate is computed over the events that say (unknown stays unknown) and its ``coverage``
(events that say ÷ parcels) is given beside it; None when no event said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the KPI names, as the report's JSON and CSV carry them
KPI_NAMES = (
    "parcels", "generated_grams", "recovered_grams", "on_hand_start_grams",
    "recovery_ratio", "unrecorded_recovered_grams", "no_second_packaging_rate",
    "tape_le_45mm_rate", "reusable_share", "cartons_reused", "nondegradable_plastic_grams",
    "degradable_known_grams", "grams_per_parcel", "containers_damaged", "containers_lost",
    "pickups_requested", "pickups_completed", "pickups_overdue", "packaging_co2e_kg",
    "co2e_avoided_kg", "recovered_scrap_value_cny", "coverage",
)


@dataclass(frozen=True)
class Co2eFactors:
    """Factors of the CO2e and scrap KPIs, by event material and container type.

    ``production_kg_per_kg``: making a kg of the material; ``incineration_kg_per_kg``:
    burning a kg of it (plastics; others absent = 0); ``scrap_cny_per_kg``: what a kg sells
    for; ``substitute_kg_per_use``: the single-use packaging one use of a container type
    replaces; ``reuse_kg_per_use``: what one use of it emits (a wash, and its production
    over its cycle life); ``new_carton_kg``: one new carton.
    """

    production_kg_per_kg: Mapping[str, float]
    incineration_kg_per_kg: Mapping[str, float]
    scrap_cny_per_kg: Mapping[str, float]
    substitute_kg_per_use: Mapping[str, float]
    reuse_kg_per_use: Mapping[str, float]
    new_carton_kg: float


def _add(into: dict[str, int], more: dict[str, int] | None) -> None:
    for k, v in (more or {}).items():
        into[k] = into.get(k, 0) + v


def add_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The month's figures of several villages as one row (sums of every figure)."""
    out: dict[str, Any] = {"generated_grams": {}, "recovered_grams": {},
                           "on_hand_start_grams": {}, "on_hand_end_grams": {}, "counts": {},
                           "pickups": {}, "containers": {}}
    settled: dict[str, dict[str, int]] = {"available_grams": {}, "counted_grams": {},
                                          "unrecorded_grams": {}}
    for r in rows:
        for key in ("generated_grams", "recovered_grams", "on_hand_start_grams",
                    "on_hand_end_grams", "counts", "pickups"):
            _add(out[key], r.get(key))
        # the mass balance is settled per village, then summed: one village's unrecorded
        # recovery never fills another's shortfall
        for key, values in _settled(r).items():
            _add(settled[key], values)
        for ct, c in (r.get("containers") or {}).items():
            _add(out["containers"].setdefault(ct, {}), c)
    out.update(settled)
    return out


def _settled(row: dict[str, Any]) -> dict[str, dict[str, int]]:
    """A row's per-material mass balance: available, counted and unrecorded grams (a sum
    of rows carries the sums of its villages' own)."""
    if "available_grams" in row:
        return {k: dict(row[k]) for k in ("available_grams", "counted_grams",
                                          "unrecorded_grams")}
    on_hand = row.get("on_hand_start_grams") or {}
    generated = row.get("generated_grams") or {}
    recovered = row.get("recovered_grams") or {}
    available = {m: max(0, on_hand.get(m, 0)) + max(0, generated.get(m, 0))
                 for m in set(on_hand) | set(generated) | set(recovered)}
    counted = counted_recovered(on_hand, generated, recovered)
    return {"available_grams": available, "counted_grams": counted,
            "unrecorded_grams": {m: max(0, recovered.get(m, 0)) - counted[m] for m in counted}}


def _rate(hits: int, known: int) -> float | None:
    return hits / known if known > 0 else None


def counted_recovered(on_hand: dict[str, int], generated: dict[str, int],
                      recovered: dict[str, int]) -> dict[str, int]:
    """Recovered grams by material as the mass balance counts them: at most what was on
    hand at the month's start plus what was generated in it."""
    return {m: min(max(0, recovered.get(m, 0)),
                   max(0, on_hand.get(m, 0)) + max(0, generated.get(m, 0)))
            for m in set(on_hand) | set(generated) | set(recovered)}


def mass_balance(on_hand: dict[str, int], generated: dict[str, int],
                 recovered: dict[str, int]) -> tuple[float | None, int]:
    """(recovery_ratio, unrecorded_recovered_grams) of the definitions above."""
    materials = set(on_hand) | set(generated) | set(recovered)
    to_recover = counted = unrecorded = 0
    for m in materials:
        available = max(0, on_hand.get(m, 0)) + max(0, generated.get(m, 0))
        rec = max(0, recovered.get(m, 0))
        to_recover += available
        counted += min(rec, available)
        unrecorded += max(0, rec - available)
    return (counted / to_recover if to_recover > 0 else None), unrecorded


def _co2e(f: Co2eFactors | None, generated: dict[str, int], counted: dict[str, int],
          containers: dict[str, Any], cartons_reused: int) -> dict[str, float | None]:
    if f is None:
        return {"packaging_co2e_kg": None, "co2e_avoided_kg": None,
                "recovered_scrap_value_cny": None}
    # in sorted order and rounded (to the gram of CO2e, to the fen), so that the same figures
    # give the same KPIs whichever way a row's dicts were built (the ledger's JSON, a worker)
    made = sum(max(0, generated[m]) / 1000 * f.production_kg_per_kg.get(m, 0.0)
               for m in sorted(generated))
    issued = {ct: containers[ct].get("issued", 0) for ct in sorted(containers)}
    avoided = (sum(n * (f.substitute_kg_per_use.get(ct, 0.0) - f.reuse_kg_per_use.get(ct, 0.0))
                   for ct, n in issued.items())
               + cartons_reused * f.new_carton_kg
               + sum(counted[m] / 1000 * f.incineration_kg_per_kg.get(m, 0.0)
                     for m in sorted(counted)))
    scrap = sum(counted[m] / 1000 * f.scrap_cny_per_kg.get(m, 0.0) for m in sorted(counted))
    return {"packaging_co2e_kg": round(made, 3), "co2e_avoided_kg": round(avoided, 3),
            "recovered_scrap_value_cny": round(scrap, 2)}


def single_use_grams(generated: dict[str, int], containers: dict[str, Any],
                     containers_mass: Mapping[str, tuple[str, float]] | None
                     ) -> dict[str, int]:
    """``generated`` less the grams of the reusable containers damaged or lost in it
    (``containers_mass``: container type -> (material, grams of one))."""
    out = dict(generated)
    for ct, c in sorted((containers or {}).items()):
        material, grams = (containers_mass or {}).get(ct, ("", 0.0))
        n = c.get("damaged", 0) + c.get("lost", 0)
        if material and n:
            out[material] = out.get(material, 0) - round(n * grams)
    return out


def kpis(row: dict[str, Any], co2e: Co2eFactors | None = None,
         containers_mass: Mapping[str, tuple[str, float]] | None = None) -> dict[str, Any]:
    """Every KPI of one month's figures (a village's row, or :func:`add_rows` of several);
    the CO2e and scrap KPIs only with `co2e`; single-use packaging less the damaged and
    lost containers only with `containers_mass` (container type -> (material, grams))."""
    counts = row.get("counts") or {}
    parcels = counts.get("parcels", 0)
    generated = dict(row.get("generated_grams") or {})
    recovered = dict(row.get("recovered_grams") or {})
    on_hand = dict(row.get("on_hand_start_grams") or {})
    bal = _settled(row)
    to_recover = sum(bal["available_grams"].values())
    ratio = sum(bal["counted_grams"].values()) / to_recover if to_recover > 0 else None
    unrecorded = sum(bal["unrecorded_grams"].values())
    pickups = row.get("pickups") or {}
    containers = row.get("containers") or {}
    single_use = single_use_grams(generated, containers, containers_mass)
    outer_known = counts.get("outer_box_known", 0)
    tape_known = counts.get("tape_known", 0)
    return {
        "parcels": parcels,
        "generated_grams": generated,
        "recovered_grams": recovered,
        "on_hand_start_grams": on_hand,
        "recovery_ratio": ratio,
        "unrecorded_recovered_grams": unrecorded,
        "no_second_packaging_rate": _rate(outer_known - counts.get("outer_box_added", 0),
                                          outer_known),
        "tape_le_45mm_rate": _rate(counts.get("tape_le_45mm", 0), tape_known),
        "reusable_share": _rate(counts.get("reusable_parcels", 0), parcels),
        "cartons_reused": counts.get("cartons_reused", 0),
        "nondegradable_plastic_grams": (counts.get("nondegradable_plastic_grams", 0)
                                        if counts.get("degradable_known_grams", 0) > 0
                                        else None),
        "degradable_known_grams": counts.get("degradable_known_grams", 0),
        "grams_per_parcel": (sum(max(0, g) for g in single_use.values()) / parcels
                             if parcels else None),
        "containers_damaged": sum(c.get("damaged", 0) for c in containers.values()),
        "containers_lost": sum(c.get("lost", 0) for c in containers.values()),
        "pickups_requested": pickups.get("requested", 0),
        "pickups_completed": pickups.get("completed", 0),
        "pickups_overdue": pickups.get("overdue", 0),
        **_co2e(co2e, single_use, bal["counted_grams"], containers,
                counts.get("cartons_reused", 0)),
        "coverage": {
            "outer_box": _rate(outer_known, parcels),
            "tape_width": _rate(tape_known, counts.get("taped_parcels", 0)),
            "reused_carton": _rate(counts.get("carton_reuse_known", 0), parcels),
        },
    }


TARGETS_PATH = Path(__file__).with_name("data") / "targets.yaml"


def load_targets(override: str | Path | None = None) -> dict[str, Any]:
    """The targets file (`streams/data/targets.yaml`), with a county's own file's entries
    replacing those it names. Each target: its KPI, `at_least` or `at_most`, `since`
    (the first day it applies), `source`."""
    import yaml

    data = yaml.safe_load(TARGETS_PATH.read_text("utf-8"))
    targets = dict(data["targets"])
    version = data["version"]
    if override is not None:
        try:
            own = yaml.safe_load(Path(override).read_text("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{override}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                             f"at offset {exc.start})") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{override}: not YAML: {exc}") from None
        # a file without targets (an empty file, `target:` misspelled, another YAML file)
        # was taken as "no change": the report judged by the defaults and named the file
        if not isinstance(own, dict) or not isinstance(own.get("targets"), dict) \
                or not own["targets"]:
            raise ValueError(f"{override}: expected a mapping with a non-empty 'targets' "
                             "mapping (KPI name -> at_least or at_most)")
        for name, target in own["targets"].items():
            if name not in KPI_NAMES:
                raise ValueError(f"{override}: targets.{name}: not a KPI of the report")
            if not isinstance(target, dict) or not ({"at_least", "at_most"} & set(target)):
                raise ValueError(f"{override}: targets.{name}: needs at_least or at_most")
            targets[name] = target
        version = f"{version}+{own.get('version', Path(override).name)}"
    return {"version": version, "targets": targets}


def meets(value: Any, target: dict[str, Any], month: str) -> bool | None:
    """Whether a KPI value meets its target in `month` (None: no value, or not yet due)."""
    if value is None or str(target.get("since", "0000-00"))[:7] > month:
        return None
    if "at_least" in target and value < target["at_least"]:
        return False
    return not ("at_most" in target and value > target["at_most"])


#: the month's figures as the worker exports them (streams/metric_names.py)
_MONTH_ON_HAND = "packloop_waste_month_on_hand_start_grams"
_MONTH_GENERATED = 'packloop_waste_window_generated_grams{window="month"}'
_MONTH_RECOVERED = 'packloop_waste_window_recovered_grams{window="month"}'
_VM = "hub, village, material"


def recording_rules() -> list[dict[str, str]]:
    """Prometheus recording rules for ``recovery_ratio`` and ``unrecorded_recovered_grams``
    of the current month, the definitions above in PromQL: per village and material the
    recovered grams count up to on hand + generated (``counted = recovered − max(0,
    recovered − available)``, i.e. the smaller of the two; a month's net negative
    correction counts as 0, as in :func:`mass_balance`), then villages, townships and
    the county sum the counted and the available grams before dividing. Written into
    infra/prometheus/rules/packloop-recording.yml by infra/prometheus/build_rules.py (a
    test fails when the file drifts from this). In township mode (no village label) the
    cap applies per township, an approximation the report does not make."""
    vm = "village_material:packloop_waste_month_"
    rules = [
        {"record": f"{vm}available_grams:sum",
         "expr": f"sum by ({_VM}) ({_MONTH_ON_HAND})\n  + on ({_VM})\n"
                 f"clamp_min(sum by ({_VM}) ({_MONTH_GENERATED}), 0)"},
        {"record": f"{vm}unrecorded_recovered_grams:sum",
         "expr": f"clamp_min(\n  clamp_min(sum by ({_VM}) ({_MONTH_RECOVERED}), 0)\n"
                 f"    - on ({_VM})\n  {vm}available_grams:sum,\n  0\n)"},
        {"record": f"{vm}recovered_counted_grams:sum",
         "expr": f"clamp_min(sum by ({_VM}) ({_MONTH_RECOVERED}), 0)\n  - on ({_VM})\n"
                 f"{vm}unrecorded_recovered_grams:sum"},
    ]
    for level, by in (("village", "sum by (hub, village)"), ("hub", "sum by (hub)"),
                      ("county", "sum")):
        rules.append({"record": f"{level}:packloop_waste_month_recovery_ratio:ratio",
                      "expr": f"{by} ({vm}recovered_counted_grams:sum)\n  /\n"
                              f"({by} ({vm}available_grams:sum) > 0)"})
        rules.append({"record": f"{level}:packloop_waste_month_unrecorded_recovered_grams:sum",
                      "expr": f"{by} ({vm}unrecorded_recovered_grams:sum)"})
    return rules
