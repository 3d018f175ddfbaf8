"""The web servers' HTTP/1.1 guards on a real uvicorn server over TCP: a request head that
trickles in is cut off, connections over the cap are closed at once, and ordinary requests
are served as before."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from services.cli.serve import server_config
from services.settings import Settings


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    settings = Settings(http_head_timeout_s=0.5, http_max_connections=3)
    config = server_config(app, settings, "127.0.0.1", 0, "warning", None, None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started
    yield sock.getsockname()
    srv.should_exit = True
    thread.join(10)


def _get(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(4096):
            data += chunk
        return data


def _closed_within(c: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``c`` within ``seconds`` (reads EOF or a reset)."""
    c.settimeout(seconds)
    try:
        return c.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _cut_off_while_sending(c: socket.socket, data: bytes, give_up_s: float = 5.0) -> float:
    """Seconds until the server closes ``c`` while ``data`` is sent every 0.2 s (at most
    ``give_up_s``: then the connection was never cut)."""
    started = time.monotonic()
    while time.monotonic() - started < give_up_s:
        try:
            c.sendall(data)
        except OSError:
            break
        if _closed_within(c, 0.2):
            break
    return time.monotonic() - started


def test_a_head_sent_a_line_at_a_time_is_cut_off(server) -> None:
    """Before: a header line every few seconds kept the connection open for good (19,990
    of them took a gateway to its open-file limit)."""
    c = socket.create_connection(server, timeout=5)
    c.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
    assert _cut_off_while_sending(c, b"X-Slow: 1\r\n") < 3
    c.close()
    assert _get(server).startswith(b"HTTP/1.1 200")


def test_over_the_cap_new_connections_are_closed_and_the_rest_served(server) -> None:
    slow = [socket.create_connection(server, timeout=5) for _ in range(3)]
    for c in slow:
        c.sendall(b"GET / HTTP/1.1\r\n")
    time.sleep(0.1)
    extra = socket.create_connection(server, timeout=5)
    assert _closed_within(extra, 0.4)  # at once, well before the head timeout
    extra.close()
    for c in slow:
        assert _closed_within(c, 3)
        c.close()
    assert _get(server).startswith(b"HTTP/1.1 200")


def test_keep_alive_requests_are_served_one_after_another(server) -> None:
    """A slow client between requests is cut off, a normal one is not."""
    with socket.create_connection(server, timeout=5) as c:
        for _ in range(3):
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"ok"):
                reply += c.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200")


def test_a_body_trickled_after_an_early_answer_is_cut_off(server) -> None:
    """A head with a huge Content-Length, answered before its body was read (a 401): the
    body could trickle in for ever, and after it the next head (a review)."""
    c = socket.create_connection(server, timeout=5)
    c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    reply = b""
    while not reply.endswith(b"ok"):
        reply += c.recv(4096)
    assert _cut_off_while_sending(c, b"x" * 10) < 3
    c.close()


def test_connections_refused_over_the_cap_log_no_traceback(server, caplog) -> None:
    """uvicorn's connection_lost closed a transport it never had: one asyncio traceback
    per refused connection, the log flood the cap was for (a review)."""
    import logging

    caplog.set_level(logging.WARNING)
    held = [socket.create_connection(server, timeout=5) for _ in range(3)]
    time.sleep(0.1)
    for _ in range(5):
        extra = socket.create_connection(server, timeout=5)
        assert _closed_within(extra, 0.4)
        extra.close()
    time.sleep(0.2)
    for c in held:
        c.close()
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
                or "Exception in callback" in r.getMessage()], caplog.text
