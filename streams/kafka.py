"""How packloop connects to Kafka, whatever the client library.

One frozen record carries the bootstrap servers and the security settings, and
translates them for kafka-python, aiokafka and Faust, so the embedded broker and
an Apache Kafka cluster with SASL/TLS run through the same code.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

# Defaults suit the embedded Tansu broker: a group join completes after half the
# session timeout, and its fetch loop waits half the max wait even with data ready.
DEFAULT_SESSION_TIMEOUT_MS = 6_000
DEFAULT_FETCH_MAX_WAIT_MS = 100


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    request_timeout_ms: int = 15_000
    connect_timeout_ms: int = 10_000  # fail fast when no broker answers

    def __repr__(self) -> str:  # never print the password
        return (
            f"KafkaConnection(bootstrap_servers={self.bootstrap_servers!r}, "
            f"security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r})"
        )

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for kafka-python clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.connect_timeout_ms,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs

    def faust_broker_url(self) -> str:
        return ";".join(f"kafka://{server}" for server in self.servers)

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for aiokafka clients (packloop emit's producer): the
        same as kafka-python's but for the bootstrap timeout, which aiokafka does not take."""
        kwargs = self.kafka_python_kwargs()
        del kwargs["bootstrap_timeout_ms"]
        return kwargs

    def faust_credentials(self) -> Any:
        """Faust's credentials object for the configured security protocol (or None)."""
        import faust  # local: Faust is heavy and only workers need it

        if self.sasl_mechanism:
            if self.sasl_mechanism.upper().startswith("SCRAM"):
                return faust.SASLCredentials(
                    username=self.sasl_username,
                    password=self.sasl_password,
                    mechanism=self.sasl_mechanism,
                    ssl_context=self.ssl_context(),
                )
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                ssl_context=self.ssl_context(),
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


#: Tansu names its cluster ``tansu_cluster`` unless told otherwise; the embedded broker
#: names each start ``tansu-packloop-…`` (`services.broker`).
TANSU_CLUSTER_PREFIX = "tansu"
#: the embedded broker's cluster ids: memory storage, a new id each start, so one id is one
#: log that nothing truncates (`streams.processor.village_epoch` relies on it)
EMBEDDED_CLUSTER_PREFIX = "tansu-packloop-"


def is_tansu(kafka: KafkaConnection) -> bool:
    """Whether the broker is Tansu (the embedded default), judged by its cluster id.

    Some of packloop's workarounds only make sense there; a broker that cannot be asked
    is taken as not Tansu, so the production settings stay as configured.
    """
    from streams.cluster_watch import cluster_id

    return is_tansu_cluster(cluster_id(kafka))


def is_tansu_cluster(cluster_id: str | None) -> bool:
    """Whether a cluster id (None: not known) is Tansu's."""
    return (cluster_id or "").startswith(TANSU_CLUSTER_PREFIX)
