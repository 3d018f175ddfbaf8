"""docs/optimizer.md and optimizer/model/ describe the same model."""

from __future__ import annotations

import ast
import re

import pyomo.environ as pyo

import optimizer
from tests.optimizer.helpers import ROOT, TINY, routes_for

DOC = ROOT / "docs" / "optimizer.md"
MODEL = ROOT / "optimizer" / "model"


def _headings() -> set[str]:
    return {line.lstrip("#").strip() for line in DOC.read_text().splitlines()
            if line.startswith("#")}


def test_every_family_module_names_its_section_of_the_docs():
    """Each builder module's docstring says which section of docs/optimizer.md it implements,
    and that section exists."""
    headings = _headings()
    for path in sorted(MODEL.glob("*.py")):
        if path.name in ("__init__.py", "build.py"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        cited = re.search(r"docs/optimizer\.md, ([^)]*)\)", doc)
        assert cited, f"{path.name} names no section of docs/optimizer.md"
        sections = re.findall(r'"([^"]+)"', cited.group(1))
        assert sections, f"{path.name}: {cited.group(0)}"
        for section in sections:
            assert section in headings, f"{path.name} cites a missing section {section!r}"


def test_every_variable_and_row_of_the_model_is_in_the_docs():
    """Every Pyomo variable and constraint of a built model (all families, trunk legs and
    pools included) is named in docs/optimizer.md as `name`."""
    s = optimizer.load_scenario(TINY)
    assert s.packaging.reusable and any(v.base == "county" for v in s.vehicle_types)
    m = optimizer.build_model(s, routes_for(s)).model
    text = DOC.read_text()
    names = {c.name for c in m.component_objects((pyo.Var, pyo.Constraint))}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert missing == []
