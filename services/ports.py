"""Loopback ports for the embedded broker, the demo's services and the tests.

A port the kernel hands out for ``bind(("", 0))`` is only free when asked: it comes from the
ephemeral range, which every outgoing connection on the machine also draws from, and another
process asking the same way may be handed the same port before ours binds it. With pytest-xdist
running several services per worker that happened (a soak's gateway port answered by another
test's server, every request a 404). So ports are drawn from below the ephemeral range, and each
one handed out is reserved by an exclusive lock (``flock``) on a file named for it, held for the
life of the process: the kernel drops the lock when the process ends, however it ends, so there
is no stale reservation to clear and no window in which two processes both hold one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

#: where the lock files live, one per port handed out
RESERVATIONS = Path(tempfile.gettempdir()) / "packloop-ports"
#: lowest port drawn; the highest is just below the kernel's ephemeral range
LOW_PORT = 20000
#: draws before falling back to a kernel-chosen port
TRIES = 200
#: the open lock files of the ports this process holds: the locks last as long as these
#: descriptors, so they are kept for the life of the process, up to MAX_HELD
_HELD: dict[int, int] = {}
#: locks kept at most: past it the oldest is let go (its port was bound long since, or is
#: not wanted), so a long test session does not run out of file descriptors
MAX_HELD = 256


def ephemeral_low(default: int = 32768) -> int:
    """The bottom of the kernel's ephemeral port range (Linux), where ours must stop."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _reserve(port: int) -> bool:
    """Lock port's file for this process, unless a live process (this one included) holds
    it already."""
    try:
        fd = os.open(RESERVATIONS / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HELD[port] = fd
    while len(_HELD) > MAX_HELD:
        os.close(_HELD.pop(next(iter(_HELD))))
    return True


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def _kernel_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on and no other live packloop process has been handed."""
    high = ephemeral_low()
    try:
        RESERVATIONS.mkdir(parents=True, exist_ok=True)
    except OSError:
        return _kernel_port(host)
    if high <= LOW_PORT:  # an unusual kernel setting: no room below the range
        return _kernel_port(host)
    rng = random.Random()  # seeded from the OS: processes started together draw apart
    for _ in range(TRIES):
        port = rng.randrange(LOW_PORT, high)
        if port not in _HELD and _bindable(host, port) and _reserve(port):
            return port
    return _kernel_port(host)
