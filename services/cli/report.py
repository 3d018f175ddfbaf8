"""`packloop report officer --month YYYY-MM [--format csv|html|json] [--out FILE]`."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from services.cli.context import (
    bootstrap_option,
    open_database,
    settings_from,
    worker_url_option,
)

if TYPE_CHECKING:
    from services.reports.officer import MonthReport
    from services.settings import Settings


class EmptyMonth(click.ClickException):
    """A month without figures: a usage error (exit 2), not a report of zeros."""

    exit_code = 2


def fetch_month(url: str, month: str, timeout: float = 30.0) -> dict[str, Any]:
    import httpx

    resp = httpx.get(url.rstrip("/") + f"/months/{month}", timeout=timeout)
    data: dict[str, Any] = resp.json()
    if resp.status_code != 200:
        raise RuntimeError(data.get("message") or data.get("error") or f"HTTP {resp.status_code}")
    return data


@click.group("report")
def report() -> None:
    """Reports from the stream state (the officer's monthly records)."""


@report.command("officer")
@click.option("--month", required=True, help="Local calendar month, YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(["csv", "html", "json"]), default="csv",
              show_default=True,
              help="csv and json: grams and fractions; html: kg and percentages.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output).")
@click.option("--allow-empty", is_flag=True,
              help="Write the report of a month without figures (its title says so) "
                   "instead of exiting 2.")
@click.option("--targets", "targets_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="The county's own targets (YAML, the shape of streams/data/targets.yaml); "
                   "the targets it names replace packloop's.")
@click.option("--source", type=click.Choice(["auto", "ledger", "worker"]), default="auto",
              show_default=True,
              help="auto: the ledger (PACKLOOP_LEDGER_DB_URL), with the running workers' "
                   "figures for their own state; ledger: the ledger alone; worker: the "
                   "workers alone.")
@worker_url_option
@bootstrap_option
@click.pass_context
def officer(ctx: click.Context, month: str, fmt: str, out: Path | None, allow_empty: bool,
            targets_file: Path | None, source: str, worker_url: str | None,
            kafka_bootstrap: str | None) -> None:
    """Per-township and per-village figures of one month: generated, recovered, regulated
    recovery ratio, pickups requested/completed/overdue, container uses and returns; the
    month's dead-lettered events by reason (from the dead-letter topic) and when the
    report was generated.

    Figures come from the ledger the workers write (PACKLOOP_LEDGER_DB_URL; it survives
    a broker restart, and events after one add to the month), with the running workers'
    month buckets for their own state (--source).
    A month in the future, beyond the kept months, or without events exits 2 with the
    reason (unless --allow-empty).
    """
    from services.reports.officer import (
        TREND_MONTHS,
        MonthReport,
        build_rows,
        co2e_factors,
        empty_reason,
        kpi_levels,
        month_shift,
    )
    from streams import NetworkError, load_network, valid_month
    from streams.officer_kpis import load_targets

    if not valid_month(month):
        raise click.BadParameter(
            f"invalid month {month!r}: must be YYYY-MM, a year from 0001 and a month "
            "from 01 to 12", param_hint="--month")
    settings = settings_from(ctx, worker_url=worker_url, kafka_bootstrap=kafka_bootstrap)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    # the trend's months before year 1 do not exist: they are not asked for (no figures)
    months = [m for m in (month_shift(month, -k) for k in range(TREND_MONTHS))
              if valid_month(m)]
    figures, earlier = _figures(settings, source, months)
    data = figures[month]
    now = datetime.now(network.timezone)
    empty = empty_reason(month, bool(data.get("villages")), now.strftime("%Y-%m"))
    if empty is not None and not allow_empty:
        raise EmptyMonth(f"no report for {month}: {empty} (--allow-empty writes it anyway)")
    dead, note = _dead_letters(settings, month, network.timezone)
    if dead is not None and earlier:
        note = (f"{earlier} village(s) have figures of {month} from an earlier life of the "
                "stream's state (the broker lost it since, as the embedded broker does on a "
                "restart): the dead-letter topic read now may not hold the dead letters of "
                "that time, so these counts may be short")
    try:
        targets = load_targets(targets_file)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--targets") from None
    result = MonthReport(
        month=month, county=network.county,
        timezone=str(data.get("timezone", network.timezone)),
        rows=build_rows(data, network), generated_at=now, dead_letters=dead,
        dead_letters_note=note, empty=empty,
        levels=kpi_levels(data, network, month, targets, history=figures,
                          co2e=co2e_factors(network)))
    text = _render(result, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        click.echo(f"wrote {out} ({len(result.rows) - 1} townships and villages)", err=True)


def _figures(settings: Settings, source: str, months: list[str]
             ) -> tuple[dict[str, dict[str, Any]], int]:
    """Each month's village rows: the ledger's (summed over epochs) with the running
    workers' rows standing in for their own epoch, or one source alone (--source). The
    first month is the report's: a worker that does not answer fails only --source worker.
    Also how many villages running now have ledger rows of the report's month from an
    earlier epoch (their state was lost and began again since: the broker restarted)."""
    url = settings.worker_url
    live: dict[str, list[dict[str, Any]]] = {m: [] for m in months}
    if source != "ledger":
        try:
            for m in months:
                live[m] = fetch_month(url, m).get("villages", [])
        except Exception as exc:
            if source == "worker":
                raise click.ClickException(
                    f"no month figures from the worker at {url}: {exc} (give the worker's "
                    "address with --worker-url or PACKLOOP_WORKER_URL)") from None
            click.echo(f"warning: the worker at {url} did not answer ({exc}); the figures "
                       "are the ledger's alone", err=True)
            live = {m: [] for m in months}
    if source == "worker":
        return {m: {"month": m, "villages": live[m]} for m in months}, 0
    from services.ledger import Ledger

    ledger = open_database("the ledger", "PACKLOOP_LEDGER_DB_URL", settings.ledger_db_url,
                           lambda: Ledger(settings.ledger_db_url))
    stream = settings.worker_options(settings.partitions).app_id
    try:
        now = {r["village_id"]: r.get("epoch", "") for r in live[months[0]]}
        held = ledger.epochs(stream, months[0])
        earlier = sum(1 for vid, epochs in held.items()
                      if vid in now and epochs - {now[vid]})
        return {m: ledger.month(stream, m, live[m]) for m in months}, earlier
    finally:
        ledger.close()

def _dead_letters(settings: Settings, month: str,
                  tz: tzinfo) -> tuple[dict[str, int] | None, str]:
    """The month's dead letters by reason; (None, why) when the topic cannot be read."""
    from services.cli.worker import read_dead_letters
    from services.reports.officer import dead_letters_by_reason

    try:
        records = read_dead_letters(settings)
    except Exception as exc:  # noqa: BLE001 - the report says so, and the figures stand
        note = (f"the dead-letter topic at {settings.kafka_bootstrap} could not be read "
                f"({type(exc).__name__}: {exc})")
        click.echo(f"warning: {note}; the report says so", err=True)
        return None, note
    return dead_letters_by_reason(records, month, tz), ""


def _render(result: MonthReport, fmt: str) -> str:
    from services.reports.officer import to_csv, to_html, to_json

    render = {"csv": to_csv, "json": to_json, "html": to_html}[fmt]
    return render(result)
