"""The event contract: its JSON examples parse; bad input names field and problem."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_campaign_fields_example_exercises_every_new_field() -> None:
    """examples/events/campaign_fields.jsonl parses and says each optional field of the
    green-packaging campaigns at least once (carrier, outer box, tape width, reused carton,
    degradable items, crates carrying produce up); the older sample, which says none of
    them, still parses with all of them unknown."""
    events = [parse_hub_event(line) for line in
              (ROOT / "examples/events/campaign_fields.jsonl").read_bytes().splitlines()]
    ships = [e for e in events if isinstance(e, Shipment)]
    for name in ("carrier", "outer_box_added", "tape_width_mm", "reused_carton"):
        assert any(getattr(e, name) is not None for e in ships), name
    assert {i.degradable for e in ships for i in e.packaging} >= {True, False}
    assert any(e.direction.value == "up" and e.containers for e in ships)
    old = []
    lines = (ROOT / "examples/events/sample_events.jsonl").read_bytes().splitlines()
    for line in lines:
        try:
            old.append(parse_hub_event(line))
        except EventError:  # the sample carries a few bad lines on purpose (dead letters)
            continue
    assert len(old) >= len(lines) - 2
    assert all(e.carrier is None and e.tape_width_mm is None for e in old
               if isinstance(e, Shipment))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"carrier": "SF Express"}, "carrier", "pattern"),
        ({"tape_width_mm": "45"}, "tape_width_mm", "integer"),
        ({"tape_width_mm": 0}, "tape_width_mm", "greater than or equal to 1"),
        ({"outer_box_added": "no"}, "outer_box_added", "boolean"),
        ({"reused_carton": 1}, "reused_carton", "boolean"),
    ],
)
def test_campaign_fields_refuse_guesses(change: dict, field: str, words: str) -> None:
    """The optional fields are typed strictly: a string is not a width, 1 is not true."""
    with pytest.raises(EventError) as err:
        parse_hub_event(orjson.dumps({**SHIPMENT, **change}))
    assert err.value.field == field and words in str(err.value)


def test_offsets_are_normalised_to_utc() -> None:
    """A hub in China sends +08:00; the event is stored and compared in UTC."""
    event = parse_hub_event(_with(SHIPMENT, ["occurred_at"], "2026-11-11T16:30:00+08:00"))
    assert event.occurred_at == datetime(2026, 11, 11, 8, 30, tzinfo=UTC)
    assert orjson.loads(event_to_json(event))["occurred_at"] == "2026-11-11T08:30:00Z"


@pytest.mark.parametrize("offset", ["+24:00", "-24:00", "+23:60", "+99:99"])
def test_an_offset_out_of_range_is_named_in_the_hub_s_terms(offset: str) -> None:
    """Before: Python's own words, ``offset must be a timedelta strictly between
    -timedelta(hours=24) and timedelta(hours=24), not datetime.timedelta(days=1).``"""
    with pytest.raises(EventError) as err:
        parse_hub_event(_with(SHIPMENT, ["occurred_at"], f"2026-12-01T10:00:00{offset}"))
    assert err.value.field == "occurred_at"
    assert str(err.value) == (f"occurred_at: offset {offset} is out of range: UTC offsets "
                              "are between -23:59 and +23:59")


@pytest.mark.parametrize("offset", ["+23:59", "-23:59", "+14:00", "-00:00"])
def test_every_offset_within_a_day_is_taken(offset: str) -> None:
    """The edges of the range stay valid (RFC 3339 allows -00:00, "UTC, place unknown")."""
    event = parse_hub_event(_with(SHIPMENT, ["occurred_at"], f"2026-12-01T10:00:00{offset}"))
    assert event.occurred_at == datetime.fromisoformat(f"2026-12-01T10:00:00{offset}")


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
