"""Small extensions of faust-streaming that packloop needs.

* The consumer's fetch max wait is configurable (faust-streaming hard-codes
  1500 ms; the embedded broker then waits ~750 ms per fetch even with data).
* After every rebalance, once tables are recovered and Faust has sought the
  source partitions to their committed offsets, a hook may move them to another
  position: packloop resumes each partition right after the last batch that is
  completely in the recovered table (see :mod:`streams.processor`).
* Table values are encoded by a codec that turns changelog bytes back into
  packloop's state records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.serializers import codecs
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

SeekHook = Callable[[Iterable[TP]], Awaitable[Mapping[TP, int]]]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "packloop_fetch_max_wait_ms", None)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        hook: SeekHook | None = getattr(self.app, "packloop_seek_hook", None)
        if hook is None:
            return
        positions = await hook(self.assignment())
        for tp, offset in positions.items():
            self.log.info("packloop: resume %s at offset %s (recovered state)", tp, offset)
            await self.seek(tp, offset)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class PackloopApp(faust.App):
    """faust.App whose consumer honours ``packloop_fetch_max_wait_ms`` and
    ``packloop_seek_hook`` (both plain attributes set by the factory)."""

    packloop_fetch_max_wait_ms: int | None = None
    packloop_seek_hook: SeekHook | None = None

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
        return obj.to_bytes()  # type: ignore[no-any-return]

    def _loads(self, s: bytes) -> Any:
        from streams.processor import decode_value

        return decode_value(s)


codecs.register("packloop_utf8", Utf8Codec())
codecs.register("packloop_state", StateCodec())
