"""Default factors with their sources (optimizer/data/factors.yaml), as typed records.

Every number the planner uses by default comes from here, so a report can say which factor
set produced it and a reader can trace each number to its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Factor:
    value: float
    unit: str
    source: str
    year: int
    estimate: bool = False
    reasoning: str = ""


@dataclass(frozen=True)
class FactorSet:
    version: str
    groups: dict[str, dict[str, Factor]]

    def get(self, dotted: str) -> Factor:
        group, name = dotted.split(".", 1)
        return self.groups[group][name]

    def value(self, dotted: str) -> float:
        return self.get(dotted).value


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
            if not isinstance(rec["value"], int | float) or isinstance(rec["value"], bool):
                raise FactorError(f"{path}: value must be a number")
            est = bool(rec.get("estimate", False))
            if est and not rec.get("reasoning"):
                raise FactorError(f"{path}: an estimate needs its reasoning")
            extra = set(rec) - {"value", "unit", "source", "year", "estimate", "reasoning"}
            if extra:
                raise FactorError(f"{path}: unknown keys {sorted(extra)}")
            out[name] = Factor(float(rec["value"]), str(rec["unit"]), str(rec["source"]),
                               int(rec["year"]), est, str(rec.get("reasoning", "")))
        groups[gname] = out
    return FactorSet(raw["version"], groups)


def load_factors(path: str | Path | None = None) -> FactorSet:
    """The bundled factor set, or one from `path` (same format)."""
    if path is None:
        text = resources.files("optimizer").joinpath("data/factors.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return _parse(yaml.safe_load(text))
