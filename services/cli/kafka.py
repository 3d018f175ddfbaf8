"""`packloop broker` and `packloop topics create`: a broker to work against, and the topics."""

from __future__ import annotations

import signal
import sys
import threading

import click

from services.cli.context import PORT, bootstrap_option, kafka_call, settings_from


@click.command()
@click.option("--port", type=PORT, default=None, help="Port on 127.0.0.1 (default: 9092).")
def broker(port: int | None) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) until Ctrl-C.

    Plaintext only: the Tansu 0.6.0 binary refuses --cert together with --key, so TLS is
    tested through a TLS proxy in front of it (see docs/services.md).
    """
    from services.broker import BrokerError, EmbeddedBroker

    embedded = EmbeddedBroker(port=port or 9092)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        embedded.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"bootstrap servers: {embedded.bootstrap}", err=True)
    click.echo(embedded.bootstrap)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            if not embedded.is_running():
                raise click.ClickException("the embedded broker exited unexpectedly")
    finally:
        embedded.stop()
        click.echo("broker stopped", err=True)


@click.group()
def topics() -> None:
    """Manage packloop's Kafka topics."""


@topics.command("create")
@bootstrap_option
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="Partitions of keyed topics (at least 1; default PACKLOOP_PARTITIONS).")
@click.option("--replication-factor", type=click.IntRange(min=1), default=None,
              help="Copies of each partition (at least 1; default PACKLOOP_REPLICATION_FACTOR, "
              "1; 3 on a production cluster).")
@click.pass_context
def topics_create(ctx: click.Context, kafka_bootstrap: str | None, partitions: int | None,
                  replication_factor: int | None) -> None:
    """Create packloop's topics (idempotent: existing topics are left alone).

    Prints each topic as created, exists or failed (with the broker's error); exits 1 if
    any topic could not be created.
    """
    from streams import create_topics
    from streams.topics import failed_topics

    settings = settings_from(ctx, kafka_bootstrap=kafka_bootstrap, partitions=partitions,
                             replication_factor=replication_factor)
    outcome = kafka_call(
        lambda: create_topics(settings.kafka(), settings.topics(), settings.partitions,
                              settings.replication_factor),
        settings,
    )
    for name, state in outcome.items():
        click.echo(f"{name}\t{state}")
    failed = failed_topics(outcome)
    if failed:
        click.echo(f"error: {len(failed)} topic(s) not created: {', '.join(failed)}", err=True)
        ctx.exit(1)
