"""The gateway at a multiple of the sample county's busiest hour: sustained rate and latency.

The busiest hour is found by simulating the Double-11 season's peak days (22 Oct and 1 Nov,
at the official 1.5x) for the whole sample county at scale 1. That hour's events are then
posted one per request, each by its own hub's token (a hub may only write for its own
villages), at `--times` the hour's rate (open loop: a request goes out at its scheduled
time whether or not the previous ones were answered), for `--seconds`. Each event is
stamped with the time it is posted, as a hub posting live would.

    python bench/gateway_busiest_hour.py [--times 2] [--seconds 60] [--clients 16]

Prints the busiest hour's events, the target and the achieved rate, how far requests
slipped behind their schedule (a gateway that keeps up shows none), and the request
latency percentiles measured at the client (HTTP + validation + produce + acks=all).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from gateway_process import running_gateway

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker, free_port
from services.simulation.simulator import SimulationConfig, Simulator
from streams import load_network

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def busiest_hour(network) -> list[dict]:
    """The events of the busiest local hour on the season's peak days."""
    tz = network.timezone
    by_hour: dict[str, list[dict]] = {}
    for day in (datetime(2026, 10, 22, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)):
        sim = Simulator(network, SimulationConfig(days=1, scale=1.0, seed=7, start=day))
        for e in sim.events():
            at = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")).astimezone(tz)
            by_hour.setdefault(at.strftime("%Y-%m-%d %H"), []).append(e)
    return max(by_hour.values(), key=len)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--times", type=float, default=2.0, help="multiple of the busiest hour")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    network = load_network()
    hour = busiest_hour(network)
    rate = args.times * len(hour) / 3600.0
    n = max(1, min(len(hour), round(rate * args.seconds)))
    events = hour[:n]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        db = f"sqlite:///{tmp}/tokens.db"
        store = TokenStore(db)
        tokens = {h: store.add("hub", h)[1] for h in sorted({e["hub_id"] for e in events})}
        port = free_port()
        env = {**os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": broker.bootstrap,
               "PACKLOOP_TOKEN_DB_URL": db, "PACKLOOP_GATEWAY_PORT": str(port),
               "PACKLOOP_GATEWAY_WEBHOOKS": "false", "PACKLOOP_DATA_DIR": tmp}
        with running_gateway(env, port) as url:
            local = threading.local()
            latencies: list[float] = []
            slips: list[float] = []
            statuses: Counter[int] = Counter()

            def client() -> httpx.Client:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(base_url=url, timeout=30)
                return local.client

            def post(item: tuple[float, dict]) -> None:
                due, event = item
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                slips.append(max(0.0, time.perf_counter() - due))
                body = {**event, "event_id": str(uuid.uuid4()),
                        "occurred_at": datetime.now(UTC).isoformat()}
                t = time.perf_counter()
                r = client().post("/v1/events", json=body, headers={
                    "Authorization": f"Bearer {tokens[event['hub_id']]}"})
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] += 1

            client().get("/readyz")
            start = time.perf_counter() + 0.5
            schedule = [(start + i / rate, e) for i, e in enumerate(events)]
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(post, schedule))
            wall = time.perf_counter() - start
    accepted = statuses.get(202, 0) + statuses.get(200, 0)
    print(f"busiest hour of the sample county (Double-11 peak day, scale 1): {len(hour):,} "
          f"events = {len(hour) / 3600:.2f} events/s")
    print(f"target: {args.times:g} x = {rate:.2f} events/s for {args.seconds:g} s "
          f"({n:,} single-event requests, {len(tokens)} hub tokens, {args.clients} clients)")
    print(f"achieved: {n / wall:.2f} events/s; answers {dict(statuses)}; accepted {accepted:,}")
    print(f"schedule slip: p50 {pct(slips, 50) * 1000:.1f} ms, p99 {pct(slips, 99) * 1000:.1f} "
          f"ms, max {max(slips) * 1000:.1f} ms")
    print(f"latency: p50 {pct(latencies, 50) * 1000:.1f} ms, p95 "
          f"{pct(latencies, 95) * 1000:.1f} ms, p99 {pct(latencies, 99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
