"""`packloop report officer --month YYYY-MM [--format csv|html] [--out FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from services.cli.context import settings_from


def fetch_month(url: str, month: str, timeout: float = 30.0) -> dict[str, Any]:
    import httpx

    resp = httpx.get(url.rstrip("/") + f"/months/{month}", timeout=timeout)
    data: dict[str, Any] = resp.json()
    if resp.status_code != 200:
        raise RuntimeError(data.get("error", f"HTTP {resp.status_code}"))
    return data


@click.group("report")
def report() -> None:
    """Reports from the stream state (the officer's monthly records)."""


@report.command("officer")
@click.option("--month", required=True, help="Local calendar month, YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(["csv", "html"]), default="csv",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output).")
@click.option("--url", default=None, help="Worker URL (default PACKLOOP_WORKER_URL).")
@click.pass_context
def officer(ctx: click.Context, month: str, fmt: str, out: Path | None, url: str | None) -> None:
    """Per-township and per-village figures of one month: generated, recovered, regulated
    recovery ratio, pickups requested/completed/overdue, container uses and returns.

    Figures come from the workers' month buckets (24 months are kept); Prometheus keeps
    days, not years, so keep these exports as the records.
    """
    from services.reports.officer import build_rows, to_csv, to_html
    from streams.months import valid_month
    from streams.network import load_network

    if not valid_month(month):
        raise click.BadParameter("must be YYYY-MM", param_hint="--month")
    settings = settings_from(ctx)
    url = url or settings.worker_url
    try:
        data = fetch_month(url, month)
    except Exception as exc:
        raise click.ClickException(f"no month figures from the worker at {url}: {exc}") from None
    network = load_network(settings.network)
    rows = build_rows(data, network)
    if fmt == "csv":
        text = to_csv(rows)
    else:
        text = to_html(rows, month, network.county, str(data.get("timezone", network.timezone)))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        click.echo(f"wrote {out} ({len(rows) - 1} townships and villages)", err=True)
