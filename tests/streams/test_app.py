"""The Faust app as built by the factory (no broker): codecs, changelog topic, settings."""

from __future__ import annotations

import pytest
from faust.types import Message

from streams.app import WorkerOptions, create_worker
from streams.kafka import KafkaConnection
from streams.network import load_network
from streams.state import PartitionMarker, VillageState, encode_value
from streams.topics import Topics


def run_batch(monkeypatch, cluster: object) -> list[str]:
    """One record through `process_batch` on a one-partition worker watching `cluster`:
    the steps it took of publish (the outbox), write (the state) and crash."""
    import asyncio
    from types import SimpleNamespace

    from streams.agents.village import process_batch

    w = create_worker(KafkaConnection("127.0.0.1:1"), Topics("u-"), load_network(),
                      WorkerOptions(partitions=1), cluster=cluster)  # type: ignore[arg-type]
    calls: list[str] = []

    def recorder(what: str) -> object:
        async def record(*_args: object) -> None:
            calls.append(what)
        return record

    monkeypatch.setattr(w, "publish_outbox", recorder("publish"))
    monkeypatch.setattr(w, "write_state", recorder("write"))
    monkeypatch.setattr(w.app, "crash", recorder("crash"))
    w.runtime.assigned.add(0)
    msg = SimpleNamespace(partition=0, generation_id=None, offset=0, key=b"H01-V001",
                          value=b"{}")
    asyncio.run(asyncio.wait_for(process_batch(w, [msg]), 10))
    return calls


def test_app_wiring_and_changelog_codecs() -> None:
    kafka = KafkaConnection("127.0.0.1:1", session_timeout_ms=6000, fetch_max_wait_ms=100)
    w = create_worker(
        kafka, Topics("u-"), load_network(), WorkerOptions(partitions=3, web_port=16999)
    )
    conf = w.app.conf
    assert conf.broker_session_timeout == 6.0
    assert w.app.packloop_fetch_max_wait_ms == 100
    assert conf.web_port == 16999 and conf.web_bind == "127.0.0.1"
    assert str(conf.canonical_url) == "http://127.0.0.1:16999"
    ct = w.table.changelog_topic
    assert ct.get_topic_name() == "packloop-worker-villages-changelog"
    assert ct.partitions == 3
    state = VillageState("H01-V001", "H01", offset=7, generated={"cardboard": 5})
    for value in (state, PartitionMarker(2, offset=9, stream_time=123)):
        msg = Message(ct.get_topic_name(), 0, 1, 0.0, 0, [], b"H01-V001", encode_value(value), 0)
        assert ct.schema.loads_key(w.app, msg) == "H01-V001"
        assert ct.schema.loads_value(w.app, msg) == value
    assert w.hub_topic.get_topic_name() == "u-hub-events"
    # Faust's /table/ views served every village's raw state without a token (and a 500 on
    # a village key); the worker's own views are its read side
    served = [prefix for prefix, _bp in w.app.web._enabled_blueprints()]
    assert "/table" not in served and "/router" in served


def test_resume_from_recovered_state_even_behind_the_committed_offset() -> None:
    import asyncio

    from faust.types import TP

    w = create_worker(
        KafkaConnection("127.0.0.1:1"), Topics("u-"), load_network(), WorkerOptions(partitions=3)
    )
    topic = w.topics.hub_events
    w.table.data["~p0"] = PartitionMarker(0, offset=41)
    w.table.data["~p1"] = PartitionMarker(1, offset=99)
    consumer = w.app.consumer
    consumer._committed_offset.update({TP(topic, 0): 50, TP(topic, 1): 100, TP(topic, 2): 7})
    got = asyncio.run(
        w.runtime.seek_positions([TP(topic, 0), TP(topic, 1), TP(topic, 2), TP(topic, 3),
                                  TP("other", 0)])
    )
    # p0: the table came back short (42 < 50): resume at 42 and re-apply
    # p1: in step; p2: no state recovered at all: start over from the beginning
    # p3: no state, and an offset the group committed that this worker has not seen (a
    # worker on the broker before it restarted empty committed it): from the beginning too,
    # where it was left at that offset and skipped what came before it
    assert got == {TP(topic, 0): 42, TP(topic, 1): 100, TP(topic, 2): 0, TP(topic, 3): 0}
    assert w.runtime.short_recoveries == 2


def test_changelogs_get_the_replication_factor_of_the_options() -> None:
    """Before: topic_replication_factor was a fixed 1, so a production cluster kept one
    copy of every worker's table (PACKLOOP_REPLICATION_FACTOR)."""
    kafka = KafkaConnection("127.0.0.1:1")
    plain = create_worker(kafka, Topics("u-"), load_network(), WorkerOptions(partitions=3))
    assert plain.app.conf.topic_replication_factor == 1  # the embedded broker: one node
    w = create_worker(kafka, Topics("u-"), load_network(),
                      WorkerOptions(partitions=3, replication_factor=3))
    assert w.app.conf.topic_replication_factor == 3


def test_nothing_of_a_batch_is_written_to_a_broker_that_became_another_cluster(
        monkeypatch) -> None:
    """The embedded broker restarted empty under a running worker: a batch fetched from
    the new cluster before the worker noticed wrote the old state and markers into the new
    cluster's changelog, and the restarted worker skipped those events for good (800 of
    2,000 in a CI run). The batch's writes now wait on a cluster check."""
    from streams.cluster_watch import ClusterChanged

    class Watch:
        expected = "tansu-packloop-a"  # the cluster the worker started on

        def __init__(self, changed: bool) -> None:
            self.changed = changed

        def check(self, must_answer: bool = False) -> ClusterChanged | None:
            return ClusterChanged("tansu-packloop-a", "tansu-packloop-b") if self.changed \
                else None

    for changed in (True, False):
        calls = run_batch(monkeypatch, Watch(changed))
        assert calls == (["crash"] if changed else ["publish", "write"])


def test_a_batch_that_comes_while_the_assignment_is_checked_is_applied(monkeypatch) -> None:
    """Faust recovers the table in a task of its own and opens the gate when recovery is
    done, whether or not the worker's handler of the assignment has finished. The handler
    checked the cluster (a thread, seconds on a loaded machine) before taking the
    partitions on, so a batch through the open gate was skipped as a revoked partition's:
    the new cluster's first 800 events, lost in CI runs of sessions 21 and 22."""
    import asyncio
    import threading

    import orjson
    from faust.types import TP

    from streams.agents.village import process_batch
    from tests.streams.reference import generate, to_lines

    release = threading.Event()

    class SlowWatch:
        expected = "tansu-packloop-a"  # the cluster the worker started on

        def check(self, must_answer: bool = False) -> None:
            release.wait(10)

    w = create_worker(KafkaConnection("127.0.0.1:1"), Topics("u-"), load_network(),
                      WorkerOptions(partitions=1), cluster=SlowWatch())  # type: ignore[arg-type]
    calls: list[str] = []

    async def record_write(*_args: object) -> None:
        calls.append("write")

    monkeypatch.setattr(w, "publish_outbox", record_write)
    monkeypatch.setattr(w, "write_state", record_write)
    [line] = to_lines(generate(load_network(), 1, seed=3, villages=1))
    key = orjson.loads(line)["village_id"].encode()
    msg = Message(w.topics.hub_events, 0, 0, 0.0, 0, [], key, line, 0)

    async def scenario() -> None:
        assigned = asyncio.create_task(
            w.app.on_partitions_assigned.send({TP(w.topics.hub_events, 0)}))
        await asyncio.sleep(0.1)  # the handler is in its cluster check now
        batch = asyncio.create_task(process_batch(w, [msg]))
        await asyncio.sleep(0.1)
        release.set()
        await asyncio.gather(assigned, batch)

    asyncio.run(scenario())
    assert w.runtime.processor(0).last_offset == 0  # the record was applied, not skipped
    assert calls == ["write", "write"]  # the outbox, then the state


@pytest.mark.parametrize("then_changed", [True, False])
def test_a_batch_checked_while_the_broker_cannot_be_asked_waits_for_its_answer(
        monkeypatch, then_changed) -> None:
    """A broker that could not be asked its cluster id counted as the same cluster, so a
    batch checked while the embedded broker restarted was written: the producer retried
    the writes until the new, empty cluster took them, old markers and all. Now the writes
    wait for an answer: another cluster stops the worker with nothing written."""
    import streams.worker
    from streams.cluster_watch import ClusterChanged, ClusterUnanswered

    class Restarting:
        expected = "tansu-packloop-a"  # the cluster the worker started on

        asked = 0

        def check(self, must_answer: bool = False) -> ClusterChanged | None:
            self.asked += 1
            if self.asked <= 2:  # down for two asks
                if must_answer:
                    raise ClusterUnanswered("down")
                return None
            return ClusterChanged("tansu-packloop-a", "tansu-packloop-b") if then_changed \
                else None

    monkeypatch.setattr(streams.worker, "CLUSTER_RETRY_S", 0.01)
    watch = Restarting()
    calls = run_batch(monkeypatch, watch)
    assert watch.asked == 3
    assert calls == (["crash"] if then_changed else ["publish", "write"])


def test_an_answer_is_required_only_of_a_cluster_that_has_answered_before(
        monkeypatch) -> None:
    """Once the id is known, a broker that cannot be asked holds a batch's writes; a
    cluster that never answered (no permission to describe it, say) has nothing to compare
    with, and requiring an answer would have stalled every batch for good."""
    from streams.cluster_watch import ClusterUnanswered, ClusterWatch

    never = ClusterWatch(KafkaConnection("127.0.0.1:1"))
    monkeypatch.setattr(never, "current", lambda close=False: None)
    assert never.check(must_answer=True) is None
    known = ClusterWatch(KafkaConnection("127.0.0.1:1"), expected="tansu-packloop-a")
    monkeypatch.setattr(known, "current", lambda close=False: None)
    assert known.check() is None
    with pytest.raises(ClusterUnanswered):
        known.check(must_answer=True)


def test_a_cluster_that_never_answers_again_holds_a_batch_only_so_long(monkeypatch) -> None:
    """The wait for an answer held the batch, and with it every rebalance, for as long as
    the cluster stayed silent (a review): after CLUSTER_WAIT_MAX_S the writes go ahead,
    said in an error line."""
    import streams.worker
    from streams.cluster_watch import ClusterUnanswered

    class Gone:
        expected = "tansu-packloop-a"  # the cluster the worker started on

        def check(self, must_answer: bool = False) -> None:
            raise ClusterUnanswered("down")

    monkeypatch.setattr(streams.worker, "CLUSTER_RETRY_S", 0.01)
    monkeypatch.setattr(streams.worker, "CLUSTER_WAIT_MAX_S", 0.05)
    assert run_batch(monkeypatch, Gone()) == ["publish", "write"]
