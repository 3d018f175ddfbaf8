"""Every event type packloop reads or writes, in one place.

The wire format is JSON. Hub systems are written in many languages, so the
JSON Schemas under ``streams/schemas/`` are generated from these classes
(``python -m streams.schema_export``) and a test keeps them in sync. Quantities are
integer grams: a JSON number with a fractional part is refused rather than
rounded, because rounding would silently change an officer's figures.

Every quantity has an upper bound no real hub event comes near (:data:`MAX_ITEM_GRAMS`,
:data:`MAX_ITEM_COUNT`): an absurd number is refused with the field at fault instead of
being carried into the running totals (which hold 64-bit integers, see
:data:`streams.state.tallies.MAX_TALLY_GRAMS`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    TypeAdapter,
    ValidationError,
)


class Material(StrEnum):
    CARDBOARD = "cardboard"
    PAPER_FILL = "paper_fill"
    PLASTIC_FILM = "plastic_film"
    TAPE = "tape"
    EPS_FOAM = "eps_foam"
    ICE_PACK = "ice_pack"
    PP_PLASTIC = "pp_plastic"


#: the materials the plastic rules speak of (bags and film, tape, foam, hard plastic)
PLASTIC_MATERIALS = frozenset(
    {Material.PLASTIC_FILM, Material.TAPE, Material.EPS_FOAM, Material.PP_PLASTIC}
)


class ContainerType(StrEnum):
    REUSABLE_CRATE = "reusable_crate"
    INSULATED_BOX = "insulated_box"


class Direction(StrEnum):
    DOWN = "down"
    UP = "up"


class TemperatureClass(StrEnum):
    AMBIENT = "ambient"
    CHILLED = "chilled"
    FROZEN = "frozen"


class Condition(StrEnum):
    OK = "ok"
    DAMAGED = "damaged"
    LOST = "lost"


#: The largest number of grams one event item may carry (a shipment's weight, a packaging
#: line, a material of a collection or of an adjustment): 10^9 g = 1,000 t, beyond any
#: parcel, truck load or village collection. An adjustment may be as negative.
MAX_ITEM_GRAMS = 1_000_000_000
#: The largest count one event item may carry (items of a packaging line, containers
#: returned at once).
MAX_ITEM_COUNT = 1_000_000


class EventError(ValueError):
    """An event that cannot be accepted, with the field at fault.

    ``field`` is a dotted path (``packaging.1.grams``) or ``None`` when the
    problem is the record as a whole (malformed JSON, too large, not UTF-8).
    """

    def __init__(self, reason: str, field: str | None = None, code: str = "invalid") -> None:
        self.reason = reason
        self.field = field
        self.code = code
        super().__init__(f"{field}: {reason}" if field else reason)


def _integral(value: Any) -> Any:
    """Accept 2300 and 2300.0, refuse 2300.5, strings and booleans."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError("must be a JSON integer number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number of grams (no fractional part)")
        return int(value)
    return value


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)


def _utc_timestamp(value: Any) -> datetime:
    """RFC 3339 with an explicit offset, normalised to UTC.

    Hubs in China send +08:00; storing UTC makes ordering and replay independent
    of where an event was typed in.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return _to_utc(value)
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            "must be an RFC 3339 timestamp with offset, e.g. 2026-11-11T08:30:00Z or "
            "2026-11-11T16:30:00+08:00"
        )
    offset_hours, offset_minutes = match.group(3, 4)
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes) > 59):
        # checked here: Python's own refusal speaks of timedelta objects, not of the text sent
        raise ValueError(
            f"offset {match.group(2)} is out of range: UTC offsets are between -23:59 and "
            "+23:59"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"is not a valid date/time ({exc})") from None
    return _to_utc(parsed, value)


def _to_utc(value: datetime, text: str | None = None) -> datetime:
    """``value`` in UTC; a time whose UTC form falls outside the years 1-9999 (e.g.
    0001-01-01T00:00:00+14:00) is refused, not left to crash the caller."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        shown = text if text is not None else value.isoformat()
        raise ValueError(
            f"{shown} is out of range: in UTC it falls outside the years 0001-9999"
        ) from None


def _format_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _hours(value: Any) -> Any:
    """A JSON number of hours; booleans and strings are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number of hours")
    return value


Grams = Annotated[
    int, Field(ge=0, le=MAX_ITEM_GRAMS, strict=True), BeforeValidator(_integral)
]
SignedGrams = Annotated[
    int, Field(ge=-MAX_ITEM_GRAMS, le=MAX_ITEM_GRAMS, strict=True), BeforeValidator(_integral)
]
Count = Annotated[int, Field(ge=1, le=MAX_ITEM_COUNT, strict=True), BeforeValidator(_integral)]
#: grams packloop itself reports (a village's outstanding total): not an event item's, so
#: not bounded by MAX_ITEM_GRAMS
TotalGrams = Annotated[int, Field(ge=0, strict=True), BeforeValidator(_integral)]
UtcTimestamp = Annotated[
    datetime,
    BeforeValidator(_utc_timestamp),
    PlainSerializer(_format_utc, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "format": "date-time"}),
]
#: the longest id an event may carry (event, shipment, pickup ids)
MAX_ID_LENGTH = 128
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)


class PackagingItem(_Record):
    """A single-use packaging line; ``grams`` is the total for all ``count`` items."""

    material: Material
    count: Count
    grams: Grams
    degradable: StrictBool | None = Field(
        None,
        description="Whether the item is degradable (the 2020 plastic rules end "
        "non-degradable bags and tape at delivery outlets by the end of 2025); absent: "
        "not known.",
    )


class ContainerRef(_Record):
    """One reusable container travelling with a shipment."""

    container_type: ContainerType
    container_id: Identifier | None = None


class EventBase(_Record):
    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="Idempotency key: a re-sent event keeps it, and "
                                 "its content; an applied id sent with other content is "
                                 "dead-lettered (`event_id_conflict`).")
    occurred_at: UtcTimestamp
    hub_id: Identifier
    village_id: Identifier


class Shipment(EventBase):
    type: Literal["shipment"] = "shipment"
    shipment_id: Identifier
    direction: Direction
    temperature_class: TemperatureClass
    weight_grams: Grams
    packaging: list[PackagingItem] = Field(default_factory=list)
    containers: list[ContainerRef] = Field(
        default_factory=list,
        description="Reusable containers travelling with the parcel: on `down` boxes the hub "
        "issues, on `up` crates carrying produce from the village; either way they count as "
        "issued and come back with a packaging_return.",
    )
    carrier: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] | None = Field(
        None, description="The courier's lower-case id (e.g. `sf`, `jd`, `ems`)."
    )
    outer_box_added: StrictBool | None = Field(
        None, description="Whether a second (outer) box was added around the seller's own."
    )
    tape_width_mm: Annotated[int, Field(ge=1, le=200, strict=True)] | None = Field(
        None, description="Width of the sealing tape (the 2020 campaign counts <= 45 mm)."
    )
    reused_carton: StrictBool | None = Field(
        None, description="Whether the carton was a used one shipped again."
    )


class PackagingReturn(EventBase):
    type: Literal["packaging_return"] = "packaging_return"
    container_type: ContainerType
    count: Count
    condition: Condition


class RecyclingCollected(EventBase):
    type: Literal["recycling_collected"] = "recycling_collected"
    collected_grams: dict[Material, Grams]
    pickup_id: Identifier | None = None


class WasteAdjustment(EventBase):
    """A ledger-style correction: events are never edited, only corrected."""

    type: Literal["waste_adjustment"] = "waste_adjustment"
    generated_grams: dict[Material, SignedGrams] = Field(default_factory=dict)
    recovered_grams: dict[Material, SignedGrams] = Field(default_factory=dict)
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    corrects_event_id: Identifier


class PickupCancelled(EventBase):
    """A hub calls off the open pickup; no new one is requested for the village until
    ``snooze_hours`` of stream time have passed, or new waste reaches a weight threshold."""

    type: Literal["pickup_cancelled"] = "pickup_cancelled"
    pickup_id: Identifier
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    snooze_hours: Annotated[float, Field(ge=0, le=8784), BeforeValidator(_hours)] | None = Field(
        default=None,
        description="Hours (of event time) before the village may be asked for again; "
        "default: the network's pickup_snooze_hours. 0: at once, if still over a threshold.",
    )


class _PickupNotice(EventBase):
    pickup_id: Identifier
    outstanding_grams: dict[Material, TotalGrams]
    reasons: list[str]


class PickupRequested(_PickupNotice):
    """Emitted by packloop when a village crosses a threshold."""

    type: Literal["pickup_requested"] = "pickup_requested"


class PickupOverdue(_PickupNotice):
    """Emitted by packloop when an open pickup outlives its SLA."""

    type: Literal["pickup_overdue"] = "pickup_overdue"


HubEvent = Annotated[
    Shipment | PackagingReturn | RecyclingCollected | WasteAdjustment | PickupCancelled,
    Field(discriminator="type"),
]

HUB_EVENT_TYPES: dict[str, type[EventBase]] = {
    "shipment": Shipment,
    "packaging_return": PackagingReturn,
    "recycling_collected": RecyclingCollected,
    "waste_adjustment": WasteAdjustment,
    "pickup_cancelled": PickupCancelled,
}
PICKUP_EVENT_TYPES: dict[str, type[EventBase]] = {
    "pickup_requested": PickupRequested,
    "pickup_overdue": PickupOverdue,
}
EVENT_TYPES: dict[str, type[EventBase]] = {**HUB_EVENT_TYPES, **PICKUP_EVENT_TYPES}

MAX_EVENT_BYTES = 1024 * 1024

# annotated unions are type forms, which mypy checks only with its incomplete TypeForm feature
_hub_adapter: TypeAdapter[Any] = TypeAdapter(cast(Any, HubEvent))


def _first_error(exc: ValidationError) -> EventError:
    """Turn pydantic's report into one message naming the field and the problem."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"]]
    # Discriminated unions put the tag first in the path ("shipment.weight_grams").
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    kind = err["type"]
    msg = err["msg"]
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return EventError(
            f"unknown event type {tag!r}; expected one of {', '.join(HUB_EVENT_TYPES)}",
            "type",
            "unknown_type",
        )
    if kind == "union_tag_not_found":
        return EventError("is required (the event type)", "type", "missing_field")
    if kind == "missing":
        return EventError("is required", ".".join(loc), "missing_field")
    if kind == "less_than_equal":
        limit = (err.get("ctx") or {}).get("le")
        return EventError(
            f"{_shown(err.get('input'))} is over the limit: at most {limit} per event item",
            ".".join(loc) or None,
            kind,
        )
    if kind == "greater_than_equal" and (err.get("ctx") or {}).get("ge", 0) < 0:
        limit = (err.get("ctx") or {}).get("ge")
        return EventError(
            f"{_shown(err.get('input'))} is under the limit: at least {limit} per event item",
            ".".join(loc) or None,
            kind,
        )
    if kind == "enum":
        expected = (err.get("ctx") or {}).get("expected", "")
        return EventError(
            f"{err.get('input')!r} is not one of {expected}", ".".join(loc), "unknown_value"
        )
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return EventError(msg[0].lower() + msg[1:] if msg else kind, ".".join(loc) or None, kind)


def _shown(value: Any) -> str:
    """A number as an error message shows it (a 300-digit one shortened)."""
    text = repr(value)
    if isinstance(value, int) and len(text) > 20:
        return f"{float(value):.3e}"
    return text


def too_large(size: int, what: str = "event") -> EventError:
    """The ``too_large`` refusal of an event of ``size`` bytes."""
    return EventError(
        f"{what} is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit", code="too_large"
    )


def size_problem(received_bytes: int, written: bytes | None = None) -> EventError | None:
    """The size rule every sender applies (``packloop emit``, the gateway), so they agree.

    An event is measured as received, unknown fields and all: the JSON Lines line, the
    request body of a single event, or the compact JSON of one event of a batch. What is
    written to Kafka (``written``, the canonical form, which spells out defaults) must fit
    too, or the worker would refuse the record.
    """
    if received_bytes > MAX_EVENT_BYTES:
        return too_large(received_bytes)
    if written is not None and len(written) > MAX_EVENT_BYTES:
        return too_large(len(written), "event as written to Kafka (defaults spelled out)")
    return None


#: what Windows tools (Notepad, Excel's "CSV UTF-8") put before UTF-8 text
UTF8_BOM = b"\xef\xbb\xbf"


def without_bom(text: bytes) -> bytes:
    """``text`` less one leading UTF-8 byte order mark.

    For the start of a whole input only (a file for ``packloop emit``, a request body):
    Windows tools write one there, and RFC 8259 (8.1) lets a JSON parser ignore it. A
    BOM anywhere else is not the tool's and stays an error.
    """
    return text[len(UTF8_BOM) :] if text.startswith(UTF8_BOM) else text


def utf8_problem(raw: bytes) -> EventError | None:
    """Why ``raw`` is not UTF-8, with the first bad byte's position (0-based), or None.

    One message for every reader of hub input (``emit``, the worker, the gateway's
    bodies), so a hub is told the same whichever way it sent the bytes.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return EventError(f"not valid UTF-8 (byte {exc.start})", code="invalid_utf8")
    return None


def _decode(raw: bytes | str) -> Any:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_EVENT_BYTES:
        raise too_large(len(raw), "record")
    invalid = utf8_problem(raw)
    if invalid is not None:
        raise invalid
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"malformed JSON: {exc}", code="malformed_json") from None
    if not isinstance(data, dict):
        raise EventError("an event must be a JSON object", code="not_an_object")
    return data


def parse_hub_event(raw: bytes | str | dict[str, Any]) -> HubEvent:
    """Parse one hub event from JSON text (or an already-decoded object)."""
    data = raw if isinstance(raw, dict) else _decode(raw)
    kind = data.get("type")
    if isinstance(kind, str) and kind in PICKUP_EVENT_TYPES:
        raise EventError(
            f"{data['type']!r} is emitted by packloop itself, not by hubs", "type", "unknown_type"
        )
    try:
        return _hub_adapter.validate_python(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        # a failure pydantic does not wrap: still this event's fault, never the caller's crash
        raise EventError(f"invalid event ({type(exc).__name__}: {exc})", code="invalid") from None


def decode_hub_event(raw: bytes | str) -> tuple[HubEvent, bytes]:
    """The event, and its content as a village's dedupe set hashes it: the JSON object as
    sent with its keys sorted. Not the model's canonical form: serialising the model again
    would cost about as much as parsing it, on every event; a re-send written in another
    form (a null for an absent field) is then taken for a conflict and dead-lettered, which
    loses nothing, as its first copy counted."""
    data = _decode(raw)
    return parse_hub_event(data), orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def event_to_json(event: EventBase) -> bytes:
    """Canonical wire form: UTC 'Z' timestamps, enum values, no nulls dropped."""
    return event.model_dump_json().encode("utf-8")
