"""Loopback ports for the embedded broker, the demo's services and the tests.

A port the kernel hands out for ``bind(("", 0))`` is only free when asked: it comes from the
ephemeral range, which every outgoing connection on the machine also draws from, and another
process asking the same way may be handed the same port before ours binds it. With pytest-xdist
running several services per worker that happened (a soak's gateway port answered by another
test's server, every request a 404). So ports are drawn from below the ephemeral range, and each
one handed out is reserved by a file naming the process that took it; other processes skip it
while that process lives. Nothing is held in memory, so a restarted process starts clean.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import tempfile
from pathlib import Path

#: where reservations live: one file per port, holding the pid that took it
RESERVATIONS = Path(tempfile.gettempdir()) / "packloop-ports"
#: lowest port drawn; the highest is just below the kernel's ephemeral range
LOW_PORT = 20000
#: draws before falling back to a kernel-chosen port
TRIES = 200


def ephemeral_low(default: int = 32768) -> int:
    """The bottom of the kernel's ephemeral port range (Linux), where ours must stop."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def _reserve(port: int) -> bool:
    """Take port's reservation for this process unless a live process holds it."""
    path = RESERVATIONS / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text() or "0")
            except (OSError, ValueError):
                return False  # being written right now: somebody else's
            if holder and _pid_alive(holder):
                return False
            try:  # left by a process that has ended
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:  # left by another user's process: theirs to clear
                return False
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


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
    if not os.access(RESERVATIONS, os.W_OK):  # made by another user
        return _kernel_port(host)
    if high <= LOW_PORT:  # an unusual kernel setting: no room below the range
        return _kernel_port(host)
    rng = random.Random()  # seeded from the OS: processes started together draw apart
    for _ in range(TRIES):
        port = rng.randrange(LOW_PORT, high)
        if _bindable(host, port) and _reserve(port):
            return port
    return _kernel_port(host)
