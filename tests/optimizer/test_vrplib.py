"""CVRPLIB instances against their published optima (computed by others, not here).

The instances (public CVRPLIB files with their published optima) live in tests/data/cvrplib,
so a clone anywhere runs these tests. Route costs are
recomputed here from the .vrp file with this file's own TSPLIB distance code.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import optimizer
from optimizer import parse_vrp, read_sol
from tests.optimizer.helpers import ROOT

CVRPLIB = ROOT / "tests" / "data" / "cvrplib"
OPTIMA = {"P-n16-k8": 450, "E-n13-k4": 247, "E-n22-k4": 375, "E-n23-k3": 569}


def _own_distances(path: Path):
    """TSPLIB distances, written independently of optimizer.vrplib."""
    lines = path.read_text().splitlines()
    hdr = {}
    for ln in lines:
        if ":" in ln and not ln.strip()[0].isdigit():
            k, v = ln.split(":", 1)
            hdr[k.strip()] = v.strip()
    n = int(hdr["DIMENSION"])
    start = next(k for k, ln in enumerate(lines) if "SECTION" in ln and (
        "NODE_COORD" in ln or "EDGE_WEIGHT" in ln))
    body = []
    for ln in lines[start + 1:]:
        if "SECTION" in ln:
            break
        body.extend(float(x) for x in ln.split())
    d = [[0.0] * n for _ in range(n)]
    if hdr["EDGE_WEIGHT_TYPE"] == "EUC_2D":
        xy = {int(body[k]): (body[k + 1], body[k + 2]) for k in range(0, len(body), 3)}
        for i in range(n):
            for j in range(n):
                dx = xy[i + 1][0] - xy[j + 1][0]
                dy = xy[i + 1][1] - xy[j + 1][1]
                d[i][j] = math.floor(math.sqrt(dx * dx + dy * dy) + 0.5)
    else:
        assert hdr["EDGE_WEIGHT_FORMAT"].strip() == "LOWER_ROW"
        it = iter(body)
        for i in range(1, n):
            for j in range(i):
                d[i][j] = d[j][i] = next(it)
    dem_start = next(k for k, ln in enumerate(lines) if ln.startswith("DEMAND_SECTION"))
    demand = {}
    for ln in lines[dem_start + 1:]:
        if ln.startswith("DEPOT"):
            break
        a, b = ln.split()
        demand[int(a) - 1] = float(b)
    return d, demand, float(hdr["CAPACITY"])


def _run(name: str, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib",
         str(CVRPLIB / f"{name}.vrp"), "--json", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _check_routes(name: str, data: dict) -> float:
    d, demand, cap = _own_distances(CVRPLIB / f"{name}.vrp")
    seen = []
    total = 0.0
    for r in data["routes"]:
        nodes = [0, *r, 0]  # .sol numbering: customer c is node c + 1, i.e. index c
        total += sum(d[a][b] for a, b in zip(nodes, nodes[1:], strict=False))
        assert sum(demand[c] for c in r) <= cap
        seen.extend(r)
    assert sorted(seen) == list(range(1, len(demand)))
    k = int(name.rsplit("k", 1)[1])
    assert len(data["routes"]) == k
    return total


@pytest.mark.parametrize("name", ["P-n16-k8", "E-n13-k4", "E-n22-k4", "E-n23-k3"])
def test_published_optimum_reached(name):
    """`packloop plan solve --vrplib` reaches the published optimum and proves it; the routes
    recomputed from the .vrp file cost exactly that (E-n23-k3 has 2 million feasible routes:
    about 15 s)."""
    data = _run(name, "--time-limit", "120")
    assert data["status"] == "optimal"
    assert data["objective"] == pytest.approx(OPTIMA[name])
    assert _check_routes(name, data) == pytest.approx(OPTIMA[name])
    _routes, sol_cost = read_sol(CVRPLIB / f"{name}.sol")
    assert sol_cost == OPTIMA[name]


def test_lower_row_reading_breaks_triangle_inequality():
    """E-n13-k4 read as LOWER_ROW has triangle violations; the parser keeps them as given."""
    inst = parse_vrp(CVRPLIB / "E-n13-k4.vrp")
    d = inst.dist
    n = len(d)
    assert any(d[i][j] > d[i][k] + d[k][j] for i in range(n) for j in range(n)
               for k in range(n))
    own, _, _ = _own_distances(CVRPLIB / "E-n13-k4.vrp")
    assert (d == own).all()


def test_the_joint_planner_refuses_a_single_visit_scenario():
    """A CVRPLIB scenario has its own solver: `optimizer.solve` refuses it, naming that
    solver, instead of planning it as a joint scenario."""
    sc = optimizer.scenario_from_vrp(parse_vrp(CVRPLIB / "E-n13-k4.vrp"))
    with pytest.raises(optimizer.ScenarioError, match="solve_cvrp"):
        optimizer.solve(sc)


def test_an_unsupported_instance_type_is_a_usage_error(tmp_path):
    """A VRPTW file is refused with exit 2 and a line naming TYPE, never a traceback."""
    text = (CVRPLIB / "E-n13-k4.vrp").read_text().replace("TYPE : CVRP", "TYPE : VRPTW")
    assert "VRPTW" in text
    path = tmp_path / "E-n13-k4.vrp"
    path.write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert "TYPE" in out.stderr and "VRPTW" in out.stderr
    assert "Traceback" not in out.stderr


def test_solution_files_round_trip_in_cvrplib_numbering(tmp_path):
    """The published E-n13-k4 routes, written by write_sol and read back, are unchanged, and
    cost the published optimum under this file's own LOWER_ROW distances."""
    from optimizer.vrplib import write_sol

    routes, cost = read_sol(CVRPLIB / "E-n13-k4.sol")
    write_sol(tmp_path / "out.sol", routes, cost)
    again, cost_again = read_sol(tmp_path / "out.sol")
    assert again == routes and cost_again == cost == OPTIMA["E-n13-k4"]
    d, _, _ = _own_distances(CVRPLIB / "E-n13-k4.vrp")
    total = sum(d[a][b] for r in again for a, b in zip([0, *r], [*r, 0], strict=True))
    assert total == OPTIMA["E-n13-k4"]


def test_out_writes_the_solution_file_and_says_what_the_bound_covers(tmp_path):
    """`--out` writes NAME.sol (CVRPLIB numbering; its routes cost the published optimum
    under this file's own distances) and a report naming what the bound covers."""
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib",
         str(CVRPLIB / "E-n13-k4.vrp"), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    routes, cost = read_sol(tmp_path / "E-n13-k4.sol")
    d, _, _ = _own_distances(CVRPLIB / "E-n13-k4.vrp")
    total = sum(d[a][b] for r in routes for a, b in zip([0, *r], [*r, 0], strict=True))
    assert total == cost == OPTIMA["E-n13-k4"]
    html = (tmp_path / "report.html").read_text()
    assert "the bound covers all feasible routes" in html and "route gap" in html


@pytest.mark.parametrize("fmt", ["UPPER_ROW", "LOWER_DIAG_ROW", "UPPER_DIAG_ROW"])
def test_other_triangle_formats_read_the_same_matrix(tmp_path, fmt):
    """E-n13-k4's matrix written in another TSPLIB triangle format reads back equal to this
    file's own LOWER_ROW reading (vrplib reads only LOWER_ROW and FULL_MATRIX)."""
    own, _, _ = _own_distances(CVRPLIB / "E-n13-k4.vrp")
    n = len(own)
    cells = {"UPPER_ROW": [(i, j) for i in range(n) for j in range(i + 1, n)],
             "LOWER_DIAG_ROW": [(i, j) for i in range(n) for j in range(i + 1)],
             "UPPER_DIAG_ROW": [(i, j) for i in range(n) for j in range(i, n)]}[fmt]
    text = (CVRPLIB / "E-n13-k4.vrp").read_text()
    head, rest = text.split("EDGE_WEIGHT_SECTION")
    body = " ".join(f"{own[i][j]:g}" for i, j in cells)
    path = tmp_path / "E-n13-k4.vrp"
    path.write_text(head.replace("LOWER_ROW", fmt) + "EDGE_WEIGHT_SECTION\n" + body + "\n"
                    + rest[rest.index("DEMAND_SECTION"):])
    assert (parse_vrp(path).dist == own).all()
