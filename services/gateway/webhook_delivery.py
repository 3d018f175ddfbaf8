"""Deliver pickup notices to hub webhooks: signed, retried with back-off, at least once.

A consumer in group ``packloop-gateway-webhooks`` reads ``pickup-requests``;
several gateways share the partitions. For each ``pickup_requested`` /
``pickup_overdue`` the hub's registered URL gets a POST of the notice's JSON,
signed with ``X-Packloop-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
A polled batch is delivered concurrently and its offsets are committed after
every delivery has succeeded or given up, so a gateway that dies mid-batch
leaves the batch to the next one (receivers deduplicate by X-Packloop-Event-Id).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from services.gateway.config import GatewayConfig
from services.gateway.metrics import GatewayMetrics
from services.gateway.webhook_store import WebhookStore
from services.http.kafka_io import close_quietly

log = logging.getLogger("packloop.webhooks")

NOTICE_TYPES = ("pickup_requested", "pickup_overdue")
MAX_BACKOFF_S = 30.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time check of X-Packloop-Signature."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


#: IPv6 prefixes whose last 32 bits are an IPv4 address a gateway may route to: NAT64's
#: well-known prefix (RFC 6052), IPv4-compatible and IPv4-translated (SIIT) forms
_V4_IN_LAST_32 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"),
                  ipaddress.IPv6Network("::ffff:0:0:0/96"))
#: NAT64's local-use prefix (RFC 8215): the IPv4 inside is the network's own choice
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _inner_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, 6to4, Teredo's client, NAT64,
    compatible, translated), or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _V4_IN_LAST_32) and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_address(address: str) -> bool:
    """Whether a webhook may not reach ``address``: anything not globally reachable
    (private, loopback, link-local, shared, reserved, unspecified) and multicast; IPv4
    inside IPv6 (mapped, 6to4, Teredo, NAT64, compatible, translated) is judged as that
    IPv4 too, and NAT64's local-use prefix is refused: `64:ff9b::a9fe:a9fe` reached the
    cloud's metadata address where a NAT64 gateway routes it (an outside audit)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return True
        inner = _inner_ipv4(ip)
        if inner is not None and (not inner.is_global or inner.is_multicast):
            return True
        if ip.ipv4_mapped is not None:
            return False  # judged as the IPv4 it is
    return not ip.is_global or ip.is_multicast


class RefusedTarget(Exception):
    """The webhook's URL cannot be checked, or its host resolves to an address webhooks
    may not reach."""


def public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: every address it resolves to must be public
    (one private answer refuses the host). Raises OSError when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:  # no IDNA form
        raise RefusedTarget(f"{host!r} is not a valid host name") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if forbidden_address(address):
            raise RefusedTarget(f"{host} resolves to a private address ({address}), not "
                                "allowed (PACKLOOP_WEBHOOK_ALLOW_PRIVATE=true allows it)")
    return addresses[0]


def check_url(url: str, allow_private: bool = False) -> str | None:
    """Why ``url`` cannot be a webhook, or None. A name that does not resolve yet passes
    (a hub may register before its DNS is live): every delivery checks it again."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "the webhook URL must be http:// or https://"
    if not parts.hostname:
        return "the webhook URL has no host"
    if not allow_private:
        try:
            # an address written in the URL is judged as written: a scoped one
            # (fe80::1%eth0) did not resolve here, and passed
            forbidden = forbidden_address(parts.hostname)
        except ValueError:
            forbidden = False  # a host name: resolved below
        if forbidden:
            return (f"{parts.hostname} is a private address, not allowed "
                    "(PACKLOOP_WEBHOOK_ALLOW_PRIVATE=true allows it)")
        try:
            public_address(parts.hostname, port or 443)
        except RefusedTarget as exc:
            return str(exc)
        except OSError:
            return None
    return None


def pinned_request(url: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """(URL on the checked address, Host header, TLS server name) for one attempt: the
    address is checked when the notice is sent and connected to as checked, so a name
    that changes to a private address after registration (or between the check and the
    connection) is refused."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise RefusedTarget(f"not a valid URL: {exc}") from None
    address = public_address(target.host, target.port or (443 if target.scheme == "https"
                                                          else 80))
    extensions: dict[str, Any] = {"sni_hostname": target.host} \
        if target.scheme == "https" else {}
    return target.copy_with(host=address), {"Host": target.netloc.decode("ascii")}, extensions


class WebhookDispatcher:
    def __init__(self, config: GatewayConfig, metrics: GatewayMetrics, hooks: WebhookStore,
                 group_id: str | None = None, poll_timeout_ms: int = 500) -> None:
        self.config = config
        self.metrics = metrics
        self.hooks = hooks
        prefix = config.topics.prefix.rstrip("-")
        self.group_id = group_id or ("packloop-gateway-webhooks" + (f"-{prefix}" if prefix else ""))
        self.poll_timeout_ms = poll_timeout_ms
        self.assigned = threading.Event()
        #: partitions assigned whose position is not committed yet (the consumer's thread)
        self._unpinned: set[Any] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")
        self._http = httpx.Client(
            timeout=config.webhook_timeout_s,
            transport=config.webhook_transport,
            headers={"User-Agent": "packloop-gateway-webhooks/1"},
            follow_redirects=False,
            # a proxy would resolve the name itself, past the check on the address
            trust_env=config.webhook_allow_private,
        )

    # -- delivery --------------------------------------------------------------------------

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One attempt; unless private targets are allowed, to the address checked now."""
        if self.config.webhook_allow_private:
            try:
                return self._http.post(url, content=body, headers=headers)
            except (httpx.InvalidURL, UnicodeError) as exc:
                raise RefusedTarget(f"not a valid URL: {exc}") from None
        target, host, extensions = pinned_request(url)
        return self._http.post(target, content=body, headers={**headers, **host},
                               extensions=extensions)

    def deliver(self, hub_id: str, body: bytes, event_id: str, event_type: str) -> str:
        """Deliver one notice; returns 'delivered', 'failed', 'refused' (the URL's host is
        private) or 'skipped' (no webhook)."""
        hook = self.hooks.get(hub_id)
        if hook is None:
            self.metrics.webhook_deliveries.labels(hub_id, "skipped").inc()
            return "skipped"
        headers = {
            "Content-Type": "application/json",
            "X-Packloop-Signature": sign(hook["secret"], body),
            "X-Packloop-Event-Id": event_id,
            "X-Packloop-Event-Type": event_type,
        }
        delay = self.config.webhook_backoff_s
        for attempt in range(1, self.config.webhook_max_attempts + 1):
            headers["X-Packloop-Delivery-Attempt"] = str(attempt)
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                resp = self._post(hook["url"], body, headers)
                ok = 200 <= resp.status_code < 300
                retriable = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
                ra = resp.headers.get("retry-after")
                if ra and ra.isdigit():
                    retry_after = float(ra)
                what = f"HTTP {resp.status_code}"
            except RefusedTarget as exc:
                log.warning("webhook of hub %s: %s %s not sent: %s", hub_id, event_type,
                            event_id, exc)
                self.metrics.webhook_deliveries.labels(hub_id, "refused").inc()
                return "refused"
            except (httpx.HTTPError, OSError) as exc:  # OSError: the name does not resolve
                ok, retriable, what = False, True, f"{type(exc).__name__}: {exc}"
            self.metrics.webhook_duration.observe(time.perf_counter() - started)
            self.metrics.webhook_attempts.labels(hub_id, "ok" if ok else "error").inc()
            if ok:
                self.metrics.webhook_deliveries.labels(hub_id, "delivered").inc()
                return "delivered"
            if not retriable or attempt == self.config.webhook_max_attempts:
                log.warning("webhook of hub %s: giving up on %s %s after %d attempt(s): %s",
                            hub_id, event_type, event_id, attempt, what)
                break
            wait = min(MAX_BACKOFF_S, retry_after if retry_after is not None else delay)
            wait *= random.uniform(0.8, 1.2)
            log.info("webhook of hub %s: attempt %d for %s failed (%s); retry in %.1f s",
                     hub_id, attempt, event_id, what, wait)
            if self._stop.wait(wait):
                raise _Stopped
            delay = min(MAX_BACKOFF_S, delay * 2)
        self.metrics.webhook_deliveries.labels(hub_id, "failed").inc()
        return "failed"

    def handle(self, value: bytes) -> str:
        try:
            notice = orjson.loads(value)
        except orjson.JSONDecodeError:
            return "ignored"
        if not isinstance(notice, dict) or notice.get("type") not in NOTICE_TYPES:
            return "ignored"
        hub_id = notice.get("hub_id")
        if not isinstance(hub_id, str):
            return "ignored"
        return self.deliver(hub_id, value, str(notice.get("event_id", "")), notice["type"])

    # -- consumer loop ---------------------------------------------------------------------

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        dispatcher = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            def on_partitions_assigned(self, assigned: Any) -> None:
                dispatcher._unpinned.update(assigned)
                dispatcher.assigned.set()

        kafka = self.config.kafka
        consumer = KafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=max(500, kafka.session_timeout_ms // 3),
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            max_poll_interval_ms=max(300_000, int(self.config.webhook_timeout_s * 1000 * 40)),
            client_id="packloop-gateway-webhooks",
            **kafka.kafka_python_kwargs(),
        )
        consumer.subscribe([self.config.topics.pickup_requests], listener=Listener())
        return consumer

    def _run(self) -> None:
        consumer = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                batches = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=100)
                if not batches:
                    self._pin(consumer)
                    continue
                futures = [
                    self._pool.submit(self.handle, rec.value)
                    for records in batches.values()
                    for rec in records
                ]
                for fut in futures:
                    fut.result()
                consumer.commit()
                self._pin(consumer)
            except _Stopped:
                break
            except Exception as exc:  # noqa: BLE001 - keep delivering after Kafka hiccups
                log.warning("webhook dispatcher: %s: %s (retrying)", type(exc).__name__, exc)
                close_quietly(consumer)
                consumer = None
                self._stop.wait(2.0)
        close_quietly(consumer)

    def _pin(self, consumer: Any) -> None:
        """Commit the position of each partition newly assigned and not committed since,
        once it has one: "latest" then holds only for the group's very first join, as
        documented. A partition whose polls were all empty was never committed, so the
        next gateway to own it started at the latest offset again, and a notice published
        while no gateway ran was never sent."""
        if not self._unpinned:
            return
        from kafka.structs import OffsetAndMetadata

        self._unpinned &= consumer.assignment()
        # every record a poll returned is handled by now, so a position is safe to commit
        positions = {tp: consumer.position(tp, timeout_ms=5000) for tp in self._unpinned}
        offsets = {tp: OffsetAndMetadata(p, "", -1) for tp, p in positions.items()
                   if p is not None}  # None: not known yet, tried after the next poll
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - e.g. a rebalance under way: next poll
            # not the loop's catch-all, which closes the consumer and forces yet another
            # rebalance (gateways starting together kept knocking each other out)
            log.info("webhook dispatcher: positions not committed yet (%s: %s); trying "
                     "again after the next poll", type(exc).__name__, exc)
            return
        self._unpinned -= offsets.keys()

    def start(self) -> WebhookDispatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()


class _Stopped(Exception):
    pass
