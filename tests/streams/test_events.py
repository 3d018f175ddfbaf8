"""The event contract: its JSON examples parse; bad input names field and problem."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import orjson
import pytest

from streams.events import (
    EventError,
    Material,
    PackagingReturn,
    PickupRequested,
    RecyclingCollected,
    Shipment,
    event_to_json,
    parse_hub_event,
)
from tests.streams.helpers import COLLECTED, RETURN, SHIPMENT


def _with(base: dict, path: list, value: object) -> bytes:
    data = copy.deepcopy(base)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(data)


def test_contract_examples_parse() -> None:
    """The three JSON examples of the contract are accepted as the right types."""
    shipment = parse_hub_event(orjson.dumps(SHIPMENT))
    assert isinstance(shipment, Shipment)
    assert shipment.packaging[1].grams == 500 and shipment.packaging[1].count == 2
    assert shipment.containers[0].container_id == "IB-0042"
    assert isinstance(parse_hub_event(orjson.dumps(RETURN)), PackagingReturn)
    collected = parse_hub_event(orjson.dumps(COLLECTED))
    assert isinstance(collected, RecyclingCollected)
    assert collected.collected_grams == {Material.CARDBOARD: 12000, Material.EPS_FOAM: 800}


def test_offsets_are_normalised_to_utc() -> None:
    """A hub in China sends +08:00; the event is stored and compared in UTC."""
    event = parse_hub_event(_with(SHIPMENT, ["occurred_at"], "2026-11-11T16:30:00+08:00"))
    assert event.occurred_at == datetime(2026, 11, 11, 8, 30, tzinfo=UTC)
    assert orjson.loads(event_to_json(event))["occurred_at"] == "2026-11-11T08:30:00Z"


def test_integral_floats_accepted_fractions_refused() -> None:
    """2300.0 is a whole number of grams; 2300.5 is not and must not be rounded."""
    assert parse_hub_event(_with(SHIPMENT, ["weight_grams"], 2300.0)).weight_grams == 2300
    with pytest.raises(EventError) as err:
        parse_hub_event(_with(SHIPMENT, ["weight_grams"], 2300.5))
    assert err.value.field == "weight_grams"


def test_weight_zero_and_empty_packaging_allowed() -> None:
    """Weight may be 0 and packaging may be empty (a bare produce crate, say)."""
    raw = orjson.loads(_with(SHIPMENT, ["weight_grams"], 0))
    raw["packaging"] = []
    raw["containers"] = []
    event = parse_hub_event(orjson.dumps(raw))
    assert event.weight_grams == 0 and event.packaging == []


def test_extra_fields_allowed() -> None:
    """More optional fields are allowed by the contract."""
    raw = orjson.loads(orjson.dumps(SHIPMENT))
    raw["courier"] = "ZTO"
    assert parse_hub_event(orjson.dumps(raw)).event_id == SHIPMENT["event_id"]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b'{"type": "shipment", ', None, "malformed JSON"),
        (_with(SHIPMENT, ["type"], "teleport"), "type", "unknown event type"),
        (_with(SHIPMENT, ["hub_id"], KeyError), "hub_id", "required"),
        (_with(SHIPMENT, ["weight_grams"], -5), "weight_grams", "greater than or equal to 0"),
        (_with(SHIPMENT, ["weight_grams"], "heavy"), "weight_grams", "integer"),
        (_with(SHIPMENT, ["packaging", 0, "material"], "wood"), "packaging.0.material", "wood"),
        (_with(SHIPMENT, ["packaging", 1, "count"], 0), "packaging.1.count", "greater than"),
        (_with(SHIPMENT, ["occurred_at"], "11/11/2026 08:30"), "occurred_at", "RFC 3339"),
        (_with(SHIPMENT, ["occurred_at"], "2026-11-11T08:30:00"), "occurred_at", "RFC 3339"),
        (_with(SHIPMENT, ["direction"], "sideways"), "direction", "sideways"),
        (_with(SHIPMENT, ["schema_version"], 2), "schema_version", "1"),
        (_with(RETURN, ["condition"], "soggy"), "condition", "soggy"),
        (_with(COLLECTED, ["collected_grams", "cardboard"], 1.5), "collected_grams.cardboard",
         "whole number"),
        (b"\xff\xfe{}", None, "UTF-8"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', None, "limit"),
    ],
)
def test_bad_input_names_field_and_problem(raw: bytes, field: str | None, words: str) -> None:
    """Each kind of bad input is refused with the field at fault and a readable reason."""
    with pytest.raises(EventError) as err:
        parse_hub_event(raw)
    assert err.value.field == field
    assert words in str(err.value)


def test_hubs_cannot_send_packloop_own_events() -> None:
    """pickup_requested is emitted by packloop; a hub sending one is refused."""
    notice = {"type": "pickup_requested", "schema_version": 1, "event_id": "x",
              "occurred_at": "2026-11-11T08:30:00Z", "hub_id": "H01", "village_id": "H01-V007",
              "pickup_id": "P-H01-V007-1", "outstanding_grams": {"cardboard": 5},
              "reasons": ["outstanding_grams"]}
    with pytest.raises(EventError):
        parse_hub_event(orjson.dumps(notice))
    assert PickupRequested.model_validate(notice).pickup_id == "P-H01-V007-1"


def test_round_trip_is_stable() -> None:
    """The canonical JSON parses back to the same event."""
    event = parse_hub_event(orjson.dumps(SHIPMENT))
    assert parse_hub_event(event_to_json(event)) == event
