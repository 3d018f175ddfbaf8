"""What every command module shares: the settings of this invocation, the ``--bootstrap``
flag, Kafka and database errors as one clear line, and the console for progress and
messages."""

from __future__ import annotations

import errno
import math
import socket
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from services.settings import Settings, get_settings

T = TypeVar("T")

#: progress bars and messages go to stderr; stdout carries what a script reads
console = Console(stderr=True)

bootstrap_option = click.option(
    "--bootstrap",
    "kafka_bootstrap",
    default=None,
    metavar="HOST:PORT[,…]",
    help="Kafka bootstrap servers (overrides PACKLOOP_KAFKA_BOOTSTRAP).",
)


class FiniteRange(click.FloatRange):
    """A float option within a range that is also finite: click's FloatRange lets `nan`
    through (every comparison with it is false), and `inf` where the range is open-ended."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


#: the TCP ports a server may listen on (0, "any free port", would print a URL nobody can use)
PORT_MIN, PORT_MAX = 1, 65535
#: --port and --web-port
PORT = click.IntRange(PORT_MIN, PORT_MAX)

#: every command that asks a stream worker takes its address the same way
worker_url_option = click.option(
    "--worker-url", "--url", "worker_url", default=None, metavar="URL",
    help="A stream worker's web address, e.g. http://127.0.0.1:6066 (default "
         "PACKLOOP_WORKER_URL; `packloop worker` prints it).",
)


def read_settings() -> Settings:
    """The environment, read once; a bad value is a one-line error naming the variable."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        raise click.ClickException("; ".join(setting_errors(exc))) from None
    except Exception as exc:
        raise click.ClickException(f"invalid PACKLOOP_* setting: {exc}") from None


def setting_errors(exc: Any) -> list[str]:
    """Each problem of a pydantic ValidationError of the settings as 'VARIABLE: why': its
    own text carried the value given (a secret's too) and a link per error."""
    out = []
    for e in exc.errors(include_url=False, include_input=False):
        why = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        loc = "_".join(str(p) for p in e.get("loc", ()))
        name = f"PACKLOOP_{loc.upper()}"
        out.append(why if not loc or why.startswith(name) else f"invalid {name}: {why}")
    return out


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """The root group's settings (read here when a command runs on its own), with the
    command's flags that were given (not None) applied."""
    base = ctx.obj if isinstance(ctx.obj, Settings) else read_settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=updates) if updates else base


def escaped(text: str) -> str:
    """``text`` on one terminal line: control, format and separator characters (other
    than the space) as escapes, so a stored label or a sender's event id (ESC, U+202E
    right-to-left override, a line break) cannot move the cursor or fake a line."""
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


def bearer(secret: str, where: str) -> str:
    """The ``Authorization`` value of a token set in ``where``: the whitespace around it
    dropped (a trailing newline or CR of ``$(cat file)``, a Windows .env), anything else
    that cannot be in a token refused naming ``where``, never printed. Passed on as it
    was, httpx refused the header and the error quoted it: the whole token in the
    terminal (an outside audit)."""
    token = secret.strip()
    if not token or any(not 0x21 <= ord(c) <= 0x7E for c in token):
        raise click.ClickException(
            f"{where} holds characters a token cannot have (spaces, control characters or "
            "non-ASCII inside it): check how it was set (the token is not shown)")
    return f"Bearer {token}"


def open_database(what: str, variable: str, url: str, opener: Callable[[], T]) -> T:
    """``opener()``, or exit with one line naming ``variable`` (password hidden)."""
    from services.db import cannot_open

    try:
        return opener()
    except Exception as exc:  # noqa: BLE001 - any driver's error, told in one line
        raise click.ClickException(cannot_open(what, variable, url, exc)) from None


def kafka_call(fn: Callable[[], T], settings: Settings) -> T:
    """Run a Kafka call, turning an unreachable broker into a clear one-line error."""
    from aiokafka.errors import KafkaConnectionError as AioConnectionError
    from aiokafka.errors import KafkaError as AioKafkaError
    from kafka.errors import KafkaError, KafkaTimeoutError

    unreachable = click.ClickException(
        f"no Kafka broker reachable at {settings.kafka_bootstrap} within "
        f"{settings.kafka_connect_timeout_ms / 1000:.0f} s (start one with `packloop "
        "broker`, or set PACKLOOP_KAFKA_BOOTSTRAP)")
    try:
        return fn()
    except AioConnectionError as exc:  # aiokafka (emit's producer): no retry when refused
        raise click.ClickException(
            f"no Kafka broker reachable at {settings.kafka_bootstrap} ({exc}; start one with "
            "`packloop broker`, or set PACKLOOP_KAFKA_BOOTSTRAP)") from None
    except AioKafkaError as exc:
        raise click.ClickException(f"Kafka error: {exc}") from None
    except KafkaTimeoutError as exc:
        if "bootstrap" not in str(exc).lower():
            raise click.ClickException(f"Kafka timed out: {exc}") from None
        raise unreachable from None
    except KafkaError as exc:
        raise click.ClickException(f"Kafka error: {exc}") from None


def check_listen_port(host: str, port: int, what: str, choose: str) -> None:
    """Exit with one line when `what` cannot listen on ``host:port``: the servers found out
    after their start-up (Kafka asked, "startup complete" logged) and ended in the server's
    own ``[Errno 98]`` lines. The bind is tried as aiohttp and uvicorn bind (SO_REUSEADDR),
    so a port another process listens on is refused but one left in TIME_WAIT by this
    service's previous run is not. `choose` names the option and variable that set it.
    A port outside 1-65535 (a variable's value: the options are checked by click) is one
    line too, where the bind raised OverflowError."""
    if not PORT_MIN <= port <= PORT_MAX:
        raise click.ClickException(
            f"port {port} on {host} is not a TCP port ({PORT_MIN}-{PORT_MAX}): {what} cannot "
            f"listen there; choose another with {choose}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            why = ("is in use by another process" if exc.errno == errno.EADDRINUSE
                   else f"cannot be used: {exc.strerror or exc}")
            raise click.ClickException(
                f"port {port} on {host} {why}: {what} cannot listen there; choose another "
                f"with {choose}") from None
