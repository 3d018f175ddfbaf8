"""Running totals stay within what the changelog holds: a tally saturates at
``MAX_TALLY_GRAMS`` (10^15 g) instead of growing past 64 bits, whatever the number of
events, so encoding a village never fails (it used to stop the worker for good)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import orjson

from streams.events import MAX_ITEM_GRAMS, parse_hub_event
from streams.state import VillageState, apply, decode_value, encode_value, to_us
from streams.state.tallies import MAX_TALLY_GRAMS, add_grams

TZ = ZoneInfo("Asia/Shanghai")
CT = {"reusable_crate": ("pp_plastic", 1500), "insulated_box": ("pp_plastic", 900)}
INT64 = 2**63 - 1


def _event(n: int, **body: object) -> object:
    base = {"event_id": f"e{n}", "occurred_at": f"2026-11-{1 + n % 28:02d}T08:00:00Z",
            "hub_id": "H01", "village_id": "H01-V001"}
    return parse_hub_event(dict(base, **body))


def _maximal_shipment(n: int) -> object:
    """As much as one valid shipment may carry: 50 plastic lines at the per-item bound."""
    return _event(n, type="shipment", shipment_id="S", direction="down",
                  temperature_class="ambient", weight_grams=MAX_ITEM_GRAMS,
                  packaging=[{"material": "plastic_film", "count": 1, "grams": MAX_ITEM_GRAMS,
                              "degradable": False}] * 50)


def _apply(state: VillageState, event: object) -> None:
    apply(state, event, to_us(event.occurred_at), TZ, CT)  # type: ignore[attr-defined]


def _numbers(value: object) -> list[int]:
    """Every integer in an encoded village value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_a_village_total_saturates_and_always_encodes() -> None:
    """A village already near the cap (a million maximal items counted) gets more: every
    tally stops at the cap, every number stays far inside 64 bits, the value round-trips."""
    state = VillageState("H01-V001", "H01")
    _apply(state, _maximal_shipment(0))
    near = MAX_TALLY_GRAMS - MAX_ITEM_GRAMS
    state.generated["plastic_film"] = near
    state.lots["plastic_film"] = [[state.lots["plastic_film"][0][0], near]]
    state.used_down["plastic_film"] = near
    for bucket in state.months.values():
        bucket.generated["plastic_film"] = near
        bucket.counts["degradable_known_grams"] = near
        bucket.counts["nondegradable_plastic_grams"] = near
    for n in range(1, 6):
        _apply(state, _maximal_shipment(n))
    assert state.generated["plastic_film"] == MAX_TALLY_GRAMS
    assert state.used_down["plastic_film"] == MAX_TALLY_GRAMS
    month = state.months["2026-11"]
    assert month.generated["plastic_film"] == MAX_TALLY_GRAMS
    assert month.counts["degradable_known_grams"] == MAX_TALLY_GRAMS
    assert month.counts["nondegradable_plastic_grams"] == MAX_TALLY_GRAMS
    raw = encode_value(state)
    d = orjson.loads(raw)
    tallies = [d[k] for k in ("generated", "recovered", "used_down", "days", "months")]
    assert max(abs(n) for n in _numbers(tallies)) == MAX_TALLY_GRAMS
    assert decode_value(raw) == state
    # the dated lots still add up to what is outstanding
    assert sum(g for _, g in state.lots["plastic_film"]) == state.outstanding["plastic_film"]


def test_corrections_saturate_on_the_negative_side_too() -> None:
    state = VillageState("H01-V001", "H01")
    state.recovered["tape"] = -MAX_TALLY_GRAMS + 10
    fix = _event(1, type="waste_adjustment", corrects_event_id="x", reason="typo",
                 recovered_grams={"tape": -MAX_ITEM_GRAMS})
    _apply(state, fix)
    assert state.recovered["tape"] == -MAX_TALLY_GRAMS
    assert decode_value(encode_value(state)) == state


def test_the_cap_leaves_room_for_every_sum_of_a_county() -> None:
    """Views and the ledger add villages up: 9,000 saturated villages still fit in 64 bits,
    and a saturated figure is exact as a JSON double (kafkajs, browsers)."""
    assert 9_000 * MAX_TALLY_GRAMS < INT64
    assert MAX_TALLY_GRAMS < 2**53
    totals: dict[str, int] = {}
    for _ in range(3):
        add_grams(totals, "cardboard", MAX_TALLY_GRAMS)
    assert totals == {"cardboard": MAX_TALLY_GRAMS}
