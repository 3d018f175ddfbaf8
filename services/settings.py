"""The one settings object: every knob, its default and its environment variable.

Only ``services`` reads the environment, once, through :func:`get_settings`;
the ``streams`` and ``optimizer`` libraries receive what they need as arguments, built by
the methods here (``kafka()``, ``topics()``, ``worker_options()``, ...). The object is
frozen: a command-line flag makes a changed copy (``model_copy(update=...)``).
Secrets (SASL password) are ``SecretStr`` so they never appear in a repr or a log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams import (
    DEFAULT_FETCH_MAX_WAIT_MS,
    DEFAULT_PARTITIONS,
    DEFAULT_SESSION_TIMEOUT_MS,
    AcceptanceLimits,
    KafkaConnection,
    Topics,
)

if TYPE_CHECKING:
    from services.auth.tokens import TokenStore
    from streams import WorkerOptions


#: values that examples and templates put where a secret belongs (compared in lower case,
#: without spaces, ``-``, ``_`` and ``.``)
PLACEHOLDERS = frozenset({
    "changeme", "changeit", "changethis", "replaceme", "secret", "password", "placeholder",
    "example", "default", "todo", "fixme", "xxx", "xxxx", "none", "null",
})


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is a template's stand-in for a secret (``change-me``, ``<secret>``,
    ``change-me-22-char-uuid``) rather than one."""
    plain = re.sub(r"[\s\-_.<>{}\[\]]", "", value).lower()
    return plain in PLACEHOLDERS or plain.startswith(("changeme", "replaceme"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACKLOOP_", extra="ignore", frozen=True)

    def __repr_args__(self) -> Any:
        """Every URL's password and secret parameters hidden (`services.db.redact_url`):
        the database URLs are plain strings, and a printed settings object showed them
        (an outside audit)."""
        from services.db import redact_url

        for name, value in super().__repr_args__():
            if isinstance(value, str) and name is not None and name.endswith("_url"):
                value = redact_url(value)
            yield name, value

    # Kafka connection (PACKLOOP_KAFKA_*)
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Comma-separated bootstrap servers."
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256/512.")
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (never printed or logged)."
    )
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle to trust (PEM).")
    kafka_ssl_certfile: str | None = Field(None, description="Client certificate (mTLS).")
    kafka_ssl_keyfile: str | None = Field(None, description="Key of the client certificate.")
    kafka_ssl_check_hostname: bool = Field(True, description="Verify the broker's host name.")
    kafka_session_timeout_ms: int = Field(
        DEFAULT_SESSION_TIMEOUT_MS,
        description="Group session timeout; the embedded broker joins after half of it. "
        "Apache Kafka: 10000-45000.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        DEFAULT_FETCH_MAX_WAIT_MS,
        description="Fetch max wait; the embedded broker waits half of it even with data. "
        "Apache Kafka: 500.",
    )
    kafka_request_timeout_ms: int = Field(15_000, description="Kafka request timeout.")
    kafka_connect_timeout_ms: int = Field(
        10_000, description="How long to wait for a first broker before failing."
    )

    # Topics
    topic_prefix: str = Field("", description="Prefix for every topic name (shared clusters).")
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1, description="Partitions of keyed topics.")
    replication_factor: int = Field(
        1, ge=1,
        description="Copies of each partition of packloop's topics and the workers' "
        "changelogs: 1 for the embedded broker (one node); 3 on a production cluster, with "
        "min.insync.replicas=2 (docs/operations.md).",
    )

    # Reference data
    network: Path | None = Field(
        None, description="Network reference data file (JSON/YAML); default: sample county."
    )

    # Worker web server and status
    web_host: str = Field("127.0.0.1", description="Bind address of the worker web server.")
    web_port: int = Field(6066, description="Worker web server port (state + /metrics).")
    worker_url: str = Field(
        "http://127.0.0.1:6066",
        description="Where `status`, `report officer`, the gateway (open pickups) and the "
        "planner (live state) find a worker; any worker answers for all.",
    )

    # worker
    worker_app_id: str = Field(
        "packloop-worker", description="Faust app id = consumer group of the workers."
    )
    worker_batch_size: int = Field(10_000, ge=1, description="Events per agent batch.")
    worker_batch_within_s: float = Field(
        0.05, gt=0, description="Longest wait to fill an agent batch (seconds)."
    )
    worker_dedupe_horizon_days: float | None = Field(
        None, gt=0,
        description="Stream-time horizon of the event_id dedupe set; default (and never "
        "less than): PACKLOOP_ACCEPT_MAX_LATENESS_DAYS + 2 days + the future tolerance.",
    )
    worker_future_tolerance_hours: float = Field(
        1.0, gt=0, description="Events further ahead of the wall clock are dead-lettered."
    )
    worker_delivery_margin_days: float = Field(
        2.0, ge=0,
        description="How long an accepted event may wait in hub-events (a worker down, a "
        "long recovery) and still be counted: widens the dedupe horizon (docs/streams.md).",
    )
    worker_standby_replicas: int = Field(0, ge=0, description="Faust table standby replicas.")
    worker_log_level: str = Field("info", description="Worker log level.")
    worker_stop_timeout_s: float = Field(
        20.0, gt=0,
        description="Seconds a worker's stop (SIGTERM/SIGINT) may take before it exits "
        "anyway: with Kafka unreachable Faust's stop never ends. Nothing is lost: the "
        "next start resumes from the table. Keep it below the orchestrator's grace period.",
    )
    worker_cluster_check_s: float = Field(
        2.0, ge=0,
        description="How often a worker asks the broker for its cluster id (0: never). A "
        "worker stops when it changes (the embedded broker restarted empty): its state "
        "belongs to the old cluster, and it would skip the new one's events as applied.",
    )
    worker_canonical_url: str | None = Field(
        None,
        description="URL other workers use to reach this one's web server "
        "(default http://{web_host}:{web_port}; the host name when bound to 0.0.0.0).",
    )
    worker_group_instance_id: str | None = Field(
        None,
        description="Kafka static group membership id (group.instance.id): a worker "
        "restarting within the session timeout keeps its partitions without a rebalance. "
        "Unique per worker (compose: worker-N, Kubernetes: the pod name).",
    )
    metrics_village_label: bool = Field(
        True,
        description="Export village-level metrics (label village); false: township level "
        "only, summed per hub (province-scale deployments; docs/operations.md).",
    )

    # services
    token_db_url: str = Field(
        "",
        description="Token (and hub webhook) database: SQLAlchemy URL, e.g. "
        "postgresql+psycopg://user@db/packloop. Shared by gateway and planner. "
        "Default: tokens.db in the data folder (`packloop paths`).",
    )
    ledger_db_url: str = Field(
        "",
        description="The officer's ledger (each village's monthly figures, written by the "
        "workers, read by `report officer`): SQLite file by default (ledger.db in the data "
        "folder); a PostgreSQL URL when workers run on several machines.",
    )
    token_pepper: SecretStr | None = Field(
        None, description="Server secret mixed into token hashes (HMAC-SHA256); set it in "
        "production and keep it out of the database backup.",
    )
    gateway_host: str = Field("127.0.0.1", description="Bind address of the hub gateway.")
    gateway_port: int = Field(8080, description="Port of the hub gateway.")
    gateway_max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body (413 above)."
    )
    gateway_max_batch: int = Field(500, ge=1, description="Most events in one request (413).")
    gateway_rate_per_s: float = Field(
        20.0, gt=0, description="Requests per second per hub (token bucket; 429 above)."
    )
    gateway_rate_burst: int = Field(40, ge=1, description="Token-bucket size per hub.")
    gateway_produce_timeout_s: float = Field(
        5.0, gt=0, description="Longest wait for Kafka's acknowledgement before 503."
    )
    gateway_webhooks: bool = Field(
        True, description="Deliver pickup notices to hub webhooks from this gateway."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="Per-attempt webhook timeout.")
    webhook_max_attempts: int = Field(6, ge=1, description="Attempts per notice (back-off).")
    webhook_backoff_s: float = Field(
        0.5, gt=0, description="First retry delay; doubles per attempt (max 30 s)."
    )
    webhook_allow_private: bool = Field(
        False, description="Allow webhook URLs on private, loopback and link-local addresses "
        "(checked on the resolved address at each delivery)."
    )
    planner_host: str = Field("127.0.0.1", description="Bind address of the planner service.")
    planner_port: int = Field(8081, description="Port of the planner service.")
    planner_db_url: str = Field(
        "",
        description="Plan job store: SQLite file by default (plans.db in the data folder); "
        "a PostgreSQL URL for several machines (postgresql+psycopg://…).",
    )
    planner_url: str = Field(
        "http://127.0.0.1:8081", description="Where `plan submit|status|fetch` find the service."
    )
    planner_token: SecretStr | None = Field(
        None, description="Planner token used by `plan submit|status|fetch`."
    )
    planner_group: str = Field("packloop-planner", description="Consumer group of workers.")
    planner_lease_s: float = Field(
        20.0, gt=0, description="A running job whose worker has not renewed its lease for "
        "this long is taken over by another worker.",
    )
    planner_time_limit_s: float = Field(
        120.0, gt=0, description="Default solver time limit per job (seconds)."
    )
    planner_max_request_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest scenario upload (413 above)."
    )
    planner_threads: int = Field(1, ge=1, description="Solver threads per job.")

    # tomorrow's dispatch: planned by the planner service, served by the gateway
    dispatch_at: str = Field(
        "",
        description="Local time (HH:MM, the network's timezone) at which the planner "
        "service plans tomorrow's dispatch from the live state, e.g. 18:00; empty: no "
        "daily dispatch.",
    )
    dispatch_every_s: float | None = Field(
        None, gt=0, description="Plan the dispatch every this many seconds instead of "
        "daily (tests, demos); a date already planned is not planned again.",
    )
    dispatch_horizon_days: int = Field(
        7, ge=1, le=14, description="Days the dispatch plan covers: tomorrow (published, "
        "then fixed) and the look-ahead after it.",
    )
    dispatch_time_limit_s: float = Field(
        300.0, gt=0, description="Solver time limit of the dispatch plan (seconds)."
    )
    dispatch_gap: float = Field(
        0.02, ge=0, le=1, description="Relative MIP gap at which the dispatch plan stops."
    )
    dispatch_shift_start: str = Field(
        "08:00",
        description="Local time the vans' first trips leave the hub (run-sheet times).",
    )
    gateway_dispatch: bool = Field(
        True, description="Store the dispatch topic's run sheets in the gateway's database "
        "(the token database) and serve them to hubs.",
    )
    gateway_url: str = Field(
        "http://127.0.0.1:8080", description="Where `dispatch show` finds the gateway."
    )
    hub_token: SecretStr | None = Field(
        None, description="Hub token used by `dispatch show`."
    )

    # What the gateway and `emit` accept up front (the worker's rules, applied before
    # answering, so that an accepted event is applied)
    accept_max_lateness_days: float = Field(
        90.0, gt=0,
        description="The gateway and `emit` refuse events further behind the clock "
        "(reason too_late); the worker's dedupe horizon must cover at least this.",
    )

    metrics_faust: bool = Field(
        False,
        description="Also serve Faust's own faust_* metrics on the worker's /metrics "
        "(about 150 series).",
    )

    # data folder, HTTPS of the services and their clients
    data_dir: Path | None = Field(
        None, description="Folder of every database without a URL of its own; default: the "
        "per-user data folder (Linux: ~/.local/share/packloop). `packloop paths` shows it.",
    )
    gateway_tls_cert: Path | None = Field(
        None, description="Certificate chain (PEM) the gateway serves HTTPS with, together "
        "with PACKLOOP_GATEWAY_TLS_KEY; unset: plain HTTP.",
    )
    gateway_tls_key: Path | None = Field(
        None, description="Private key (PEM) of the gateway's certificate."
    )
    planner_tls_cert: Path | None = Field(
        None, description="Certificate chain (PEM) the planner serves HTTPS with, together "
        "with PACKLOOP_PLANNER_TLS_KEY; unset: plain HTTP.",
    )
    planner_tls_key: Path | None = Field(
        None, description="Private key (PEM) of the planner's certificate."
    )
    forwarded_allow_ips: str = Field(
        "", description="Reverse proxies (comma-separated addresses or networks, as "
        "uvicorn's --forwarded-allow-ips) whose X-Forwarded-For the gateway and planner "
        "believe; empty: none, the TCP peer is the client (failed-token limit, audit log).",
    )
    http_head_timeout_s: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False,
        description="Seconds the gateway and planner web servers wait for a "
        "request's headers (from the connection or the previous response) before closing "
        "the connection: a client sending them a byte at a time held it for ever.",
    )
    http_max_connections: int = Field(
        1000, ge=1, le=1_000_000,
        description="Open connections per web server (gateway, planner) beyond which new "
        "ones are closed at once; keep it below the process's open-file limit.",
    )
    ca_file: Path | None = Field(
        None, description="CA certificates (PEM) the command-line clients trust for HTTPS "
        "(`plan submit|status|fetch`); unset: the system's trust store.",
    )

    @field_validator("dispatch_at", "dispatch_shift_start")
    @classmethod
    def _clock(cls, text: str, info: Any) -> str:
        """HH:MM, 00:00-23:59, said in words: the pattern itself was the message."""
        if info.field_name == "dispatch_at" and text == "":
            return text
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
            raise ValueError(f"{text!r} is not a local time of day HH:MM from 00:00 to 23:59 "
                             "(two digits each, no time zone: the network's applies), e.g. "
                             "18:00")
        return text

    @field_validator("token_pepper")
    @classmethod
    def _not_a_placeholder(cls, pepper: SecretStr | None) -> SecretStr | None:
        """A pepper copied from an example (infra/.env.example says change-me) is public:
        token hashes keyed with it can be tested offline as if there were none."""
        if pepper is not None and is_placeholder(pepper.get_secret_value()):
            raise ValueError(
                "PACKLOOP_TOKEN_PEPPER is a placeholder, not a secret; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        value = pepper.get_secret_value() if pepper is not None else ""
        if value and not value.strip():
            # taken as a real secret before, without the warning an unset one gets
            raise ValueError(
                "PACKLOOP_TOKEN_PEPPER is only white space, not a secret; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))', or leave it "
                "unset")
        return pepper

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _mechanism(cls, text: str | None) -> str | None:
        """Upper case, as Faust's and kafka-python's enums name them (`scram-sha-512`
        passed the check below and then failed in Faust's SASLMechanism); empty: unset."""
        return text.strip().upper() or None if text is not None else None

    @field_validator("kafka_security_protocol")
    @classmethod
    def _protocol(cls, text: str) -> str:
        """One of Kafka's four protocols; a misspelt one failed at the first connection."""
        value = text.strip().upper()
        if value not in KAFKA_PROTOCOLS:
            raise ValueError(f"{text!r} is not one of {', '.join(KAFKA_PROTOCOLS)}")
        return value

    @model_validator(mode="after")
    def _sasl_consistent(self) -> Settings:
        """SASL settings that take effect, or an error naming what is missing. Why: with
        a user name and password but PLAINTEXT (the default) or no mechanism, the clients
        connected without authenticating and said nothing (an outside audit of infra/)."""
        creds = [name for name, value in (
            ("PACKLOOP_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            ("PACKLOOP_KAFKA_SASL_PASSWORD", self.kafka_sasl_password)) if value]
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if creds and not sasl:
            raise ValueError(
                f"{' and '.join(creds)} set, but PACKLOOP_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}, which sends no credentials: use "
                "SASL_SSL (or SASL_PLAINTEXT) with PACKLOOP_KAFKA_SASL_MECHANISM")
        if sasl and not self.kafka_sasl_mechanism:
            raise ValueError(
                f"PACKLOOP_KAFKA_SECURITY_PROTOCOL is {self.kafka_security_protocol} but "
                "PACKLOOP_KAFKA_SASL_MECHANISM is not set: PLAIN, SCRAM-SHA-256 or "
                "SCRAM-SHA-512")
        if self.kafka_sasl_mechanism and not sasl:
            raise ValueError(
                f"PACKLOOP_KAFKA_SASL_MECHANISM is set, but PACKLOOP_KAFKA_SECURITY_PROTOCOL "
                f"is {self.kafka_security_protocol}: use SASL_SSL or SASL_PLAINTEXT")
        if self.kafka_sasl_mechanism and self.kafka_sasl_mechanism.upper() not in (
                SASL_MECHANISMS):
            raise ValueError(f"PACKLOOP_KAFKA_SASL_MECHANISM {self.kafka_sasl_mechanism!r} is "
                             f"not one of {', '.join(SASL_MECHANISMS)}")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError("SASL needs PACKLOOP_KAFKA_SASL_USERNAME and "
                             "PACKLOOP_KAFKA_SASL_PASSWORD")
        return self

    @model_validator(mode="before")
    @classmethod
    def _databases_in_the_data_folder(cls, values: Any) -> Any:
        from services.paths import fill_default_databases

        return fill_default_databases(values)

    def acceptance(self) -> AcceptanceLimits:
        """The time limits the gateway and `emit` check with: the worker's own."""
        return AcceptanceLimits(
            max_lateness_days=self.accept_max_lateness_days,
            future_tolerance_hours=self.worker_future_tolerance_hours,
            delivery_margin_days=self.worker_delivery_margin_days,
        )

    def kafka(self) -> KafkaConnection:
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=(
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            ),
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
            session_timeout_ms=self.kafka_session_timeout_ms,
            fetch_max_wait_ms=self.kafka_fetch_max_wait_ms,
            request_timeout_ms=self.kafka_request_timeout_ms,
            connect_timeout_ms=self.kafka_connect_timeout_ms,
        )

    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def _prefixed(self, group: str) -> str:
        """A consumer group of its own per topic prefix (shared clusters)."""
        prefix = self.topic_prefix.rstrip("-")
        return group + (f"-{prefix}" if prefix else "")

    def worker_options(self, partitions: int, web_port: int | None = None) -> WorkerOptions:
        """The stream worker's options; ``partitions``: what hub-events has on the broker."""
        from streams import WorkerOptions

        return WorkerOptions(
            app_id=self._prefixed(self.worker_app_id),
            partitions=partitions,
            web_host=self.web_host,
            web_port=web_port or self.web_port,
            batch_size=self.worker_batch_size,
            batch_within_s=self.worker_batch_within_s,
            max_lateness_days=self.accept_max_lateness_days,
            delivery_margin_days=self.worker_delivery_margin_days,
            dedupe_horizon_days=self.worker_dedupe_horizon_days,
            future_tolerance_hours=self.worker_future_tolerance_hours,
            metrics_faust=self.metrics_faust,
            standby_replicas=self.worker_standby_replicas,
            canonical_url=self.worker_canonical_url,
            metrics_village_label=self.metrics_village_label,
            group_instance_id=self.worker_group_instance_id,
            stop_timeout_s=self.worker_stop_timeout_s,
            replication_factor=self.replication_factor,
            cluster_check_interval_s=self.worker_cluster_check_s,
        )

    def planner_group_id(self) -> str:
        return self._prefixed(self.planner_group)

    def pepper(self) -> str | None:
        """The server secret (token hashes, record signatures), None when unset or empty."""
        return (self.token_pepper.get_secret_value() or None) if self.token_pepper else None

    def token_store(self) -> TokenStore:
        """The token database (hub and planner tokens, hub webhooks), pepper applied."""
        from services.auth.tokens import TokenStore

        return TokenStore(self.token_db_url, self.pepper())


def settings_table() -> str:
    """The configuration table of the README, generated so it cannot drift."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if default is None or default == "":
            shown = "–"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `PACKLOOP_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows)


def get_settings(**overrides: object) -> Settings:
    """Read the environment once; command-line flags arrive here as overrides."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


if __name__ == "__main__":
    print(settings_table())
