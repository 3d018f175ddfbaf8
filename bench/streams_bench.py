"""Stream-worker benchmarks on the embedded broker (not a test; prints figures).

    .venv/bin/python bench/streams_bench.py throughput [--events 100000] [--workers 1]
    .venv/bin/python bench/streams_bench.py bare      [--events 100000]
    .venv/bin/python bench/streams_bench.py latency   [--rate 1000] [--seconds 30]
    .venv/bin/python bench/streams_bench.py all

The events are the quick start's sample file (:func:`services.simulation.samples.sample_events`,
seeded) over the sample county.

* throughput: the data is produced first, then `packloop worker` process(es) are
  started; events/s = records / (time from the first applied record to the last).
  The whole chain runs: parse + validation, reference checks, dedupe, tallies,
  windows, pickup trigger, container pool, changelog writes.
* bare: an aiokafka consume-and-parse loop (parse_hub_event) over the same topic.
* latency: a steady producer at --rate events/s with occurred_at = now; every
  village's heavy shipment crosses the 50 kg threshold, its collection (carrying
  the pickup id) closes it; latency = arrival of pickup_requested on the topic
  minus occurred_at of the triggering event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from services.broker import EmbeddedBroker, free_port
from services.simulation.samples import sample_events
from streams import KafkaConnection, Topics, create_topics, load_network, parse_hub_event

REPO = Path(__file__).resolve().parents[1]

NET = load_network()


def produce(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    from kafka import KafkaProducer

    t0 = time.perf_counter()
    p = KafkaProducer(
        bootstrap_servers=[bootstrap],
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    for line in lines:
        p.send(topic, key=orjson.loads(line)["village_id"].encode(), value=line)
    p.flush(120)
    p.close()
    return time.perf_counter() - t0


class Worker:
    def __init__(self, bootstrap: str, prefix: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            PACKLOOP_KAFKA_BOOTSTRAP=bootstrap,
            PACKLOOP_TOPIC_PREFIX=prefix,
            PACKLOOP_WEB_PORT=str(self.port),
            PACKLOOP_WORKER_URL=self.url,
            PACKLOOP_WORKER_LOG_LEVEL="warning",
            # its own ledger and databases: the user's data folder would grow with every
            # run, and a worker's writes be measured against its size
            PACKLOOP_DATA_DIR=str(log_dir / "data"),
        )
        self.log = open(log_dir / f"worker-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from services.cli import main; main()", "worker"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def status(self) -> dict | None:
        try:
            r = httpx.get(self.url + "/status", timeout=5)
            return r.json() if r.status_code == 200 else None
        except httpx.HTTPError:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def throughput(bootstrap: str, lines: list[bytes], workers: int, partitions: int = 4) -> dict:
    topics = Topics(f"bt{workers}-{int(time.time())}-")
    create_topics(KafkaConnection(bootstrap), topics, partitions)
    produce(bootstrap, topics.hub_events, lines)
    log_dir = Path(tempfile.mkdtemp(prefix="packloop-bench-"))
    ws = [Worker(bootstrap, topics.prefix, log_dir) for _ in range(workers)]
    started = time.perf_counter()
    first = None
    done = None
    last_seen = 0
    try:
        while time.perf_counter() - started < 600:
            st = None
            for w in ws:
                st = w.status()
                if st:
                    break
            if st:
                ev = st["events"]
                seen = ev["applied"] + ev["duplicates"] + ev["dead_lettered"]
                if seen and first is None:
                    first = time.perf_counter()
                    first_seen = seen
                if seen >= len(lines):
                    done = time.perf_counter()
                    last_seen = seen
                    break
                last_seen = seen
            time.sleep(0.1)
    finally:
        for w in ws:
            w.stop()
    if done is None or first is None:
        raise SystemExit(f"worker did not finish: {last_seen}/{len(lines)} (logs in {log_dir})")
    n = len(lines) - first_seen
    return {
        "workers": workers,
        "partitions": partitions,
        "events": len(lines),
        "seconds": round(done - first, 2),
        "events_per_s": round(n / (done - first)),
        "from_start_s": round(done - started, 2),
    }


def bare(bootstrap: str, lines: list[bytes], partitions: int = 4) -> dict:
    topics = Topics(f"bb-{int(time.time())}-")
    create_topics(KafkaConnection(bootstrap), topics, partitions)
    produce(bootstrap, topics.hub_events, lines)

    async def run() -> dict:
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(
            topics.hub_events,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await c.start()
        n = 0
        t0 = None
        try:
            while n < len(lines):
                batch = await c.getmany(timeout_ms=1000, max_records=10000)
                for records in batch.values():
                    if t0 is None:
                        t0 = time.perf_counter()
                    for r in records:
                        parse_hub_event(r.value)
                        n += 1
            secs = time.perf_counter() - t0
        finally:
            await c.stop()
        return {"events": n, "seconds": round(secs, 2), "events_per_s": round(n / secs)}

    return asyncio.run(run())


def latency(bootstrap: str, rate: int, seconds: float) -> dict:
    topics = Topics(f"bl-{int(time.time())}-")
    create_topics(KafkaConnection(bootstrap), topics, 4)
    log_dir = Path(tempfile.mkdtemp(prefix="packloop-bench-"))
    w = Worker(bootstrap, topics.prefix, log_dir)
    try:
        while True:
            try:
                r = httpx.get(w.url + "/local/status", timeout=2)
                if r.status_code == 200 and r.json()["worker"]["partitions"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

        async def run() -> dict:
            from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

            prod = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
            cons = AIOKafkaConsumer(
                topics.pickup_requests,
                bootstrap_servers=bootstrap,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=100,
            )
            await prod.start()
            await cons.start()
            lat: list[float] = []
            vids = sorted(NET.villages)
            state = {v: 0 for v in vids}  # pickups requested so far per village
            sent_at: dict[str, float] = {}

            async def consume() -> None:
                async for msg in cons:
                    e = orjson.loads(msg.value)
                    if e["type"] != "pickup_requested":
                        continue
                    now = time.time()
                    occurred = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
                    lat.append(now - occurred.timestamp())

            task = asyncio.create_task(consume())
            n = 0
            t0 = time.perf_counter()
            i = 0
            while time.perf_counter() - t0 < seconds:
                due = t0 + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                vid = vids[i % len(vids)]
                i += 1
                k = state[vid]
                at = datetime.now(UTC)
                base = {
                    "event_id": f"lat-{n}",
                    "occurred_at": at.isoformat(),
                    "hub_id": NET.villages[vid].hub_id,
                    "village_id": vid,
                }
                if k % 2 == 0:  # heavy shipment: crosses 50 kg
                    e = dict(
                        base,
                        type="shipment",
                        shipment_id=f"S{n}",
                        direction="down",
                        temperature_class="ambient",
                        weight_grams=60000,
                        packaging=[{"material": "cardboard", "count": 1, "grams": 60000}],
                    )
                else:  # collect it all, closing the open pickup
                    e = dict(
                        base,
                        type="recycling_collected",
                        collected_grams={"cardboard": 60000},
                        pickup_id=f"P-{vid}-{(k + 1) // 2}",
                    )
                state[vid] = k + 1
                sent_at[e["event_id"]] = time.time()
                await prod.send(topics.hub_events, orjson.dumps(e), key=vid.encode())
                n += 1
            await prod.flush()
            await asyncio.sleep(3)
            task.cancel()
            await prod.stop()
            await cons.stop()
            lat.sort()
            return {
                "rate": rate,
                "seconds": seconds,
                "events": n,
                "pickups": len(lat),
                "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
                "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1) if lat else None,
                "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            }

        return asyncio.run(run())
    finally:
        w.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["throughput", "bare", "latency", "all"])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--bootstrap", default=None, help="use a running broker")
    args = ap.parse_args()
    lines = (
        [orjson.dumps(e) for e in sample_events(NET, args.events, seed=3)]
        if args.what != "latency"
        else []
    )
    broker = None if args.bootstrap else EmbeddedBroker().start()
    bootstrap = args.bootstrap or broker.bootstrap
    results: dict = {}
    try:
        if args.what in ("bare", "all"):
            results["bare_aiokafka"] = bare(bootstrap, lines)
            print(json.dumps({"bare_aiokafka": results["bare_aiokafka"]}), flush=True)
        if args.what in ("throughput", "all"):
            for n in [1, 2] if args.what == "all" else [args.workers]:
                results[f"worker_x{n}"] = throughput(bootstrap, lines, n)
                print(json.dumps({f"worker_x{n}": results[f"worker_x{n}"]}), flush=True)
        if args.what in ("latency", "all"):
            results["latency"] = latency(bootstrap, args.rate, args.seconds)
            print(json.dumps({"latency": results["latency"]}), flush=True)
        if "bare_aiokafka" in results and "worker_x1" in results:
            ratio = results["worker_x1"]["events_per_s"] / results["bare_aiokafka"]["events_per_s"]
            print(json.dumps({"worker_x1_over_bare": round(ratio, 3)}))
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
