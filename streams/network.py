"""The county's reference data: hubs, villages, container types, thresholds.

One JSON or YAML file (chosen by ``PACKLOOP_NETWORK``) is the single source;
the bundled sample county is used when none is named. A village's thresholds
are merged over the county defaults key by key, once, at load time, so every
consumer sees the same effective numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.events import (
    ContainerType,
    EventBase,
    EventError,
    Material,
    PackagingReturn,
    PickupCancelled,
    Shipment,
)
from streams.state.pickups import is_pickup_of

SAMPLE_NETWORK_PATH = Path(__file__).parent / "data" / "sample_county.json"



class _ThresholdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outstanding_grams: int | None = Field(default=None, ge=1)
    material_grams: dict[Material, int] | None = None
    max_age_hours: float | None = Field(default=None, gt=0)


class _HubIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    hub_id: str = Field(min_length=1)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class _VillageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    village_id: str = Field(min_length=1)
    hub_id: str = Field(min_length=1)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    thresholds: _ThresholdsIn | None = None


class _ContainerTypeIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    container_type: ContainerType
    material: Material
    unit_grams: int = Field(ge=1)


class _DefaultsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    thresholds: _ThresholdsIn
    pickup_sla_hours: float = Field(default=72, gt=0)
    container_overdue_days: float = Field(default=14, gt=0)
    pickup_snooze_hours: float = Field(
        default=24,
        ge=0,
        description="After a cancelled pickup, hours before the village is asked for again "
        "(unless new waste reaches a weight threshold); a cancel's snooze_hours overrides it.",
    )


class NetworkFile(BaseModel):
    """The file format; its JSON Schema is published as ``network.schema.json``."""

    model_config = ConfigDict(extra="allow")
    county: str
    hubs: list[_HubIn] = Field(min_length=1)
    villages: list[_VillageIn] = Field(min_length=1)
    container_types: list[_ContainerTypeIn]
    defaults: _DefaultsIn
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Thresholds:
    outstanding_grams: int
    material_grams: dict[Material, int]
    max_age_hours: float


@dataclass(frozen=True, slots=True)
class Hub:
    hub_id: str
    name: str
    lat: float
    lon: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Village:
    village_id: str
    hub_id: str
    name: str
    lat: float
    lon: float
    thresholds: Thresholds
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerTypeSpec:
    container_type: ContainerType
    material: Material
    unit_grams: int


class NetworkError(ValueError):
    """The reference data file is unusable; the message names the path and problem."""


@dataclass(frozen=True)
class Network:
    county: str
    hubs: dict[str, Hub]
    villages: dict[str, Village]
    container_types: dict[ContainerType, ContainerTypeSpec]
    default_thresholds: Thresholds
    pickup_sla_hours: float
    container_overdue_days: float
    timezone: ZoneInfo
    pickup_snooze_hours: float = 24.0
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def villages_by_hub(self) -> dict[str, list[Village]]:
        grouped: dict[str, list[Village]] = {hub_id: [] for hub_id in self.hubs}
        for village in self.villages.values():
            grouped[village.hub_id].append(village)
        return grouped

    def check_event(self, event: EventBase) -> EventError | None:
        """The reference-data checks a schema cannot make (who owns which village)."""
        village = self.villages.get(event.village_id)
        if village is None:
            return EventError(
                f"unknown village {event.village_id!r}", "village_id", "unknown_village"
            )
        if village.hub_id != event.hub_id:
            return EventError(
                f"village {event.village_id!r} belongs to hub {village.hub_id!r}, "
                f"not {event.hub_id!r}",
                "hub_id",
                "hub_mismatch",
            )
        if isinstance(event, Shipment):
            for i, ref in enumerate(event.containers):
                if ref.container_type not in self.container_types:
                    return EventError(
                        f"container type {ref.container_type.value!r} is not in the "
                        "network's reference data",
                        f"containers.{i}.container_type",
                        "unknown_container_type",
                    )
        if isinstance(event, PickupCancelled) and not is_pickup_of(event.pickup_id,
                                                                   event.village_id):
            # the worker would refuse it (a village's pickups are P-{village}-{n}); said at
            # once, the gateway answers the hub instead of accepting it for the dead letters
            return EventError(
                f"pickup {event.pickup_id!r} is not one of village {event.village_id}'s "
                f"(their ids are P-{event.village_id}-N)",
                "pickup_id",
                "unknown_pickup",
            )
        if isinstance(event, PackagingReturn) and event.container_type not in self.container_types:
            return EventError(
                f"container type {event.container_type.value!r} is not in the network's "
                "reference data",
                "container_type",
                "unknown_container_type",
            )
        return None


def _merge(defaults: _ThresholdsIn, own: _ThresholdsIn | None) -> Thresholds:
    merged = defaults.model_dump()
    if own is not None:
        merged.update(own.model_dump(exclude_none=True, exclude_unset=True))
    if merged["outstanding_grams"] is None or merged["max_age_hours"] is None:
        raise NetworkError("defaults.thresholds: outstanding_grams and max_age_hours are required")
    return Thresholds(
        outstanding_grams=int(merged["outstanding_grams"]),
        material_grams={Material(k): int(v) for k, v in (merged["material_grams"] or {}).items()},
        max_age_hours=float(merged["max_age_hours"]),
    )


def network_from_dict(data: dict[str, Any], source: str = "<dict>") -> Network:
    try:
        parsed = NetworkFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in err["loc"])
        raise NetworkError(f"{source}: {path}: {err['msg']}") from None
    try:
        tz = ZoneInfo(parsed.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise NetworkError(f"{source}: timezone: unknown time zone {parsed.timezone!r}") from None

    hubs: dict[str, Hub] = {}
    for h in parsed.hubs:
        if h.hub_id in hubs:
            raise NetworkError(f"{source}: hubs: duplicate hub_id {h.hub_id!r}")
        hubs[h.hub_id] = Hub(h.hub_id, h.name, h.lat, h.lon, dict(h.model_extra or {}))
    villages: dict[str, Village] = {}
    for i, v in enumerate(parsed.villages):
        if v.village_id in villages:
            raise NetworkError(f"{source}: villages.{i}: duplicate village_id {v.village_id!r}")
        if v.hub_id not in hubs:
            raise NetworkError(f"{source}: villages.{i}.hub_id: unknown hub {v.hub_id!r}")
        villages[v.village_id] = Village(
            v.village_id,
            v.hub_id,
            v.name,
            v.lat,
            v.lon,
            _merge(parsed.defaults.thresholds, v.thresholds),
            dict(v.model_extra or {}),
        )
    return Network(
        county=parsed.county,
        hubs=hubs,
        villages=villages,
        container_types={
            c.container_type: ContainerTypeSpec(c.container_type, c.material, c.unit_grams)
            for c in parsed.container_types
        },
        default_thresholds=_merge(parsed.defaults.thresholds, None),
        pickup_sla_hours=parsed.defaults.pickup_sla_hours,
        container_overdue_days=parsed.defaults.container_overdue_days,
        timezone=tz,
        pickup_snooze_hours=parsed.defaults.pickup_snooze_hours,
        source=source,
        raw=data,
    )


def read_network_file(path: str | Path | None = None) -> dict[str, Any]:
    """The file as plain data (JSON or YAML), for tools that build on it directly."""
    path = Path(path) if path else SAMPLE_NETWORK_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NetworkError(f"cannot read network file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except ValueError as json_error:
                # YAML under a .json name (a deployment mounts the county's file, whichever
                # it is, at one path): YAML reads JSON too; the JSON error is kept when the
                # text is neither
                try:
                    data = yaml.safe_load(text)
                except yaml.YAMLError:
                    raise json_error from None
                if not isinstance(data, dict):
                    raise json_error from None
    except (ValueError, yaml.YAMLError) as exc:
        raise NetworkError(f"{path}: not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise NetworkError(f"{path}: the top level must be an object")
    return data


def load_network(path: str | Path | None = None) -> Network:
    """Load and validate the reference data; ``None`` means the bundled sample county."""
    resolved = Path(path) if path else SAMPLE_NETWORK_PATH
    return network_from_dict(read_network_file(resolved), str(resolved))
