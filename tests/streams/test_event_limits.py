"""The event contract's bounds: absurd quantities, timestamps that overflow in UTC and odd
``type`` values are refused with the field and the problem, never raised at the caller
(each once stopped the worker for good, or lost a whole `emit` file, or answered 500)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from streams.events import (
    MAX_EVENT_BYTES,
    MAX_ITEM_COUNT,
    MAX_ITEM_GRAMS,
    EventError,
    PickupRequested,
    Shipment,
    parse_hub_event,
    size_problem,
)
from tests.streams.helpers import COLLECTED, RETURN, SHIPMENT

SCHEMAS = Path(__file__).resolve().parents[2] / "streams" / "schemas"

ADJUSTMENT = {"type": "waste_adjustment", "schema_version": 1, "event_id": "a-1",
              "occurred_at": "2026-11-11T10:00:00Z", "hub_id": "H01", "village_id": "H01-V007",
              "corrects_event_id": "c-1", "reason": "re-weighed",
              "generated_grams": {"cardboard": -100}}


def _text(event: dict, old: str, new: str) -> bytes:
    """The event's JSON with one number spelled as a hub might send it (1e22, 2**64)."""
    raw = orjson.dumps(event)
    assert raw.count(old.encode()) == 1, old
    return raw.replace(old.encode(), new.encode())


def _ship(**changes: object) -> dict:
    return {**SHIPMENT, **changes}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        # the new-user test's poison pills
        (_text({**COLLECTED, "collected_grams": {"cardboard": 7}}, '"cardboard":7',
               '"cardboard":18446744073709551616'), "collected_grams.cardboard"),
        (_text(_ship(packaging=[{"material": "cardboard", "count": 1, "grams": 7}]),
               '"grams":7', '"grams":1e22'), "packaging.0.grams"),
        (orjson.dumps(_ship(packaging=[{"material": "cardboard", "count": 1,
                                        "grams": 2**62}])), "packaging.0.grams"),
        (_text(_ship(weight_grams=7), '"weight_grams":7', '"weight_grams":1e308'),
         "weight_grams"),
        (orjson.dumps(_ship(weight_grams=MAX_ITEM_GRAMS + 1)), "weight_grams"),
        (orjson.dumps(_ship(packaging=[{"material": "tape", "count": MAX_ITEM_COUNT + 1,
                                        "grams": 5}])), "packaging.0.count"),
        (orjson.dumps({**RETURN, "count": 10**12}), "count"),
        (_text(ADJUSTMENT, '"cardboard":-100', '"cardboard":-100000000000000000000'),
         "generated_grams.cardboard"),
        (orjson.dumps({**ADJUSTMENT, "recovered_grams": {"tape": MAX_ITEM_GRAMS + 1}}),
         "recovered_grams.tape"),
    ],
)
def test_absurd_quantities_are_refused_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(EventError) as err:
        parse_hub_event(raw)
    assert err.value.field == field
    assert err.value.code in ("less_than_equal", "greater_than_equal")
    assert str(err.value).startswith(f"{field}: ")
    assert f"{MAX_ITEM_GRAMS if 'grams' in field else MAX_ITEM_COUNT} per event item" in str(
        err.value)


def test_every_real_quantity_is_within_the_bounds() -> None:
    """The bounds are far above any hub's figures: the largest allowed values parse."""
    big = parse_hub_event(orjson.dumps(_ship(
        weight_grams=float(MAX_ITEM_GRAMS),
        packaging=[{"material": "cardboard", "count": MAX_ITEM_COUNT, "grams": MAX_ITEM_GRAMS}])))
    assert isinstance(big, Shipment)
    assert big.weight_grams == MAX_ITEM_GRAMS and big.packaging[0].count == MAX_ITEM_COUNT
    back = parse_hub_event(orjson.dumps({**ADJUSTMENT,
                                         "generated_grams": {"cardboard": -MAX_ITEM_GRAMS}}))
    assert back.generated_grams  # type: ignore[union-attr]


def test_the_published_schemas_carry_the_bounds() -> None:
    shipment = json.loads((SCHEMAS / "shipment.schema.json").read_text())
    item = shipment["$defs"]["PackagingItem"]["properties"]
    assert item["grams"]["maximum"] == MAX_ITEM_GRAMS
    assert item["count"]["maximum"] == MAX_ITEM_COUNT
    assert shipment["properties"]["weight_grams"]["maximum"] == MAX_ITEM_GRAMS


def test_packloop_own_notices_may_carry_a_village_total() -> None:
    """The bound is per event item; a pickup notice reports a village's outstanding total,
    which may pass it (the worker must never fail to build its own notice)."""
    notice = PickupRequested.model_validate({
        "event_id": "n", "occurred_at": "2026-11-11T08:30:00Z", "hub_id": "H01",
        "village_id": "H01-V007", "pickup_id": "P-H01-V007-1",
        "outstanding_grams": {"cardboard": 50 * MAX_ITEM_GRAMS}, "reasons": ["x"]})
    assert notice.outstanding_grams


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-10:00",
                                   "9999-12-31T23:59:59-00:01"])
def test_a_time_outside_the_calendar_in_utc_is_refused(stamp: str) -> None:
    """Before: OverflowError from the UTC conversion (emit lost its file, the gateway 500)."""
    with pytest.raises(EventError) as err:
        parse_hub_event(orjson.dumps(_ship(occurred_at=stamp)))
    assert (err.value.field, err.value.code) == ("occurred_at", "value_error")
    assert "out of range" in str(err.value) and stamp in str(err.value)


@pytest.mark.parametrize("kind", [[], {"a": 1}, 5, None])
def test_a_type_that_is_not_a_name_is_refused_not_raised(kind: object) -> None:
    """Before: `{"type": []}` raised TypeError (unhashable) out of the parser."""
    with pytest.raises(EventError) as err:
        parse_hub_event(orjson.dumps(_ship(type=kind)))
    assert err.value.field == "type"


def test_one_size_rule_for_every_sender() -> None:
    """An event is measured as received; what would be written must fit too."""
    assert size_problem(MAX_EVENT_BYTES, b"{}") is None
    over = size_problem(MAX_EVENT_BYTES + 123_456)
    assert over is not None and over.code == "too_large"
    assert f"is {MAX_EVENT_BYTES + 123_456} bytes" in str(over)
    written = size_problem(1000, b"x" * (MAX_EVENT_BYTES + 1))
    assert written is not None and "written to Kafka" in str(written)
