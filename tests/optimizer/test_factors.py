"""The factor set: every number has a unit, a source and a year; estimates give reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from optimizer.factors import FactorError, load_factors

FILE = Path(__file__).resolve().parents[2] / "optimizer" / "data" / "factors.yaml"


def _numbers(node, path=""):
    """Every numeric leaf in the raw YAML, wherever it sits."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path


def test_every_number_has_a_source():
    """Each number in factors.yaml is the `value` of a record with unit, source and year."""
    raw = yaml.safe_load(FILE.read_text())
    assert raw["version"]
    for path in _numbers(raw):
        parent_path, leaf = path.rsplit(".", 1)
        if parent_path.endswith(".value"):  # a mix: the shares of one record's value
            parent_path, leaf = parent_path.rsplit(".", 1)
        assert leaf in ("value", "year"), f"{path}: a bare number without a record"
        rec = raw
        for part in parent_path.split("."):
            rec = rec[part]
        for key in ("unit", "source", "year"):
            assert rec.get(key), f"{parent_path}: missing {key}"
        if rec.get("estimate"):
            assert rec.get("reasoning"), f"{parent_path}: estimate without reasoning"


def test_loader_returns_typed_records():
    """load_factors gives typed records; the issue's headline numbers are there."""
    f = load_factors()
    assert f.version == yaml.safe_load(FILE.read_text())["version"]
    assert f.get("vehicles.diesel_van_kg_co2e_per_km").value == pytest.approx(0.256)
    assert f.get("vehicles.reefer_uplift").year == 2025
    assert f.value("materials_kg_co2e_per_kg.polystyrene_eps") == pytest.approx(4.38)
    assert f.get("packaging.eps_box_grams").estimate is True


def test_loader_rejects_unsourced_number(tmp_path):
    """A record without a source is refused by the loader, naming it."""
    p = tmp_path / "f.yaml"
    p.write_text("version: x\npackaging:\n  carton_grams: {value: 200, unit: g, year: 2025}\n")
    with pytest.raises(FactorError, match="packaging.carton_grams.*source"):
        load_factors(p)


ROOT = FILE.parents[2]
CODE_DIRS = ("optimizer", "services", "streams")


def _code_text() -> str:
    return "\n".join(p.read_text("utf-8") for d in CODE_DIRS
                     for p in sorted((ROOT / d).rglob("*.py")))


def test_every_factor_is_used_by_the_code():
    """A number nobody reads is a number nobody checks: each record is read by name
    (`group.name`) somewhere in the packages."""
    code = _code_text()
    raw = yaml.safe_load(FILE.read_text())
    unused = [f"{g}.{n}" for g, recs in raw.items() if isinstance(recs, dict)
              for n in recs if f'"{g}.{n}"' not in code]
    assert not unused, f"factors no code reads: {unused}"


def test_no_source_is_packloop_itself():
    """A figure cannot cite packloop's own issues or demo: that is circular."""
    raw = yaml.safe_load(FILE.read_text())
    circular = [f"{g}.{n}" for g, recs in raw.items() if isinstance(recs, dict)
                for n, rec in recs.items()
                if "packloop" in str(rec.get("source", "")).lower()
                and "estimate" not in str(rec.get("source", "")).lower()]
    assert not circular, circular
