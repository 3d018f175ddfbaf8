"""Ports handed out by `free_port` stay ours: below the ephemeral range, reserved per process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services import ports


@pytest.fixture
def reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ports, "RESERVATIONS", tmp_path)
    return tmp_path


def test_ports_are_below_the_ephemeral_range_and_reserved(reservations: Path) -> None:
    port = ports.free_port()
    assert ports.LOW_PORT <= port < ports.ephemeral_low()
    assert (reservations / str(port)).read_text() == str(os.getpid())


def test_a_live_process_keeps_its_ports_and_a_dead_ones_are_taken_back(
        reservations: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "LOW_PORT", 24000)
    monkeypatch.setattr(ports, "ephemeral_low", lambda: 24100)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    for port in range(24000, 24100):
        (reservations / str(port)).write_text(str(dead_pid if port == 24042 else os.getppid()))
    # every port but 24042 is held by a live process (our parent); 24042's holder has exited
    assert ports.free_port() == 24042
    assert (reservations / "24042").read_text() == str(os.getpid())


def test_the_same_process_is_never_handed_a_port_twice(reservations: Path) -> None:
    handed = [ports.free_port() for _ in range(50)]
    assert len(set(handed)) == len(handed)


def test_a_listening_port_is_not_handed_out(reservations: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        monkeypatch.setattr(ports, "LOW_PORT", taken)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: taken + 2)
        assert ports.free_port() == taken + 1
