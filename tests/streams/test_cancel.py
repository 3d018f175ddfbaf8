"""Cancels stick: after ``pickup_cancelled`` no new pickup is requested for the village
until the snooze ends (the cancel's ``snooze_hours``, else the network's
``pickup_snooze_hours``, 24 h) in stream time, or new waste dated after the cancel
reaches a weight threshold by itself. Cancelled pickups are counted in state and in the
month records. Through a real partition processor."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.events import EventError, parse_hub_event
from streams.months import month_rows
from streams.network import Network, load_network, network_from_dict, read_network_file
from streams.processor import PartitionProcessor, ProcessingConfig

NET = load_network()
VID, OTHER = sorted(NET.villages)[:2]
T0 = datetime(2026, 11, 3, 8, tzinfo=UTC)
WALL = 4_000_000_000 * 1_000_000
LIMIT = NET.villages[VID].thresholds.outstanding_grams


class Village:
    """One village on a processor, driven by the hour; records the pickups requested."""

    def __init__(self, network: Network = NET) -> None:
        self.proc = PartitionProcessor(0, network, ProcessingConfig())
        self.net = network
        self.offsets = itertools.count()
        self.ids = itertools.count()
        self.requests: list[tuple[str, str, list[str]]] = []

    def send(self, vid: str, hours: float, **body: Any) -> None:
        at = T0 + timedelta(hours=hours)
        raw = orjson.dumps(dict({
            "event_id": f"e{next(self.ids)}", "occurred_at": at.isoformat(),
            "hub_id": self.net.villages[vid].hub_id, "village_id": vid}, **body))
        self.proc.process(next(self.offsets), vid.encode(), raw, WALL)
        for _vid, notice in self.proc.outbox.pickups:
            e = orjson.loads(notice)
            if e["type"] == "pickup_requested":
                self.requests.append((e["pickup_id"], e["occurred_at"], e["reasons"]))
        assert not self.proc.outbox.dead_letters
        self.proc.outbox.clear()

    def ship(self, hours: float, grams: int, vid: str = VID) -> None:
        self.send(vid, hours, type="shipment", shipment_id=f"S{hours}", direction="down",
                  temperature_class="ambient", weight_grams=1,
                  packaging=[{"material": "cardboard", "count": 1, "grams": grams}])

    def tick(self, hours: float) -> None:
        """Stream time moves on through another village of the partition."""
        self.ship(hours, 1, vid=OTHER)

    def cancel(self, hours: float, pickup_id: str, **more: Any) -> None:
        self.send(VID, hours, type="pickup_cancelled", pickup_id=pickup_id,
                  reason="road closed", **more)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def test_a_cancel_holds_the_next_request_for_the_network_default() -> None:
    v = Village()
    v.ship(0, LIMIT)
    assert [r[0] for r in v.requests] == [f"P-{VID}-1"]
    v.cancel(0.1, f"P-{VID}-1")
    v.ship(0.1003, 100)  # a second later: still over the threshold, but held back
    v.tick(23.9)
    assert len(v.requests) == 1, "a cancel sticks for pickup_snooze_hours (24)"
    v.tick(24.2)  # the first stream time past the snooze fires the request
    assert v.requests[1] == (f"P-{VID}-2", at(24.2), ["outstanding_grams"])
    state = v.proc.villages[VID]
    assert state.pickups_cancelled == 1 and state.snooze_from is None
    rows = month_rows([state], "2026-11")
    assert rows[0]["pickups"] == {"requested": 2, "completed": 0, "overdue": 0, "cancelled": 1}


@pytest.mark.parametrize(("snooze", "next_at"), [(2, 2.1), (0, 0.1), (48, 48.1)])
def test_the_cancel_says_how_long(snooze: float, next_at: float) -> None:
    v = Village()
    v.ship(0, LIMIT)
    v.cancel(0.1, f"P-{VID}-1", snooze_hours=snooze)
    for h in (0.1, 1, 1.9, 2.1, 24.2, 47.9, 48.1, 60):
        v.tick(h)
    assert len(v.requests) == 2
    assert v.requests[1][1] == at(next_at)


def test_new_waste_reaching_a_threshold_ends_the_snooze() -> None:
    v = Village()
    v.ship(0, LIMIT)
    v.cancel(1, f"P-{VID}-1")
    v.ship(2, LIMIT // 2)
    assert len(v.requests) == 1, "half a threshold of new waste does not end it"
    v.ship(3, LIMIT - LIMIT // 2)
    assert v.requests[1] == (f"P-{VID}-2", at(3), ["outstanding_grams"])
    # a material limit of its own is enough as well
    eps = NET.villages[VID].thresholds.material_grams
    assert eps, "the sample county has a material limit"
    v.cancel(4, f"P-{VID}-2")
    material, limit = next(iter(eps.items()))
    v.send(VID, 5, type="shipment", shipment_id="S-eps", direction="down",
           temperature_class="chilled", weight_grams=1,
           packaging=[{"material": material.value, "count": 1, "grams": limit}])
    assert v.requests[2][0] == f"P-{VID}-3" and v.requests[2][1] == at(5)


def test_the_default_comes_from_the_network_file() -> None:
    data = copy.deepcopy(read_network_file())
    data["defaults"]["pickup_snooze_hours"] = 6
    net = network_from_dict(data)
    assert net.pickup_snooze_hours == 6 and NET.pickup_snooze_hours == 24
    v = Village(net)
    v.ship(0, LIMIT)
    v.cancel(0, f"P-{VID}-1")
    for h in (5.9, 6.0):
        v.tick(h)
    assert [r[1] for r in v.requests] == [at(0), at(6)]
    data["defaults"]["pickup_snooze_hours"] = -1
    with pytest.raises(ValueError, match="pickup_snooze_hours"):
        network_from_dict(data)


def test_snooze_hours_is_optional_and_checked() -> None:
    base = {"type": "pickup_cancelled", "event_id": "c", "occurred_at": at(0), "hub_id": "H01",
            "village_id": "H01-V001", "pickup_id": "P-H01-V001-1", "reason": "x"}
    assert parse_hub_event(base).snooze_hours is None  # events without it stay valid
    assert parse_hub_event(dict(base, snooze_hours=1.5)).snooze_hours == 1.5
    for bad in ("3", True, -1, 10_000):
        with pytest.raises(EventError) as err:
            parse_hub_event(dict(base, snooze_hours=bad))
        assert err.value.field == "snooze_hours"


@pytest.mark.parametrize("number", ["1", "01", "²", "١", "0"])
def test_only_a_pickup_written_as_the_worker_numbers_it_is_known(number: str) -> None:
    """"P-{village}-²" failed in int() (dead-lettered as apply_failed, no field), and
    "-01" or "-١" were taken for pickup 1: an id the worker never wrote is unknown_pickup,
    at the gateway's check (`Network.check_event`) and in the worker."""
    v = Village()
    v.ship(0, LIMIT)  # pickup 1 requested
    assert [p for p, _at, _r in v.requests] == [f"P-{VID}-1"]
    body = {"event_id": "c1", "occurred_at": (T0 + timedelta(hours=1)).isoformat(),
            "hub_id": NET.villages[VID].hub_id, "village_id": VID,
            "type": "pickup_cancelled", "pickup_id": f"P-{VID}-{number}", "reason": "x"}
    raw = orjson.dumps(body)
    event = parse_hub_event(raw)
    err = NET.check_event(event)
    v.proc.process(next(v.offsets), VID.encode(), raw, WALL)
    dead = [orjson.loads(b) for _, b in v.proc.outbox.dead_letters]
    if number == "1":
        assert err is None and not dead
    else:
        assert err is not None and (err.field, err.code) == ("pickup_id", "unknown_pickup")
        assert [(d["reason"], d["field"]) for d in dead] == [("unknown_pickup", "pickup_id")]
