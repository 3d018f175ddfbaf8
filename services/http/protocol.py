"""uvicorn's HTTP/1.1 protocol with the two guards a server facing the internet needs and
uvicorn lacks: a deadline on each request's head, and a cap on open connections.

Why: uvicorn waits for a request's headers for ever, and its keep-alive timer stops at the
first byte, so a client sending one header line every few seconds holds a connection open
indefinitely. 19,990 such connections took an outside audit's gateway to its limit of open
files: `/healthz` timed out and the log filled with 60,791 "Too many open files"
tracebacks in ten seconds. A proxy in front (nginx's `client_header_timeout`) does this
too, but the shipped Kubernetes set-up passes TLS through to the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("packloop.http")


class GuardedH11Protocol(H11Protocol):
    """`H11Protocol` that closes a connection with no request at the app for
    ``head_timeout_s`` (from the connection, or from the previous response: a head not
    yet whole, or the rest of a body the app answered without reading), and closes new
    connections at once while ``max_connections`` are open. Both come from the class
    (`guarded_protocol` makes one per server)."""

    head_timeout_s: float = 10.0
    max_connections: int = 1000
    #: the event loop's time of the last "over the cap" warning (one a minute: the log
    #: flood); per server, as the class is
    last_warned: float = -1e9

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        if len(self.connections) >= self.max_connections:
            # before it counts: never served, so the open files stay within the cap
            self._refused = True
            transport.close()
            self._say_over_cap()
            return
        super().connection_made(transport)
        self._await_head()

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_overdue)

    def _cancel_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        """No request is with the app: the connection waits for a head, or drains the
        body of a request answered early (a 401 before the body was read), which a client
        could otherwise trickle in for ever (a review). A request the app still works on
        (its body uploading, its answer pending) is never cut; the timer is armed again
        when its response is complete."""
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._cancel_head_timer()  # a request is in: the app has it now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def _say_over_cap(self) -> None:
        cls = type(self)
        now = asyncio.get_running_loop().time()
        if now - cls.last_warned >= 60.0:
            cls.last_warned = now
            log.warning("%d connections open: new ones are closed at once "
                        "(PACKLOOP_HTTP_MAX_CONNECTIONS)", self.max_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if getattr(self, "_refused", False):  # closed at once over the cap: never counted
            return
        super().connection_lost(exc)


def guarded_protocol(head_timeout_s: float, max_connections: int) -> type[Any]:
    """A `GuardedH11Protocol` class with these limits (uvicorn takes a class)."""
    return type("GuardedH11", (GuardedH11Protocol,),
                {"head_timeout_s": head_timeout_s, "max_connections": max_connections})
