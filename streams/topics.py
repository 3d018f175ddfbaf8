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
    kafka: KafkaConnection, topics: Topics, partitions: int = DEFAULT_PARTITIONS
) -> dict[str, str]:
    """Create missing topics through the admin API; existing ones are left as they are.

    Returns ``{name: "created" | "exists"}``. Topic configs are sent as given; a
    broker that ignores them (the embedded one keeps everything in memory) still works.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(client_id="packloop-admin", **kafka.kafka_python_kwargs())
    try:
        existing = set(admin.list_topics())
        outcome: dict[str, str] = {}
        for spec in topics.specs(partitions):
            if spec.name in existing:
                outcome[spec.name] = "exists"
                continue
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.config)]
                )
                outcome[spec.name] = "created"
            except TopicAlreadyExistsError:
                outcome[spec.name] = "exists"
        return outcome
    finally:
        admin.close()
