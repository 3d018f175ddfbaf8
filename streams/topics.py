"""The one place that knows topic names, partition counts and topic configs.

Every hub event type shares ``hub-events`` so that each village's events keep
their order on one partition; records are keyed by ``village_id`` with Kafka's
default murmur2 partitioner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.kafka import KafkaConnection

DEFAULT_PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under an optional prefix, for clusters shared with other teams."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def hub_events(self) -> str:
        return self._name("hub-events")

    @property
    def pickup_requests(self) -> str:
        return self._name("pickup-requests")

    @property
    def dead_letter(self) -> str:
        return self._name("dead-letter")

    @property
    def plan_requests(self) -> str:
        return self._name("plan-requests")

    @property
    def plan_results(self) -> str:
        return self._name("plan-results")

    @property
    def dispatch(self) -> str:
        """Each hub's run sheet for a date, keyed by ``hub_id`` (planner -> gateway)."""
        return self._name("dispatch")

    def specs(self, partitions: int = DEFAULT_PARTITIONS) -> list[TopicSpec]:
        """Partition counts and configs; keyed topics share the hub-events count."""
        keep_forever = {"retention.ms": "-1"}
        return [
            TopicSpec(self.hub_events, partitions, dict(keep_forever)),
            TopicSpec(self.pickup_requests, partitions, dict(keep_forever)),
            TopicSpec(self.dead_letter, 1, dict(keep_forever)),
            TopicSpec(self.plan_requests, partitions, {}),
            TopicSpec(self.plan_results, 1, {"cleanup.policy": "compact"}),
            TopicSpec(self.dispatch, partitions, dict(keep_forever)),
        ]


def create_topics(
    kafka: KafkaConnection,
    topics: Topics,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
) -> dict[str, str]:
    """Create missing topics through the admin API; existing ones are left as they are.

    Returns ``{name: state}``: ``"created"`` (the broker answered without an error for
    it), ``"exists"``, or ``"failed: <why>"`` (the broker's error code and message, or an
    existing topic without partitions). Partitions and replication factor must be >= 1
    (``ValueError``): a broker may accept 0 (the embedded one does) and leave a topic no
    record can be written to. Topic configs are sent as given; a broker that ignores them
    (the embedded one keeps everything in memory) still works.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, not {replication_factor}")
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError, for_code

    admin = KafkaAdminClient(client_id="packloop-admin", **kafka.kafka_python_kwargs())
    try:
        existing = set(admin.list_topics())
        outcome: dict[str, str] = {}
        mine = [spec.name for spec in topics.specs(partitions) if spec.name in existing]
        # only a topic the broker describes without an error and without partitions: one it
        # will not describe (error_code set, e.g. not authorised) is not known to be empty
        empty = {t.get("name") for t in (admin.describe_topics(mine) if mine else [])
                 if not t.get("partitions") and not int(t.get("error_code") or 0)}
        for spec in topics.specs(partitions):
            if spec.name in existing:
                outcome[spec.name] = "exists"
                if spec.name in empty:
                    outcome[spec.name] = (
                        "failed: exists without partitions (no record can be written to it; "
                        "delete it, or restart the embedded broker, and create it again)")
                continue
            answer = admin.create_topics(
                [NewTopic(spec.name, spec.partitions, replication_factor,
                          topic_configs=spec.config)],
                raise_errors=False,
            )
            found = [t for t in answer.get("topics", []) if t.get("name") == spec.name]
            if not found:
                outcome[spec.name] = "failed: the broker's answer does not name the topic"
                continue
            code = int(found[0].get("error_code") or 0)
            if code == 0:
                outcome[spec.name] = "created"
            elif code == TopicAlreadyExistsError.errno:
                outcome[spec.name] = "exists"
            else:
                error = for_code(code)
                message = found[0].get("error_message") or error.description
                outcome[spec.name] = f"failed: {error.__name__} (error code {code}): {message}"
        return outcome
    finally:
        admin.close()


def failed_topics(outcome: dict[str, str]) -> dict[str, str]:
    """The topics of a :func:`create_topics` outcome that are not usable."""
    return {name: state for name, state in outcome.items() if state.startswith("failed")}
