"""`packloop paths`: where this invocation's databases are, and which setting put them there.

The first thing to run when a token added in one shell is refused by a gateway started
in another: both must print the same token database.
"""

from __future__ import annotations

import click
import orjson

from services.cli.context import settings_from
from services.db import redact_url
from services.paths import DEFAULT_DATABASES, default_url, resolve_data_dir


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.pass_context
def paths(ctx: click.Context, as_json: bool) -> None:
    """Print the data folder and every database URL (passwords hidden)."""
    settings = settings_from(ctx)
    data_dir = resolve_data_dir(settings.data_dir)
    rows = [("data_dir", str(data_dir),
             "PACKLOOP_DATA_DIR" if settings.data_dir else "per-user default")]
    for field in DEFAULT_DATABASES:
        url = getattr(settings, field)
        source = ("data folder" if url == default_url(field, data_dir)
                  else f"PACKLOOP_{field.upper()}")
        rows.append((field, redact_url(url), source))
    if as_json:
        click.echo(orjson.dumps({name: {"value": value, "from": source}
                                 for name, value, source in rows}).decode())
        return
    width = max(len(name) for name, _, _ in rows) + 2
    for name, value, source in rows:
        click.echo(f"{name:<{width}}{value}  ({source})")
