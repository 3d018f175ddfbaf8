"""Repeated log lines let through once per window: Kafka clients log the same connection
errors on every retry while a broker is down. Its own module, free of Faust, so that the
gateway and planner (kafka-python) use the filter the worker (aiokafka) uses without
importing the stream app."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: how often one repeated log message is let through (:class:`RepeatFilter`)
REPEAT_WINDOW_S = 10.0


class RepeatFilter(logging.Filter):
    """Lets a message through once per ``window_s``; the next one let through says how many
    were held back.

    With Kafka down, aiokafka logs the same few errors (``Unable connect to node``,
    ``Unable to update metadata``, ``Failed fetch messages``) for every retry, about 50
    lines a second, burying everything else. Messages are identical when logger, level
    and text are; a handler filter, since a logger's filter does not see its children's
    records. Thread-safe: Faust's consumer logs from a thread of its own.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        #: (logger, level, text) -> (when last let through, held back since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = self._clock()
        with self._lock:
            since, held = self._seen.get(key, (None, 0))
            if since is not None and now - since < self.window_s:
                self._seen[key] = (since, held + 1)
                return False
            if len(self._seen) >= 1024:  # forget what has stopped repeating
                self._seen = {k: v for k, v in self._seen.items()
                              if now - v[0] < self.window_s}
                if len(self._seen) >= 1024:  # all distinct: no repeats worth the memory
                    self._seen.clear()
            self._seen[key] = (now, 0)
        if held and since is not None:
            record.msg = (f"{text} (and {held} more like it in the {now - since:.0f} s "
                          "before, not logged)")
            record.args = ()  # not None: Faust's formatter would make it (None,)
        return True
