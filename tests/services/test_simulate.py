"""The simulator: reproducible, time-ordered, valid events at the network's rates."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.simulation.simulator import SimulationConfig, Simulator, default_profile
from streams.events import parse_hub_event
from streams.network import load_network

NETWORK = load_network()
START = datetime(2026, 3, 2, tzinfo=NETWORK.timezone)  # an ordinary week: no festival, no harvest


@pytest.fixture(scope="module")
def week() -> list[dict]:
    sim = Simulator(NETWORK, SimulationConfig(days=7, scale=0.2, seed=9, start=START))
    return list(sim.events())


def test_reproducible_by_seed() -> None:
    """The same seed gives the same events; another seed gives others."""
    config = SimulationConfig(days=1, scale=0.1, seed=3, start=START)
    first = [e["event_id"] for e in Simulator(NETWORK, config).events()]
    again = [e["event_id"] for e in Simulator(NETWORK, config).events()]
    other = [e["event_id"] for e in Simulator(NETWORK, SimulationConfig(
        days=1, scale=0.1, seed=4, start=START)).events()]
    assert first == again
    assert first != other


@pytest.mark.slow
def test_time_ordered_valid_and_in_period(week: list[dict]) -> None:
    """Events come in time order, pass the contract and the network checks, inside the period."""
    times = [e["occurred_at"] for e in week]
    assert times == sorted(times)
    end = START + timedelta(days=7)
    for event in week:
        parsed = parse_hub_event(orjson.dumps(event))
        assert NETWORK.check_event(parsed) is None
        assert START <= parsed.occurred_at < end
    assert len({e["event_id"] for e in week}) == len(week)


def test_rates_follow_the_network(week: list[dict]) -> None:
    """Down parcels per day match the villages' rates times the scale, within 5 %."""
    expected = 7 * 0.2 * sum(v.extra["down_parcels_per_day"] for v in NETWORK.villages.values())
    down = sum(1 for e in week if e["type"] == "shipment" and e["direction"] == "down")
    assert abs(down - expected) / expected < 0.05


def test_returns_never_exceed_issued(week: list[dict]) -> None:
    """A village never returns more containers of a type than it was issued (else DLQ)."""
    out: Counter = Counter()
    for event in week:
        if event["type"] == "shipment":  # boxes down and crates carrying produce up
            for ref in event["containers"]:
                out[(event["village_id"], ref["container_type"])] += 1
        elif event["type"] == "packaging_return":
            key = (event["village_id"], event["container_type"])
            out[key] -= event["count"]
            assert out[key] >= 0, key
    kinds = Counter(e["type"] for e in week)
    assert kinds["packaging_return"] > 0 and kinds["recycling_collected"] > 0


def test_answers_pickup_requests() -> None:
    """A pickup request seen on the topic is answered by a collection carrying its id."""
    sim = Simulator(NETWORK, SimulationConfig(days=2, scale=0.05, seed=1, start=START))
    village = next(iter(NETWORK.villages.values()))
    asked = (START + timedelta(hours=10)).astimezone(UTC)
    sim.on_pickup_request({
        "type": "pickup_requested", "pickup_id": f"P-{village.village_id}-1",
        "village_id": village.village_id, "hub_id": village.hub_id,
        "occurred_at": asked.isoformat(), "outstanding_grams": {"cardboard": 60000},
    })
    answers = [e for e in sim.events() if e.get("pickup_id") == f"P-{village.village_id}-1"]
    assert len(answers) == 1
    collected = answers[0]["collected_grams"]["cardboard"]
    low, high = default_profile().collection_recovery_share
    assert 60000 * low - 1 <= collected <= 60000 * high
    assert answers[0]["occurred_at"] > asked.isoformat().replace("+00:00", "Z")


def test_never_in_the_future() -> None:
    """By default the period ends at today's local midnight (the worker rejects later events)."""
    sim = Simulator(NETWORK, SimulationConfig(days=0.5, scale=0.02, seed=2))
    now = datetime.now(UTC)
    last = max(parse_hub_event(orjson.dumps(e)).occurred_at for e in sim.events())
    assert last <= now


def test_up_shipments_cold_share(week: list[dict]) -> None:
    """5-15 % of up shipments are cold-chain (outside harvest season)."""
    up = [e for e in week if e["type"] == "shipment" and e["direction"] == "up"]
    cold = sum(1 for e in up if e["temperature_class"] != "ambient")
    assert 0.04 < cold / len(up) < 0.16
    by_village = defaultdict(int)
    for e in up:
        by_village[e["village_id"]] += 1
    assert len(by_village) > 300


def test_crates_carry_produce_up_and_come_back(week: list[dict]) -> None:
    """Ambient farm parcels go up in a crate from the village's pool at the facts file's
    share (simulation.crate_share_of_up; four binomial standard deviations), with no
    single-use packaging; each crate comes back (or is lost) with a packaging_return; cold
    produce never goes in a crate. The worker applies these events without a dead letter
    (test_time_ordered_valid_and_in_period checks them against the contract)."""
    profile = default_profile()
    up = [e for e in week if e["type"] == "shipment" and e["direction"] == "up"]
    ambient = [e for e in up if e["temperature_class"] == "ambient"]
    crated = [e for e in ambient if e["containers"]]
    n, p = len(ambient), profile.crate_share_up
    assert n > 500 and p == 0.3
    assert abs(len(crated) - n * p) <= 4 * (n * p * (1 - p)) ** 0.5
    assert all(e["packaging"] == [] and [c["container_type"] for c in e["containers"]]
               == ["reusable_crate"] for e in crated)
    assert not any(e["containers"] for e in up if e["temperature_class"] != "ambient")
    back = Counter(e["village_id"] for e in week if e["type"] == "packaging_return"
                   and e["container_type"] == "reusable_crate")
    assert sum(back.values()) > 0.5 * len(crated)  # the rest come back after the week


def test_campaign_fields_at_the_published_rates(week: list[dict]) -> None:
    """Down parcels say whether a second box was added and, where taped, the tape width, at
    the rates of the facts file (campaigns.*: 95 % without a second box, 90 % with tape of
    45 mm or less); fields without a published rate stay absent (unknown). The tolerance is
    four binomial standard deviations."""
    profile = default_profile()
    down = [e for e in week if e["type"] == "shipment" and e["direction"] == "down"]
    taped = [e for e in down if any(i["material"] == "tape" for i in e["packaging"])]
    assert len(down) > 1000 and len(taped) > 300

    def close(hits: int, n: int, p: float) -> bool:
        return abs(hits - n * p) <= 4 * (n * p * (1 - p)) ** 0.5

    plain = sum(not e["outer_box_added"] for e in down)
    assert close(plain, len(down), profile.no_second_packaging_share)
    narrow = sum(e["tape_width_mm"] <= 45 for e in taped)
    assert close(narrow, len(taped), profile.narrow_tape_share)
    taped_ids = {id(e) for e in taped}  # (list membership compared whole dicts: 60 s)
    assert not any("tape_width_mm" in e for e in down if id(e) not in taped_ids)
    assert not any("carrier" in e or "reused_carton" in e for e in week)
    assert profile.no_second_packaging_share == 0.95 and profile.narrow_tape_share == 0.90
