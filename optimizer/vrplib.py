"""Import a CVRPLIB/TSPLIB CVRP instance as a one-hub, one-day, one-class scenario, and write
solutions in CVRPLIB's `.sol` numbering.

Reading is the field's own reader, `vrplib` (PyPI); only the distance convention is ours,
because published optima depend on it: `vrplib` leaves EUC_2D unrounded, TSPLIB rounds each
edge to nint(sqrt(dx^2 + dy^2)) with nint(x) = floor(x + 0.5). EXPLICIT matrices are taken as
given (LOWER_ROW: strict lower triangle row by row, as E-n13-k4 needs), even when they break
the triangle inequality; their EDGE_WEIGHT_SECTION is read here, not by `vrplib`, so a section
of the wrong length or with a non-number is refused saying so. Whatever the file, a fault is a
ScenarioError naming the field.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import vrplib
from vrplib.parse import parse_solution, parse_vrplib

from optimizer.scenario import MAX_NUMBER, Scenario, ScenarioError, load_scenario

Fleet = Literal["exact", "free"]
#: TYPE values this import can plan: one depot, capacities, no time windows
SUPPORTED_TYPES = ("CVRP", "")
#: sections whose constraints a CVRP scenario would silently drop
UNSUPPORTED_SECTIONS = ("time_window", "service_time", "pickup", "backhaul", "linehaul",
                        "release_time", "prize", "vehicles_depot", "mutually_exclusive_group")
#: larger instances are refused before their n x n distance matrix is built
MAX_NODES = 5000

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class CvrpInstance:
    name: str
    capacity: float
    demand: tuple[float, ...]  # node order of the file, depot included (0-based)
    depot: int
    dist: np.ndarray  # (n, n), file node order
    vehicles: int | None  # the VEHICLES field, else the NAME's -kN, else None (unknown)
    coords: tuple[tuple[float, float], ...] | None
    fleet_field: int | None = None  # the VEHICLES field
    fleet_in_name: int | None = None  # N of a `-kN` in NAME (N a positive integer)


def _nint(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _fleet_field(value: Any) -> int | None:
    """The VEHICLES field: None when absent, else a positive integer (or a ScenarioError)."""
    if value is None:
        return None
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 1 and value == int(value)):
        return int(value)
    raise ScenarioError([("VEHICLES", f"must be a positive integer (the number of routes), "
                          f"not {value!r}")])


def _fleet_in_name(name: str) -> int | None:
    """N of the name's `-kN` (CVRPLIB's convention), N a positive integer; None when the name
    has no such part (`-kabc`, `-k-3`, `-k0` and `-k6.5` state no fleet size)."""
    for found in re.finditer(r"-k(\d+)(?!\d|\.\d)", name):
        if int(found.group(1)) > 0:
            return int(found.group(1))
    return None


#: EDGE_WEIGHT_FORMATs of EDGE_WEIGHT_TYPE EXPLICIT this import reads (`_explicit_matrix`;
#: `vrplib` itself reads only FULL_MATRIX and LOWER_ROW)
EXPLICIT_FORMATS = ("FULL_MATRIX", "LOWER_ROW", "UPPER_ROW", "LOWER_DIAG_ROW", "UPPER_DIAG_ROW")


def _split_edge_weights(text: str) -> tuple[str, list[str] | None]:
    """The text without its EDGE_WEIGHT_SECTION, and that section's words (None when there is
    none): the section is read here, whatever its format, so that a malformed one is refused
    saying what is wrong instead of with `vrplib`'s numpy error."""
    lines = text.splitlines()
    starts = [k for k, ln in enumerate(lines)
              if ln.strip().upper().startswith("EDGE_WEIGHT_SECTION")]
    if not starts:
        return text, None
    if len(starts) > 1:
        raise ScenarioError([("EDGE_WEIGHT_SECTION", f"given {len(starts)} times; once only")])
    start = starts[0]
    end = next((k for k in range(start + 1, len(lines)) if "_SECTION" in lines[k].upper()
                or lines[k].strip().upper() == "EOF"), len(lines))
    words = " ".join(lines[start + 1:end]).split()
    return "\n".join(lines[:start] + lines[end:]) + "\n", words


#: sections whose rows start with a node number, which `vrplib` drops (it reads the rows in
#: file order as nodes 1, 2, ...)
NODE_SECTIONS = ("NODE_COORD_SECTION", "DEMAND_SECTION")


def _node_number(word: str) -> int | None:
    """The node number a row starts with, or None when it is not a whole number (the
    section's own checks then refuse the row)."""
    try:
        value = float(word)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def _check_node_rows(text: str) -> None:
    """Each of NODE_SECTIONS at most once, with one row per node number, in order from 1:
    `vrplib` reads the rows by position, so a node given twice, or rows out of order, would
    silently give one node's coordinates or demand to another (or be refused only as the
    wrong number of rows), and it calls a second section a "specification and section"."""
    sections: dict[str, int] = {}  # section -> line of its header
    section: str | None = None
    rows: dict[int, int] = {}  # node number -> line of its row
    for line_no, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        head = words[0].upper().rstrip(":")
        if "_SECTION" in head or head == "EOF":
            section = head if head in NODE_SECTIONS else None
            if section in sections:
                raise ScenarioError([(head, f"given twice (lines {sections[head]} and "
                                      f"{line_no}); once only")])
            if section is not None:
                sections[section], rows = line_no, {}
            continue
        node = None if section is None else _node_number(words[0])
        if section is not None and node is not None:
            if node in rows:
                raise ScenarioError([(section, f"node {node} given twice (lines {rows[node]} "
                                      f"and {line_no}); one row per node")])
            if node != len(rows) + 1:
                raise ScenarioError([(section, f"node {node} where node {len(rows) + 1} is "
                                      f"expected (line {line_no}); one row per node, in "
                                      f"order from 1")])
            rows[node] = line_no


def _check_dimension(dim: Any) -> int:
    if not isinstance(dim, int) or not 2 <= dim <= MAX_NODES:
        raise ScenarioError([("DIMENSION", f"must be an integer from 2 to {MAX_NODES} (nodes, "
                              f"depot included), not {dim!r}")])
    return dim


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _explicit_matrix(fmt: Any, words: list[str] | None, dim: int) -> np.ndarray:
    """The (dim, dim) matrix of an EXPLICIT EDGE_WEIGHT_SECTION in TSPLIB's `fmt`: FULL_MATRIX
    as given (it may be asymmetric), the triangle formats mirrored into a symmetric matrix."""
    if fmt is None:
        raise ScenarioError([("EDGE_WEIGHT_FORMAT", "missing: EDGE_WEIGHT_TYPE EXPLICIT needs "
                              f"one of {', '.join(EXPLICIT_FORMATS)}")])
    fmt = str(fmt).upper()
    if fmt not in EXPLICIT_FORMATS:
        raise ScenarioError([("EDGE_WEIGHT_FORMAT", f"{fmt} is not supported (one of "
                              f"{', '.join(EXPLICIT_FORMATS)})")])
    if words is None:
        raise ScenarioError([("EDGE_WEIGHT_SECTION", "missing for EDGE_WEIGHT_TYPE EXPLICIT")])
    try:
        values = np.array(words, dtype=float)
    except ValueError:
        bad = next((w for w in words if not _is_number(w)), "?")
        raise ScenarioError([("EDGE_WEIGHT_SECTION", f"non-numeric entry {bad!r} "
                              f"(EDGE_WEIGHT_FORMAT {fmt})")]) from None
    if fmt == "FULL_MATRIX":
        rows, cols = np.indices((dim, dim)).reshape(2, -1)
    elif fmt == "LOWER_ROW":
        rows, cols = np.tril_indices(dim, k=-1)
    elif fmt == "UPPER_ROW":
        rows, cols = np.triu_indices(dim, k=1)
    elif fmt == "LOWER_DIAG_ROW":
        rows, cols = np.tril_indices(dim)
    else:
        rows, cols = np.triu_indices(dim)
    if len(values) != len(rows):
        raise ScenarioError([("EDGE_WEIGHT_SECTION", f"EDGE_WEIGHT_FORMAT {fmt} needs "
                              f"{len(rows)} numbers for DIMENSION {dim}, found {len(values)}")])
    full = np.zeros((dim, dim))
    full[rows, cols] = values
    if fmt != "FULL_MATRIX":
        full[cols, rows] = values
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


def _distances(inst: dict[str, Any], n: int, weights: list[str] | None) -> np.ndarray:
    ewt = str(inst.get("edge_weight_type", "EUC_2D")).upper()
    if ewt == "EXPLICIT":
        dist = _explicit_matrix(inst.get("edge_weight_format"), weights, n)
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
    # both branches give an (n, n) float matrix
    if not np.isfinite(dist).all() or (dist < 0).any():
        raise ScenarioError([("EDGE_WEIGHT_SECTION", "distances must be finite and >= 0")])
    return dist


def _demands(demand: Any, dim: int) -> np.ndarray:
    """DEMAND_SECTION as one finite number >= 0 per node, else a ScenarioError naming the
    first node whose demand is not one."""
    raw = np.asarray(demand, dtype=object)
    if raw.shape != (dim,):
        raise ScenarioError([("DEMAND_SECTION", f"needs one demand >= 0 for each of the {dim} "
                              "nodes (one dimension)")])
    values = []
    for node, word in enumerate(raw.tolist(), 1):
        try:
            value = float(word)
        except (ValueError, TypeError):
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ScenarioError([("DEMAND_SECTION", f"node {node} has demand {word}: each of "
                                  f"the {dim} nodes needs one demand, a finite number >= 0")])
        values.append(value)
    return np.array(values)


def _depot(depot: Any, dim: int) -> int:
    """The depot's 0-based node from `vrplib`'s DEPOT_SECTION (node numbers minus 1)."""
    depots = _float_array(depot)
    if depots is None or depots.size != 1:
        raise ScenarioError([("DEPOT_SECTION", "needs exactly one depot among the nodes "
                              f"(found {0 if depots is None else depots.size})")])
    node = float(depots.ravel()[0]) + 1  # the file's number
    if not node.is_integer() or not 1 <= node <= dim:
        raise ScenarioError([("DEPOT_SECTION", f"node {node:g} is out of range: the depot must "
                              f"be one of the nodes 1..{dim} (DIMENSION)")])
    return int(node) - 1


def parse_vrp(path: str | Path) -> CvrpInstance:
    """Read a CVRP instance; anything this import cannot plan is a ScenarioError naming the
    field (an unsupported TYPE or EDGE_WEIGHT_TYPE, time windows, several depots, ...).
    A UTF-8 byte-order mark at the start of the file is ignored."""
    try:
        text = Path(path).read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([("$", f"the file cannot be read: {exc}")]) from None
    _check_node_rows(text)
    text, weights = _split_edge_weights(text)
    try:
        inst: dict[str, Any] = parse_vrplib(text, compute_edge_weights=False)
    except (ValueError, RuntimeError, IndexError, TypeError, KeyError) as exc:
        raise ScenarioError([("$", f"cannot be read as VRPLIB: {exc}")]) from None
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
    if demand is None:
        raise ScenarioError([("DEMAND_SECTION", f"missing: a CVRP needs a demand for each of "
                              f"the {dim} nodes (0 for the depot)")])
    demand_arr = _demands(demand, dim)
    # no DEPOT_SECTION: node 1 is the depot (CVRPLIB's convention)
    depot = _depot(inst.get("depot", np.array([0])), dim)
    if demand_arr[depot] != 0:
        raise ScenarioError([("DEMAND_SECTION", f"the depot (node {depot + 1}) has demand "
                              f"{demand_arr[depot]:g}; a CVRP depot's demand must be 0")])
    dist = _distances(inst, dim, weights)
    coords_arr = _float_array(inst.get("node_coord"))
    coords = None
    if isinstance(coords_arr, np.ndarray) and coords_arr.shape == (dim, 2):
        coords = tuple((float(x), float(y)) for x, y in coords_arr)
    name = str(inst.get("name", Path(path).stem))
    field, in_name = _fleet_field(inst.get("vehicles")), _fleet_in_name(name)
    return CvrpInstance(name, float(capacity), tuple(float(d) for d in demand_arr), depot, dist,
                        field if field is not None else in_name, coords, field, in_name)


def scenario_from_vrp(inst: CvrpInstance, fleet: Fleet = "exact") -> Scenario:
    """One hub (the depot), one day, one class; distances as an explicit matrix; each
    customer a village visited by exactly one route; cost = km. With `fleet` "exact" an
    instance with a fleet size (`-kN` or VEHICLES) gets exactly that many routes, as the
    published optima assume; "free" (or no stated fleet) lets the number of routes float.
    With "exact", a VEHICLES field and a NAME `-kN` that disagree are a ScenarioError, and an
    instance stating no fleet size (no VEHICLES, no `-kN` with N a positive integer) is
    planned as with "free", saying so in a logged warning."""
    if fleet not in ("exact", "free"):
        raise ScenarioError([("fleet", f"must be 'exact' or 'free', not {fleet!r}")])
    if fleet == "exact":
        if (inst.fleet_field is not None and inst.fleet_in_name is not None
                and inst.fleet_field != inst.fleet_in_name):
            raise ScenarioError([("VEHICLES", f"{inst.fleet_field} contradicts NAME "
                                  f"{inst.name!r} (-k{inst.fleet_in_name}): with --fleet exact "
                                  "the number of routes must be one number (make them agree, "
                                  "or use --fleet free)")])
        if inst.vehicles is None:
            _LOG.warning("warning: %s states no fleet size (no VEHICLES field, no -kN in NAME "
                         "with N a positive integer): the number of routes floats, as with "
                         "--fleet free", repr(inst.name))
    exact = fleet == "exact" and inst.vehicles is not None
    if exact and inst.vehicles is not None and inst.vehicles > MAX_NUMBER:
        # no scenario count (and no plan: a route serves at least one customer)
        where, what = (("NAME", repr(inst.name)) if inst.fleet_field is None
                       else ("VEHICLES", str(inst.vehicles)))
        raise ScenarioError([(where, f"{what} states an impossible fleet size: exactly "
                              f"{inst.vehicles:.6g} routes for {len(inst.demand) - 1} "
                              "customers (each route serves at least one; --fleet free lets "
                              "the number of routes float)")])
    too_big = [(where, f"{value:g} is too large: a scenario's numbers are at most "
                       f"{MAX_NUMBER:g}")
               for where, value in (
                   ("NODE_COORD_SECTION" if inst.coords else "EDGE_WEIGHT_SECTION",
                    float(np.abs(inst.dist).max(initial=0.0))),
                   ("DEMAND_SECTION", max(inst.demand, default=0.0)),
                   ("CAPACITY", inst.capacity))
               if value > MAX_NUMBER]
    if too_big:
        raise ScenarioError(too_big)
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


def read_sol(path: str | Path) -> tuple[list[list[int]], float | None]:
    """A `.sol` file's routes (CVRPLIB numbering) and its stated cost, if any (a UTF-8
    byte-order mark at the start of the file is ignored)."""
    sol = parse_solution(Path(path).read_text("utf-8-sig"))
    cost = sol.get("cost")
    return [list(map(int, r)) for r in sol["routes"]], (
        None if cost is None else float(cost))


def write_sol(path: str | Path, routes: list[list[int]], cost: float | None) -> None:
    """Write routes (CVRPLIB numbering, as `PlanResult.routes`: customer c is the c-th node
    of the `.vrp` file other than the depot, so the depot is 0, as `vrplib` and PyVRP number
    locations) as a `.sol` file."""
    vrplib.write_solution(path, routes, None if cost is None else {"Cost": f"{cost:g}"})
