"""Whether the worker will apply an event, decided before it is sent: accepted means counted.

The worker refuses two kinds of event by time alone: one dated more than the future
tolerance ahead of its wall clock (``future_timestamp``) and one dated more than the
dedupe horizon behind its partition's stream time (``outside_dedupe_horizon``: a
re-send of it could no longer be recognised). The gateway and ``emit`` answer a hub
before any worker sees the event, so they call :func:`check_occurred_at` with the same
:class:`AcceptanceLimits` the worker is built from: an event it accepts is one the
worker applies, and what it refuses is refused at once, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.events import EventError

DAY_S = 86_400.0
US = 1_000_000


@dataclass(frozen=True, slots=True)
class AcceptanceLimits:
    """The time limits shared by the senders (gateway, ``emit``) and the worker.

    Symbols: *L* = ``max_lateness_days``, *T* = ``future_tolerance_hours``, *M* =
    ``delivery_margin_days``, *S* = ``clock_skew_seconds``; ``now_s`` is the sender's
    wall clock when it answers, ``now_w`` the worker's when it applies the event,
    ``st`` the partition's stream time then. The worker's dedupe horizon is
    *H* = *L* + *T* + *M* (:attr:`dedupe_horizon_us`).

    * **Future.** The sender accepts ``occurred_at <= now_s + T - S``; the worker
      refuses ``occurred_at > now_w + T``. The worker applies the event after the
      sender answered, so ``now_w >= now_s - S`` while the clocks differ by at most
      *S*, hence ``occurred_at <= now_w + T``: applied.
    * **Lateness.** The sender accepts ``occurred_at >= now_s - L``; the worker refuses
      ``occurred_at < st - H``. Stream time is the largest ``occurred_at`` the worker has
      applied, and it applied each only if it was at most *T* ahead of its clock, so
      ``st <= now_w + T``. With *d* the time from the sender's answer to the worker
      applying the event (consumer lag) plus the clock skew, ``now_w <= now_s + d``, so
      ``st - H <= now_s + d + T - L - T - M = now_s - L + (d - M) <= occurred_at``
      whenever ``d <= M``: applied. *M* is therefore how long an accepted event may wait
      in the topic (a worker down, a long recovery) and still be guaranteed; an event
      that waited longer and was already at the edge is dead-lettered as
      ``outside_dedupe_horizon``, visibly, never dropped in silence.

    Events dated between ``now_s - H`` and ``now_s - L`` would usually still be applied
    (``st`` is normally close to ``now_s``), but the sender cannot know ``st``, so it
    refuses them: accepted must mean counted.
    """

    #: how far behind the sender's clock an event may be dated (the backlog a hub may upload)
    max_lateness_days: float = 90.0
    #: how far ahead of the worker's clock an event may be dated
    future_tolerance_hours: float = 1.0
    #: consumer lag plus clock skew the lateness guarantee absorbs (see above)
    delivery_margin_days: float = 2.0
    #: the largest difference between the sender's and the workers' clocks
    clock_skew_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_lateness_days <= 0:
            raise ValueError("max_lateness_days must be > 0")
        if self.delivery_margin_days < 0 or self.clock_skew_seconds < 0:
            raise ValueError("delivery_margin_days and clock_skew_seconds must be >= 0")
        if self.clock_skew_seconds >= self.future_tolerance_hours * 3600:
            raise ValueError("future_tolerance_hours must exceed clock_skew_seconds")

    @property
    def future_tolerance_us(self) -> int:
        """*T*: the worker refuses events dated further ahead of its clock."""
        return int(round(self.future_tolerance_hours * 3600 * US))

    @property
    def dedupe_horizon_us(self) -> int:
        """*H* = *L* + *T* + *M*: how far behind stream time the worker still dedupes."""
        days = self.max_lateness_days + self.delivery_margin_days
        return int(round(days * DAY_S * US)) + self.future_tolerance_us


def check_occurred_at(
    occurred_at: datetime, now: datetime, limits: AcceptanceLimits | None = None
) -> EventError | None:
    """``None`` when the worker is guaranteed to apply an event dated ``occurred_at``
    (given the sender's wall clock ``now``), else the reason to refuse it now.

    The codes are ``future_timestamp`` (the worker's own dead-letter reason) and
    ``too_late`` (beyond the backlog the worker keeps dedupe state for), each on the
    field ``occurred_at``; see :class:`AcceptanceLimits` for why accepting is safe.
    """
    lim = limits or AcceptanceLimits()
    ahead_s = (occurred_at - now).total_seconds()
    if ahead_s > lim.future_tolerance_hours * 3600 - lim.clock_skew_seconds:
        return EventError(
            f"{occurred_at.isoformat()} is {ahead_s / 3600:.1f} h ahead of the clock; events "
            f"may be at most {lim.future_tolerance_hours:g} h ahead (less "
            f"{lim.clock_skew_seconds:g} s for clock skew)",
            "occurred_at",
            "future_timestamp",
        )
    if -ahead_s > lim.max_lateness_days * DAY_S:
        return EventError(
            f"{occurred_at.isoformat()} is {-ahead_s / DAY_S:.1f} days in the past; events "
            f"may be at most {lim.max_lateness_days:g} days late (older ones cannot be "
            "checked for re-sends)",
            "occurred_at",
            "too_late",
        )
    return None
