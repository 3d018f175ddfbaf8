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

from optimizer.scenario import Scenario, load_scenario


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


def parse_vrp(path: str | Path) -> CvrpInstance:
    text = Path(path).read_text()
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
    n = int(header["DIMENSION"])
    name = header.get("NAME", Path(path).stem)
    capacity = float(header["CAPACITY"])
    ewt = header.get("EDGE_WEIGHT_TYPE", "EUC_2D").upper()
    coords = None
    if "NODE_COORD_SECTION" in sections:
        pts = {}
        for line in sections["NODE_COORD_SECTION"]:
            parts = line.split()
            pts[int(parts[0])] = (float(parts[1]), float(parts[2]))
        coords = tuple(pts[k] for k in range(1, n + 1))
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
            raise ValueError(f"unsupported EDGE_WEIGHT_FORMAT {fmt}")
    else:
        raise ValueError(f"unsupported EDGE_WEIGHT_TYPE {ewt}")
    demand = [0.0] * n
    for line in sections.get("DEMAND_SECTION", []):
        parts = line.split()
        demand[int(parts[0]) - 1] = float(parts[1])
    depots = [int(x) for line in sections.get("DEPOT_SECTION", ["1"]) for x in line.split()]
    depot = next(d for d in depots if d > 0) - 1
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


def scenario_from_vrp(inst: CvrpInstance) -> Scenario:
    """One hub (the depot), one day, one class; distances as an explicit matrix; each
    customer a village visited by exactly one route; exactly `vehicles` routes; cost = km."""
    n = len(inst.demand)
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
            "count": inst.vehicles if inst.vehicles is not None else n,
        }],
        "demand": demand,
        "packaging": {"single_use": [{"option_id": "none", "class_ids": ["cvrp"],
                                      "cost_cny": 0.0, "waste_grams": 0.0, "co2e_kg": 0.0}]},
        "routing": {"distance_matrix_km": matrix, "single_visit": True,
                    "exact_fleet": inst.vehicles is not None},
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
