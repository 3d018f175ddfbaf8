"""Scenario format: the typed, frozen description of one planning problem.

A scenario is plain data (JSON or YAML) so that the job service, the demo and people can
write it without Python. Validation happens in two layers: the published JSON Schema
(generated from these models, see ``scenario_json_schema``) checks shapes and ranges, and
``_check_references`` checks what a schema cannot (ids that must exist, days inside the
horizon). Both report the path of the offending value, e.g. ``villages[3].hub_id``.
"""

from __future__ import annotations

import difflib
import json
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from optimizer.factors import load_factors

# defaults for fields a scenario may leave out, each traced to its source there
_FACTS = load_factors()


class ScenarioError(ValueError):
    """A scenario that cannot be planned; ``problems`` lists (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"{path}: {msg}" for path, msg in problems]
        super().__init__("invalid scenario:\n  " + "\n  ".join(lines))


class ScenarioSyntaxError(ScenarioError):
    """A file that is not JSON or YAML at all: one line with the place of the fault, in the
    ``file:line:column`` form editors jump to (line and column count from 1)."""

    def __init__(self, file: str, line: int, column: int, message: str):
        self.file, self.line, self.column = file, line, column
        self.problems = [(f"line {line}, column {column}", message)]
        ValueError.__init__(self, f"{file}:{line}:{column}: {message}")


#: the largest number a scenario may hold anywhere (parcels, litres, grams, costs, km):
#: far above any county's figures, and below where the model's arithmetic breaks down
#: (1e308 parcels overflowed the capacity covers; 1e15 litres of van made HiGHS fail)
MAX_NUMBER = 1e9


#: the values of mappings, bounded where declared (the `_Frozen` check sees plain fields)
Litres = Annotated[float, Field(gt=0, le=MAX_NUMBER, strict=True)]
Km = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER, strict=True)]


def _too_big(v: Any) -> float | None:
    """`v` when it is a finite number beyond MAX_NUMBER (infinities have their own message;
    the values of mappings are bounded where they are declared), else None."""
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) \
            and abs(v) > MAX_NUMBER:
        return float(v)
    return None


class _Frozen(BaseModel):
    # no infinities or NaN anywhere: `parcels: .inf` would reach the model as a number
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_for_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        """`count: true` was read as 1 vehicle (pydantic's lax mode takes a bool for a
        number): a number field wants a number."""
        if isinstance(v, bool) and info.field_name is not None:
            ann = cls.model_fields[info.field_name].annotation
            kinds = {ann, *typing.get_args(ann)}
            if bool not in kinds and kinds & {int, float}:
                raise ValueError("a number, not true or false")
        big = _too_big(v)
        if big is not None:
            raise ValueError(f"{big:g} is too large: numbers in a scenario are at most "
                             f"{MAX_NUMBER:g}")
        return v


class Site(_Frozen):
    """The county depot (trunk legs start and end here)."""

    id: str = "COUNTY"
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Hub(_Frozen):
    hub_id: str
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    cleaning_capacity_per_day: float = Field(
        default=1e9, ge=0, description="reusable containers the hub can clean per day"
    )


class Village(_Frozen):
    village_id: str
    hub_id: str
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class TemperatureClass(_Frozen):
    class_id: str
    refrigerated: bool = False
    litres_per_parcel: float = Field(gt=0, description="volume of one down parcel")


class VehicleType(_Frozen):
    vehicle_type: str
    base: Literal["hub", "county"] = Field(
        description="'hub' vehicles run milk runs from a township hub; 'county' vehicles run "
        "trunk legs county <-> hub"
    )
    compartments_litres: dict[str, Litres] = Field(
        min_length=1,
        description="capacity per temperature class compartment, e.g. {ambient: 4000}"
    )
    refrigerated: bool = False
    passive_cold_allowed: bool = Field(
        default=True,
        description="refrigerated classes packed in passive cold packaging may ride in a "
        "non-refrigerated compartment",
    )
    fixed_cost_cny: float = Field(ge=0, description="cost per trip (driver, handling)")
    cost_per_km_cny: float = Field(ge=0)
    co2e_per_km_kg: float = Field(ge=0, description="tank-to-wheel, without reefer uplift")
    reefer_uplift: float = Field(default=0.0, ge=0, description="fractional CO2e uplift")
    max_route_km: float = Field(default=1e9, gt=0)
    max_stops: int = Field(default=6, ge=1)
    max_trips_per_day: int = Field(
        default=1, ge=1, description="upper cap; fewer when the trips are too long for the "
        "shift (see shift_minutes)")
    speed_kmh: float = Field(
        default=_FACTS.value("vehicles.van_speed_kmh"), gt=0,
        description="average speed while driving (default: facts vehicles.van_speed_kmh)")
    service_minutes_per_stop: float = Field(
        default=_FACTS.value("vehicles.service_minutes_per_stop"), ge=0,
        description="time at each stop: a village on a milk run, the hub on a trunk leg "
        "(default: facts vehicles.service_minutes_per_stop)")
    shift_minutes: float = Field(
        default=_FACTS.value("vehicles.shift_minutes"), gt=0,
        description="a vehicle's driving and stops per day; a trip runs only if it fits, "
        "and a vehicle runs at most floor(shift / trip minutes) trips of a kind a day "
        "(default: facts vehicles.shift_minutes)")
    count: int | None = Field(
        default=None, ge=0, description="vehicles per base (each hub, or the county)"
    )
    count_by_hub: dict[str, Annotated[int, Field(ge=0, le=MAX_NUMBER, strict=True)]] = Field(
        default_factory=dict, description="overrides count per hub for hub vehicles"
    )


class DemandGroup(_Frozen):
    """Parcels of one village, day, class and direction, aggregated."""

    village_id: str
    day: int = Field(ge=0, description="earliest service day (next-day already applied)")
    class_id: str
    direction: Literal["down", "up"]
    parcels: float = Field(ge=0)
    volume_litres: float | None = Field(
        default=None, ge=0, description="'up' only (farm shipments); down volume is always "
        "parcels x class litres_per_parcel",
    )
    flex_days: int = Field(
        default=0, ge=0, description="presale window: may be served up to flex_days later"
    )

    @field_validator("volume_litres")
    @classmethod
    def _volume_is_up_only(cls, v: float | None, info: ValidationInfo) -> float | None:
        """A down group's volume was silently ignored (parcels x the class's litres count):
        a volume the planner does not use is refused, not taken for one it does."""
        if v is not None and info.data.get("direction") == "down":
            raise ValueError("'up' only (farm shipments); a down group's volume is parcels "
                             "x the class's litres_per_parcel: remove volume_litres")
        return v


class SingleUseOption(_Frozen):
    option_id: str
    class_ids: list[str] = Field(description="classes whose deliveries (down) it may pack")
    up_class_ids: list[str] = Field(
        default_factory=list, description="classes whose farm shipments (up) it may pack; "
        "the up shipments of a class no option lists are not packed by the plan")
    cost_cny: float = Field(ge=0, description="per parcel")
    waste_grams: float = Field(ge=0, description="per parcel, disposed at the village")
    co2e_kg: float = Field(ge=0, description="production CO2e per parcel")
    passive: bool = Field(default=False, description="keeps a cold class cold without reefer")
    litres_per_parcel: float | None = Field(
        default=None, gt=0, description="volume of a delivered parcel so packed (default: "
        "the class's litres_per_parcel)")


class ReusableType(_Frozen):
    container_type: str
    class_ids: list[str]
    price_cny: float = Field(ge=0)
    cycle_life: float = Field(ge=1, description="uses before the container is retired")
    cleaning_cny: float = Field(ge=0, description="per container returned to the pool")
    cleaning_co2e_kg: float = Field(default=0.0, ge=0)
    production_co2e_kg: float = Field(default=0.0, ge=0, description="per container bought")
    nested_litres: float = Field(ge=0, description="volume of one empty on the return leg")
    return_rate: float = Field(gt=0, le=1)
    return_lag_days: int = Field(default=1, ge=0, description="days at the village before "
                                 "the empty can be picked up")
    passive: bool = False
    up_class_ids: list[str] = Field(
        default_factory=list, description="classes whose farm shipments may travel up in it: "
        "filled at the village from the empties waiting there, emptied and returned to the "
        "hub's pool the same day")
    litres_per_parcel: float | None = Field(
        default=None, gt=0, description="volume of a delivered parcel in it (default: the "
        "class's litres_per_parcel)")
    per_use_cost_cny: float = Field(
        default=0.0, ge=0, description="single-use items that go with each use (e.g. ice packs)")
    per_use_waste_grams: float = Field(default=0.0, ge=0)
    per_use_co2e_kg: float = Field(default=0.0, ge=0)


class Packaging(_Frozen):
    single_use: list[SingleUseOption]
    reusable: list[ReusableType] = Field(default_factory=list)
    whole_parcels: bool = Field(
        default=False, description="packaging counts as integer variables (small instances; "
        "the default keeps them continuous, which aggregated demand groups do not mind)",
    )


class ContainerPool(_Frozen):
    hub_id: str
    container_type: str
    count: float = Field(ge=0)


class OutstandingWaste(_Frozen):
    village_id: str
    grams: float = Field(ge=0)
    litres_per_kg: float = Field(default=8.0, gt=0, description="bulk volume of the waste")


class ContainersOut(_Frozen):
    """Reusable containers already out at a village when the horizon starts (issued before
    it, not yet back): from ``day`` on they wait empty there, to be picked up or filled
    with farm goods like the plan's own. The pool count of the hub excludes them."""

    village_id: str
    container_type: str
    count: float = Field(ge=0)
    day: int = Field(default=0, ge=0, description="first day they wait empty (0: now)")


class Prices(_Frozen):
    carbon_cny_per_kg_co2e: float = Field(default=0.0, ge=0)
    disposal_cny_per_kg: float = Field(default=0.0, ge=0)
    pool_amortisation_weeks: float = Field(
        default=52.0, gt=0, description="weeks over which a pool expansion is paid off"
    )


class Routing(_Frozen):
    circuity_factor: float = Field(default=1.3, ge=1.0)
    distance_matrix_km: dict[str, dict[str, Km]] | None = None
    exact_max_villages: int = Field(
        default=10, ge=1, description="hubs with at most this many active villages get all "
        "subsets as candidate trips; larger hubs get sweep clusters",
    )
    cluster_size: int = Field(default=6, ge=1)
    pyvrp_pool: bool = Field(
        default=False, description="hubs above exact_max_villages also get the tours of a "
        "PyVRP run per day on that day's loads, besides the sweep clusters (off by default: "
        "the larger pools slow each hub's solves past the county week's 120 s budget)",
    )
    single_visit: bool = Field(
        default=False, description="each village served by exactly one trip with its whole "
        "demand (CVRP set partitioning)",
    )
    exact_fleet: bool = Field(default=False, description="use exactly `count` vehicles")


class Scenario(_Frozen):
    name: str = "scenario"
    factor_set: str = ""
    # a year at most: the model grows with the days (10,000 days took 27 s to build and
    # overran a 5 s time limit)
    horizon_days: int = Field(ge=1, le=366)
    horizon_end: Literal["cyclic", "boundary"] = Field(
        default="cyclic",
        description="cyclic: pools and in-flight empties at the end equal those at the start; "
        "boundary: start from the stated pools, end with at least as many",
    )
    depot: Site
    hubs: list[Hub]
    villages: list[Village]
    classes: list[TemperatureClass]
    vehicle_types: list[VehicleType]
    demand: list[DemandGroup] = Field(default_factory=list)
    packaging: Packaging
    container_pools: list[ContainerPool] = Field(default_factory=list)
    containers_on_hand: bool = Field(
        default=False,
        description="plan with the containers the hubs hold: no pool expansion, and day 0's "
        "issues come from the stock at the start (containers bought are not there on day 0); "
        "the daily dispatch plans so, since its first day is tomorrow's run sheet")
    outstanding_waste: list[OutstandingWaste] = Field(default_factory=list)
    containers_out: list[ContainersOut] = Field(
        default_factory=list,
        description="containers at villages at the start (boundary horizon only)")
    prices: Prices = Field(default_factory=Prices)
    routing: Routing = Field(default_factory=Routing)

    def class_by_id(self) -> dict[str, TemperatureClass]:
        return {c.class_id: c for c in self.classes}

    def hub_vehicle_count(self, vt: VehicleType, hub_id: str) -> int:
        if vt.base == "hub" and hub_id in vt.count_by_hub:
            return vt.count_by_hub[hub_id]
        return vt.count if vt.count is not None else 10**6

    def down_volume_litres(self, g: DemandGroup) -> float:
        """The group's litres: an up group's stated volume, else parcels × the class's
        litres per parcel (a delivery's volume also depends on its packaging: the model
        prices that in with each option's litres_per_parcel)."""
        if g.volume_litres is not None and g.direction == "up":
            return g.volume_litres
        return g.parcels * self.class_by_id()[g.class_id].litres_per_parcel

    def litres_per_parcel(self, option: SingleUseOption | ReusableType, class_id: str
                          ) -> float:
        """A delivered parcel of `class_id` packed in `option`."""
        if option.litres_per_parcel is not None:
            return option.litres_per_parcel
        return self.class_by_id()[class_id].litres_per_parcel


def scenario_json_schema() -> dict[str, Any]:
    """The published JSON Schema (kept in optimizer/schemas/scenario.schema.json)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://packloop.example/schemas/scenario.schema.json"
    return schema


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "$"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or inside a list, dict or optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_names_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names the model at `loc` (a pydantic error location) accepts; list
    indexes and dict keys along the way are stepped over."""
    model: type[BaseModel] | None = Scenario
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _problem(error: Any) -> tuple[str, str]:
    """(path, message) of one validation error; an unknown field names the closest known
    one at that place (typos are the usual cause)."""
    loc = tuple(error["loc"])
    if error["type"] != "extra_forbidden" or not loc or not isinstance(loc[-1], str):
        return _path(loc), error["msg"]
    known = _field_names_at(loc[:-1])
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else (
        f"; known fields: {', '.join(known)}" if known else "")
    return _path(loc), f"unknown field {loc[-1]!r}{hint}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last
    one silently, so a scenario with two `count:` lines planned with whichever came last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` brings defaults the explicit keys may override
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} given twice in one object")
        out[key] = value
    return out


def parse_document(path: Path) -> Any:
    """A JSON or YAML file (by its suffix) as plain data; a syntax error becomes a
    ScenarioSyntaxError with its line and column instead of the parser's traceback."""
    data = path.read_bytes()
    try:
        # "utf-8-sig": a byte-order mark, as Windows editors write, is no syntax error
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioSyntaxError(str(path), line, column,
                                  f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    as_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        if as_yaml:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        suffix = path.suffix.lower()
        hint = "" if suffix == ".json" else (
            " (a CVRPLIB instance: plan solve --vrplib FILE)" if suffix == ".vrp"
            else " (read as JSON: a YAML file's name must end in .yaml or .yml)")
        raise ScenarioSyntaxError(str(path), exc.lineno, exc.colno,
                                  f"JSON syntax error: {exc.msg}{hint}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = (exc.problem or "") + (f" ({exc.context})" if exc.context else "")
        raise ScenarioSyntaxError(str(path), line, column, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise ScenarioSyntaxError(str(path), 1, 1, f"YAML error: {exc}") from None
    except ValueError as exc:  # a JSON key given twice (`_unique_pairs`)
        raise ScenarioSyntaxError(str(path), 1, 1, f"JSON error: {exc}") from None


def _check_references(s: Scenario) -> list[tuple[str, str]]:
    """Cross-references the schema cannot express."""
    problems: list[tuple[str, str]] = []
    hubs = {h.hub_id for h in s.hubs}
    villages = {v.village_id for v in s.villages}
    classes = {c.class_id for c in s.classes}
    ctypes = {r.container_type for r in s.packaging.reusable}
    # depot, hubs and villages are the nodes of one distance oracle: an id used twice
    # would silently merge two places (a depot named like a hub: trunk legs of 0 km)
    node_of: dict[str, str] = {s.depot.id: "depot.id"}
    for k, h in enumerate(s.hubs):
        if h.hub_id in node_of:
            problems.append((f"hubs[{k}].hub_id",
                             f"duplicate id {h.hub_id!r} (already {node_of[h.hub_id]})"))
        node_of.setdefault(h.hub_id, f"hubs[{k}].hub_id")
    for k, v in enumerate(s.villages):
        if v.hub_id not in hubs:
            problems.append((f"villages[{k}].hub_id", f"unknown hub {v.hub_id!r}"))
        if v.village_id in node_of:
            problems.append((f"villages[{k}].village_id",
                             f"duplicate id {v.village_id!r} (already {node_of[v.village_id]})"))
        node_of.setdefault(v.village_id, f"villages[{k}].village_id")
    option_ids = [*((f"packaging.single_use[{k}].option_id", o.option_id)
                    for k, o in enumerate(s.packaging.single_use)),
                  *((f"packaging.reusable[{k}].container_type", r.container_type)
                    for k, r in enumerate(s.packaging.reusable))]
    for where, ids in (
            ("classes", [(f"classes[{k}].class_id", c.class_id)
                         for k, c in enumerate(s.classes)]),
            ("vehicle types", [(f"vehicle_types[{k}].vehicle_type", v.vehicle_type)
                               for k, v in enumerate(s.vehicle_types)]),
            ("packaging options", option_ids),
            ("container pools", [(f"container_pools[{k}]", f"{p.hub_id}/{p.container_type}")
                                 for k, p in enumerate(s.container_pools)]),
            # one row per village: the model keeps one (its grams and bulk) per village
            ("outstanding waste rows (one per village: add their grams up)",
             [(f"outstanding_waste[{k}].village_id", w.village_id)
              for k, w in enumerate(s.outstanding_waste)])):
        first: dict[str, str] = {}
        for path, ident in ids:
            if ident in first:
                problems.append((path, f"duplicate {ident!r} among the {where} (already "
                                       f"{first[ident]}): one would silently replace the other"))
            first.setdefault(ident, path)
    for k, vt in enumerate(s.vehicle_types):
        for c in vt.compartments_litres:
            if c not in classes:
                problems.append((f"vehicle_types[{k}].compartments_litres.{c}",
                                 f"unknown temperature class {c!r}"))
        for hid in vt.count_by_hub:
            if hid not in hubs:
                problems.append((f"vehicle_types[{k}].count_by_hub.{hid}",
                                 f"unknown hub {hid!r}"))
        if vt.count_by_hub and vt.base != "hub":
            # it was silently ignored: a county vehicle serves every hub from one fleet
            problems.append((f"vehicle_types[{k}].count_by_hub",
                             f"only for vehicle types based at hubs; {vt.vehicle_type!r} is "
                             f"based at the {vt.base}, whose fleet is its count"))
    if not any(vt.base == "hub" for vt in s.vehicle_types):
        problems.append(("vehicle_types", "no vehicle type with base 'hub' to run milk runs"))
    for k, g in enumerate(s.demand):
        if g.village_id not in villages:
            problems.append((f"demand[{k}].village_id", f"unknown village {g.village_id!r}"))
        if g.class_id not in classes:
            problems.append((f"demand[{k}].class_id", f"unknown class {g.class_id!r}"))
        if g.day >= s.horizon_days:
            problems.append((f"demand[{k}].day",
                             f"day {g.day} outside horizon 0..{s.horizon_days - 1}"))
    options: list[tuple[str, SingleUseOption | ReusableType]] = [
        *(("single_use", o) for o in s.packaging.single_use),
        *(("reusable", r) for r in s.packaging.reusable)]
    for kind in ("single_use", "reusable"):
        for k, (_kind, o) in enumerate(x for x in options if x[0] == kind):
            for field in ("class_ids", "up_class_ids"):
                for c in getattr(o, field):
                    if c not in classes:
                        problems.append((f"packaging.{kind}[{k}].{field}",
                                         f"unknown class {c!r}"))
    down_classes = {g.class_id for g in s.demand if g.direction == "down" and g.parcels > 0}
    for c in sorted(down_classes):
        if not any(c in o.class_ids for o in s.packaging.single_use + s.packaging.reusable):
            problems.append(("packaging", f"no packaging option for class {c!r}"))
    for k, p in enumerate(s.container_pools):
        if p.hub_id not in hubs:
            problems.append((f"container_pools[{k}].hub_id", f"unknown hub {p.hub_id!r}"))
        if p.container_type not in ctypes:
            problems.append((f"container_pools[{k}].container_type",
                             f"unknown container type {p.container_type!r}"))
    for k, w in enumerate(s.outstanding_waste):
        if w.village_id not in villages:
            problems.append((f"outstanding_waste[{k}].village_id",
                             f"unknown village {w.village_id!r}"))
    reusable_types = {r.container_type for r in s.packaging.reusable}
    for k, co in enumerate(s.containers_out):
        if co.village_id not in villages:
            problems.append((f"containers_out[{k}].village_id",
                             f"unknown village {co.village_id!r}"))
        if co.container_type not in reusable_types:
            problems.append((f"containers_out[{k}].container_type",
                             f"not a reusable container type: {co.container_type!r}"))
        if co.day >= s.horizon_days:
            problems.append((f"containers_out[{k}].day",
                             f"must be within the horizon (0 to {s.horizon_days - 1})"))
    if s.packaging.whole_parcels:
        for k, g in enumerate(s.demand):
            if g.parcels != int(g.parcels):
                problems.append((f"demand[{k}].parcels", f"{g.parcels:g} is not a whole number "
                                 "(packaging.whole_parcels packs whole parcels)"))
    if s.routing.single_visit:
        # a CVRP: what `optimizer.solve_cvrp` solves (one hub, one day, one class)
        for field, n in (("hubs", len(s.hubs)), ("classes", len(s.classes)),
                         ("horizon_days", s.horizon_days),
                         ("vehicle_types", sum(v.base == "hub" for v in s.vehicle_types))):
            if n != 1:
                problems.append((field, f"routing.single_visit (a CVRP) needs exactly one, "
                                        f"found {n}"))
    if s.containers_out and s.horizon_end == "cyclic":
        problems.append(("containers_out", "needs horizon_end 'boundary': a cyclic week has "
                         "no start for containers to be out at"))
    dm = s.routing.distance_matrix_km
    if dm is not None:
        nodes = {s.depot.id} | hubs | villages
        for a, row in dm.items():
            if a not in nodes:
                problems.append((f"routing.distance_matrix_km.{a}", f"unknown node {a!r}"))
            for b, d in row.items():
                if b not in nodes:
                    problems.append((f"routing.distance_matrix_km.{a}.{b}", "unknown node"))
                elif d < 0:
                    problems.append((f"routing.distance_matrix_km.{a}.{b}", "negative distance"))
    return problems


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Read, validate and freeze a scenario from a JSON/YAML path or a mapping.

    Raises ScenarioError listing every problem with its path, so a user fixes them in one go.
    """
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = parse_document(Path(source))
        if not isinstance(raw, dict):
            raise ScenarioError([("$", "top level must be a mapping")])
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError([_problem(e) for e in exc.errors()]) from None
    problems = _check_references(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario
