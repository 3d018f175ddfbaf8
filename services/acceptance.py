"""The stream worker's time rules, applied by the gateway and ``emit`` before they answer.

An event a hub was told is accepted must be one the worker applies: the worker
dead-letters an event dated too far ahead of the clock (``future_timestamp``) or too far
behind its partition's stream time, so the front doors refuse those at once, with the
reason, instead of accepting them and letting the worker drop them later.

Lateness is measured against the wall clock: the gateway does not know a partition's
stream time, but that time can never run more than the future tolerance ahead of the
clock (the worker refuses such events), so an event within ``max_lateness_days`` of the
clock is within ``max_lateness_days`` + the tolerance of any stream time. The worker's
dedupe horizon must cover that much.

This module is the one place the services apply these rules (:func:`refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from streams.events import EventBase, EventError

if TYPE_CHECKING:
    from services.settings import Settings


@dataclass(frozen=True, slots=True)
class AcceptanceRules:
    """``future_tolerance_hours``: how far ahead of the clock an event may be dated
    (``PACKLOOP_WORKER_FUTURE_TOLERANCE_HOURS``, the worker's own); ``max_lateness_days``:
    how far behind (``PACKLOOP_ACCEPT_MAX_LATENESS_DAYS``)."""

    future_tolerance_hours: float = 1.0
    max_lateness_days: float = 90.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AcceptanceRules:
        return cls(future_tolerance_hours=settings.worker_future_tolerance_hours,
                   max_lateness_days=settings.accept_max_lateness_days)


def refusal(event: EventBase, rules: AcceptanceRules,
            now: datetime | None = None) -> EventError | None:
    """Why the worker would not apply ``event`` on time grounds (None: it would)."""
    now = now or datetime.now(UTC)
    at = event.occurred_at
    stamp = at.isoformat().replace("+00:00", "Z")
    if at > now + timedelta(hours=rules.future_tolerance_hours):
        return EventError(
            f"{stamp} is more than {rules.future_tolerance_hours:g} h ahead of the clock "
            "(check the device's clock and time zone offset)",
            "occurred_at", "future_timestamp",
        )
    if at < now - timedelta(days=rules.max_lateness_days):
        return EventError(
            f"{stamp} is more than {rules.max_lateness_days:g} days behind the clock, "
            "older than packloop can still count exactly once; keep it in the hub's own "
            "records (the limit is PACKLOOP_ACCEPT_MAX_LATENESS_DAYS)",
            "occurred_at", "too_late",
        )
    return None
