"""The worker's log while Kafka is down: a repeated library error at most once per window,
and an exception that ends a thread as one record (:func:`streams.worker.quiet_repeats`).

Measured with the embedded broker killed under a running worker: before, about 50 ERROR
lines a second from aiokafka, and on stop a traceback split into one ``[WARNING]`` line per
fragment (``^``, ``.``, ``CancelledError``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import pytest
from mode.utils.logging import ExtensionFormatter

from streams.worker import RepeatFilter, bounded_stop_worker, quiet_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    """The worker's logger with a handler formatting as Faust's worker does, standing in
    for the root logger (whose handlers pytest keeps for the whole session: a filter on
    them would outlive the test); ``threading.excepthook`` restored afterwards."""
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(ExtensionFormatter(stream=out, fmt="[%(levelname)s] %(message)s"))
    logger = logging.getLogger("packloop.streams")
    logger.addHandler(handler)
    try:
        yield logger, out, handler
    finally:
        logger.removeHandler(handler)


def record(text: str, *args: object, name: str = "aiokafka.conn",
           level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, text, args, None)


def test_a_repeated_message_passes_once_per_window_then_says_how_many_were_held() -> None:
    clock = Clock()
    repeats = RepeatFilter(window_s=10, clock=clock)
    first = record("Unable connect to node with id %s: %s", 111, "refused")
    assert repeats.filter(first)
    for _ in range(499):  # 50 a second
        clock.now += 0.02
        assert not repeats.filter(record("Unable connect to node with id %s: %s", 111,
                                         "refused"))
    clock.now = 10.0
    again = record("Unable connect to node with id %s: %s", 111, "refused")
    assert repeats.filter(again)
    assert again.getMessage() == ("Unable connect to node with id 111: refused (and 499 more "
                                  "like it in the 10 s before, not logged)")
    clock.now = 25.0
    quiet = record("Unable connect to node with id %s: %s", 111, "refused")
    assert repeats.filter(quiet) and quiet.getMessage().endswith(": refused")


def test_different_messages_loggers_and_levels_are_not_repeats() -> None:
    repeats = RepeatFilter(window_s=10, clock=Clock())
    assert repeats.filter(record("Failed fetch messages from 111: %s", "closed"))
    assert repeats.filter(record("Failed fetch messages from 111: %s", "not ready"))
    assert repeats.filter(record("Failed fetch messages from 111: %s", "closed",
                                 name="aiokafka.consumer.fetcher"))
    assert repeats.filter(record("Failed fetch messages from 111: %s", "closed",
                                 level=logging.WARNING))


def test_quiet_repeats_filters_the_root_handlers_as_faust_formats_them(captured) -> None:
    """Through Faust's formatter, which turns ``args=None`` into ``(None,)`` and failed with
    ``not all arguments converted`` (a '--- Logging error ---' traceback) until the
    held-back note cleared them to ``()``."""
    root, out, handler = captured
    clock = Clock()
    quiet_repeats(root)
    quiet_repeats(root)  # idempotent: one filter per handler
    assert sum(isinstance(f, RepeatFilter) for f in handler.filters) == 1
    handler.filters = [RepeatFilter(window_s=10, clock=clock)]
    library = logging.getLogger("packloop.streams.stand_in_for_aiokafka")
    for _ in range(60):
        library.error("Unable to update metadata from %s", [111])
    clock.now = 10.0
    library.error("Unable to update metadata from %s", [111])
    assert out.getvalue().splitlines() == [
        "[ERROR] Unable to update metadata from [111]",
        "[ERROR] Unable to update metadata from [111] (and 59 more like it in the 10 s "
        "before, not logged)",
    ]


def _crash(exc: BaseException) -> None:
    def run() -> None:
        raise exc

    thread = threading.Thread(target=run, name="Thread-consumer")
    thread.start()
    thread.join()


def test_a_thread_ended_by_cancellation_is_one_warning_line(captured) -> None:
    """What aiokafka's consumer thread does when stopped with Kafka unreachable; before,
    Python's report went to stderr, which Faust logs one write (one fragment) at a time."""
    root, out, _ = captured
    quiet_repeats(root)
    _crash(asyncio.CancelledError())
    assert out.getvalue().splitlines() == [
        "[WARNING] thread Thread-consumer ended with CancelledError (aiokafka's consumer does "
        "when it is stopped while Kafka is unreachable)"]


def test_any_other_thread_exception_is_one_error_record_with_its_traceback(captured) -> None:
    root, out, _ = captured
    quiet_repeats(root)
    _crash(RuntimeError("boom"))
    text = out.getvalue()
    assert text.startswith("[ERROR] thread Thread-consumer ended with an exception\n")
    assert "Traceback (most recent call last)" in text and text.rstrip().endswith(
        "RuntimeError: boom")
    assert text.count("[ERROR]") == 1 and "[WARNING]" not in text


def test_the_worker_quiets_its_handlers_when_faust_sets_up_logging(captured) -> None:
    """The hook Faust's worker calls once its handlers exist (built here without the rest
    of a worker, which needs an app)."""
    logger, _, handler = captured
    worker_class = bounded_stop_worker(20)
    worker = worker_class.__new__(worker_class)
    worker.spinner = None
    before = threading.excepthook
    worker.on_setup_root_logger(logger, logging.INFO)
    assert any(isinstance(f, RepeatFilter) for f in handler.filters)
    assert threading.excepthook is not before
