"""Edge cases of `plan solve --vrplib` found by an outside audit: a byte-order mark, costs
that look whole to a relative tolerance, fleets no packing of the demands allows, and
faulty DEPOT_SECTION, DEMAND_SECTION and -kN values.

Expected values here come from this file's own arithmetic (brute force over partitions,
pairwise counts), never from the optimizer's output.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer import cvrp
from optimizer.vrplib import parse_vrp, read_sol, scenario_from_vrp

BOM = "\ufeff"


def _instance(name: str = "small-n6-k2", *, demands: tuple[str, ...] = ("4", "4", "4", "4", "2"),
              depot: str = "1", capacity: int = 10) -> str:
    """A 6-node EUC_2D instance (node 1 at the origin): customers' demands as given."""
    xy = [(0, 0), (10, 0), (0, 10), (-10, 0), (0, -10), (5, 5)]
    return (f"NAME : {name}\nTYPE : CVRP\nDIMENSION : 6\nEDGE_WEIGHT_TYPE : EUC_2D\n"
            f"CAPACITY : {capacity}\nNODE_COORD_SECTION\n"
            + "".join(f"{k} {x} {y}\n" for k, (x, y) in enumerate(xy, 1))
            + "DEMAND_SECTION\n1 0\n" + "".join(f"{k} {d}\n" for k, d in enumerate(demands, 2))
            + f"DEPOT_SECTION\n{depot}\n-1\nEOF\n")


def _euc_instance(name: str, xy: list[tuple[int, int]], demands: list[int],
                  capacity: int) -> str:
    """An EUC_2D instance, depot at node 1 (`xy[0]`, demand 0), customers as given."""
    return (f"NAME : {name}\nTYPE : CVRP\nDIMENSION : {len(xy)}\nEDGE_WEIGHT_TYPE : EUC_2D\n"
            f"CAPACITY : {capacity}\nNODE_COORD_SECTION\n"
            + "".join(f"{k} {x} {y}\n" for k, (x, y) in enumerate(xy, 1))
            + "DEMAND_SECTION\n" + "".join(f"{k} {d}\n" for k, d in enumerate([0, *demands], 1))
            + "DEPOT_SECTION\n1\n-1\nEOF\n")


def _problems(path: Path, fleet: str = "exact") -> list[tuple[str, str]]:
    with pytest.raises(optimizer.ScenarioError) as err:
        scenario_from_vrp(parse_vrp(path), fleet)  # type: ignore[arg-type]
    return err.value.problems


# --- 1. a UTF-8 byte-order mark -----------------------------------------------------------


def test_a_byte_order_mark_does_not_hide_the_name_and_its_fleet(tmp_path):
    """A .vrp saved with a BOM lost its NAME (the first key read as '\\ufeffNAME'), so an
    instance named -k3 planned with a floating fleet; now it reads as without the mark."""
    plain, marked = tmp_path / "plain.vrp", tmp_path / "marked.vrp"
    plain.write_text(_instance("small-n6-k3"), encoding="utf-8")
    marked.write_text(BOM + _instance("small-n6-k3"), encoding="utf-8")
    assert marked.read_bytes()[:3] == b"\xef\xbb\xbf"
    inst = parse_vrp(marked)
    assert inst.name == "small-n6-k3" and inst.vehicles == 3
    sc = scenario_from_vrp(inst, "exact")
    assert sc.routing.exact_fleet and sc.vehicle_types[0].count == 3
    assert inst.demand == parse_vrp(plain).demand and (inst.dist == parse_vrp(plain).dist).all()


def test_a_byte_order_mark_in_a_sol_file_is_ignored(tmp_path):
    """A .sol whose first line (after a BOM) is its cost: the cost key read as '\\ufeffcost'
    and the cost was lost."""
    path = tmp_path / "x.sol"
    path.write_text(BOM + "Cost 58\nRoute #1: 1 2\nRoute #2: 3\n", encoding="utf-8")
    assert read_sol(path) == ([[1, 2], [3]], 58.0)


# --- 2. whole-number costs judged with an absolute tolerance only ---------------------------


def test_large_fractional_distances_are_not_whole_numbers():
    """numpy's allclose with its default rtol=1e-5 took 123456.4 for a whole number."""
    frac = np.array([[0.0, 123456.4], [123456.4, 0.0]])
    assert not cvrp.integral_costs(frac, 1.0, 0.0)
    assert cvrp.integral_costs(np.array([[0.0, 123456.0], [123456.0, 0.0]]), 1.0, 0.0)
    assert cvrp.integral_costs(np.array([[0.0, 3.0]]), 1.0, 2.0)
    assert not cvrp.integral_costs(np.array([[0.0, 3.0]]), 1.0, 2.5)
    assert not cvrp.integral_costs(np.array([[0.0, 3.0]]), 0.1, 0.0)


def _explicit(name: str, dist: list[list[float]], demands: list[int], capacity: int) -> str:
    n = len(dist)
    rows = [" ".join(repr(dist[i][j]) for j in range(n)) for i in range(n)]
    return (f"NAME : {name}\nTYPE : CVRP\nDIMENSION : {n}\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
            f"EDGE_WEIGHT_FORMAT : FULL_MATRIX\nCAPACITY : {capacity}\nEDGE_WEIGHT_SECTION\n"
            + "\n".join(rows) + "\nDEMAND_SECTION\n"
            + "".join(f"{k} {d}\n" for k, d in enumerate([0, *demands], 1))
            + "DEPOT_SECTION\n1\n-1\nEOF\n")


def _brute_force(dist: list[list[float]], demands: list[int], capacity: int) -> float:
    """Optimal cost over every partition of the customers into routes within capacity, each
    route in its best order (permutations): tiny instances only."""
    customers = list(range(1, len(dist)))

    def tour(group: tuple[int, ...]) -> float:
        return min(sum(dist[a][b] for a, b in zip((0, *p), (*p, 0), strict=True))
                   for p in itertools.permutations(group))

    def partitions(items: list[int]):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for size in range(len(rest) + 1):
            for others in itertools.combinations(rest, size):
                left = [c for c in rest if c not in others]
                for tail in partitions(left):
                    yield [(first, *others), *tail]

    return min(sum(tour(g) for g in part) for part in partitions(customers)
               if all(sum(demands[c - 1] for c in g) <= capacity for g in part))


@pytest.mark.slow
def test_a_plan_cheaper_by_less_than_one_is_found_when_distances_are_large_fractions(
        tmp_path, monkeypatch):
    """Three customers, two to a route, every distance 50,000 or more with a fraction (to
    numpy's default rtol=1e-5 each is a whole number). The optimum {1,3}+{2} beats
    {1,2}+{3} by 0.2, but with each distance rounded (as PyVRP's integer scaling then does)
    {1,2}+{3} is cheaper by 1. Taking the costs for whole numbers, the pool path searched
    only for plans at least 1 cheaper than PyVRP's and called {1,2}+{3} optimal; now it
    finds the optimum and proves it."""
    d01, d02, d03 = 50000.35, 50000.85, 50000.15
    d12, d13, d23 = 60000.45, 59999.55, 99999.7
    dist = [[0.0, d01, d02, d03], [d01, 0.0, d12, d13], [d02, d12, 0.0, d23],
            [d03, d13, d23, 0.0]]
    dem, cap = [500_000] * 3, 1_000_000  # large loads: PyVRP's load penalty must bite
    path = tmp_path / "frac-n4.vrp"
    path.write_text(_explicit("frac-n4", dist, dem, cap))
    optimum = _brute_force(dist, dem, cap)
    assert optimum == pytest.approx(d01 + d13 + d03 + 2 * d02)  # {1,3} + {2}
    rounded = d01 + d12 + d02 + 2 * d03  # {1,2} + {3}: the optimum with rounded distances
    assert 0 < rounded - optimum < 1
    assert (round(d01) + round(d12) + round(d02) + 2 * round(d03)
            < round(d01) + round(d13) + round(d03) + 2 * round(d02))
    monkeypatch.setattr(cvrp, "ENUM_MAX_CUSTOMERS", 0)  # the PyVRP pool path
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path), "free"), time_limit_s=10,
                               threads=1)
    assert res.objective == pytest.approx(optimum, abs=1e-6)
    assert res.status == "optimal"
    assert res.bound is not None and res.bound <= res.objective + 1e-6
    bound = res.stats.get("all_routes_bound")
    assert bound is None or bound <= optimum + 1e-6


# --- 3. the bin-packing bound on the number of routes --------------------------------------


def _min_bins(demands: list[float], capacity: float) -> int:
    """The fewest groups of `demands` each within `capacity`, by trying every set partition
    (restricted growth strings): tiny inputs only."""
    n = len(demands)
    best = n

    def grow(k: int, loads: list[float]) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if k == n:
            best = len(loads)
            return
        for b in range(len(loads)):
            if loads[b] + demands[k] <= capacity:
                loads[b] += demands[k]
                grow(k + 1, loads)
                loads[b] -= demands[k]
        grow(k + 1, [*loads, demands[k]])

    grow(0, [])
    return best


def test_the_route_bound_never_exceeds_the_fewest_routes_by_brute_force():
    """On 300 random tiny instances the bound is at most the true fewest routes (it is a
    lower bound), at least ceil(total / capacity), and equal to it on most of them."""
    rnd = random.Random(7)
    tight = 0
    for _ in range(300):
        cap = rnd.choice([10, 12, 100])
        dem = [rnd.randint(1, cap) for _ in range(rnd.randint(1, 8))]
        fewest = _min_bins(dem, cap)
        bound, why = cvrp.min_routes(np.array(dem, dtype=float), float(cap))
        assert math.ceil(sum(dem) / cap) <= bound <= fewest, (dem, cap)
        assert why
        tight += bound == fewest
    assert tight >= 250


@pytest.mark.parametrize(("dem", "cap"), [
    ([6, 6, 6], 10),  # three over half the capacity: 3 routes, though 18 <= 2 x 10
    ([70, 70, 35, 35, 35], 100),  # no 35 fits beside a 70, and three 35s overfill one route
])
def test_the_route_bound_finds_what_the_total_misses(dem, cap):
    fewest = _min_bins(dem, cap)
    assert fewest > math.ceil(sum(dem) / cap)
    assert cvrp.min_routes(np.array(dem, dtype=float), float(cap))[0] == fewest


def test_an_exact_fleet_too_small_to_pack_the_demands_is_infeasible_naming_the_bound(tmp_path):
    """Customers of 70, 70, 35, 35, 35, capacity 100, named -k3: total 245 <= 300, yet no 3
    routes hold them (brute force: 4). Infeasible before any search, saying how many routes
    are needed and why (it said "cannot be covered by 3 vehicles of capacity 100 (total
    demand 245)", as if 245 were the cause)."""
    dem = [70, 70, 35, 35, 35]
    assert _min_bins(dem, 100) == 4 and sum(dem) <= 3 * 100
    path = tmp_path / "bp-n6-k3.vrp"
    path.write_text(_euc_instance("bp-n6-k3", [(0, 0), (5, 0), (0, 5), (-5, 0), (0, -5), (3, 4)],
                                  dem, 100))
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path)), time_limit_s=10, threads=1)
    assert res.status == "infeasible" and res.plan is None
    why = res.diagnosis[0]["why"]
    assert "at least 4 routes are needed" in why and "exactly 3 routes" in why
    assert "over half the capacity 100" in why and "total demand" not in why


def test_three_customers_over_half_the_capacity_need_three_routes(tmp_path):
    """BP-n4-k2: 6, 6, 6 with capacity 10 and -k2. 18 <= 20, so the total is not the cause:
    no two of them fit together."""
    dem = [6, 6, 6]
    assert all(a + b > 10 for a, b in itertools.combinations(dem, 2)) and sum(dem) <= 20
    path = tmp_path / "BP-n4-k2.vrp"
    path.write_text(_euc_instance("BP-n4-k2", [(0, 0), (3, 4), (6, 8), (1, 1)], dem, 10))
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path)), time_limit_s=10, threads=1)
    assert res.status == "infeasible"
    why = res.diagnosis[0]["why"]
    assert "at least 3 routes are needed" in why and "3 customers" in why
    assert "no two of them can share a route" in why and "total demand 18" not in why


def _bpl(k: int) -> tuple[str, list[int]]:
    """BPL-n30-kK: 29 customers, capacity 100, five of demand 51 and 24 of demand 1."""
    rnd = random.Random(3)
    xy = [(rnd.randint(0, 100), rnd.randint(0, 100)) for _ in range(30)]
    dem = [51] * 5 + [1] * 24
    return _euc_instance(f"BPL-n30-k{k}", xy, dem, 100), dem


def test_an_impossible_fleet_above_the_enumeration_limit_is_infeasible_at_once(tmp_path):
    """29 customers (the PyVRP pool path), five of demand 51 > 100 / 2: no two of those five
    share a route, so -k4 is impossible. It ran the whole time limit, then said "not proven";
    now it is infeasible before any search. With -k5 the bound allows the fleet (five routes
    of one 51 and at most 49 ones hold everything)."""
    text, dem = _bpl(4)
    big = [d for d in dem if d > 50]
    assert len(big) == 5 and all(a + b > 100 for a, b in itertools.combinations(big, 2))
    path = tmp_path / "BPL-n30-k4.vrp"
    path.write_text(text)
    sc = scenario_from_vrp(parse_vrp(path))
    start = time.perf_counter()
    res = optimizer.solve_cvrp(sc, time_limit_s=5, threads=1)
    assert time.perf_counter() - start < 3.0  # no search ran (it took the 5 s limit)
    assert res.status == "infeasible" and res.plan is None
    assert "at least 5 routes are needed" in res.diagnosis[0]["why"]
    # five routes suffice: each 51 with its share of the 24 ones (5 + 5 + 5 + 5 + 4)
    packing = [[51] + [1] * 5] * 4 + [[51] + [1] * 4]
    assert sorted(sum(packing, [])) == sorted(dem) and all(sum(r) <= 100 for r in packing)
    assert cvrp.min_routes(np.array(dem, dtype=float), 100.0)[0] == 5


# --- 4. DEPOT_SECTION, DEMAND_SECTION and -kN values -----------------------------------------


@pytest.mark.parametrize("depot", ["0", "7", "20"])
def test_a_depot_outside_the_nodes_is_refused_naming_the_range(tmp_path, depot):
    """It said "needs exactly one depot among the nodes (found 1)" of one depot."""
    path = tmp_path / "small-n6-k2.vrp"
    path.write_text(_instance(depot=depot))
    with pytest.raises(optimizer.ScenarioError) as err:
        parse_vrp(path)
    (where, why), = err.value.problems
    assert where == "DEPOT_SECTION"
    assert f"node {depot} is out of range" in why and "1..6" in why and "found" not in why


@pytest.mark.parametrize("bad", ["-5", "abc", "nan", "inf"])
def test_a_bad_demand_is_refused_naming_the_node_and_the_value(tmp_path, bad):
    """It said only "needs one demand >= 0 for each of the 6 nodes"."""
    path = tmp_path / "small-n6-k2.vrp"
    path.write_text(_instance(demands=("4", bad, "4", "4", "2")))
    with pytest.raises(optimizer.ScenarioError) as err:
        parse_vrp(path)
    (where, why), = err.value.problems
    assert where == "DEMAND_SECTION" and f"node 3 has demand {bad}" in why


def test_a_fractional_k_in_the_name_states_no_fleet_size(tmp_path, caplog):
    """`-k6.5` was read as 6 routes; now as no fleet size, with the warning of a name
    without -kN under --fleet exact."""
    path = tmp_path / "instance.vrp"
    path.write_text(_instance("small-n6-k2.5"))
    inst = parse_vrp(path)
    assert inst.vehicles is None and inst.fleet_in_name is None
    with caplog.at_level("WARNING", logger="optimizer.vrplib"):
        sc = scenario_from_vrp(inst, "exact")
    assert not sc.routing.exact_fleet
    assert "'small-n6-k2.5' states no fleet size" in caplog.text


def test_a_huge_k_in_the_name_is_an_impossible_fleet_named_as_such(tmp_path):
    """-k1e20 (as digits) reported the internal `vehicle_types[0].count`; now the NAME."""
    name = "small-n6-k" + "9" * 20
    path = tmp_path / "instance.vrp"
    path.write_text(_instance(name))
    (where, why), = _problems(path)
    assert where == "NAME" and name in why and "impossible fleet size" in why
    assert "vehicle_types" not in why
    assert not scenario_from_vrp(parse_vrp(path), "free").routing.exact_fleet
