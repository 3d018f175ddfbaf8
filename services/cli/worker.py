"""`packloop worker`, `packloop status` and `packloop dead-letter list|redrive`."""

from __future__ import annotations

import dataclasses
import difflib
import sys
from typing import Any

import click
import orjson

from services.cli.context import (
    PORT,
    bootstrap_option,
    check_listen_port,
    escaped,
    kafka_call,
    open_database,
    settings_from,
    worker_url_option,
)
from services.reports.units import mass_text
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


def check_web_port(host: str, port: int) -> None:
    """Exit with one line when the worker's web server cannot listen on ``host:port``.

    Faust finds out only after the worker has joined its group, and then ends in a long
    traceback, after the URL printed at start, which then points at whatever holds the port.
    """
    check_listen_port(host, port, "the worker's web server (state queries, /metrics)",
                      "--web-port or PACKLOOP_WEB_PORT (and the address with "
                      "PACKLOOP_WEB_HOST)")


def build_worker(settings: Settings, web_port: int | None = None) -> Any:
    from services.ledger import Ledger
    from streams import create_worker, load_network
    from streams.cluster_watch import ClusterWatch, cluster_id
    from streams.kafka import is_tansu_cluster

    network = load_network(settings.network)
    # before the broker's probes: a wrong ledger URL is said at once, not after them (each
    # waits its bootstrap timeout when the broker is down)
    ledger = open_database("the ledger", "PACKLOOP_LEDGER_DB_URL", settings.ledger_db_url,
                           lambda: Ledger(settings.ledger_db_url))
    options = settings.worker_options(source_partitions(settings), web_port)
    # the cluster the state will come from, read before Faust starts (once: it also says
    # whether the broker is Tansu): a broker restarted empty under the running worker is
    # then told apart from the one it started with
    started_on = cluster_id(settings.kafka())
    if options.group_instance_id and is_tansu_cluster(started_on):
        # Tansu 0.6 never lets a static member restarted after a session reset (a broker
        # stall longer than the session timeout) sync again; dynamic membership recovers.
        click.echo(f"static group membership off (PACKLOOP_WORKER_GROUP_INSTANCE_ID="
                   f"{options.group_instance_id} ignored): the embedded Tansu broker does "
                   "not bring a restarted static member back after a session reset", err=True)
        options = dataclasses.replace(options, group_instance_id=None)
    options = dataclasses.replace(options, cluster_id=started_on)
    cluster = (ClusterWatch(settings.kafka(), started_on)
               if options.cluster_check_interval_s > 0 else None)
    return create_worker(settings.kafka(), settings.topics(), network, options, ledger, cluster)


@click.command()
@click.option("--web-port", type=PORT, default=None,
              help="Web port (default PACKLOOP_WEB_PORT).")
@bootstrap_option
@click.option("--loglevel", default=None, help="Log level (default PACKLOOP_WORKER_LOG_LEVEL).")
@click.pass_context
def worker(
    ctx: click.Context, web_port: int | None, kafka_bootstrap: str | None, loglevel: str | None
) -> None:
    """Run a stream worker (tallies, pickups, containers); several may share the work."""
    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap or None)
    check_web_port(settings.web_host, web_port or settings.web_port)
    from streams import create_topics
    from streams.topics import failed_topics

    try:
        outcome = create_topics(settings.kafka(), settings.topics(), settings.partitions,
                                settings.replication_factor)
    except Exception as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
        ) from None
    failed = failed_topics(outcome)
    if failed:
        raise click.ClickException("topics not usable: " + "; ".join(
            f"{name}: {state}" for name, state in failed.items()))
    w = build_worker(settings, web_port)
    url = w.options.url
    click.echo(f"worker state: {url}/status (also /villages, /hubs/HUB, /pickups, "
               f"/months/YYYY-MM)\nworker metrics: {url}/metrics\n"
               f"point `packloop status`, `report officer`, the gateway and the planner here "
               f"with --worker-url {url} (or PACKLOOP_WORKER_URL={url})", err=True)
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


#: the counters `status --json` always has (0 when a worker does not report one)
PICKUP_COUNTERS = ("requested", "open", "overdue")
EVENT_COUNTERS = ("applied", "duplicates", "dead_lettered", "rerouted")


def _counters(given: Any, always: tuple[str, ...]) -> dict[str, int]:
    """The documented counters first, then every other counter the workers report."""
    given = given if isinstance(given, dict) else {}
    out = {k: given.get(k, 0) for k in always}
    out.update({k: v for k, v in given.items() if k not in out and isinstance(v, int)})
    return out


def status_contract(data: dict[str, Any]) -> dict[str, Any]:
    """The documented keys of `status --json`: villages, hubs, and every counter of the
    workers' /status (what the text output shows, re-routed records included)."""
    return {
        "villages": data.get("villages", {}),
        "hubs": data.get("hubs", {}),
        "pickups": _counters(data.get("pickups"), PICKUP_COUNTERS),
        "events": _counters(data.get("events"), EVENT_COUNTERS),
    }


CONTAINER_COLUMNS = ("issued", "returned", "in_circulation", "damaged", "lost", "overdue")


def only_hub(out: dict[str, Any], hub: str, network: Any) -> dict[str, Any]:
    """The status contract cut to one hub's villages and containers (the event and pickup
    counters stay county-wide: the worker counts them per county)."""
    villages = {vid: v for vid, v in out["villages"].items()
                if (village := network.villages.get(vid)) is not None and village.hub_id == hub}
    hubs = {h: v for h, v in out["hubs"].items() if h == hub}
    return {**out, "villages": villages, "hubs": hubs}


def check_filters(village: str | None, hub: str | None, network: Any) -> None:
    """An unknown village or hub is a usage error (exit 2) naming it, not county figures."""
    if hub is not None and hub not in network.hubs:
        raise click.BadParameter(f"unknown hub {hub!r} (hubs: {', '.join(sorted(network.hubs))})",
                                 param_hint="--hub")
    if village is None:
        return
    known = network.villages.get(village)
    if known is None:
        raise click.BadParameter(
            f"unknown village {village!r}: not in the network reference data "
            f"({network.county}, {len(network.villages)} villages)", param_hint="--village")
    if hub is not None and known.hub_id != hub:
        raise click.BadParameter(f"village {village!r} belongs to hub {known.hub_id!r}, "
                                 f"not {hub!r}", param_hint="--village")


@click.command()
@click.option("--village", default=None, help="Only this village (exit 2 if unknown).")
@click.option("--hub", default=None, help="Only this hub's villages and containers.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a contract).")
@worker_url_option
@click.pass_context
def status(ctx: click.Context, village: str | None, hub: str | None, as_json: bool,
           worker_url: str | None) -> None:
    """Tallies, container pools, pickups and event counters, gathered from all workers.

    Quantities are shown in g or kg; --json keeps grams.
    """
    from streams import NetworkError, load_network

    settings = settings_from(ctx, worker_url=worker_url)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    check_filters(village, hub, network)
    url = settings.worker_url
    try:
        data = fetch_status(url, village)
    except Exception as exc:
        raise click.ClickException(
            f"no worker answered at {url}: {exc} (give the worker's address with "
            "--worker-url or PACKLOOP_WORKER_URL)") from None
    if "error" in data:
        raise click.ClickException(str(data.get("message") or data["error"]))
    out = status_contract(data)
    if hub is not None:
        out = only_hub(out, hub, network)
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    print_status(out, data, county_wide=bool(village or hub))
    if village is not None and village not in out["villages"]:
        # its table was simply missing, under the county's counters (an outside audit)
        click.echo(f"village {village}: no event applied yet (nothing outstanding, no "
                   "pickup)")


def _masses(d: dict[str, int]) -> str:
    """One material a line, so a narrow terminal wraps between materials."""
    return "\n".join(f"{m} {mass_text(g)}" for m, g in sorted(d.items())) or "-"


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Any:
    """A table that wraps cells between words instead of cutting them: no column gets
    narrower than its longest word, and the headers wrap first."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    for i, col in enumerate(columns):
        longest = max((len(word) for row in rows for word in row[i].split()), default=1)
        table.add_column(col, overflow="fold", min_width=longest)
    for row in rows:
        table.add_row(*row)
    return table


def print_status(out: dict[str, Any], raw: dict[str, Any], console: Any = None,
                 county_wide: bool = False) -> None:
    from rich.console import Console

    console = console or Console()
    scope = " (all hubs)" if county_wide else ""
    ev = raw.get("events", {})
    console.print(
        f"[bold]events{scope}[/] applied {ev.get('applied', 0)}, duplicates "
        f"{ev.get('duplicates', 0)}, dead-lettered {ev.get('dead_lettered', 0)}, re-routed "
        f"{ev.get('rerouted', 0)}"
    )
    pk = out["pickups"]
    console.print(
        f"[bold]pickups{scope}[/] requested {pk['requested']}, open {pk['open']}, "
        f"overdue {pk['overdue']}"
    )
    if out["villages"]:
        console.print(_table(
            "villages", ("village", "outstanding", "over-collected", "open pickup"),
            [(vid, _masses(v["outstanding_grams"]), _masses(v["over_collected_grams"]),
              v["open_pickup"] or "-") for vid, v in out["villages"].items()]))
    if out["hubs"]:
        console.print(_table(
            "containers per hub",
            ("hub", "type", "issued", "returned", "in circ.", "damaged", "lost", "overdue"),
            [(hub_id, ct, *(str(f[k]) for k in CONTAINER_COLUMNS))
             for hub_id, hub in out["hubs"].items() for ct, f in hub["containers"].items()]))


# -- dead letters -------------------------------------------------------------------------


def read_dead_letters(settings: Settings, timeout_s: float = 3.0) -> list[dict[str, Any]]:
    """Every record on the dead-letter topic, oldest first, with its offset.

    Read until polls stay empty for ``timeout_s``, not until the end offsets: the embedded
    broker reports those short by up to a batch.
    """
    from streams import iter_topic

    out: list[dict[str, Any]] = []
    records = iter_topic(settings.kafka(), settings.topics().dead_letter,
                         idle_timeout_s=timeout_s, max_wait_s=max(timeout_s, 1.0) * 10)
    for rec in records:
        value = rec.value or b""
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):  # not JSON, or JSON but not a record (b'[]', b'3')
            body = {"reason": "unreadable", "raw": value.decode("utf-8", "replace")}
        body["_offset"] = rec.offset
        body["_partition"] = rec.partition
        out.append(body)
    out.sort(key=lambda b: (b["_partition"], b["_offset"]))
    return out


def dead_letter_line(r: dict[str, Any]) -> str:
    """One record of `dead-letter list`: offset, source, reason, then the field and the
    problem once (a message already starting with its field is not given it again)."""
    field = r.get("field")
    message = str(r.get("message") or "")
    if field and not message.startswith(f"{field}: "):
        message = f"{field}: {message}" if message else str(field)
    raw = str(r.get("raw", ""))
    head = f"#{r['_offset']} {r.get('source', '?')} {r.get('reason', '?')}"
    # a sender's event id with U+202E or ESC reached the terminal raw (an outside audit)
    return escaped(" ".join(part for part in (head, message, raw[:160]) if part))


@click.group("dead-letter")
def dead_letter() -> None:
    """Inspect and re-drive dead-lettered records."""


def with_reason(records: list[dict[str, Any]], reason: str | None) -> list[dict[str, Any]]:
    """The records of ``reason`` (all when None). When none has it, stderr says which
    reasons the topic does hold: the set is open (a schema error's reason is pydantic's
    error type), so an unmatched reason is a likely typo, not a usage error."""
    if reason is None:
        return records
    chosen = [r for r in records if r.get("reason") == reason]
    if not chosen:
        held = _by_reason(records)
        close = difflib.get_close_matches(reason, list(held), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        on_topic = ", ".join(f"{k} {v}" for k, v in held.items()) or "none, it is empty"
        click.echo(f"no dead-letter record has reason {reason!r}{hint} (reasons on the "
                   f"topic: {on_topic})", err=True)
    return chosen


def _by_reason(records: list[dict[str, Any]]) -> dict[str, int]:
    by_reason: dict[str, int] = {}
    for r in records:
        by_reason[str(r.get("reason"))] = by_reason.get(str(r.get("reason")), 0) + 1
    return dict(sorted(by_reason.items()))


@dead_letter.command("list")
@click.option("--reason", default=None, help="Only records with this reason.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@bootstrap_option
@click.pass_context
def dl_list(ctx: click.Context, reason: str | None, as_json: bool,
            kafka_bootstrap: str | None) -> None:
    """Show dead-lettered records (source, reason, field, the original event)."""
    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap)
    records = with_reason(kafka_call(lambda: read_dead_letters(settings), settings), reason)
    if as_json:
        for r in records:
            click.echo(orjson.dumps(r).decode())
        return
    for r in records:
        click.echo(dead_letter_line(r))
    summary = ", ".join(f"{k} {v}" for k, v in _by_reason(records).items())
    click.echo(f"{len(records)} record(s){': ' + summary if summary else ''}", err=True)


@dataclasses.dataclass
class RedrivePlan:
    """What a redrive does with each record; the five counts add up to the records read."""

    to_send: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)  # (key, raw event)
    not_events: int = 0
    repeats: int = 0
    #: events refused for reusing an applied event_id with other content: the worker
    #: refuses them by their id whatever the reference data, so re-sending only adds a
    #: dead letter (even with --force)
    conflicts: int = 0
    refused_again: dict[str, int] = dataclasses.field(default_factory=dict)


def plan_redrive(records: list[dict[str, Any]], network: Any, acceptance: Any,
                 force: bool) -> RedrivePlan:
    """Sort the records: each event_id is sent (or skipped as refused again) once, since
    the worker's dedupe would count the second copy as a duplicate anyway."""
    from services.emit import check_line
    from streams import EventError, decode_raw, parse_hub_event
    from streams.processor import EVENT_ID_CONFLICT

    plan = RedrivePlan()
    seen: set[str] = set()
    for r in records:
        if r.get("raw_truncated"):
            plan.not_events += 1
            continue
        try:
            raw = decode_raw(r)
            event = parse_hub_event(raw)
        except (EventError, ValueError):
            plan.not_events += 1  # still not a valid event: fixing reference data will not help
            continue
        if r.get("reason") == EVENT_ID_CONFLICT:
            plan.conflicts += 1
            continue
        if event.event_id in seen:
            plan.repeats += 1
            continue
        seen.add(event.event_id)
        _, problem = check_line(raw, network, acceptance)
        if problem is not None and not force:
            plan.refused_again[problem.code] = plan.refused_again.get(problem.code, 0) + 1
            continue
        plan.to_send.append((event.village_id.encode("utf-8"), raw))
    return plan


def _send(settings: Settings, to_send: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka().kafka_python_kwargs())
    try:
        for key, raw in to_send:
            producer.send(settings.topics().hub_events, key=key, value=raw)
        producer.flush(30)
    finally:
        producer.close()


@dead_letter.command("redrive")
@click.option("--reason", default=None, help="Only records with this reason.")
@click.option("--dry-run", is_flag=True, help="Show what would be re-submitted.")
@click.option("--force", is_flag=True,
              help="Also re-submit events that would be refused again as they stand.")
@bootstrap_option
@click.pass_context
def dl_redrive(ctx: click.Context, reason: str | None, dry_run: bool, force: bool,
               kafka_bootstrap: str | None) -> None:
    """Re-submit dead-lettered events to hub-events (after fixing the reference data).

    Each event is checked first as `packloop emit` checks a line, against the current
    reference data and clock: one that would be refused again (hub_mismatch,
    unknown_village, future_timestamp, too_late, ...) is skipped and counted by reason,
    unless --force, so a redrive does not dead-letter (and count) the same event again.
    An event_id_conflict (an applied event_id reused with other content) is never
    re-sent: give the event a new event_id and emit it. Redriven events keep their
    event_id, so they go through the same dedupe: an event re-driven twice, or one already
    applied, is counted once.
    """
    from streams import NetworkError, load_network

    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    records = with_reason(kafka_call(lambda: read_dead_letters(settings), settings), reason)
    plan = plan_redrive(records, network, settings.acceptance(), force)
    if not dry_run:
        kafka_call(lambda: _send(settings, plan.to_send), settings)
    verb = "would re-submit" if dry_run else "re-submitted"
    click.echo(f"{verb} {len(plan.to_send)} event(s) of {len(records)} record(s); skipped "
               f"{plan.not_events} that are not valid events")
    if plan.repeats:
        click.echo(f"skipped {plan.repeats} repeat(s) of an event_id already counted above "
                   "(an event is re-submitted once)")
    if plan.conflicts:
        click.echo(f"skipped {plan.conflicts} that reuse an applied event_id with other "
                   "content (event_id_conflict): re-sent, they are refused again by their id; "
                   "give each a new event_id and emit it")
    if plan.refused_again:
        by_reason = ", ".join(f"{k} {v}" for k, v in sorted(plan.refused_again.items()))
        click.echo(f"skipped {sum(plan.refused_again.values())} that would be refused again "
                   f"as they stand ({by_reason}): fix the reference data or wait for the "
                   "clock, or re-submit them anyway with --force")
