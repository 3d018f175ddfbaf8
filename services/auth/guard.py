"""Limits on failed authentication, and the audit line of every token use.

Tokens are long and random (``plk_<id>_<secret>``), but nothing else stops a client from
trying secrets as fast as a service answers. Two limits, per TCP peer address:

* per token id: after :data:`MAX_FAILURES` refusals of tokens with one id from one address
  within :data:`WINDOW_S` seconds, that address is answered 429 for the rest of the window
  for that id, its tokens not checked (a good one included: that id is being guessed);
* per address: after :data:`FLOOD_FAILURES` refusals of any kind (random ids, malformed
  tokens), the address is answered 429 without a check, except for the token ids that
  passed from it within the window.

Why not one limit per address: behind a proxy every hub has the proxy's address, and ten
bad tokens a minute from anyone there locked every hub out (an outside audit). Guessing
gains nothing from other ids: a secret is guessed for an id, and an id itself is 48 random
bits. A request without any token is not a guess and does not count.

The peer is ``request.client``. uvicorn on its own would take it from ``X-Forwarded-For``
whenever the TCP peer is 127.0.0.1, so any local process could choose a fresh address per
guess (and the audit log's peer); `packloop gateway` and `packloop planner` read the header
only from the proxies named in ``PACKLOOP_FORWARDED_ALLOW_IPS`` (none by default:
:func:`services.cli.serve.server_config`). Behind a reverse proxy not named there the peer
is the proxy, so such a proxy should limit per client itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

from services.auth.tokens import TokenCheck

MAX_FAILURES = 10
FLOOD_FAILURES = 100
WINDOW_S = 60.0

#: every value of the failure counters' ``result`` label
RESULTS = ("missing", "malformed", "unknown", "bad_secret", "wrong_kind", "revoked", "expired",
           "blocked")

audit_log = logging.getLogger("packloop.audit")

_PRINTABLE_ID = re.compile(r"[0-9a-f]{1,32}")
#: what may not reach a log line from a peer address (a trusted proxy's header sets it)
_UNSAFE = re.compile(r"[^0-9A-Za-z.:_\[\]-]")


def _key(peer: str, token_id: str | None) -> str:
    return f"{peer} {token_id or '-'}"


class FailureLimiter:
    """Sliding-window count of failures per key; thread-safe, bounded in memory.

    Keys are kept in the order of their latest failure, so at capacity the one that failed
    longest ago goes, in constant time: per (address, token id) the table fills from a
    thousand addresses, and a scan of it per refusal at capacity held the event loop for
    14 ms each (a review)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0.0 when it may now."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None or len(times) < self.max_failures:
                return 0.0
            return max(0.0, times[0] + self.window_s - now)

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                while len(self._failures) >= self.max_keys:
                    self._failures.popitem(last=False)
                times = self._failures[key] = deque(maxlen=self.max_failures)
            else:
                self._failures.move_to_end(key)
            while times and times[0] <= now - self.window_s:
                times.popleft()
            times.append(now)


class AuthGuard:
    """One service's failure limits, failure counter and audit log."""

    def __init__(self, service: str, owner_kind: str, registry: CollectorRegistry,
                 limiter: FailureLimiter | None = None,
                 flood: FailureLimiter | None = None) -> None:
        self.service = service
        self.owner_kind = owner_kind
        #: per (address, token id)
        self.limiter = limiter or FailureLimiter()
        #: per address
        self.flood = flood or FailureLimiter(FLOOD_FAILURES, self.limiter.window_s,
                                             self.limiter.clock)
        #: (address, token id) -> when a token with that id last passed from there
        self._passed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        self.failures = Counter(
            f"packloop_{service}_auth_failures_total",
            "Requests whose token was refused, by result (missing, malformed, unknown id, "
            "bad_secret, wrong_kind, revoked, expired; blocked: answered 429 without a check after "
            f"{self.limiter.max_failures} refusals of one token id from the address, or "
            f"{self.flood.max_failures} of any, within {self.limiter.window_s:g} s).",
            ["result"],
            registry=registry,
        )
        for result in RESULTS:
            self.failures.labels(result)

    def blocked_for(self, peer: str, token_id: str | None = None) -> float:
        """Seconds the peer must wait before a token with ``token_id`` (None: malformed or
        no id) is checked (0.0: check it now); a block is counted and audited."""
        wait = self.limiter.blocked_for(_key(peer, token_id))
        if wait <= 0 and not self._passed_lately(peer, token_id):
            wait = self.flood.blocked_for(peer)
        if wait > 0:
            self.failures.labels("blocked").inc()
            self._audit(peer, "blocked", token_id, None)
        return wait

    def record(self, peer: str, check: TokenCheck) -> None:
        """Audit one token check; count a refusal, and toward the peer's limits when a
        token was presented."""
        self._audit(peer, check.outcome, check.token_id, check.owner)
        if check.outcome == "ok":
            if check.token_id is not None:
                self._remember_pass(peer, check.token_id)
            return
        self.failures.labels(check.outcome).inc()
        if check.outcome != "missing":
            self.limiter.failed(_key(peer, check.token_id))
            self.flood.failed(peer)

    def _passed_lately(self, peer: str, token_id: str | None) -> bool:
        if token_id is None:
            return False
        with self._lock:
            at = self._passed.get((peer, token_id))
        return at is not None and self.limiter.clock() - at < self.limiter.window_s

    def _remember_pass(self, peer: str, token_id: str) -> None:
        now = self.limiter.clock()
        with self._lock:
            if (peer, token_id) in self._passed:
                self._passed.move_to_end((peer, token_id))
            else:
                while len(self._passed) >= self.limiter.max_keys:
                    self._passed.popitem(last=False)  # the one that passed longest ago
            self._passed[(peer, token_id)] = now

    def _audit(self, peer: str, outcome: str, token_id: str | None, owner: str | None) -> None:
        shown_id = token_id if token_id and _PRINTABLE_ID.fullmatch(token_id) else "-"
        audit_log.info("token use: service=%s %s=%s token_id=%s peer=%s outcome=%s",
                       self.service, self.owner_kind, owner or "-", shown_id,
                       _UNSAFE.sub("?", peer)[:64], outcome)
