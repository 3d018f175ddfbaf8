"""Creating packloop's topics: counts below 1 are refused before the broker is asked (the
embedded broker accepts 0 partitions and leaves a topic nothing can be written to), and
"created" is said only for a topic the broker created (its per-topic error codes)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.kafka import KafkaConnection
from streams.topics import Topics, create_topics, failed_topics

TOPICS = Topics("p-")


class FakeAdmin:
    """Answers CreateTopics with ``codes[name]`` (0 when not given), as kafka-python does
    with raise_errors=False; ``existing`` topics and their partitions."""

    codes: dict[str, tuple[int, str | None]] = {}
    existing: dict[str, int] = {}
    asked: list[tuple[str, int, int]] = []

    def __init__(self, **kwargs: Any) -> None:
        pass

    def list_topics(self) -> list[str]:
        return list(self.existing)

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        # a negative count: the broker will not describe the topic (e.g. not authorised)
        return [{"name": n, "error_code": 29 if self.existing[n] < 0 else 0,
                 "partitions": [{"partition_index": i} for i in range(self.existing[n])]}
                for n in names]

    def create_topics(self, new: list[Any], raise_errors: bool = True) -> dict[str, Any]:
        assert raise_errors is False
        out = []
        for t in new:
            FakeAdmin.asked.append((t.name, t.num_partitions, t.replication_factor))
            code, message = self.codes.get(t.name, (0, None))
            out.append({"name": t.name, "error_code": code, "error_message": message})
        return {"topics": out}

    def close(self) -> None:
        pass


@pytest.fixture
def admin(monkeypatch) -> type[FakeAdmin]:
    FakeAdmin.codes, FakeAdmin.existing, FakeAdmin.asked = {}, {}, []
    monkeypatch.setattr("kafka.KafkaAdminClient", FakeAdmin)
    return FakeAdmin


@pytest.mark.parametrize(("partitions", "replication", "words"), [
    (0, 1, "partitions must be at least 1, not 0"),
    (-3, 1, "partitions must be at least 1, not -3"),
    (4, 0, "replication factor must be at least 1, not 0"),
])
def test_counts_below_one_are_refused_before_asking(admin, partitions: int, replication: int,
                                                    words: str) -> None:
    with pytest.raises(ValueError, match=words):
        create_topics(KafkaConnection(), TOPICS, partitions, replication)
    assert admin.asked == []


def test_created_only_when_the_broker_says_so(admin) -> None:
    admin.codes = {TOPICS.hub_events: (37, "Number of partitions is invalid."),
                   TOPICS.dead_letter: (36, "Topic with this name already exists."),
                   TOPICS.dispatch: (41, None)}
    admin.existing = {TOPICS.plan_results: 0, TOPICS.pickup_requests: 4}
    outcome = create_topics(KafkaConnection(), TOPICS, 4, 3)
    assert outcome[TOPICS.hub_events] == (
        "failed: InvalidPartitionsError (error code 37): Number of partitions is invalid.")
    assert outcome[TOPICS.dead_letter] == "exists"
    assert outcome[TOPICS.dispatch].startswith("failed: NotControllerError (error code 41): ")
    assert outcome[TOPICS.plan_requests] == "created"
    assert outcome[TOPICS.pickup_requests] == "exists"
    assert outcome[TOPICS.plan_results].startswith("failed: exists without partitions")
    assert set(failed_topics(outcome)) == {TOPICS.hub_events, TOPICS.dispatch,
                                           TOPICS.plan_results}
    assert {(p, r) for _, p, r in admin.asked} == {(4, 3), (1, 3)}


def test_a_topic_the_broker_will_not_describe_is_not_called_empty(admin) -> None:
    """An error on DescribeTopics (here TopicAuthorizationFailed) says nothing about the
    topic's partitions: it exists, and the worker must not refuse to start over it."""
    admin.existing = {TOPICS.hub_events: -1}
    outcome = create_topics(KafkaConnection(), TOPICS, 4)
    assert outcome[TOPICS.hub_events] == "exists"
    assert TOPICS.hub_events not in failed_topics(outcome)
