"""A reproducible simulator of a county's hub events: parcels, returns, collections.

One shipment event is one parcel. Daily rates come from the network's villages
(``down_parcels_per_day``, ``up_parcels_per_day``, ``cold_chain_share_up``) with
seasonal peaks (Double-11, 618, the Spring Festival, harvests:
:mod:`services.simulation.seasons`); packaging per parcel comes from the facts file,
so every gram traces back to a cited figure. Containers issued on cold-chain deliveries
come back later (some late, some damaged or lost), and when the stream asks for a
recycling pickup the simulator answers it with a collection.

Events are produced in global time order, so a run's stream time is the same
whatever the partition count. The simulated period ends no later than the wall
clock, because the worker dead-letters events from the future.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.simulation.seasons import Seasons
from streams import Network, Village

NAMESPACE = uuid.UUID("0d7c5d2e-9b1f-4f4e-8f0c-5a1f6f3e2b11")

#: Hubs hand parcels to village stations between these local hours.
DAY_START_H, DAY_END_H = 7.0, 20.0


@dataclass(frozen=True, slots=True)
class PackagingProfile:
    """Single-use packaging of one parcel kind: (material, grams) per parcel."""

    name: str
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SimulationProfile:
    """Shares and weights the simulator draws from; built from the facts file."""

    ambient_profiles: tuple[tuple[PackagingProfile, float], ...]
    farm_carton: PackagingProfile
    cold_single_use: PackagingProfile
    cold_with_container: PackagingProfile
    reusable_share_down_cold: float
    cold_share_down: float
    frozen_share_of_cold: float
    return_lag_days_median: float
    late_return_share: float
    damaged_share: float
    lost_share: float
    collection_delay_hours: tuple[float, float]
    collection_recovery_share: tuple[float, float]
    routine_round_days: int
    #: the green-packaging campaigns' rates (tape <= 45 mm, no second box) and tape widths
    narrow_tape_share: float = 0.0
    no_second_packaging_share: float = 1.0
    tape_widths_mm: tuple[int, int] = (45, 60)
    #: ambient farm produce carried up in a reusable crate from the village's pool
    crate_share_up: float = 0.0
    seasons: Seasons | None = None
    factor_set: str = ""


def _factors() -> Any:
    from optimizer import load_factors

    return load_factors()


def default_profile() -> SimulationProfile:
    """The simulator's parameters, taken from the facts file (sources live there)."""
    return profile_from_factors(_factors())


def profile_from_factors(f: Any) -> SimulationProfile:
    """Every number here is looked up in the facts file; none is invented in code. The
    packaging of a parcel, and the mix of cartons, bags and envelopes, come from the same
    place as the planner's (``optimizer.factors.single_use_lines``,
    ``packaging.parcel_mix``)."""
    from optimizer.factors import single_use_lines

    v = f.value
    lines = single_use_lines(f)

    def profile(name: str, kind: str) -> PackagingProfile:
        return PackagingProfile(name, tuple((m, round(g)) for m, g in lines[kind].items()))

    carton = profile("carton", "carton")
    outer = {"carton": carton, "bag": profile("mailer", "bag"),
             "envelope": profile("envelope", "envelope")}
    chilled, frozen = v("demand.share_chilled"), v("demand.share_frozen")
    return SimulationProfile(
        ambient_profiles=tuple((outer[kind], share)
                               for kind, share in f.shares("packaging.parcel_mix").items()),
        farm_carton=carton,
        cold_single_use=profile("eps_box", "eps_box"),
        cold_with_container=profile("insulated_box", "ice_packs"),
        reusable_share_down_cold=v("simulation.reusable_share_of_cold_down"),
        cold_share_down=chilled + frozen,
        frozen_share_of_cold=frozen / (chilled + frozen),
        return_lag_days_median=v("containers.return_lag_days"),
        late_return_share=v("simulation.late_return_share"),
        damaged_share=v("simulation.damaged_share"),
        lost_share=1 - v("containers.return_rate"),
        collection_delay_hours=(
            v("simulation.collection_delay_hours_min"),
            v("simulation.collection_delay_hours_max"),
        ),
        collection_recovery_share=(
            v("simulation.collection_recovery_share_min"),
            v("simulation.collection_recovery_share_max"),
        ),
        routine_round_days=int(v("simulation.routine_round_days")),
        crate_share_up=v("simulation.crate_share_of_up"),
        narrow_tape_share=v("campaigns.narrow_tape_share"),
        no_second_packaging_share=v("campaigns.no_second_packaging_share"),
        tape_widths_mm=(int(v("campaigns.narrow_tape_width_mm")),
                        int(v("campaigns.wide_tape_width_mm"))),
        seasons=Seasons.from_factors(f),
        factor_set=f.version,
    )


@dataclass(frozen=True)
class SimulationConfig:
    days: float = 7.0
    scale: float = 1.0
    seed: int = 1
    start: datetime | None = None  # default: `days` before today's local midnight

    def start_utc(self, network: Network) -> datetime:
        if self.start is not None:
            return self.start.astimezone(UTC)
        today = datetime.now(network.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
        return (today - timedelta(days=self.days)).astimezone(UTC)


@dataclass(order=True)
class _Pending:
    at: datetime
    seq: int
    event: dict[str, Any] = field(compare=False)


class Simulator:
    """Draws events day by day; pending returns and collections sit on a time-ordered heap."""

    def __init__(
        self,
        network: Network,
        config: SimulationConfig,
        profile: SimulationProfile | None = None,
    ) -> None:
        self.network = network
        self.config = config
        self.profile = profile or default_profile()
        self.rng = random.Random(config.seed)
        self.campaign_rng = random.Random(f"campaigns-{config.seed}")
        self.start = config.start_utc(network)
        self.end = self.start + timedelta(days=config.days)
        self._pending: list[_Pending] = []
        self._seq = 0
        self._ids = 0
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []  # pickup requests seen on the topic
        self.generated_since_round: dict[str, dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._container_seq = 0
        self.stats: dict[str, int] = defaultdict(int)

    # -- ids -----------------------------------------------------------------------------

    def _event_id(self) -> str:
        self._ids += 1
        return str(uuid.uuid5(NAMESPACE, f"{self.config.seed}:{self._ids}"))

    def _common(self, kind: str, village: Village, at: datetime) -> dict[str, Any]:
        return {
            "type": kind,
            "schema_version": 1,
            "event_id": self._event_id(),
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "hub_id": village.hub_id,
            "village_id": village.village_id,
        }

    def _schedule(self, at: datetime, event: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._pending, _Pending(at, self._seq, event))

    # -- pickup requests from the stream -------------------------------------------------

    def on_pickup_request(self, request: dict[str, Any]) -> None:
        """Called (from any thread) for each pickup_requested seen on the topic."""
        with self._lock:
            self._requests.append(request)

    def _answer_requests(self, now: datetime) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        low, high = self.profile.collection_delay_hours
        share_low, share_high = self.profile.collection_recovery_share
        for request in requests:
            if request.get("type") != "pickup_requested":
                continue
            village = self.network.villages.get(request["village_id"])
            if village is None:
                continue
            asked_at = datetime.fromisoformat(request["occurred_at"].replace("Z", "+00:00"))
            at = max(now, asked_at) + timedelta(hours=self.rng.uniform(low, high))
            share = self.rng.uniform(share_low, share_high)
            grams = {
                m: int(g * share) for m, g in request.get("outstanding_grams", {}).items() if g
            }
            if not grams:
                continue
            event = self._common("recycling_collected", village, at)
            event["collected_grams"] = grams
            event["pickup_id"] = request["pickup_id"]
            self._schedule(at, event)
            self.stats["collections_answering_pickups"] += 1

    # -- parcels -------------------------------------------------------------------------

    def _times(self, day_start_local: datetime, n: int) -> list[datetime]:
        span = (DAY_END_H - DAY_START_H) * 3600
        return sorted(
            (day_start_local + timedelta(hours=DAY_START_H, seconds=self.rng.uniform(0, span)))
            .astimezone(UTC)
            for _ in range(n)
        )

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        threshold, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= threshold:
                return k
            k += 1

    def _down_parcel(self, village: Village, at: datetime) -> dict[str, Any]:
        p = self.profile
        event = self._common("shipment", village, at)
        event["shipment_id"] = f"S-{self.config.seed}-{self._ids:09d}"
        event["direction"] = "down"
        containers: list[dict[str, Any]] = []
        if self.rng.random() < p.cold_share_down:
            event["temperature_class"] = (
                "frozen" if self.rng.random() < p.frozen_share_of_cold else "chilled"
            )
            if self.rng.random() < p.reusable_share_down_cold:
                packaging = p.cold_with_container
                ctype = "insulated_box"
                self._container_seq += 1
                containers.append(
                    {"container_type": ctype, "container_id": f"IB-{self._container_seq:07d}"}
                )
                self._schedule_return(village, at, ctype)
            else:
                packaging = p.cold_single_use
        else:
            event["temperature_class"] = "ambient"
            profiles, weights = zip(*p.ambient_profiles, strict=True)
            packaging = self.rng.choices(profiles, weights)[0]
        event["weight_grams"] = self.rng.randint(300, 6000)
        event["packaging"] = [
            {"material": m, "count": 1, "grams": g} for m, g in packaging.lines if g > 0
        ]
        event["containers"] = containers
        self._campaign_fields(event)
        for m, g in packaging.lines:
            self.generated_since_round[village.village_id][m] += g
        self.stats["shipments_down"] += 1
        return event

    def _campaign_fields(self, event: dict[str, Any]) -> None:
        """What the campaigns count, at their published rates, drawn from a generator of
        their own so that the rest of the simulation stays as it was. Carrier, reused
        cartons and degradable items have no published rate and stay unknown (absent)."""
        p, rng = self.profile, self.campaign_rng
        event["outer_box_added"] = rng.random() >= p.no_second_packaging_share
        if any(line["material"] == "tape" for line in event["packaging"]):
            narrow, wide = p.tape_widths_mm
            event["tape_width_mm"] = narrow if rng.random() < p.narrow_tape_share else wide

    def _up_parcel(self, village: Village, at: datetime, cold_share: float) -> dict[str, Any]:
        p = self.profile
        event = self._common("shipment", village, at)
        event["shipment_id"] = f"S-{self.config.seed}-{self._ids:09d}"
        event["direction"] = "up"
        if self.rng.random() < cold_share:
            event["temperature_class"] = "chilled"
            packaging = p.cold_single_use
        else:
            event["temperature_class"] = "ambient"
            packaging = p.farm_carton
        event["weight_grams"] = self.rng.randint(1000, 10000)
        containers: list[dict[str, Any]] = []
        # drawn from the campaigns' generator, so a seed's other events stay as they were
        if (event["temperature_class"] == "ambient" and p.crate_share_up > 0
                and self.campaign_rng.random() < p.crate_share_up):
            packaging = PackagingProfile("crate", ())
            self._container_seq += 1
            containers.append({"container_type": "reusable_crate",
                               "container_id": f"RC-{self._container_seq:07d}"})
            self._schedule_return(village, at, "reusable_crate", self.campaign_rng)
            self.stats["crates_up"] += 1
        event["packaging"] = [
            {"material": m, "count": 1, "grams": g} for m, g in packaging.lines if g > 0
        ]
        event["containers"] = containers
        self.stats["shipments_up"] += 1
        return event

    def _schedule_return(self, village: Village, issued_at: datetime, ctype: str,
                         rng: random.Random | None = None) -> None:
        p = self.profile
        rng = rng or self.rng
        roll = rng.random()
        if roll < p.lost_share:
            condition = "lost"
            lag_days = rng.uniform(5, 20)
        elif roll < p.lost_share + p.damaged_share:
            condition = "damaged"
            lag_days = rng.lognormvariate(math.log(p.return_lag_days_median), 0.5)
        else:
            condition = "ok"
            if rng.random() < p.late_return_share:
                lag_days = rng.uniform(self.network.container_overdue_days + 1, 30)
            else:
                lag_days = rng.lognormvariate(math.log(p.return_lag_days_median), 0.5)
        at = issued_at + timedelta(days=lag_days)
        event = self._common("packaging_return", village, at)
        event.update(container_type=ctype, count=1, condition=condition)
        self._schedule(at, event)

    def _routine_rounds(self, day_start_local: datetime, day_index: int) -> None:
        """Every village gets a scheduled round every few days, staggered across the county."""
        every = max(1, self.profile.routine_round_days)
        share_low, share_high = self.profile.collection_recovery_share
        for i, village in enumerate(sorted(self.network.villages.values(),
                                           key=lambda v: v.village_id)):
            if (day_index + i) % every != every - 1:
                continue
            grams = self.generated_since_round.pop(village.village_id, None)
            if not grams:
                continue
            at = (day_start_local + timedelta(hours=self.rng.uniform(9, 16))).astimezone(UTC)
            share = self.rng.uniform(share_low, share_high) * 0.5  # a round takes what is sorted
            collected = {m: int(g * share) for m, g in grams.items() if int(g * share) > 0}
            if collected:
                event = self._common("recycling_collected", village, at)
                event["collected_grams"] = collected
                self._schedule(at, event)

    # -- the event stream ----------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of the simulated period, in time order."""
        tz = self.network.timezone
        villages = sorted(self.network.villages.values(), key=lambda v: v.village_id)
        n_days = math.ceil(self.config.days)
        first_local = self.start.astimezone(tz)
        seasons = self.profile.seasons or Seasons.from_factors(_factors())
        for d in range(n_days):
            day_start_local = (first_local + timedelta(days=d)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            day = day_start_local.date()
            fraction = min(1.0, self.config.days - d)
            down_factor = seasons.down(day)
            up_factor, cold_factor = seasons.up(day)
            todays: list[tuple[datetime, int, Callable[[], dict[str, Any]]]] = []
            for village in villages:
                extra = village.extra
                lam_down = extra.get("down_parcels_per_day", 50) * down_factor
                lam_up = extra.get("up_parcels_per_day", 10) * up_factor
                cold_up = min(0.5, extra.get("cold_chain_share_up", 0.1) * cold_factor)
                scale = self.config.scale * fraction
                for at in self._times(day_start_local, self._poisson(lam_down * scale)):
                    todays.append((at, len(todays), _bind(self._down_parcel, village, at)))
                for at in self._times(day_start_local, self._poisson(lam_up * scale)):
                    todays.append(
                        (at, len(todays), _bind(self._up_parcel, village, at, cold_up))
                    )
            self._routine_rounds(day_start_local, d)
            todays.sort(key=lambda item: (item[0], item[1]))
            for at, _, make in todays:
                if at >= self.end:
                    break
                yield from self._due(at)
                yield make()
        yield from self._due(self.end)

    def _due(self, until: datetime) -> Iterator[dict[str, Any]]:
        self._answer_requests(until)
        while self._pending and self._pending[0].at <= until:
            item = heapq.heappop(self._pending)
            if item.at >= self.end:
                break
            self.stats[item.event["type"]] += 1
            yield item.event


def _bind(fn: Callable[..., dict[str, Any]], *args: Any) -> Callable[[], dict[str, Any]]:
    return lambda: fn(*args)


def paced(
    events: Iterator[dict[str, Any]], speed: float | None, start: datetime
) -> Iterator[dict[str, Any]]:
    """Release events no faster than ``speed`` simulated seconds per wall second."""
    if not speed:
        yield from events
        return
    wall0 = time.monotonic()
    for event in events:
        sim_s = (
            datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")) - start
        ).total_seconds()
        delay = sim_s / speed - (time.monotonic() - wall0)
        if delay > 0:
            time.sleep(delay)
        yield event


class PickupListener:
    """Follows the pickup-requests topic in a thread and hands requests to the simulator."""

    def __init__(self, kafka: Any, topic: str, on_request: Callable[[dict[str, Any]], None]):
        self.kafka = kafka
        self.topic = topic
        self.on_request = on_request
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pickup-listener", daemon=True)
        self.seen = 0

    def __enter__(self) -> PickupListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import orjson
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.kafka.fetch_max_wait_ms,
            **self.kafka.kafka_python_kwargs(),
        )
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    for record in records:
                        try:
                            self.on_request(orjson.loads(record.value))
                            self.seen += 1
                        except ValueError:
                            continue
        finally:
            consumer.close()
