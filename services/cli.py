"""`packloop`: the one command-line entry point.

The group reads the environment once into :class:`Settings`; flags such as
``--bootstrap`` override single fields for one command.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

import click
import orjson
from rich.console import Console

from services.settings import Settings, get_settings

console = Console(stderr=True)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj
    updates = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=updates) if updates else base


bootstrap_option = click.option(
    "--bootstrap",
    "kafka_bootstrap",
    default=None,
    metavar="HOST:PORT[,…]",
    help="Kafka bootstrap servers (overrides PACKLOOP_KAFKA_BOOTSTRAP).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="packloop")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Close the packaging loop of rural e-commerce: events, tallies, pickups, plans."""
    try:
        ctx.obj = get_settings()
    except Exception as exc:  # pydantic's message names the variable and the problem
        raise click.ClickException(f"invalid PACKLOOP_* setting: {exc}") from None


@cli.command()
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: 9092).")
def broker(port: int | None) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) until Ctrl-C.

    Plaintext only: the Tansu 0.6.0 binary refuses --cert together with --key, so TLS is
    tested through a TLS proxy in front of it (see docs/services.md).
    """
    from services.broker import BrokerError, EmbeddedBroker

    embedded = EmbeddedBroker(port=port or 9092)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        embedded.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"bootstrap servers: {embedded.bootstrap}", err=True)
    click.echo(embedded.bootstrap)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            if not embedded.is_running():
                raise click.ClickException("the embedded broker exited unexpectedly")
    finally:
        embedded.stop()
        click.echo("broker stopped", err=True)


@cli.group()
def topics() -> None:
    """Manage packloop's Kafka topics."""


@topics.command("create")
@bootstrap_option
@click.option("--partitions", type=int, default=None, help="Partitions of keyed topics.")
@click.pass_context
def topics_create(ctx: click.Context, kafka_bootstrap: str | None, partitions: int | None) -> None:
    """Create packloop's topics (idempotent: existing topics are left alone)."""
    from streams.topics import create_topics

    settings = _settings(ctx, kafka_bootstrap=kafka_bootstrap, partitions=partitions)
    outcome = _kafka_call(
        lambda: create_topics(settings.kafka(), settings.topics(), settings.partitions),
        settings,
    )
    for name, state in outcome.items():
        click.echo(f"{name}\t{state}")


def _kafka_call(fn: Any, settings: Settings) -> Any:
    """Run a Kafka call, turning an unreachable broker into a clear one-line error."""
    from kafka.errors import KafkaError, KafkaTimeoutError

    try:
        return fn()
    except KafkaTimeoutError as exc:
        if "bootstrap" not in str(exc).lower():
            raise click.ClickException(f"Kafka timed out: {exc}") from None
        raise click.ClickException(
            f"no Kafka broker reachable at {settings.kafka_bootstrap} within "
            f"{settings.kafka_connect_timeout_ms / 1000:.0f} s (start one with `packloop "
            "broker`, or set PACKLOOP_KAFKA_BOOTSTRAP)"
        ) from None
    except KafkaError as exc:
        raise click.ClickException(f"Kafka error: {exc}") from None


@cli.command()
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@bootstrap_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: on for files over 1 MB on a terminal).")
@click.pass_context
def emit(
    ctx: click.Context,
    source: IO[bytes],
    kafka_bootstrap: str | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Validate JSON Lines hub events and produce them; invalid lines go to dead-letter.

    Exits 1 if any line was rejected (or could not be written).
    """
    from streams.network import NetworkError, load_network

    settings = _settings(ctx, kafka_bootstrap=kafka_bootstrap)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    report = _kafka_call(
        lambda: _emit_with_progress(source, settings, network, progress), settings
    )
    if as_json:
        click.echo(orjson.dumps(report.to_dict()).decode())
    else:
        click.echo(f"accepted: {report.accepted}  rejected: {report.rejected}"
                   + (f"  failed to write: {report.failed}" if report.failed else ""))
        for rejection in report.first_rejections:
            where = f"line {rejection.line}: " if rejection.line else ""
            click.echo(f"  {where}{rejection.message}")
        if report.rejected > len(report.first_rejections):
            click.echo(f"  … and {report.rejected - len(report.first_rejections)} more "
                       f"(see `packloop dead-letter list`)")
    if not report.ok:
        ctx.exit(1)


def _emit_with_progress(
    source: IO[bytes], settings: Settings, network: Any, progress: bool | None
) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from services.emit import emit_stream

    size = _file_size(source)
    show = progress if progress is not None else (console.is_terminal and size > 1_000_000)
    if not show:
        return emit_stream(source, settings.kafka(), settings.topics(), network)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("emitting", total=size or None)
        return emit_stream(
            source,
            settings.kafka(),
            settings.topics(),
            network,
            on_progress=lambda n: bar.advance(task, n),
        )


def _file_size(source: IO[bytes]) -> int:
    try:
        return Path(source.name).stat().st_size if source.name not in ("-", "<stdin>") else 0
    except (OSError, AttributeError, TypeError):
        return 0


@cli.command()
@click.option("--days", type=float, default=7.0, show_default=True, help="Simulated days.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Multiplier on every village's parcel rates.")
@click.option("--speed", type=float, default=0.0, show_default=True,
              help="Simulated seconds per wall second (0 = as fast as possible).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First simulated day (local date; default: DAYS before today).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Write JSON Lines here instead of producing to Kafka.")
@bootstrap_option
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.pass_context
def simulate(ctx: click.Context, days: float, scale: float, speed: float, seed: int,
             start: Any, out_file: str | None, kafka_bootstrap: str | None,
             progress: bool) -> None:
    """Simulate the county's hub events (one shipment = one parcel) to Kafka or a file.

    With Kafka, pickup requests from the stream are answered by collections.
    """
    from services.simulation.run import run_simulate

    settings = _settings(ctx, kafka_bootstrap=kafka_bootstrap)
    summary = _kafka_call(
        lambda: run_simulate(settings, days=days, scale=scale, speed=speed, seed=seed,
                             start_date=start.date() if start else None, out_file=out_file,
                             progress=progress, console=console),
        settings,
    )
    click.echo(orjson.dumps(summary).decode())


@cli.command()
@click.option("--days", type=float, default=None, help="Simulated days (default 7).")
@click.option("--scale", type=float, default=None, help="Parcel-rate multiplier (default 1.0).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--plan-time-limit", type=float, default=None, metavar="S",
              help="Time limit of the week-ahead plan (default 40 s).")
@click.option("--plan-hubs", type=int, default=None, metavar="N",
              help="Plan only the N busiest townships (default: all).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-output",
              show_default=True)
@click.option("--keep-running", is_flag=True,
              help="Stay up afterwards and print the metrics and state URLs.")
@click.pass_context
def demo(ctx: click.Context, days: float | None, scale: float | None, seed: int,
         plan_time_limit: float | None, plan_hubs: int | None, out_dir: str,
         keep_running: bool) -> None:
    """The whole loop on the embedded broker: simulate, tally, pick up, plan, report."""
    from services.demo import DemoOptions, run_demo

    defaults = DemoOptions()
    options = DemoOptions(
        days=days if days is not None else defaults.days,
        scale=scale if scale is not None else defaults.scale,
        seed=seed,
        plan_time_limit_s=plan_time_limit or defaults.plan_time_limit_s,
        plan_hubs=plan_hubs,
        out_dir=Path(out_dir),
        keep_running=keep_running,
    )
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both unwind through the demo's `finally` clauses, even when the
    # shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        run_demo(options, ctx.obj, console=console)
    except KeyboardInterrupt:
        console.print("interrupted: everything the demo started has been stopped")
        ctx.exit(130)


from services.plan_cli import plan  # noqa: E402

cli.add_command(plan)

import services.planner.cli  # noqa: E402,F401  (adds plan submit|status|fetch)
from services.hubs_cli import hubs  # noqa: E402
from services.planners_cli import planners  # noqa: E402
from services.service_cli import gateway, planner  # noqa: E402

cli.add_command(gateway)
cli.add_command(planner)
cli.add_command(hubs)
cli.add_command(planners)

from services.worker_cli import dead_letter, status, worker  # noqa: E402

cli.add_command(worker)
cli.add_command(status)
cli.add_command(dead_letter)

from services.report_cli import report  # noqa: E402

cli.add_command(report)


def main() -> None:
    cli(prog_name="packloop")


if __name__ == "__main__":
    main()
