"""Property tests of the threshold/pickup state machine (through the partition processor,
so stream-time timers are exercised too): one request per crossing, none while one is
open, the next at once after a collection if still over, after a cancel only once its
snooze ends or new waste reaches a weight threshold, overdue at most once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams.network import load_network
from streams.processor import PartitionProcessor, ProcessingConfig
from streams.state import Limits, crossed, snoozed, to_us
from streams.state.pickups import OpenPickup

NET = load_network()
VID = sorted(NET.villages)[0]
OTHER = sorted(NET.villages)[1]
WALL = 4_000_000_000 * 1_000_000
START = datetime(2026, 6, 1, tzinfo=UTC)

dt = st.floats(min_value=0, max_value=100, allow_nan=False)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("ship"), st.integers(0, 30_000), st.integers(0, 4_000), dt),
        st.tuples(
            st.just("collect"), st.floats(0, 1.3), st.sampled_from(["open", "none", "stale"]), dt
        ),
        st.tuples(st.just("cancel"), st.sampled_from([None, 0, 2, 30]), st.just(0), dt),
        st.tuples(st.just("tick"), st.just(0), st.just(0), dt),
    ),
    max_size=60,
)


def _ev(vid: str, n: int, at: datetime, **body: object) -> bytes:
    return orjson.dumps(
        dict(
            {
                "event_id": f"{vid}-{n}",
                "occurred_at": at.isoformat(),
                "hub_id": NET.villages[vid].hub_id,
                "village_id": vid,
            },
            **body,
        )
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_pickup_state_machine(steps: list[tuple]) -> None:
    proc = PartitionProcessor(0, NET, ProcessingConfig(partitions=1))
    limits = Limits.for_village(NET, VID)
    at = START
    counter = itertools.count()
    offset = itertools.count()
    requested: list[str] = []
    overdue: list[str] = []
    open_id: str | None = None
    opened_at: datetime | None = None
    #: the last cancel: when, for how many hours, and the grams shipped after it
    cancel: tuple[datetime, float] | None = None
    new_since_cancel: dict[str, int] = {}
    for kind, a, b, hours in steps:
        at = at + timedelta(hours=hours)
        n = next(counter)
        state = proc.villages.get(VID)
        if kind == "ship":
            pack = [{"material": "cardboard", "count": 1, "grams": a}] if a else []
            if b:
                pack.append({"material": "eps_foam", "count": 1, "grams": b})
            if cancel is not None and at > cancel[0]:
                for item in pack:
                    m = str(item["material"])
                    new_since_cancel[m] = new_since_cancel.get(m, 0) + int(item["grams"])
            raw = _ev(
                VID,
                n,
                at,
                type="shipment",
                shipment_id=f"S{n}",
                direction="down",
                temperature_class="chilled",
                weight_grams=1000,
                packaging=pack,
            )
        elif kind == "collect":
            out = state.outstanding if state else {}
            grams = {m: int(g * a) for m, g in out.items() if int(g * a) > 0} or {"tape": 1}
            body: dict = {"type": "recycling_collected", "collected_grams": grams}
            if b == "open" and open_id:
                body["pickup_id"] = open_id
            elif b == "stale" and requested:
                body["pickup_id"] = requested[0]
            raw = _ev(VID, n, at, **body)
        elif kind == "cancel":
            if not open_id:
                continue
            body = {"type": "pickup_cancelled", "pickup_id": open_id, "reason": "x"}
            if a is not None:
                body["snooze_hours"] = a
            raw = _ev(VID, n, at, **body)
            cancel = (at, NET.pickup_snooze_hours if a is None else a)
            new_since_cancel = {}
        else:
            raw = _ev(
                OTHER,
                n,
                at,
                type="shipment",
                shipment_id=f"S{n}",
                direction="up",
                temperature_class="ambient",
                weight_grams=1000,
                packaging=[],
            )
        proc.process(next(offset), raw[:0] or None, raw, WALL)
        for _vid, body_bytes in proc.outbox.pickups:
            e = orjson.loads(body_bytes)
            if e["type"] == "pickup_requested":
                # none while one is open; ids count from 1
                assert open_id is None or (
                    kind in ("collect", "cancel") and e["pickup_id"] != open_id
                )
                if cancel is not None and kind != "cancel":
                    # a cancel holds until its hours pass or new waste alone is enough
                    cancelled_at, hours = cancel
                    assert (
                        proc.stream_time >= to_us(cancelled_at + timedelta(hours=hours))
                        or sum(new_since_cancel.values()) >= limits.outstanding_grams
                        or any(new_since_cancel.get(m, 0) >= lim
                               for m, lim in limits.material_grams.items())
                    ), (cancel, new_since_cancel)
                cancel = None
                requested.append(e["pickup_id"])
                assert e["pickup_id"] == f"P-{VID}-{len(requested)}"
                assert e["reasons"]
                open_id = e["pickup_id"]
                opened_at = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
            else:
                assert e["pickup_id"] == open_id, "only the open pickup goes overdue"
                assert e["pickup_id"] not in overdue, "overdue at most once"
                assert proc.stream_time - int(opened_at.timestamp() * 1e6) > limits.sla_us
                overdue.append(e["pickup_id"])
        proc.outbox.clear()
        proc.checkpoint()
        state = proc.villages.get(VID)
        if state is None:
            continue
        # the state and the notices agree
        assert (state.open_pickup.pickup_id if state.open_pickup else None) in (open_id, None)
        if state.open_pickup is None:
            open_id = None
            # with nothing open, the village is under every threshold (a crossing at a
            # collection re-requests at once), or a cancel holds the request back
            assert crossed(state, proc.stream_time, limits) == [] or snoozed(
                state, proc.stream_time, limits)
        else:
            # an open pickup past its SLA has been reported
            age = proc.stream_time - state.open_pickup.requested_at
            assert (age > limits.sla_us) == (state.open_pickup.pickup_id in overdue)
        assert state.pickups_requested == len(requested)
        assert state.pickups_overdue == len(overdue)
    assert len(set(requested)) == len(requested)
    event(f"requests={min(len(requested), 3)}")
    event(f"overdue={min(len(overdue), 2)}")


def test_a_collection_naming_no_pickup_that_empties_the_village_serves_its_pickup() -> None:
    """Left open, the pickup went overdue with 0 g to collect and counted in the officer's
    overdue pickups (an outside audit); a partial collection naming none leaves it open."""
    from streams.events import parse_hub_event
    from streams.state import VillageState
    from streams.state.village import apply

    tz = UTC
    state = VillageState("H01-V006", "H01")
    shipped = parse_hub_event({
        "type": "shipment", "schema_version": 1, "event_id": "s-1",
        "occurred_at": "2026-11-30T08:00:00Z", "hub_id": "H01", "village_id": "H01-V006",
        "shipment_id": "S-1", "direction": "down", "temperature_class": "chilled",
        "weight_grams": 9000, "packaging": [{"material": "eps_foam", "count": 1,
                                             "grams": 6_000}]})
    apply(state, shipped, to_us(shipped.occurred_at), tz, {})
    state.open_pickup = OpenPickup("P-H01-V006-1", 0, ["outstanding_grams"])

    def collect(grams: int, at: str) -> None:
        event = parse_hub_event({
            "type": "recycling_collected", "schema_version": 1, "event_id": f"c-{at}",
            "occurred_at": at, "hub_id": "H01", "village_id": "H01-V006",
            "collected_grams": {"eps_foam": grams}})
        apply(state, event, to_us(event.occurred_at), tz, {})

    collect(2_000, "2026-12-01T08:00:00Z")
    assert state.open_pickup is not None and state.pickups_collected == 0
    collect(4_000, "2026-12-01T09:00:00Z")
    assert state.open_pickup is None and state.pickups_collected == 1
    assert state.months["2026-12"].pickups_completed == 1
