"""`packloop worker`, `packloop status` and `packloop dead-letter list|redrive`."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from services.cli.context import settings_from
from services.settings import Settings


def source_partitions(settings: Settings) -> int:
    """Partition count of hub-events on the broker (the setting when it does not exist yet)."""
    try:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(**settings.kafka().kafka_python_kwargs())
        try:
            parts = consumer.partitions_for_topic(settings.topics().hub_events)
        finally:
            consumer.close()
        if parts:
            return len(parts)
    except Exception:  # broker down: Faust will report it properly
        pass
    return settings.partitions


def build_worker(settings: Settings, web_port: int | None = None) -> Any:
    from streams.app import create_worker
    from streams.network import load_network

    network = load_network(settings.network)
    options = settings.worker_options(source_partitions(settings), web_port)
    return create_worker(settings.kafka(), settings.topics(), network, options)


@click.command()
@click.option("--web-port", type=int, default=None, help="Web port (default PACKLOOP_WEB_PORT).")
@click.option("--bootstrap", "kafka_bootstrap", default=None, help="Kafka bootstrap servers.")
@click.option("--loglevel", default=None, help="Log level (default PACKLOOP_WORKER_LOG_LEVEL).")
@click.pass_context
def worker(
    ctx: click.Context, web_port: int | None, kafka_bootstrap: str | None, loglevel: str | None
) -> None:
    """Run a stream worker (tallies, pickups, containers); several may share the work."""
    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap or None)
    from streams.topics import create_topics

    try:
        create_topics(settings.kafka(), settings.topics(), settings.partitions)
    except Exception as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
        ) from None
    w = build_worker(settings, web_port)
    sys.argv = sys.argv[:1]  # Faust's Worker parses argv itself
    w.run(loglevel or settings.worker_log_level)


# -- status -------------------------------------------------------------------------------


def fetch_status(url: str, village: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    import httpx

    params = {"village": village} if village else {}
    resp = httpx.get(url.rstrip("/") + "/status", params=params, timeout=timeout)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def status_contract(data: dict[str, Any]) -> dict[str, Any]:
    """Keep exactly the documented keys of `status --json`."""
    return {
        "villages": data.get("villages", {}),
        "hubs": data.get("hubs", {}),
        "pickups": {k: data.get("pickups", {}).get(k, 0) for k in ("requested", "open", "overdue")},
        "events": {
            k: data.get("events", {}).get(k, 0) for k in ("applied", "duplicates", "dead_lettered")
        },
    }


@click.command()
@click.option("--village", default=None, help="Only this village.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a contract).")
@click.option("--url", default=None, help="Worker URL (default PACKLOOP_WORKER_URL).")
@click.pass_context
def status(ctx: click.Context, village: str | None, as_json: bool, url: str | None) -> None:
    """Tallies, container pools, pickups and event counters, gathered from all workers."""
    settings = settings_from(ctx)
    url = url or settings.worker_url
    try:
        data = fetch_status(url, village)
    except Exception as exc:
        raise click.ClickException(f"no worker answered at {url}: {exc}") from None
    if "error" in data:
        raise click.ClickException(data["error"])
    out = status_contract(data)
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    _print_status(out, data)


def _grams(d: dict[str, int]) -> str:
    return ", ".join(f"{m} {g / 1000:.1f} kg" for m, g in sorted(d.items())) or "-"


def _print_status(out: dict[str, Any], raw: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ev = raw.get("events", {})
    console.print(
        f"[bold]events[/] applied {ev.get('applied', 0)}, duplicates {ev.get('duplicates', 0)}, "
        f"dead-lettered {ev.get('dead_lettered', 0)}, re-routed {ev.get('rerouted', 0)}"
    )
    pk = out["pickups"]
    console.print(
        f"[bold]pickups[/] requested {pk['requested']}, open {pk['open']}, overdue {pk['overdue']}"
    )
    if out["villages"]:
        t = Table(title="villages")
        for col in ("village", "outstanding", "over-collected", "open pickup"):
            t.add_column(col)
        for vid, v in out["villages"].items():
            t.add_row(
                vid,
                _grams(v["outstanding_grams"]),
                _grams(v["over_collected_grams"]),
                v["open_pickup"] or "-",
            )
        console.print(t)
    if out["hubs"]:
        t = Table(title="containers per hub")
        for col in ("hub", "type", "issued", "returned", "in circ.", "damaged", "lost", "overdue"):
            t.add_column(col)
        for hub_id, hub in out["hubs"].items():
            for ct, f in hub["containers"].items():
                t.add_row(
                    hub_id,
                    ct,
                    *(
                        str(f[k])
                        for k in (
                            "issued",
                            "returned",
                            "in_circulation",
                            "damaged",
                            "lost",
                            "overdue",
                        )
                    ),
                )
        console.print(t)


# -- dead letters -------------------------------------------------------------------------


def read_dead_letters(settings: Settings, timeout_s: float = 3.0) -> list[dict[str, Any]]:
    """Every record on the dead-letter topic, oldest first, with its offset.

    Read until polls stay empty for ``timeout_s``, not until the end offsets: the embedded
    broker reports those short by up to a batch.
    """
    from streams.consume import iter_topic

    out: list[dict[str, Any]] = []
    records = iter_topic(settings.kafka(), settings.topics().dead_letter,
                         idle_timeout_s=timeout_s, max_wait_s=max(timeout_s, 1.0) * 10)
    for rec in records:
        try:
            body = orjson.loads(rec.value)
        except orjson.JSONDecodeError:
            body = {"reason": "unreadable", "raw": rec.value.decode("utf-8", "replace")}
        body["_offset"] = rec.offset
        body["_partition"] = rec.partition
        out.append(body)
    out.sort(key=lambda b: (b["_partition"], b["_offset"]))
    return out


@click.group("dead-letter")
def dead_letter() -> None:
    """Inspect and re-drive dead-lettered records."""


@dead_letter.command("list")
@click.option("--reason", default=None, help="Only records with this reason.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def dl_list(ctx: click.Context, reason: str | None, as_json: bool) -> None:
    """Show dead-lettered records (source, reason, field, the original event)."""
    settings = settings_from(ctx)
    records = [
        r for r in read_dead_letters(settings) if reason is None or r.get("reason") == reason
    ]
    if as_json:
        for r in records:
            click.echo(orjson.dumps(r).decode())
        return
    for r in records:
        raw = str(r.get("raw", ""))
        click.echo(
            f"#{r['_offset']} {r.get('source', '?')} {r.get('reason', '?')}"
            f"{' ' + r['field'] if r.get('field') else ''}: "
            f"{r.get('message', '')} {raw[:160]}"
        )
    by_reason: dict[str, int] = {}
    for r in records:
        by_reason[str(r.get("reason"))] = by_reason.get(str(r.get("reason")), 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items()))
    click.echo(f"{len(records)} record(s){': ' + summary if summary else ''}", err=True)


@dead_letter.command("redrive")
@click.option("--reason", default=None, help="Only records with this reason.")
@click.option("--dry-run", is_flag=True, help="Show what would be re-submitted.")
@click.pass_context
def dl_redrive(ctx: click.Context, reason: str | None, dry_run: bool) -> None:
    """Re-submit dead-lettered events to hub-events (after fixing the reference data).

    Redriven events keep their event_id, so they go through the same dedupe: an event
    re-driven twice, or one already applied, is counted once.
    """
    from kafka import KafkaProducer

    from streams.deadletter import decode_raw
    from streams.events import EventError, parse_hub_event

    settings = settings_from(ctx)
    records = [
        r for r in read_dead_letters(settings) if reason is None or r.get("reason") == reason
    ]
    sent = skipped = 0
    seen: set[str] = set()
    producer = None if dry_run else KafkaProducer(**settings.kafka().kafka_python_kwargs())
    try:
        for r in records:
            if r.get("raw_truncated"):
                skipped += 1
                continue
            raw = decode_raw(r)
            try:
                event = parse_hub_event(raw)
            except EventError:
                skipped += 1  # still not a valid event: fixing reference data will not help
                continue
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            if producer is not None:
                producer.send(
                    settings.topics().hub_events, key=event.village_id.encode("utf-8"), value=raw
                )
            sent += 1
        if producer is not None:
            producer.flush(30)
    finally:
        if producer is not None:
            producer.close()
    verb = "would re-submit" if dry_run else "re-submitted"
    click.echo(f"{verb} {sent} event(s); skipped {skipped} that are not valid events")

