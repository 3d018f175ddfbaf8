"""`packloop gateway` and `packloop planner`: the two HTTP services.

Both check Kafka once at start-up and exit with a clear message when it is
unreachable or its TLS certificate is wrong (fail fast, never hang), and with one line
naming the setting (password hidden) when a database cannot be opened; once
running, a Kafka outage makes them answer 503 and fail readiness instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from services.cli.context import (
    PORT,
    check_listen_port,
    open_database,
    settings_from,
    worker_url_option,
)
from services.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from services.planner import PlannerWorker

class KafkaRepeats(logging.Filter):
    """kafka-python's repeated lines let through once per window, as the worker does with
    aiokafka's (:class:`streams.log_repeats.RepeatFilter`); other loggers untouched.

    With the broker down, the gateway's producer and probe and the planner's clients log
    the same connection errors on every retry (about 200 and 110 lines in 30 s), burying
    everything else. Only ``kafka.*`` is throttled: ``packloop.audit`` logs one line per
    token use, however alike two of them are.
    """

    def __init__(self) -> None:
        super().__init__()
        from streams.log_repeats import RepeatFilter

        self.repeats = RepeatFilter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "kafka" or record.name.startswith("kafka."):
            return self.repeats.filter(record)
        return True


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)
    # on the handlers: a logger's filter does not see its children's records
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, KafkaRepeats) for f in handler.filters):
            handler.addFilter(KafkaRepeats())


def _echo_openapi(app: Any) -> None:
    import orjson

    click.echo(orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode())


def tls_options(service: str) -> Callable[[Any], Any]:
    """``--tls-cert`` and ``--tls-key`` of ``service`` (gateway, planner)."""
    env = f"PACKLOOP_{service.upper()}_TLS"
    path = click.Path(dir_okay=False, path_type=Path)

    def add(command: Any) -> Any:
        command = click.option("--tls-key", type=path, default=None, metavar="FILE",
                               help=f"Private key of the certificate (default {env}_KEY)."
                               )(command)
        return click.option("--tls-cert", type=path, default=None, metavar="FILE",
                            help=f"Serve HTTPS with this certificate chain, PEM (default "
                            f"{env}_CERT; neither: plain HTTP).")(command)

    return add


def server_tls(cert: Path | None, key: Path | None, service: str) -> tuple[str | None, str | None]:
    """uvicorn's ``ssl_certfile`` and ``ssl_keyfile`` (both None: plain HTTP), or exit with
    why the certificate or key cannot be used."""
    from services.http.tls import TlsError
    from services.http.tls import server_tls as load

    try:
        return load(cert, key, f"PACKLOOP_{service.upper()}_TLS") or (None, None)
    except TlsError as exc:
        raise click.ClickException(f"cannot serve HTTPS: {exc}") from None


def server_config(app: Any, settings: Settings, host: str, port: int, log_level: str,
                  cert: str | None, key: str | None) -> uvicorn.Config:
    """uvicorn's configuration of a service. uvicorn believes X-Forwarded-For from
    127.0.0.1 unless told otherwise, so anything on the host (a sidecar, another user's
    process) could pick the peer address the failed-token limit and the audit log go by:
    forwarded headers are read only from the proxies PACKLOOP_FORWARDED_ALLOW_IPS names.
    Its HTTP/1.1 protocol closes connections whose request head is overdue and those over
    the cap (`services.http.protocol`)."""
    import uvicorn

    from services.http.protocol import guarded_protocol

    proxies = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level.lower(), server_header=False,
        ssl_certfile=cert, ssl_keyfile=key, proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        http=guarded_protocol(settings.http_head_timeout_s, settings.http_max_connections))


def warn_without_pepper(settings: Settings) -> None:
    """Token hashes without a pepper are plain SHA-256: a copy of the token database is
    enough to test guesses offline, which production should hear of at every start."""
    if settings.pepper() is None:
        logging.getLogger("packloop.auth").warning(
            "PACKLOOP_TOKEN_PEPPER is not set: token hashes are plain SHA-256; set a "
            "random secret in production (docs/services.md, Tokens)")


def check_kafka(settings: Settings) -> None:
    """Create packloop's topics (idempotent), or exit with why Kafka cannot be used."""
    from services.http.kafka_io import describe_kafka_error, diagnose_tls
    from streams import create_topics

    kafka = settings.kafka()
    hint = ("(start one with `packloop broker`, or set PACKLOOP_KAFKA_BOOTSTRAP / "
            "PACKLOOP_KAFKA_SECURITY_PROTOCOL / PACKLOOP_KAFKA_SSL_*)")
    if kafka.uses_tls:  # a wrong certificate is known after one handshake
        problem = diagnose_tls(kafka)
        if problem:
            raise click.ClickException(f"cannot use Kafka: {problem}")
    try:
        create_topics(kafka, settings.topics(), settings.partitions,
                      settings.replication_factor)
    except Exception as exc:  # noqa: BLE001
        raise click.ClickException(
            f"cannot use Kafka: {describe_kafka_error(exc, kafka)} {hint}"
        ) from None


@click.command()
@click.option("--host", default=None, help="Bind address (default PACKLOOP_GATEWAY_HOST).")
@click.option("--port", type=PORT, default=None,
              help="Port (default PACKLOOP_GATEWAY_PORT, 8080).")
@click.option("--bootstrap", "kafka_bootstrap", default=None, help="Kafka bootstrap servers.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--openapi", "print_openapi", is_flag=True,
              help="Print the OpenAPI document (JSON) and exit.")
@worker_url_option
@tls_options("gateway")
@click.pass_context
def gateway(ctx: click.Context, host: str | None, port: int | None,
            kafka_bootstrap: str | None, log_level: str, print_openapi: bool,
            worker_url: str | None, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Run the hub ingestion gateway (POST /v1/events, pickups, webhooks; /docs)."""
    import uvicorn

    from services.gateway import GatewayConfig, create_app
    from streams import NetworkError

    settings = settings_from(ctx, gateway_host=host, gateway_port=port,
                             kafka_bootstrap=kafka_bootstrap, worker_url=worker_url,
                             gateway_tls_cert=tls_cert, gateway_tls_key=tls_key)
    if print_openapi:
        offline = settings.model_copy(update={"token_db_url": "sqlite://"})
        _echo_openapi(create_app(GatewayConfig.from_settings(offline)))
        return
    _logging(log_level)
    check_listen_port(settings.gateway_host, settings.gateway_port, "the gateway",
                      "--port or PACKLOOP_GATEWAY_PORT (and the address with --host or "
                      "PACKLOOP_GATEWAY_HOST)")
    warn_without_pepper(settings)
    cert, key = server_tls(settings.gateway_tls_cert, settings.gateway_tls_key, "gateway")
    check_kafka(settings)
    tokens = open_database("the token database", "PACKLOOP_TOKEN_DB_URL",
                           settings.token_db_url, settings.token_store)
    try:
        config = GatewayConfig.from_settings(settings, tokens=tokens)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(config)
    scheme = "https" if cert else "http"
    click.echo(f"gateway on {scheme}://{settings.gateway_host}:{settings.gateway_port} "
               f"(OpenAPI: /openapi.json, docs: /docs); pickups from the worker at "
               f"{settings.worker_url}", err=True)
    server = uvicorn.Server(server_config(app, settings, settings.gateway_host,
                                          settings.gateway_port, log_level, cert, key))
    with GracefulStop() as stop:
        stop.server = server
        server.run()
    if not stop.event.is_set() and not server.started:
        raise click.ClickException("the gateway did not start (see above)")


class GracefulStop:
    """SIGINT and SIGTERM as a graceful stop, for as long as the ``with`` block runs: `event`
    is set, and `server` (a ``uvicorn.Server``, once there is one) is asked to drain.

    While uvicorn serves it handles both signals itself; after its graceful shutdown
    (connections closed, the lifespan's shutdown run) it raises the caught signal again for
    the handler it found when it started. The default handler would then kill the drained
    process (status -15, 143 in a shell) before it stops what else it runs (the planner's
    workers hand their jobs back); this one, found instead, lets it finish and exit 0. A
    signal before uvicorn takes over stops the server at once. The previous handlers are
    restored on leaving."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.server: Any = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.event.set()
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self) -> GracefulStop:
        import signal

        self._previous = {sig: signal.signal(sig, self._on_signal)
                          for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *_exc: object) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@click.command()
@click.option("--host", default=None, help="Bind address (default PACKLOOP_PLANNER_HOST).")
@click.option("--port", type=PORT, default=None,
              help="Port (default PACKLOOP_PLANNER_PORT, 8081).")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Planner workers in this process (each solves one job at a time). 0: "
                   "only the API; its jobs wait for a `packloop planner --no-api` in the "
                   "same group (PACKLOOP_PLANNER_GROUP).")
@click.option("--no-api", is_flag=True, help="Only run workers (scale-out machines).")
@click.option("--bootstrap", "kafka_bootstrap", default=None, help="Kafka bootstrap servers.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--openapi", "print_openapi", is_flag=True,
              help="Print the OpenAPI document (JSON) and exit.")
@worker_url_option
@tls_options("planner")
@click.pass_context
def planner(ctx: click.Context, host: str | None, port: int | None, workers: int, no_api: bool,
            kafka_bootstrap: str | None, log_level: str, print_openapi: bool,
            worker_url: str | None, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Run the planner job service: the HTTP API and planner workers.

    Workers on several machines share the jobs through the consumer group
    PACKLOOP_PLANNER_GROUP; they need the same PACKLOOP_PLANNER_DB_URL (PostgreSQL).
    """
    from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app

    settings = settings_from(ctx, planner_host=host, planner_port=port,
                             kafka_bootstrap=kafka_bootstrap, worker_url=worker_url,
                             planner_tls_cert=tls_cert, planner_tls_key=tls_key)
    if print_openapi:
        offline = settings.model_copy(update={"token_db_url": "sqlite://"})
        _echo_openapi(create_app(PlannerConfig.from_settings(offline, jobs=JobStore("sqlite://"))))
        return
    _logging(log_level)
    if no_api and workers < 1:
        raise click.UsageError("--no-api needs at least one worker")
    if workers == 0:
        # an API-only front is a deployment (workers on other machines share the group),
        # but on its own it queues jobs nobody solves: said, not refused
        click.echo(f"warning: --workers 0: this planner runs no worker; submitted jobs stay "
                   f"queued until a planner worker in group {settings.planner_group_id()} "
                   "takes them (`packloop planner --no-api` elsewhere)", err=True)
    if not no_api:
        check_listen_port(settings.planner_host, settings.planner_port, "the planner's API",
                          "--port or PACKLOOP_PLANNER_PORT (and the address with --host or "
                          "PACKLOOP_PLANNER_HOST)")
    # --no-api workers too: they sign the run sheets of the dispatch jobs they take
    warn_without_pepper(settings)
    cert, key = (None, None) if no_api else server_tls(
        settings.planner_tls_cert, settings.planner_tls_key, "planner")
    check_kafka(settings)
    jobs = open_database("the plan job store", "PACKLOOP_PLANNER_DB_URL",
                         settings.planner_db_url, lambda: JobStore(settings.planner_db_url))
    group = settings.planner_group_id()
    pool = [PlannerWorker(jobs, settings.kafka(), settings.topics(), group_id=group,
                          lease_s=settings.planner_lease_s,
                          default_time_limit_s=settings.planner_time_limit_s,
                          threads=settings.planner_threads,
                          signing_pepper=settings.pepper())
            for _ in range(workers)]
    with GracefulStop() as stop:
        threads = [w.start() for w in pool]
        try:
            if no_api:
                click.echo(f"{workers} planner worker(s) in group {group}", err=True)
                while not stop.event.wait(0.5):
                    pass
            else:
                _planner_api(settings, jobs, workers, cert, key, log_level, stop)
        finally:
            stop_workers(pool, threads)


def _planner_api(settings: Settings, jobs: Any, workers: int, cert: str | None,
                 key: str | None, log_level: str, stop: GracefulStop) -> None:
    """Serve the planner's HTTP API until `stop`."""
    import uvicorn

    from services.planner import PlannerConfig, create_app
    from streams import NetworkError

    tokens = open_database("the token database", "PACKLOOP_TOKEN_DB_URL",
                           settings.token_db_url, settings.token_store)
    try:
        config = PlannerConfig.from_settings(settings, jobs=jobs, tokens=tokens)
    except NetworkError as exc:
        raise click.ClickException(str(exc)) from None
    scheme = "https" if cert else "http"
    click.echo(f"planner on {scheme}://{settings.planner_host}:{settings.planner_port} with "
               f"{workers} worker(s) (OpenAPI: /openapi.json)", err=True)
    if config.dispatch.enabled:
        when = f"every {config.dispatch.every_s:g} s" if config.dispatch.every_s \
            else f"daily at {settings.dispatch_at} {config.network.timezone}"
        click.echo(f"tomorrow's dispatch planned {when} "
                   f"({config.dispatch.horizon_days}-day horizon)", err=True)
    server = stop.server = uvicorn.Server(server_config(
        create_app(config), settings, settings.planner_host, settings.planner_port, log_level,
        cert, key))
    if not stop.event.is_set():
        server.run()
    if not server.started and not stop.event.is_set():
        raise click.ClickException("the planner API did not start (see above)")


def stop_workers(pool: list[PlannerWorker], threads: list[threading.Thread],
                 timeout_s: float = 10.0) -> None:
    """Stop every worker at once; each hands its running job back (queued again, no lease
    to wait for) before its thread ends."""
    log = logging.getLogger("packloop.planner")
    busy = [w.current for w in pool if w.current]
    if busy:
        log.info("stopping %d planner worker(s); handing back %s", len(pool), ", ".join(busy))
    for w in pool:
        w.stop()
    for w, t in zip(pool, threads, strict=True):
        t.join(timeout=timeout_s)
        if t.is_alive():
            log.warning("planner worker %s did not stop within %g s", w.worker_id, timeout_s)
