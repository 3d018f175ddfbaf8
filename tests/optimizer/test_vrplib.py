"""CVRPLIB instances against their published optima (computed by others, not here).

The instances (public CVRPLIB files with their published optima) live in tests/data/cvrplib,
so a clone anywhere runs these tests. Route costs are
recomputed here from the .vrp file with this file's own TSPLIB distance code.
"""

from __future__ import annotations

import csv
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
#: the published optima (tests/data/cvrplib/optima.csv), computed by others
with (CVRPLIB / "optima.csv").open() as _f:
    OPTIMA = {row["name"]: float(row["optimal"]) for row in csv.DictReader(_f)}


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


def test_above_the_enumeration_limit_routes_come_from_pyvrp():
    """A-n33-k6 has 32 customers, more than subset enumeration takes (it stopped with a
    traceback): PyVRP's routes and the set-partitioning MILP over them give exactly 6
    routes serving every customer once within capacity, costing (recomputed from the file)
    what the JSON says, at the published optimum and proven: the routes within the gap of
    the all-routes LP were enumerated and the MILP over them closed (issue #13: instances up
    to 32 customers proven). The all-routes bound (column generation) lies at or below that
    optimum, and route_gap is (pool LP - that bound) / pool LP."""
    optimum = OPTIMA["A-n33-k6"]
    data = _run("A-n33-k6", "--time-limit", "20", "--threads", "2")
    stats = data["stats"]
    cost = _check_routes("A-n33-k6", data)
    assert cost == pytest.approx(data["objective"])
    assert cost == pytest.approx(optimum)
    assert data["status"] == "optimal" and data["bound"] == pytest.approx(optimum)
    assert stats["bound_covers"].startswith("all routes: every route whose reduced cost")
    assert stats["routes_within_gap"] > 0
    assert stats["all_routes_bound"] is not None
    assert stats["all_routes_bound"] <= optimum + 1e-6
    assert data["route_gap"] == pytest.approx(
        (stats["pool_lp"] - stats["all_routes_bound"]) / stats["pool_lp"], abs=1e-9)


def test_fleet_free_lets_the_number_of_routes_float(tmp_path):
    """Two customers at the same spot 5 km from the depot, an instance named -k2: with
    `--fleet exact` two routes (20 km by hand), with `--fleet free` one route (10 km)."""
    path = tmp_path / "twins-n3-k2.vrp"
    path.write_text("NAME : twins-n3-k2\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\n"
                    "CAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 3 4\nDEMAND_SECTION\n"
                    "1 0\n2 1\n3 1\nDEPOT_SECTION\n1\n-1\nEOF\n")

    def solve(fleet: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib", str(path),
             "--fleet", fleet, "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    exact, free = solve("exact"), solve("free")
    assert (exact["objective"], len(exact["routes"])) == (20, 2)
    assert (free["objective"], len(free["routes"])) == (10, 1)


TSP = ("NAME : tour\nTYPE : TSP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\n"
       "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2\nEOF\n")


@pytest.mark.parametrize("kind", ["TSP", "VRPTW"])
def test_an_instance_of_another_type_is_refused_with_the_field_named(tmp_path, kind):
    """A TSP file, or a VRPTW file, is no CVRP: exit 2 and a line naming TYPE and the type
    given, never a traceback."""
    if kind == "TSP":
        text = TSP
    else:
        text = (CVRPLIB / "E-n13-k4.vrp").read_text().replace("TYPE : CVRP", "TYPE : VRPTW")
        assert "VRPTW" in text
    path = tmp_path / "instance.vrp"
    path.write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert "TYPE" in out.stderr and kind in out.stderr
    assert "Traceback" not in out.stderr


def test_more_nodes_than_max_nodes_are_refused_before_any_matrix(tmp_path):
    """DIMENSION above MAX_NODES names DIMENSION (no n x n matrix is built), also for a
    triangle format this module reads itself."""
    from optimizer.vrplib import MAX_NODES

    for fmt in ("FULL_MATRIX", "UPPER_ROW"):
        path = tmp_path / f"big-{fmt}.vrp"
        path.write_text(f"NAME : big\nTYPE : CVRP\nDIMENSION : {MAX_NODES + 1}\n"
                        f"EDGE_WEIGHT_TYPE : EXPLICIT\nEDGE_WEIGHT_FORMAT : {fmt}\n"
                        "CAPACITY : 10\nEDGE_WEIGHT_SECTION\n0 1\n1 0\nDEMAND_SECTION\n1 0\n"
                        "2 1\nDEPOT_SECTION\n1\n-1\nEOF\n")
        with pytest.raises(optimizer.ScenarioError) as err:
            parse_vrp(path)
        assert [w for w, _ in err.value.problems] == ["DIMENSION"]


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
