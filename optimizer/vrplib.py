"""Import a CVRPLIB/TSPLIB CVRP instance as a one-hub, one-day, one-class scenario, and write
solutions in CVRPLIB's `.sol` numbering.

Reading is the field's own reader, `vrplib` (PyPI); only the distance convention is ours,
because published optima depend on it: `vrplib` leaves EUC_2D unrounded, TSPLIB rounds each
edge to nint(sqrt(dx^2 + dy^2)) with nint(x) = floor(x + 0.5). EXPLICIT matrices are taken as
given (LOWER_ROW: strict lower triangle row by row, as E-n13-k4 needs), even when they break
the triangle inequality. Whatever the file, a fault is a ScenarioError naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import vrplib
from vrplib.parse import parse_vrplib

from optimizer.scenario import Scenario, ScenarioError, load_scenario

Fleet = Literal["exact", "free"]
#: TYPE values this import can plan: one depot, capacities, no time windows
SUPPORTED_TYPES = ("CVRP", "")
#: sections whose constraints a CVRP scenario would silently drop
UNSUPPORTED_SECTIONS = ("time_window", "service_time", "pickup", "backhaul", "linehaul",
                        "release_time", "prize", "vehicles_depot", "mutually_exclusive_group")
#: larger instances are refused before their n x n distance matrix is built
MAX_NODES = 5000


@dataclass(frozen=True)
class CvrpInstance:
    name: str
    capacity: float
    demand: tuple[float, ...]  # node order of the file, depot included (0-based)
    depot: int
    dist: np.ndarray  # (n, n), file node order
    vehicles: int | None
    coords: tuple[tuple[float, float], ...] | None


def _nint(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _fleet_from(header_vehicles: Any, name: str) -> int | None:
    """The fleet size: a VEHICLES field, else the `-kN` of the name (CVRPLIB's convention)."""
    if isinstance(header_vehicles, int | float) and header_vehicles > 0:
        return int(header_vehicles)
    found = re.search(r"-k(\d+)(?:\D|$)", name)
    return int(found.group(1)) if found else None


#: EXPLICIT formats `vrplib` does not read; their section is read here into a full matrix
TRIANGLE_FORMATS = ("UPPER_ROW", "LOWER_DIAG_ROW", "UPPER_DIAG_ROW")


def _split_triangle(text: str) -> tuple[str, tuple[str, list[str]] | None]:
    """The text without its EDGE_WEIGHT_SECTION when that is in a TRIANGLE_FORMATS format,
    and (format, the section's words); else the text unchanged and None."""
    found = re.search(r"^\s*EDGE_WEIGHT_FORMAT\s*:\s*(\S+)", text, re.MULTILINE)
    if not found or found.group(1).upper() not in TRIANGLE_FORMATS:
        return text, None
    lines = text.splitlines()
    start = next((k for k, ln in enumerate(lines) if ln.strip().upper().startswith(
        "EDGE_WEIGHT_SECTION")), None)
    if start is None:
        return text, None
    end = next((k for k in range(start + 1, len(lines)) if "_SECTION" in lines[k].upper()
                or lines[k].strip().upper() == "EOF"), len(lines))
    words = " ".join(lines[start + 1:end]).split()
    rest = lines[:start] + lines[end:]
    return "\n".join(ln for ln in rest if not re.match(
        r"\s*EDGE_WEIGHT_FORMAT\s*:", ln)) + "\n", (found.group(1).upper(), words)


def _check_dimension(dim: Any) -> int:
    if not isinstance(dim, int) or not 2 <= dim <= MAX_NODES:
        raise ScenarioError([("DIMENSION", f"must be an integer from 2 to {MAX_NODES} (nodes, "
                              f"depot included), not {dim!r}")])
    return dim


def _full_from_triangle(fmt: str, words: list[str], dim: Any) -> np.ndarray:
    """A symmetric matrix from TSPLIB's UPPER_ROW, LOWER_DIAG_ROW or UPPER_DIAG_ROW."""
    dim = _check_dimension(dim)
    values = _float_array(words)
    if fmt == "UPPER_ROW":
        cells = list(zip(*np.triu_indices(dim, k=1), strict=True))
    elif fmt == "LOWER_DIAG_ROW":
        cells = list(zip(*np.tril_indices(dim), strict=True))
    else:
        cells = list(zip(*np.triu_indices(dim), strict=True))
    if values is None or values.ndim != 1 or len(values) != len(cells):
        raise ScenarioError([("EDGE_WEIGHT_SECTION", f"{fmt} needs {len(cells)} numbers for "
                              f"DIMENSION {dim}")])
    full = np.zeros((dim, dim))
    for (i, j), v in zip(cells, values.tolist(), strict=True):
        full[i, j] = full[j, i] = v
    np.fill_diagonal(full, 0.0)
    return full


def _float_array(value: Any) -> np.ndarray | None:
    """`value` as a float array, or None when its entries are not all numbers."""
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (ValueError, TypeError):
        return None


def _distances(inst: dict[str, Any], n: int) -> np.ndarray:
    ewt = str(inst.get("edge_weight_type", "EUC_2D")).upper()
    if ewt == "EXPLICIT":
        dist = inst.get("edge_weight")
        if not isinstance(dist, np.ndarray):
            raise ScenarioError([("EDGE_WEIGHT_SECTION",
                                  "missing for EDGE_WEIGHT_TYPE EXPLICIT")])
    elif ewt in ("EUC_2D", "CEIL_2D", "FLOOR_2D"):
        coords = _float_array(inst.get("node_coord"))
        if coords is None or coords.shape != (n, 2) or not np.isfinite(coords).all():
            raise ScenarioError([("NODE_COORD_SECTION", f"needs {n} rows of x y for {ewt}")])
        delta = coords[:, None, :] - coords[None, :, :]
        with np.errstate(over="ignore", invalid="ignore"):
            euclid = np.sqrt((delta**2).sum(axis=2))
        dist = _nint(euclid) if ewt == "EUC_2D" else (
            np.ceil(euclid) if ewt == "CEIL_2D" else np.floor(euclid))
    else:
        raise ScenarioError([("EDGE_WEIGHT_TYPE", f"{ewt} is not supported (EUC_2D, CEIL_2D, "
                              "FLOOR_2D or EXPLICIT)")])
    dist = _float_array(dist)
    if dist is None:
        raise ScenarioError([("EDGE_WEIGHT_SECTION", "distances must be numbers")])
    if dist.shape != (n, n):
        raise ScenarioError([("EDGE_WEIGHT_SECTION", f"gives a {dist.shape} matrix for "
                              f"DIMENSION {n}")])
    if not np.isfinite(dist).all() or (dist < 0).any():
        raise ScenarioError([("EDGE_WEIGHT_SECTION", "distances must be finite and >= 0")])
    return dist


def parse_vrp(path: str | Path) -> CvrpInstance:
    """Read a CVRP instance; anything this import cannot plan is a ScenarioError naming the
    field (an unsupported TYPE or EDGE_WEIGHT_TYPE, time windows, several depots, ...)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([("$", f"the file cannot be read: {exc}")]) from None
    text, triangle = _split_triangle(text)
    try:
        inst: dict[str, Any] = parse_vrplib(text, compute_edge_weights=False)
    except (ValueError, RuntimeError, IndexError, TypeError, KeyError) as exc:
        where = "EDGE_WEIGHT_FORMAT" if "format" in str(exc).lower() else "$"
        raise ScenarioError([(where, f"cannot be read as VRPLIB: {exc}")]) from None
    if triangle is not None:
        inst["edge_weight"] = _full_from_triangle(*triangle, inst.get("dimension"))
    kind = str(inst.get("type", "")).upper()
    if kind not in SUPPORTED_TYPES:
        raise ScenarioError([("TYPE", f"{kind} is not supported: only CVRP instances "
                              "(one depot, capacity, no time windows)")])
    extra = [k for k in UNSUPPORTED_SECTIONS if k in inst]
    if extra:
        raise ScenarioError([(f"{extra[0].upper()}_SECTION", "is not supported: only CVRP "
                              "instances (one depot, capacity, no time windows)")])
    dim = _check_dimension(inst.get("dimension"))
    capacity = inst.get("capacity")
    if not isinstance(capacity, int | float) or not math.isfinite(capacity) or capacity <= 0:
        raise ScenarioError([("CAPACITY", f"must be a number > 0, not {capacity!r}")])
    demand = inst.get("demand")
    demand_arr = np.zeros(dim) if demand is None else _float_array(demand)
    if demand_arr is None or demand_arr.shape != (dim,) or not np.isfinite(demand_arr).all() or (
            demand_arr < 0).any():
        raise ScenarioError([("DEMAND_SECTION", f"needs one demand >= 0 for each of the {dim} "
                              "nodes (one dimension)")])
    depots = _float_array(inst.get("depot", np.array([0])))
    if depots is None or depots.size != 1 or not 0 <= depots.ravel()[0] < dim or (
            depots.ravel()[0] != int(depots.ravel()[0])):
        raise ScenarioError([("DEPOT_SECTION", "needs exactly one depot among the nodes "
                              f"(found {0 if depots is None else depots.size})")])
    depot = int(depots.ravel()[0])
    dist = _distances(inst, dim)
    coords_arr = _float_array(inst.get("node_coord"))
    coords = None
    if isinstance(coords_arr, np.ndarray) and coords_arr.shape == (dim, 2):
        coords = tuple((float(x), float(y)) for x, y in coords_arr)
    name = str(inst.get("name", Path(path).stem))
    return CvrpInstance(name, float(capacity), tuple(float(d) for d in demand_arr), depot, dist,
                        _fleet_from(inst.get("vehicles"), name), coords)


def scenario_from_vrp(inst: CvrpInstance, fleet: Fleet = "exact") -> Scenario:
    """One hub (the depot), one day, one class; distances as an explicit matrix; each
    customer a village visited by exactly one route; cost = km. With `fleet` "exact" an
    instance with a fleet size (`-kN` or VEHICLES) gets exactly that many routes, as the
    published optima assume; "free" (or no stated fleet) lets the number of routes float."""
    if fleet not in ("exact", "free"):
        raise ScenarioError([("fleet", f"must be 'exact' or 'free', not {fleet!r}")])
    exact = fleet == "exact" and inst.vehicles is not None
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
    """A `.sol` file's routes (CVRPLIB numbering) and its stated cost, if any."""
    sol = vrplib.read_solution(path)
    cost = sol.get("cost")
    return [list(map(int, r)) for r in sol["routes"]], (
        None if cost is None else float(cost))


def write_sol(path: str | Path, routes: list[list[int]], cost: float | None) -> None:
    """Write routes (CVRPLIB numbering, as `PlanResult.routes`) as a `.sol` file."""
    vrplib.write_solution(path, routes, None if cost is None else {"Cost": f"{cost:g}"})
