"""`packloop simulate`: the county's hub events to Kafka or a JSON Lines file."""

from __future__ import annotations

from typing import Any

import click
import orjson

from services.cli.context import bootstrap_option, console, kafka_call, settings_from


@click.command()
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

    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap)
    summary = kafka_call(
        lambda: run_simulate(settings, days=days, scale=scale, speed=speed, seed=seed,
                             start_date=start.date() if start else None, out_file=out_file,
                             progress=progress, console=console),
        settings,
    )
    click.echo(orjson.dumps(summary).decode())
    if summary.get("failed"):
        raise click.ClickException(
            f"{summary['failed']:,} events could not be written to Kafka (produce errors "
            "after retries); they are in neither the hub-events nor the dead-letter topic")
