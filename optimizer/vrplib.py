"""Import a CVRPLIB/TSPLIB CVRP instance as a one-hub, one-day, one-class scenario.

Distances follow TSPLIB exactly, because published optima depend on it: EUC_2D is
nint(sqrt(dx^2 + dy^2)) per edge with nint(x) = floor(x + 0.5); EXPLICIT matrices are read as
given (FULL_MATRIX, LOWER_ROW, UPPER_ROW, LOWER_DIAG_ROW, UPPER_DIAG_ROW), even when they break
the triangle inequality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer.scenario import Scenario, ScenarioError, load_scenario


@dataclass(frozen=True)
class CvrpInstance:
    name: str
    capacity: float
    demand: tuple[float, ...]  # node order of the file, depot included (0-based)
    depot: int
    dist: np.ndarray  # (n, n), file node order
    vehicles: int | None
    coords: tuple[tuple[float, float], ...] | None


def _nint(x: float) -> int:
    return int(math.floor(x + 0.5))


#: larger instances are refused before their n x n distance matrix is built
MAX_NODES = 5000


def parse_vrp(path: str | Path) -> CvrpInstance:
    """Read a CVRPLIB/TSPLIB CVRP file; anything else or anything malformed raises a
    ScenarioError naming the header field or section at fault."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([("$", f"cannot read {path}: {exc}")]) from None
    where = ["header"]
    try:
        return _parse(text, path, where)
    except ScenarioError:
        raise
    except (ValueError, KeyError, IndexError, StopIteration, OverflowError,
            AssertionError) as exc:
        raise ScenarioError([(where[0], f"not a readable CVRPLIB instance here "
                                        f"({type(exc).__name__}: {exc})")]) from None


def _parse(text: str, path: str | Path, where: list[str]) -> CvrpInstance:
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "EOF":
            continue
        key = line.split(":")[0].strip().upper() if ":" in line else line.split()[0].upper()
        if key.endswith("_SECTION"):
            current = key
            sections[current] = []
            continue
        if current is None or (":" in line and not line[0].isdigit() and not line[0] == "-"):
            if ":" in line:
                k, v = line.split(":", 1)
                header[k.strip().upper()] = v.strip()
                current = None
            continue
        sections[current].append(line)
    kind = header.get("TYPE", "CVRP").upper()
    if kind != "CVRP":
        raise ScenarioError([("TYPE", f"only CVRP instances can be solved, not {kind!r}")])
    where[0] = "DIMENSION"
    if "DIMENSION" not in header:
        raise ScenarioError([("DIMENSION", "missing: the number of nodes, depot included")])
    n = int(header["DIMENSION"])
    if not 2 <= n <= MAX_NODES:
        raise ScenarioError([("DIMENSION", f"must be 2 to {MAX_NODES} nodes, not {n}")])
    name = header.get("NAME", Path(path).stem)
    where[0] = "CAPACITY"
    if "CAPACITY" not in header:
        raise ScenarioError([("CAPACITY", "missing: the vehicle capacity")])
    capacity = float(header["CAPACITY"])
    if not (math.isfinite(capacity) and capacity > 0):
        raise ScenarioError([("CAPACITY", f"must be a positive number, not {capacity}")])
    ewt = header.get("EDGE_WEIGHT_TYPE", "EUC_2D").upper()
    where[0] = "NODE_COORD_SECTION"
    coords = None
    if "NODE_COORD_SECTION" in sections:
        pts = {}
        for line in sections["NODE_COORD_SECTION"]:
            parts = line.split()
            pts[int(parts[0])] = (float(parts[1]), float(parts[2]))
        coords = tuple(pts[k] for k in range(1, n + 1))
    if ewt in ("EUC_2D", "CEIL_2D") and coords is None:
        raise ScenarioError([("NODE_COORD_SECTION", f"missing: {ewt} needs coordinates")])
    where[0] = "EDGE_WEIGHT_SECTION"
    if ewt == "EUC_2D":
        assert coords is not None
        dist = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    dx = coords[i][0] - coords[j][0]
                    dy = coords[i][1] - coords[j][1]
                    dist[i, j] = _nint(math.sqrt(dx * dx + dy * dy))
    elif ewt == "CEIL_2D":
        assert coords is not None
        dist = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    dist[i, j] = math.ceil(math.dist(coords[i], coords[j]))
    elif ewt == "EXPLICIT":
        fmt = header.get("EDGE_WEIGHT_FORMAT", "FULL_MATRIX").upper()
        vals = [float(x) for line in sections["EDGE_WEIGHT_SECTION"] for x in line.split()]
        dist = np.zeros((n, n))
        it = iter(vals)
        if fmt == "FULL_MATRIX":
            dist = np.array(vals[: n * n]).reshape(n, n)
        elif fmt == "LOWER_ROW":  # strict lower triangle: d(2,1); d(3,1) d(3,2); ...
            for i in range(1, n):
                for j in range(i):
                    dist[i, j] = dist[j, i] = next(it)
        elif fmt == "UPPER_ROW":
            for i in range(n):
                for j in range(i + 1, n):
                    dist[i, j] = dist[j, i] = next(it)
        elif fmt == "LOWER_DIAG_ROW":
            for i in range(n):
                for j in range(i + 1):
                    dist[i, j] = dist[j, i] = next(it)
        elif fmt == "UPPER_DIAG_ROW":
            for i in range(n):
                for j in range(i, n):
                    dist[i, j] = dist[j, i] = next(it)
        else:
            raise ScenarioError([("EDGE_WEIGHT_FORMAT", f"unsupported: {fmt}")])
    else:
        raise ScenarioError([("EDGE_WEIGHT_TYPE", f"unsupported: {ewt} (EUC_2D, CEIL_2D or "
                                                  "EXPLICIT)")])
    if dist.shape != (n, n) or not np.isfinite(dist).all():
        raise ScenarioError([(where[0], f"the distances must be {n} x {n} finite numbers")])
    where[0] = "DEMAND_SECTION"
    if "DEMAND_SECTION" not in sections:
        raise ScenarioError([("DEMAND_SECTION", "missing: each node's demand")])
    demand = [0.0] * n
    for line in sections.get("DEMAND_SECTION", []):
        parts = line.split()
        demand[int(parts[0]) - 1] = float(parts[1])
    if not all(math.isfinite(d) and d >= 0 for d in demand):
        raise ScenarioError([("DEMAND_SECTION", "demands must be finite and not negative")])
    where[0] = "DEPOT_SECTION"
    depots = [int(x) for line in sections.get("DEPOT_SECTION", ["1"]) for x in line.split()]
    depot = next(d for d in depots if d > 0) - 1
    if depot >= n:
        raise ScenarioError([("DEPOT_SECTION", f"node {depot + 1} is not among the {n} nodes")])
    vehicles = None
    for src in (header.get("VEHICLES"), name):
        if src is None:
            continue
        if src.isdigit():
            vehicles = int(src)
            break
        if "-k" in src:
            try:
                vehicles = int(src.rsplit("-k", 1)[1])
                break
            except ValueError:
                pass
    return CvrpInstance(name, capacity, tuple(demand), depot, dist, vehicles, coords)


def scenario_from_vrp(inst: CvrpInstance, fleet: str = "exact") -> Scenario:
    """One hub (the depot), one day, one class; distances as an explicit matrix; each
    customer a village visited by exactly one route; cost = km. With `fleet` "exact" an
    instance that names its fleet (VEHICLES, or `-kN` in its name) gets exactly that many
    routes; with "free" the number of routes floats (at most one per customer)."""
    if fleet not in ("exact", "free"):
        raise ValueError(f"fleet must be 'exact' or 'free', not {fleet!r}")
    n = len(inst.demand)
    exact = fleet == "exact" and inst.vehicles is not None
    ids = [f"N{k + 1}" for k in range(n)]
    hub_id = ids[inst.depot]
    villages = []
    demand = []
    for k in range(n):
        if k == inst.depot:
            continue
        x, y = inst.coords[k] if inst.coords else (0.0, 0.0)
        villages.append({"village_id": ids[k], "hub_id": hub_id, "lat": 0.0, "lon": 0.0,
                         "name": f"node {k + 1} ({x:g},{y:g})"})
        demand.append({"village_id": ids[k], "day": 0, "class_id": "cvrp",
                       "direction": "down", "parcels": inst.demand[k]})
    matrix = {ids[i]: {ids[j]: float(inst.dist[i, j]) for j in range(n) if j != i}
              for i in range(n)}
    raw = {
        "name": inst.name,
        "horizon_days": 1,
        "depot": {"id": "DEPOT", "lat": 0.0, "lon": 0.0},
        "hubs": [{"hub_id": hub_id, "lat": 0.0, "lon": 0.0}],
        "villages": villages,
        "classes": [{"class_id": "cvrp", "litres_per_parcel": 1.0}],
        "vehicle_types": [{
            "vehicle_type": "cvrp_vehicle", "base": "hub",
            "compartments_litres": {"cvrp": inst.capacity}, "fixed_cost_cny": 0.0,
            "cost_per_km_cny": 1.0, "co2e_per_km_kg": 0.0, "max_stops": n,
            "count": inst.vehicles if exact else n,
        }],
        "demand": demand,
        "packaging": {"single_use": [{"option_id": "none", "class_ids": ["cvrp"],
                                      "cost_cny": 0.0, "waste_grams": 0.0, "co2e_kg": 0.0}]},
        "routing": {"distance_matrix_km": matrix, "single_visit": True,
                    "exact_fleet": exact},
    }
    return load_scenario(raw)


def cvrplib_routes(stops: list[list[str]]) -> list[list[int]]:
    """Routes in the `.sol` numbering: customer c is node c + 1 of the `.vrp` file."""
    return [[int(v[1:]) - 1 for v in r] for r in stops]


def read_sol(path: str | Path) -> tuple[list[list[int]], float | None]:
    routes, cost = [], None
    for line in Path(path).read_text().splitlines():
        if line.lower().startswith("route"):
            routes.append([int(x) for x in line.split(":", 1)[1].split()])
        elif line.lower().startswith("cost"):
            cost = float(line.split()[1])
    return routes, cost
