"""How long `packloop emit` takes for N events (default 100,000) on the embedded broker.

Prints the wall time of the CLI run as a user would start it (process start,
validation, produce with acks=all, flush) and events per second, plus the time
to parse/validate alone, so the two can be compared as a ratio.

    python bench/emit_throughput.py [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from services.broker import EmbeddedBroker
from services.simulation.samples import sample_events
from streams import KafkaConnection, Topics, create_topics, load_network, parse_hub_event


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    network = load_network()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        lines = []
        seed = 0
        while len(lines) < args.events:
            seed += 1
            for event in sample_events(network, args.events, seed=seed):
                lines.append(orjson.dumps(event))
                if len(lines) == args.events:
                    break
        path.write_bytes(b"\n".join(lines) + b"\n")
        size_mb = path.stat().st_size / 1e6

        t0 = time.perf_counter()
        for line in lines:
            network.check_event(parse_hub_event(line))
        validate_s = time.perf_counter() - t0

        with EmbeddedBroker() as broker:
            kafka = KafkaConnection(bootstrap_servers=broker.bootstrap)
            create_topics(kafka, Topics())
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "services.cli", "emit", str(path), "--json",
                 "--bootstrap", broker.bootstrap, "--no-progress"],
                capture_output=True, text=True, env=os.environ.copy(),
            )
            emit_s = time.perf_counter() - t0
        summary = orjson.loads(done.stdout)
    print(f"events:                 {args.events:,} ({size_mb:.1f} MB JSON Lines)")
    print(f"accepted / rejected:    {summary['accepted']:,} / {summary['rejected']:,}")
    print(f"packloop emit (CLI):    {emit_s:.2f} s wall, {args.events / emit_s:,.0f} events/s")
    print(f"validation alone:       {validate_s:.2f} s ({args.events / validate_s:,.0f} events/s)")
    print(f"validation share:       {validate_s / emit_s:.2f} of the CLI's wall time")


if __name__ == "__main__":
    main()
