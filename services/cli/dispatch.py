"""`packloop dispatch show HUB --date D`: a hub's run sheet for a date, from the gateway.

The gateway is found at PACKLOOP_GATEWAY_URL and reached with the hub's token in
PACKLOOP_HUB_TOKEN (a flag would show in `ps` and the shell's history).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

import click
import httpx
import orjson

from services.cli.context import bearer, settings_from


@click.group()
def dispatch() -> None:
    """Tomorrow's trips of a hub: vans, stops, what to deliver, drop and bring back."""


def _date(_ctx: click.Context, _param: click.Parameter, value: str) -> dt.date:
    # Python 3.11's fromisoformat also takes 20261208 and 2026-W49-2, which the gateway
    # refuses (422): the form the help names, and that alone
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


@dispatch.command()
@click.argument("hub")
@click.option("--date", "day", required=True, callback=_date, metavar="YYYY-MM-DD",
              help="The dispatch date (local).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="html: a printable A4 run sheet per van.")
@click.pass_context
def show(ctx: click.Context, hub: str, day: dt.date, fmt: str) -> None:
    """Print HUB's dispatch for --date (from the gateway, with the hub's token)."""
    from services.http.client import check_service_url, connection_problem, httpx_client
    from services.http.tls import TlsError
    from services.reports.run_sheet import render_html, render_text

    if not hub.strip() or hub != hub.strip():
        raise click.BadParameter("must be a hub id (e.g. H01)", param_hint="HUB")
    settings = settings_from(ctx)
    if settings.hub_token is None or not settings.hub_token.get_secret_value():
        raise click.ClickException(
            "no hub token: set PACKLOOP_HUB_TOKEN (create one with `packloop hubs add-token "
            f"{hub}`)")
    if not settings.gateway_url:
        raise click.ClickException("no gateway: set PACKLOOP_GATEWAY_URL")
    try:
        base = check_service_url(settings.gateway_url, "PACKLOOP_GATEWAY_URL").rstrip("/")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    # one path segment whatever HUB holds: "H01/../H02" asked for H02's sheet, "H01?x="
    # for a path of its own
    path = f"/v1/hubs/{quote(hub, safe='')}/dispatch"
    try:
        with httpx_client(settings, base_url=base, timeout=httpx.Timeout(30.0, connect=5.0),
                          headers={"Authorization": bearer(
                              settings.hub_token.get_secret_value(), "PACKLOOP_HUB_TOKEN")}
                          ) as client:
            resp = client.get(path, params={"date": day.isoformat()})
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None
    except httpx.HTTPError as exc:
        from services.http.tls import handshake_problem

        tls = handshake_problem(exc, base, settings.ca_file) is not None
        raise click.ClickException(
            connection_problem(exc, base, settings) + ("" if tls else (
                "; start it with `packloop gateway` or set PACKLOOP_GATEWAY_URL"))) from None
    if resp.status_code != 200:
        try:
            body = resp.json()
        except ValueError:
            body = None
        # the gateway's own "no dispatch" (any packloop service answers an unknown route
        # with an error body too, "http_404")
        ours = isinstance(body, dict) and body.get("error") == "not_found"
        message = (body.get("message") if isinstance(body, dict) else None) or resp.text[:300]
        hint = {401: " (check PACKLOOP_HUB_TOKEN)",
                403: f" (PACKLOOP_HUB_TOKEN is not a token of hub {hub})",
                # another server (the planner, say) answers 404 for the whole route
                404: "" if ours else f" (is PACKLOOP_GATEWAY_URL, {base}, the gateway?)",
                }.get(resp.status_code, "")
        raise click.ClickException(f"GET {path}: HTTP {resp.status_code}: {message}{hint}")
    sheet = resp.json()
    if fmt == "json":
        click.echo(orjson.dumps(sheet, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "html":
        click.echo(render_html(sheet), nl=False)
    else:
        click.echo(render_text(sheet), nl=False)
