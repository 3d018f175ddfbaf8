"""`packloop hubs|planners add-token|list-tokens|revoke-token`: the API tokens of the
gateway (hubs) and of the planner job service (planners).

Both groups are built by ``token_group``. A token is printed once, alone on the last line
of stdout; only its hash is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click
import orjson

from services.cli.context import escaped, settings_from

if TYPE_CHECKING:
    from services.auth.tokens import Kind, TokenStore

_UNITS_S = {"m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([mhd])")


class Lifetime(click.ParamType):
    """A token's lifetime: a whole number of minutes, hours or days (``30m``, ``12h``,
    ``90d``), so a typo is a usage error naming the flag and never a token that lives for
    ever."""

    name = "DURATION"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = _DURATION.fullmatch(str(value).strip())
        if match is None or int(match[1]) == 0:
            self.fail(f"{value!r} is not a lifetime: a whole number above 0 and a unit m, h "
                      "or d (e.g. 90d)", param, ctx)
        seconds = int(match[1]) * _UNITS_S[match[2]]
        if seconds > 10 * 366 * 86400:
            self.fail(f"{value!r} is over 10 years: leave --expires-in out for a token that "
                      "lives until revoked", param, ctx)
        return float(seconds)


def _store(ctx: click.Context) -> TokenStore:
    from services.db import cannot_open

    settings = settings_from(ctx)
    try:
        return settings.token_store()
    except Exception as exc:  # noqa: BLE001
        raise click.ClickException(cannot_open(
            "the token database", "PACKLOOP_TOKEN_DB_URL", settings.token_db_url, exc)) from None


def token_group(kind: Kind, noun: str, owner_meta: str,
                check_owner: Callable[[click.Context, str, str], None] | None = None
                ) -> click.Group:
    """The token commands of ``kind``. ``check_owner(ctx, owner, param_hint)`` refuses an
    owner that does not exist as a usage error (exit 2) naming ``param_hint``."""

    @click.group(name=f"{noun}s", help=f"{noun.capitalize()} API tokens (add, list, revoke).")
    def group() -> None:
        pass

    @group.command("add-token")
    @click.argument("owner", metavar=owner_meta)
    @click.option("--label", default=None, help="A note to tell tokens apart (e.g. the device).")
    @click.option("--expires-in", "expires_in", type=Lifetime(), default=None,
                  help="Refuse the token after this long (30m, 12h, 90d); without it the "
                       "token lives until revoked.")
    @click.pass_context
    def add_token(ctx: click.Context, owner: str, label: str | None,
                  expires_in: float | None) -> None:
        """Create a token; it is printed once, alone on the last line."""
        if not owner.strip():
            raise click.BadParameter("must not be empty", param_hint=owner_meta)
        if owner != owner.strip():
            raise click.BadParameter(f"{owner!r} starts or ends with white space",
                                     param_hint=owner_meta)
        if check_owner is not None:
            check_owner(ctx, owner, owner_meta)
        if label is not None and any(_is_control(ch) for ch in label):
            # a newline in a label made a fake row in list-tokens
            raise click.BadParameter("must be one line without control characters",
                                     param_hint="--label")
        store = _store(ctx)
        try:
            info, token = store.add(kind, owner, label, expires_in_s=expires_in)
        except ValueError as exc:  # e.g. an owner name longer than the store allows
            raise click.BadParameter(str(exc), param_hint="OWNER") from None
        finally:
            store.close()
        expiry = info.to_dict()["expires_at"]
        click.echo(f"token id {info.token_id} for {noun} {owner} created"
                   + (f", valid until {expiry}" if expiry else "")
                   + "; it is shown only now, store it safely (rotate: add a new one, then "
                   "revoke this id)")
        click.echo(token)

    @group.command("list-tokens")
    @click.option("--owner", default=None, metavar=owner_meta, help=f"Only this {noun}.")
    @click.option("--active", is_flag=True, help="Hide revoked and expired tokens.")
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    @click.pass_context
    def list_tokens(ctx: click.Context, owner: str | None, active: bool, as_json: bool) -> None:
        """List tokens (ids, owners, dates; never the tokens themselves)."""
        store = _store(ctx)
        try:
            rows = store.list(kind, owner, include_inactive=not active)
        finally:
            store.close()
        if not rows and owner is not None and check_owner is not None:
            # a typo read as "no tokens"; an owner gone from the reference data but with
            # tokens stored is still listed (to be revoked)
            check_owner(ctx, owner, "--owner")
        if as_json:
            click.echo(orjson.dumps([r.to_dict() for r in rows]).decode())
            return
        if not rows:
            click.echo(f"no {noun} tokens")
            return
        lines = [("ID", noun.upper(), "CREATED", "LAST USED", "EXPIRES", "STATE", "LABEL")]
        for r in rows:
            d = r.to_dict()
            state = "active" if r.active else (
                f"revoked {d['revoked_at']}" if r.revoked_at is not None else "expired")
            lines.append((r.token_id, escaped(r.owner), d["created_at"],
                          d["last_used_at"] or "-", d["expires_at"] or "-", state,
                          escaped(r.label or "")))
        for line in aligned(lines):
            click.echo(line)

    @group.command("revoke-token")
    @click.argument("given", metavar="ID|TOKEN")
    @click.pass_context
    def revoke_token(ctx: click.Context, given: str) -> None:
        """Revoke a token by its id (see list-tokens) or the whole token; effective on the
        next request. Revoking a revoked token changes nothing."""
        token_id = _token_id(given, noun)
        store = _store(ctx)
        try:
            before = next((t for t in store.list(kind) if t.token_id == token_id), None)
            info = store.revoke(kind, token_id) if before is not None else None
        finally:
            store.close()
        if before is None or info is None:
            raise click.ClickException(f"no {noun} token with id {token_id!r}")
        if before.revoked_at is not None:
            click.echo(f"token {info.token_id} of {noun} {info.owner} was already revoked "
                       f"(at {info.to_dict()['revoked_at']})")
            return
        click.echo(f"revoked token {info.token_id} of {noun} {info.owner}")

    return group


def _token_id(given: str, noun: str) -> str:
    """The id of ``given``: an id as list-tokens shows it, or the id part of a pasted whole
    token. Anything else is refused without repeating it: it may be (part of) a secret."""
    from services.auth.tokens import TOKEN_ID, token_id_of

    if TOKEN_ID.fullmatch(given):
        return given
    token_id = token_id_of(given.strip())
    if token_id is None:
        raise click.ClickException(
            f"the argument is neither a {noun} token id (hex digits, see `packloop {noun}s "
            "list-tokens`) nor a whole token (not shown here: it may hold a secret)")
    return token_id


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as columns two spaces apart, each as wide as its widest cell: owners and
    revocation dates vary in length, so fixed widths let columns drift."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _check_hub(ctx: click.Context, hub_id: str, param_hint: str) -> None:
    """A hub the network reference data does not know is a usage error (exit 2), as an
    empty HUB is; reference data that cannot be read is not (exit 1)."""
    from streams import NetworkError, load_network

    settings = settings_from(ctx)
    try:
        network = load_network(settings.network)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    if hub_id not in network.hubs:
        known = ", ".join(sorted(network.hubs)[:8])
        raise click.BadParameter(
            f"unknown hub {hub_id!r} in the network reference data ({network.source}); "
            f"known hubs: {known}{', …' if len(network.hubs) > 8 else ''}",
            param_hint=param_hint)


hubs = token_group("hub", "hub", "HUB", _check_hub)
planners = token_group("planner", "planner", "NAME")
