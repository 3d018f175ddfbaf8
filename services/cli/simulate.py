"""`packloop simulate`: the county's hub events to Kafka or a JSON Lines file."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import click
import orjson

from services.cli.context import (
    FiniteRange,
    bootstrap_option,
    console,
    kafka_call,
    settings_from,
)

#: the longest simulation: ten years (a day at scale 1 is about 28,000 events and 3 s)
MAX_DAYS = 3660
#: the highest parcel-rate multiplier: a simulated day's events are drawn and sorted in
#: memory, about 0.5 kB each, so scale 100 (some 2.8 million a day) takes about 1.5 GB
MAX_SCALE = 100
#: --days: above 0, finite, at most MAX_DAYS
DAYS = FiniteRange(min=0, max=MAX_DAYS, min_open=True)
#: --scale: above 0 (0 simulates nothing), finite, at most MAX_SCALE
SCALE = FiniteRange(min=0, max=MAX_SCALE, min_open=True)
#: --speed: 0 (as fast as possible) or more simulated seconds per wall second
SPEED = FiniteRange(min=0)
#: the dates a simulation may cover: the simulator's datetimes (and the container returns
#: it schedules weeks after the period, in UTC) must stay within what Python represents
FIRST_START, LAST_END = date(1900, 1, 1), date(9000, 12, 31)


def check_period(start: date, days: float) -> None:
    """Exit with a usage error when ``--start`` and ``--days`` leave the dates the simulator
    can represent (an OverflowError traceback, late, otherwise)."""
    try:
        end = start + timedelta(days=days)
    except OverflowError:  # past 9999-12-31
        end = date.max
    if start < FIRST_START or end > LAST_END:
        raise click.BadParameter(
            f"{start} with --days {days:g} is outside the dates a simulation can cover "
            f"({FIRST_START} to {LAST_END})", param_hint="--start")


@click.command()
@click.option("--days", type=DAYS, default=7.0, show_default=True, help="Simulated days.")
@click.option("--scale", type=SCALE, default=1.0, show_default=True,
              help="Multiplier on every village's parcel rates.")
@click.option("--speed", type=SPEED, default=0.0, show_default=True,
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

    if start is not None:
        check_period(start.date(), days)
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
