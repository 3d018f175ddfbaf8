"""The chaos soak's last check, which bench/ cannot run: every village's tallies in the
workers' final state against the independent reference model fed with every event the
gateway accepted. Used by test_chaos_soak.py, and by hand on a long run's output:

    python -m tests.integration.soak_check DIR     # DIR: bench/chaos_soak.py --out DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from streams import load_network
from tests.streams.reference import Model, parse_ts

#: the tallies compared: sums, whatever order the partitions applied the events in
FIELDS = ("generated_grams", "recovered_grams", "outstanding_grams")


def tally_differences(out: Path) -> tuple[int, list[str]]:
    """(villages compared, one line per village whose tallies differ)."""
    events = [orjson.loads(line) for line in (out / "accepted.jsonl").read_bytes().splitlines()
              if line.strip()]
    events.sort(key=lambda e: parse_ts(e["occurred_at"]))
    model = Model(load_network(), ticks=False)
    for event in events:
        model.feed(event)
    expected = model.villages()
    state = orjson.loads((out / "state.json").read_bytes())
    diffs = []
    for village_id in sorted(set(expected) | set(state)):
        # a village the workers did not answer for is a difference of its own
        want, got = expected.get(village_id) or {}, state.get(village_id) or {}
        for name in FIELDS:
            if want.get(name, {}) != got.get(name, {}):
                diffs.append(f"{village_id} {name}: expected {want.get(name)}, "
                             f"the workers have {got.get(name)}")
    return len(expected), diffs


def main() -> int:
    out = Path(sys.argv[1])
    compared, diffs = tally_differences(out)
    for line in diffs[:20]:
        print(line)
    verdict = "PASS" if not diffs else "FAIL"
    print(f"{verdict}  every village's tallies against the reference model: {compared} villages"
          f", {len(diffs)} differences")
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
