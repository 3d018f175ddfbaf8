"""Gateway throughput and latency: `packloop gateway` (one uvicorn process) on the embedded
broker, hubs posting batches with acks=all answers.

    python bench/services_gateway.py [--requests 200] [--batch 100] [--clients 4]

Prints events/s, request latency percentiles and the latency of single-event requests,
all measured from the client side (HTTP + validation + produce + broker acknowledgement).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gateway_process import running_gateway

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker, free_port
from services.simulation.samples import sample_events
from streams import load_network

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()
    network = load_network()
    h01 = [v.village_id for v in network.villages_by_hub["H01"]]
    events = list(sample_events(network, args.requests * args.batch, seed=11))
    for i, e in enumerate(events):  # one hub token: every event becomes one of H01's
        e["hub_id"], e["village_id"] = "H01", h01[i % len(h01)]
    batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        db = f"sqlite:///{tmp}/tokens.db"
        _, token = TokenStore(db).add("hub", "H01")
        port = free_port()
        env = {**os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": broker.bootstrap,
               "PACKLOOP_TOKEN_DB_URL": db, "PACKLOOP_GATEWAY_PORT": str(port),
               "PACKLOOP_GATEWAY_RATE_PER_S": "100000", "PACKLOOP_GATEWAY_RATE_BURST": "100000",
               "PACKLOOP_GATEWAY_WEBHOOKS": "false"}
        with running_gateway(env, port) as url:
            headers = {"Authorization": f"Bearer {token}"}
            client = httpx.Client(base_url=url, headers=headers, timeout=30)
            client.post("/v1/events", json=batches[0][:1])  # warm-up

            latencies: list[float] = []

            def send(batch: list[dict]) -> int:
                for e in batch:
                    e["event_id"] = str(uuid.uuid4())
                t = time.perf_counter()
                r = client.post("/v1/events", json=batch)
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
                return int(r.json()["accepted"])

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                accepted = sum(pool.map(send, batches))
            wall = time.perf_counter() - started
            singles: list[float] = []
            for e in events[: args.singles]:
                e["event_id"] = str(uuid.uuid4())
                t = time.perf_counter()
                client.post("/v1/events", json=e).raise_for_status()
                singles.append(time.perf_counter() - t)
    print(f"batches: {len(batches)} x {args.batch} events, {args.clients} clients: "
          f"{accepted} accepted in {wall:.2f} s = {accepted / wall:,.0f} events/s")
    print(f"batch latency: p50 {pct(latencies, 50) * 1000:.1f} ms, p95 "
          f"{pct(latencies, 95) * 1000:.1f} ms, p99 {pct(latencies, 99) * 1000:.1f} ms")
    print(f"single-event requests ({args.singles}, one client): p50 "
          f"{pct(singles, 50) * 1000:.1f} ms, p95 {pct(singles, 95) * 1000:.1f} ms, "
          f"mean {statistics.mean(singles) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
