"""Accepted means counted: what :func:`streams.acceptance.check_occurred_at` accepts, a
worker built from the same limits applies — whatever the consumer lag within the
delivery margin, the clock skew within its bound and the partition's stream time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.acceptance import AcceptanceLimits, check_occurred_at
from streams.app import WorkerOptions, create_worker
from streams.kafka import KafkaConnection
from streams.network import load_network
from streams.processor import PartitionProcessor, ProcessingConfig
from streams.state import DAY_US, US, to_us
from streams.topics import Topics

NET = load_network()
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
VID, OTHER = sorted(NET.villages)[:2]


def test_examples_at_the_edges() -> None:
    """Defaults: 90 days late, 1 h ahead less 60 s of clock skew."""
    ok = [NOW, NOW - timedelta(days=89, hours=23), NOW + timedelta(minutes=59)]
    for at in ok:
        assert check_occurred_at(at, NOW) is None, at
    late = check_occurred_at(NOW - timedelta(days=90, seconds=1), NOW)
    assert late is not None and (late.code, late.field) == ("too_late", "occurred_at")
    assert "90 days" in late.reason
    ahead = check_occurred_at(NOW + timedelta(minutes=59, seconds=1), NOW)
    assert ahead is not None and (ahead.code, ahead.field) == ("future_timestamp", "occurred_at")
    wide = AcceptanceLimits(max_lateness_days=120)
    assert check_occurred_at(NOW - timedelta(days=100), NOW, wide) is None


def test_the_horizon_covers_lateness_tolerance_and_margin() -> None:
    lim = AcceptanceLimits()
    assert lim.dedupe_horizon_us == (90 + 2) * DAY_US + 3600 * US
    with pytest.raises(ValueError):
        AcceptanceLimits(future_tolerance_hours=0.01, clock_skew_seconds=60)
    with pytest.raises(ValueError):
        AcceptanceLimits(max_lateness_days=0)


def _event(vid: str, eid: str, at: datetime) -> bytes:
    return orjson.dumps({
        "type": "recycling_collected", "event_id": eid, "occurred_at": at.isoformat(),
        "hub_id": NET.villages[vid].hub_id, "village_id": vid, "collected_grams": {"tape": 1},
    })


@settings(max_examples=300, deadline=None)
@given(
    lateness_days=st.floats(1, 200),
    tolerance_h=st.floats(0.5, 48),
    margin_days=st.floats(0, 10),
    skew_s=st.floats(0, 600),
    offset=st.floats(-1.0, 1.0),
    delay=st.floats(0, 1),
    skew=st.floats(-1, 1),
)
def test_whatever_is_accepted_is_applied(
    lateness_days: float, tolerance_h: float, margin_days: float, skew_s: float,
    offset: float, delay: float, skew: float,
) -> None:
    """The worst case for lateness: stream time already at the furthest the worker allows
    (its clock plus the tolerance), the event delivered after up to the margin (less the
    skew), with the worker's clock off by up to the skew either way."""
    lim = AcceptanceLimits(lateness_days, tolerance_h, margin_days, skew_s)
    # an occurred_at from beyond the lateness to beyond the tolerance
    span_s = (lateness_days + 1) * 86400 if offset < 0 else (tolerance_h + 1) * 3600
    at = NOW + timedelta(seconds=offset * span_s)
    if check_occurred_at(at, NOW, lim) is not None:
        return
    wall = NOW + timedelta(seconds=delay * (margin_days * 86400 - skew_s) + skew * skew_s)
    wall_us = to_us(wall)
    proc = PartitionProcessor(0, NET, ProcessingConfig(
        dedupe_horizon_us=lim.dedupe_horizon_us, future_tolerance_us=lim.future_tolerance_us))
    leader = wall + timedelta(microseconds=lim.future_tolerance_us)
    proc.process(0, OTHER.encode(), _event(OTHER, "leader", leader), wall_us)
    assert proc.villages[OTHER].applied == 1
    proc.process(1, VID.encode(), _event(VID, "late", at), wall_us)
    assert not proc.outbox.dead_letters, orjson.loads(proc.outbox.dead_letters[0][1])
    assert proc.villages[VID].applied == 1


def test_the_worker_dedupes_at_least_as_far_as_its_options_promise() -> None:
    """The worker's horizon follows the lateness it promises; an older, smaller
    ``dedupe_horizon_days`` (14, as settings still pass) cannot shrink it."""
    kafka = KafkaConnection("127.0.0.1:1")
    opts = WorkerOptions(partitions=1, dedupe_horizon_days=14, max_lateness_days=120)
    w = create_worker(kafka, Topics("u-"), NET, opts)
    assert w.config.dedupe_horizon_us == opts.acceptance.dedupe_horizon_us
    assert w.config.dedupe_horizon_us >= 120 * DAY_US
    wide = create_worker(kafka, Topics("u-"), NET,
                         WorkerOptions(partitions=1, dedupe_horizon_days=400))
    assert wide.config.dedupe_horizon_us == 400 * DAY_US
