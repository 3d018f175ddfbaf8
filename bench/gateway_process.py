"""`packloop gateway` as a child process for the gateway benches, ready when returned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running_gateway(env: dict[str, str], port: int) -> Iterator[str]:
    """The gateway's URL once /readyz answers 200; the process group is stopped after."""
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "gateway",
                               "--log-level", "warning"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gateway did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
