"""Default factors with their sources (optimizer/data/factors.yaml), as typed records.

Every number the planner uses by default comes from here, so a report can say which factor
set produced it and a reader can trace each number to its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Factor:
    """One number with its unit and source; a mix (`value` given as name: share, the shares
    adding up to 1) keeps its shares in `shares` and has value 1."""

    value: float
    unit: str
    source: str
    year: int
    estimate: bool = False
    reasoning: str = ""
    shares: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FactorSet:
    version: str
    groups: dict[str, dict[str, Factor]]

    def get(self, dotted: str) -> Factor:
        group, name = dotted.split(".", 1)
        return self.groups[group][name]

    def value(self, dotted: str) -> float:
        return self.get(dotted).value

    def shares(self, dotted: str) -> dict[str, float]:
        """The shares of a mix, e.g. packaging.parcel_mix -> {carton: 0.5, ...}."""
        mix = self.get(dotted).shares
        if not mix:
            raise FactorError(f"{dotted}: not a mix")
        return dict(mix)


class FactorError(ValueError):
    pass


def _parse(raw: dict[str, Any]) -> FactorSet:
    if not isinstance(raw.get("version"), str) or not raw["version"]:
        raise FactorError("factors: missing 'version'")
    groups: dict[str, dict[str, Factor]] = {}
    for gname, group in raw.items():
        if gname == "version":
            continue
        if not isinstance(group, dict):
            raise FactorError(f"factors.{gname}: expected a mapping")
        out = {}
        for name, rec in group.items():
            path = f"{gname}.{name}"
            if not isinstance(rec, dict):
                raise FactorError(f"{path}: bare number without unit/source/year")
            for key in ("value", "unit", "source", "year"):
                if key not in rec or rec[key] in (None, ""):
                    raise FactorError(f"{path}: missing {key!r}")
            shares = _shares(path, rec["value"]) if isinstance(rec["value"], dict) else {}
            if not shares and (not isinstance(rec["value"], int | float)
                               or isinstance(rec["value"], bool)):
                raise FactorError(f"{path}: value must be a number or a mix of shares")
            est = bool(rec.get("estimate", False))
            if est and not rec.get("reasoning"):
                raise FactorError(f"{path}: an estimate needs its reasoning")
            extra = set(rec) - {"value", "unit", "source", "year", "estimate", "reasoning"}
            if extra:
                raise FactorError(f"{path}: unknown keys {sorted(extra)}")
            out[name] = Factor(1.0 if shares else float(rec["value"]), str(rec["unit"]),
                               str(rec["source"]), int(rec["year"]), est,
                               str(rec.get("reasoning", "")), shares)
        groups[gname] = out
    return FactorSet(raw["version"], groups)


def _shares(path: str, value: dict[Any, Any]) -> dict[str, float]:
    out = {}
    for k, x in value.items():
        if not isinstance(x, int | float) or isinstance(x, bool) or x < 0:
            raise FactorError(f"{path}.{k}: a share must be a number >= 0")
        out[str(k)] = float(x)
    if not out or abs(sum(out.values()) - 1.0) > 1e-6:
        raise FactorError(f"{path}: shares must add up to 1")
    return out


def single_use_lines(f: FactorSet) -> dict[str, dict[str, float]]:
    """Grams of each material in one parcel's single-use packaging, by kind: the outer
    packaging of an ordinary parcel (carton with tape and paper fill, mailer bag, envelope;
    their shares are packaging.parcel_mix), the EPS box of a cold parcel with its ice packs
    and tape, and the ice packs that go with each use of an insulated box. The simulator
    and the planner's scenarios both take the packaging from here, so they agree."""
    v = f.value
    tape = v("packaging.tape_m_per_box") * v("packaging.tape_grams_per_m")
    ice = v("packaging.ice_pack_grams") * v("packaging.ice_packs_per_cold_parcel")
    return {
        "carton": {"cardboard": v("packaging.carton_grams"), "tape": tape,
                   "paper_fill": v("simulation.paper_fill_grams_per_carton")},
        "bag": {"plastic_film": v("packaging.mailer_bag_grams")},
        "envelope": {"cardboard": v("packaging.envelope_grams")},
        "eps_box": {"eps_foam": v("packaging.eps_box_grams"), "ice_pack": ice, "tape": tape},
        "ice_packs": {"ice_pack": ice},
    }


def load_factors(path: str | Path | None = None) -> FactorSet:
    """The bundled factor set, or one from `path` (same format)."""
    if path is None:
        text = resources.files("optimizer").joinpath("data/factors.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return _parse(yaml.safe_load(text))
