"""The chaos soak for one minute, fixed seed: every kind of fault injected at least once,
every check of bench/chaos_soak.py passing, and every village's tallies equal to the
reference model's (tests/integration/soak_check.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from tests.integration.helpers import REPO
from tests.integration.soak_check import tally_differences


def test_one_minute_chaos_soak_loses_and_doubles_nothing(tmp_path) -> None:
    out = tmp_path / "soak"
    # its own session: whatever happens to this test, no service of the soak outlives it
    proc = subprocess.Popen([sys.executable, "bench/chaos_soak.py", "--minutes", "1",
                             "--seed", "7", "--out", str(out)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    for kind in ("worker_kill", "gateway_kill", "planner_kill", "broker_freeze",
                 "duplicate_burst"):
        line = next(x for x in done.stdout.splitlines() if x.startswith(kind))
        injected, survived = (int(n) for n in line.split()[1:3])
        assert injected >= 1 and survived == injected, line
    compared, diffs = tally_differences(out)
    assert compared > 300
    assert not diffs, diffs[:5]
