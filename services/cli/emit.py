"""`packloop emit FILE|-`: validate JSON Lines hub events and produce them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import orjson

from services.cli.context import bootstrap_option, console, kafka_call, settings_from
from services.settings import Settings

if TYPE_CHECKING:
    from services.emit import EmitReport


@click.command()
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@bootstrap_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: on for files over 1 MB on a terminal).")
@click.option("--shift-to-now", is_flag=True,
              help="Move every event by the same whole number of days so that the latest "
                   "falls on yesterday (UTC) (replay a sample or an old capture; reads "
                   "the whole input first). A moved event's event_id becomes ID@+Nd: "
                   "replayed on another day the file is new events, replayed again the "
                   "same day (UTC) it is deduplicated.")
@click.pass_context
def emit(
    ctx: click.Context,
    source: IO[bytes],
    kafka_bootstrap: str | None,
    as_json: bool,
    progress: bool | None,
    shift_to_now: bool,
) -> None:
    """Validate JSON Lines hub events and produce them; invalid lines go to dead-letter.

    Events the stream worker would not count are refused here too, with the reason:
    dated more than PACKLOOP_WORKER_FUTURE_TOLERANCE_HOURS (1) ahead of the clock
    (future_timestamp) or more than PACKLOOP_ACCEPT_MAX_LATENESS_DAYS (90) behind it
    (too_late); --shift-to-now brings an old file within them. Exits 1 if any line was
    rejected (or could not be written).
    """
    from streams import NetworkError, load_network

    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    shift = None
    if shift_to_now:
        source, shift = _shifted(source)
    try:
        report = kafka_call(
            lambda: _emit_with_progress(source, settings, network, progress, shift), settings
        )
    except click.ClickException as exc:
        if as_json:  # a script reading stdout gets a document, not nothing (an audit)
            click.echo(orjson.dumps({"ok": False, "error": exc.format_message(),
                                     "accepted": None, "rejected": None,
                                     "failed": None}).decode())
        raise
    if as_json:
        click.echo(orjson.dumps(report.to_dict()).decode())
    else:
        click.echo(f"accepted: {report.accepted}  rejected: {report.rejected}"
                   + (f"  failed to write: {report.failed}" if report.failed else ""))
        for why, count in report.failures.most_common():
            click.echo(f"  {count} record(s) not written: {why}")
        for rejection in report.first_rejections:
            where = f"line {rejection.line}: " if rejection.line else ""
            click.echo(f"  {where}{rejection.message}")
        if report.rejected > len(report.first_rejections):
            click.echo(f"  … and {report.rejected - len(report.first_rejections)} more "
                       f"(see `packloop dead-letter list`)")
    if not report.ok:
        ctx.exit(1)


def _emit_with_progress(
    source: IO[bytes], settings: Settings, network: Any, progress: bool | None,
    transform: Callable[[bytes], bytes] | None = None,
) -> EmitReport:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from services.emit import emit_stream

    rules = settings.acceptance()
    size = _file_size(source)
    show = progress if progress is not None else (console.is_terminal and size > 1_000_000)
    if not show:
        return emit_stream(source, settings.kafka(), settings.topics(), network,
                           acceptance=rules, transform=transform)
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
            acceptance=rules,
            transform=transform,
        )


def _shifted(source: IO[bytes]) -> tuple[IO[bytes], Callable[[bytes], bytes] | None]:
    """The whole input, read to choose the shift, and what moves a line's event by it
    (services.retime); the lines themselves stay as they are, for the dead letters."""
    import io
    from datetime import UTC, datetime

    from services.retime import dated_after, event_ids, shift_line, whole_days_to_now
    from streams.events import without_bom

    lines = without_bom(source.read()).split(b"\n")
    now = datetime.now(UTC)
    days = whole_days_to_now(lines, now)
    ahead = dated_after(lines, now)
    if ahead:
        click.echo(f"{ahead} event(s) dated after now: left out when choosing the shift "
                   "(and moved with the rest; beyond the future tolerance they are refused)",
                   err=True)
    if days:
        click.echo(f"shifting every event by {days} days; each gets the event_id "
                   f"ID@+{days}d (a replay on another day is new events)", err=True)
    whole = io.BytesIO(b"\n".join(lines))
    whole.name = getattr(source, "name", "-")
    return whole, (functools.partial(shift_line, days=days, ids=event_ids(lines))
                   if days else None)


def _file_size(source: IO[bytes]) -> int:
    try:
        return Path(source.name).stat().st_size if source.name not in ("-", "<stdin>") else 0
    except (OSError, AttributeError, TypeError):
        return 0
