"""Small extensions of faust-streaming that packloop needs.

* The consumer's fetch max wait is configurable (faust-streaming hard-codes
  1500 ms; the embedded broker then waits ~750 ms per fetch even with data).
* After every rebalance, once tables are recovered and Faust has sought the
  source partitions to their committed offsets, a hook may move them to another
  position: packloop resumes each partition right after the last batch that is
  completely in the recovered table (see :mod:`streams.processor`).
* Table values are encoded by a codec that turns changelog bytes back into
  packloop's state records.
* Source records reach the batch hook only once the rebalance is complete: between
  an assignment and the seek Faust makes after table recovery, records fetched from
  a position computed before recovery are dropped (they are fetched again from the
  position the recovered state gives). ``packloop_gate_open`` is closed by the
  factory on every assignment/revocation and opened by the seek that follows
  ``on_rebalance_complete``.
* A fetch that returned before a seek of its partition is never delivered after it.
  The fetch runs on the consumer's thread and the batch is handed over on the app's
  thread, so the final seek can land (and open the gate) while a batch fetched from
  the old position is still being collected. Delivered, those records would be
  applied ahead of the recovered state, and the records between would then look
  like redeliveries and be skipped. Each seek bumps its partition's seek count on
  the consumer thread; a fetch carries the counts it was made under; records whose
  partition has been sought since are dropped (the seek already moved the position
  back to where they will be read again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.serializers import codecs
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.state import decode_value, encode_value

SeekHook = Callable[[Iterable[TP]], Awaitable[Mapping[TP, int]]]


class _Fetched(dict):
    """The records of one fetch and the seek count of each partition when it returned."""

    seeks: dict[TP, int]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    consumer: _Consumer

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "packloop_fetch_max_wait_ms", None)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: Any,
                             timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records)
        # no await between the fetch's return and this read: no seek can come between
        fetched = _Fetched(records)
        counts = self.consumer.packloop_seeks
        fetched.seeks = {tp: counts.get(tp, 0) for tp in fetched}
        return fetched

    async def _seek_wait(self, consumer: Any, partitions: Mapping[TP, int]) -> None:
        """Faust's ``_seek_wait``, counting each seek the moment it is made."""
        for tp, offset in partitions.items():
            consumer.seek(tp, offset)
            self.consumer.count_seek(tp, offset)
            if offset > 0:
                self.consumer._read_offset[tp] = offset
            elif tp in self.consumer._read_offset.keys():
                del self.consumer._read_offset[tp]
        await asyncio.wait_for(
            asyncio.gather(*[consumer.position(tp) for tp in partitions]),
            timeout=self.app.conf.broker_request_timeout,
        )

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        """aiokafka's ``seek_to_committed``, each seek counted as it is made (aiokafka's
        own seeks one partition after another with a broker round trip between)."""
        consumer = self._ensure_consumer()
        offsets: dict[TP, int] = {}
        for tp in consumer.assignment():
            offset = await consumer.committed(tp)
            offsets[tp] = offset
            if offset and offset > 0:  # what aiokafka seeks
                consumer.seek(tp, offset)
                self.consumer.count_seek(tp, offset)
        return offsets


class _Consumer(faust_aiokafka.Consumer):
    app: PackloopApp  # only PackloopApp's transport builds this consumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: seeks made per partition, counted on the consumer thread (see the docstring)
        self.packloop_seeks: dict[TP, int] = {}
        #: the counts the fetch being delivered was made under
        self._packloop_fetch_seeks: dict[TP, int] = {}
        #: partitions sought since their last delivered record, and the offset sought to
        self.packloop_sought: dict[TP, int | None] = {}

    def count_seek(self, tp: TP, offset: int | None = None) -> None:
        self.packloop_seeks[tp] = self.packloop_seeks.get(tp, 0) + 1
        self.packloop_sought[tp] = offset

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        records = await super()._getmany(active_partitions, timeout)
        assert isinstance(records, _Fetched), "fetched by _ConsumerThread._fetch_records"
        self._packloop_fetch_seeks = records.seeks
        return records

    def sought_since_fetch(self, tp: TP) -> bool:
        """Has ``tp`` been sought since the fetch being delivered returned?"""
        return self.packloop_seeks.get(tp, 0) != self._packloop_fetch_seeks.get(tp, 0)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        hook: SeekHook | None = getattr(self.app, "packloop_seek_hook", None)
        if hook is None:
            return
        positions = dict(await hook(self.assignment()))
        for tp, offset in positions.items():
            self.log.info("packloop: resume %s at offset %s (recovered state)", tp, offset)
        if not getattr(self.app, "packloop_final_seek", False):
            await self._seek_in_consumer_thread(positions)
            return
        # The seek Faust makes once recovery is complete: positions come from the
        # recovered table, records may flow to the batch hook from here on. Partitions
        # with no state and no committed offset go back to what the gate dropped; and
        # what it drops while these seeks run (fetched after them: earlier fetches are
        # stale and dropped uncounted) is sought again, until a seek passes with nothing
        # dropped. The gate opens with no await after that check.
        dropped: dict[TP, int] = self.__dict__.setdefault("_packloop_dropped", {})
        assignment = self.assignment()
        targets = dict(positions)
        for tp, offset in dropped.items():
            if tp not in positions and tp in assignment:
                self.log.info("packloop: resume %s at offset %s (dropped)", tp, offset)
                targets[tp] = offset
        # Sought again, each partition goes back to where this seek first sent it, never
        # further on: the gate has delivered nothing since, and a fetch that returned on the
        # consumer thread before that seek ran there but was collected after ``dropped``
        # was cleared looks like a drop after it, from further on (sought there, the
        # records in between were never read; a review found it and a test shows it).
        start = dict(targets)
        while targets:
            dropped.clear()
            await self._seek_in_consumer_thread(targets)
            assignment = self.assignment()
            targets = {tp: min(offset, start.get(tp, offset))
                       for tp, offset in dropped.items() if tp in assignment}
            for tp, offset in targets.items():
                self.log.info("packloop: resume %s at offset %s (dropped during the seek)",
                              tp, offset)
        dropped.clear()
        if self.app.packloop_final_seek:  # not if a new rebalance began meanwhile
            self.app.packloop_final_seek = False
            self.app.packloop_gate_open = True

    async def _seek_in_consumer_thread(self, positions: Mapping[TP, int]) -> None:
        """Seek on the consumer's own thread (Faust's ``seek_wait``), not from this one:
        Faust's plain ``seek`` calls aiokafka from the app's thread while the consumer
        thread may be inside ``fetched_records``, which then fails on a fetch result the
        seek deleted under it (a ``KeyError`` that crashes the consumer)."""
        if positions:
            await self.seek_wait(positions)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Deliver the batch topic's records in whole fetches to a batch handler.

        Faust's loop delivers one message at a time through two tasks per message
        (``wait_first``), the conductor and the stream: that, not the broker, caps a
        Faust agent at a few thousand events/s. Records of ``packloop_batch_topic``
        go straight to ``packloop_batch_hook(messages)`` instead; every other topic
        (table changelogs during recovery) takes Faust's normal path.
        """
        hook = getattr(self.app, "packloop_batch_hook", None)
        topic = getattr(self.app, "packloop_batch_topic", None)
        if hook is None or topic is None:
            return await super()._drain_messages(fetcher)
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                ait = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch: list[Any] = []
                async for tp, message in ait:
                    r_offset = read_offset.get(tp)
                    if r_offset is not None and message.offset < r_offset:
                        continue
                    if message.topic == topic:
                        batch.append(message)
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        read_offset[tp] = message.offset
                stale = {m.tp for m in batch if self.sought_since_fetch(m.tp)}
                if stale:
                    self.log.info(
                        "packloop: %d record(s) fetched before a seek of their partition "
                        "dropped", sum(1 for m in batch if m.tp in stale))
                    batch = [m for m in batch if m.tp not in stale]
                if batch and not self.suspend_flow.is_set():
                    if getattr(self.app, "packloop_gate_open", True):
                        sought = self.packloop_sought
                        for msg in batch:
                            read_offset[msg.tp] = msg.offset
                            if sought and msg.tp in sought:
                                # where reading really resumed: a gap here is lost records
                                self.log.info("packloop: %s read from offset %s (sought to %s)",
                                              msg.tp, msg.offset, sought.pop(msg.tp))
                        await hook(batch)
                    else:
                        # mid-rebalance: fetched again after the final seek, which also
                        # sets the read offsets (none written here: a seek on the other
                        # thread may have just set them)
                        dropped = self.__dict__.setdefault("_packloop_dropped", {})
                        for msg in batch:
                            tp = msg.tp
                            if tp not in dropped or msg.offset < dropped[tp]:
                                dropped[tp] = msg.offset
                        self.log.info(
                            "packloop: %d record(s) fetched before the post-recovery seek "
                            "dropped",
                            len(batch),
                        )
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("packloop: batch delivery failed: %r", exc)
            await self.crash(exc)
            raise


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class PackloopApp(faust.App):
    """faust.App whose consumer honours ``packloop_fetch_max_wait_ms`` and
    ``packloop_seek_hook`` (both plain attributes set by the factory)."""

    packloop_fetch_max_wait_ms: int | None = None
    packloop_seek_hook: SeekHook | None = None
    packloop_batch_topic: str | None = None
    packloop_batch_hook: Callable[[list[Any]], Awaitable[None]] | None = None
    #: records are handed to the batch hook only while open (see the module docstring)
    packloop_gate_open: bool = True
    packloop_final_seek: bool = False

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


class Utf8Codec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return obj.encode("utf-8") if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode("utf-8")


class StateCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes | bytearray):
            return bytes(obj)
        return encode_value(obj)

    def _loads(self, s: bytes) -> Any:
        return decode_value(s)


codecs.register("packloop_utf8", Utf8Codec())
codecs.register("packloop_state", StateCodec())
