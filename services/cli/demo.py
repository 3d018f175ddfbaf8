"""`packloop demo`: the whole loop on the embedded broker (see :mod:`services.demo`)."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from services.cli.context import console, settings_from
from services.cli.plan import OUT_DIR, TIME_LIMIT
from services.cli.simulate import DAYS, SCALE


@click.command()
@click.option("--days", type=DAYS, default=None, help="Simulated days (default 7).")
@click.option("--scale", type=SCALE, default=None, help="Parcel-rate multiplier (default 1.0).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--plan-time-limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Time limit of the week-ahead plan (default 90 s).")
@click.option("--plan-hubs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Plan only the N busiest townships (default: all).")
@click.option("--out", "out_dir", type=OUT_DIR, default="demo-output",
              show_default=True)
@click.option("--decisions/--no-decisions", default=True, show_default=True,
              help="Also the busiest township's single-use front, a what-if (one more "
              "refrigerated van, 50 more boxes) and tomorrow's run sheet.")
@click.option("--decision-time-limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Time limit of each decision solve (default 8 s).")
@click.option("--keep-running", is_flag=True,
              help="Stay up afterwards and print the metrics and state URLs.")
@click.pass_context
def demo(ctx: click.Context, days: float | None, scale: float | None, seed: int,
         plan_time_limit: float | None, plan_hubs: int | None, out_dir: str,
         decisions: bool, decision_time_limit: float | None, keep_running: bool) -> None:
    """The whole loop on the embedded broker: simulate, tally, pick up, plan, report."""
    from services.demo import DemoError, DemoOptions, run_demo

    defaults = DemoOptions()
    options = DemoOptions(
        days=days if days is not None else defaults.days,
        scale=scale if scale is not None else defaults.scale,
        seed=seed,
        plan_time_limit_s=plan_time_limit or defaults.plan_time_limit_s,
        plan_hubs=plan_hubs,
        out_dir=Path(out_dir),
        keep_running=keep_running,
        decisions=decisions,
        decision_time_limit_s=decision_time_limit or defaults.decision_time_limit_s,
    )

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both unwind through the demo's `finally` clauses, even when the
    # shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        run_demo(options, settings_from(ctx), console=console)
    except KeyboardInterrupt:
        console.print("interrupted: everything the demo started has been stopped")
        ctx.exit(130)
    except DemoError as exc:
        raise click.ClickException(f"{exc}; everything the demo started has been stopped"
                                   ) from None
