"""`packloop demo`: the whole loop on the embedded broker, for a first run.

Everything it starts it stops again, also on Ctrl-C: the broker runs inside a
``with`` block and the clients are closed in ``finally`` clauses.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from services.broker import EmbeddedBroker
from services.emit import emit_stream
from streams.consume import read_topic
from streams.kafka import KafkaConnection
from streams.network import load_network
from streams.topics import Topics, create_topics

SAMPLE_EVENTS = Path(__file__).parent / "data" / "sample_events.jsonl"


def run_demo(events_file: Path | None = None, console: Console | None = None) -> dict[str, int]:
    console = console or Console(stderr=True)
    events_file = events_file or SAMPLE_EVENTS
    network = load_network()
    topics = Topics()
    started = time.monotonic()
    with EmbeddedBroker() as broker:
        kafka = KafkaConnection(bootstrap_servers=broker.bootstrap)
        console.print(f"[bold]embedded broker[/] listening on {broker.bootstrap}")
        created = create_topics(kafka, topics)
        console.print(f"topics: {', '.join(created)}")
        with events_file.open("rb") as stream:
            report = emit_stream(stream, kafka, topics, network)
        console.print(
            f"emitted [bold]{report.accepted}[/] events from {events_file.name}; "
            f"{report.rejected} invalid lines dead-lettered"
        )
        for rejection in report.first_rejections:
            console.print(f"  line {rejection.line}: {rejection.message}")
        events = read_topic(kafka, topics.hub_events, expected=report.accepted)
        dead = read_topic(kafka, topics.dead_letter, expected=report.rejected)
    by_type: Counter[str] = Counter()
    grams_down: Counter[str] = Counter()
    for record in events:
        event = orjson.loads(record.value)
        by_type[event["type"]] += 1
        if event["type"] == "shipment" and event["direction"] == "down":
            for line in event["packaging"]:
                grams_down[line["material"]] += line["grams"]
    table = Table(title=f"read back from {topics.hub_events} ({network.county})")
    table.add_column("event type")
    table.add_column("records", justify="right")
    for name, n in sorted(by_type.items()):
        table.add_row(name, str(n))
    table.add_row("[dim]dead-letter[/]", str(len(dead)))
    console.print(table)
    materials = ", ".join(f"{m} {g / 1000:.1f} kg" for m, g in grams_down.most_common())
    console.print(f"single-use packaging delivered to villages: {materials}")
    console.print(f"done in {time.monotonic() - started:.1f} s; broker stopped.")
    summary = {"emitted": report.accepted, "dead_lettered": report.rejected,
               "read_back": len(events), "dead_letter_read_back": len(dead)}
    print(orjson.dumps(summary).decode())
    return summary
