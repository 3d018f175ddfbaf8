"""`packloop`: the one command-line entry point.

The root group reads the environment once into :class:`~services.settings.Settings`;
flags such as ``--bootstrap`` override single fields for one command. Each module here is
one command group; :data:`COMMANDS` lists every command the root group offers.
"""

from __future__ import annotations

import click

from services.cli import (
    demo,
    dispatch,
    emit,
    kafka,
    paths,
    plan,
    plan_decisions,  # noqa: F401  (adds `plan frontier` and `plan whatif` to `plan`)
    report,
    serve,
    simulate,
    tokens,
    worker,
)
from services.cli.context import read_settings

COMMANDS: tuple[click.Command, ...] = (
    kafka.broker,
    kafka.topics,
    emit.emit,
    simulate.simulate,
    demo.demo,
    worker.worker,
    worker.status,
    worker.dead_letter,
    plan.plan,
    dispatch.dispatch,
    serve.gateway,
    serve.planner,
    tokens.hubs,
    tokens.planners,
    report.report,
    paths.paths,
)


@click.group(
    commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="packloop")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Close the packaging loop of rural e-commerce: events, tallies, pickups, plans."""
    ctx.obj = read_settings()


def main() -> None:
    # Pyomo's own handler writes its warnings to stdout, where `--json` output goes
    import sys

    from pyomo.common.log import pyomo_handler

    pyomo_handler.setStream(sys.stderr)
    cli(prog_name="packloop")
