"""Write county_week.json: the sample county (20 hubs, 390 villages) for one week, built from
streams/data/sample_county.json and the default factor set, with seeded synthetic demand.

    .venv/bin/python examples/scenarios/make_county_week.py
"""

from __future__ import annotations

import json
from pathlib import Path

from optimizer import scenario_from_network

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    s = scenario_from_network(ROOT / "streams" / "data" / "sample_county.json",
                              horizon_days=7, seed=2026, name="Suichang county week")
    out = Path(__file__).with_name("county_week.json")
    data = s.model_dump(mode="json", exclude_defaults=True)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    parcels = sum(g.parcels for g in s.demand if g.direction == "down") / s.horizon_days
    print(f"{out}: {len(s.hubs)} hubs, {len(s.villages)} villages, {len(s.demand)} demand "
          f"groups, {parcels:,.0f} down parcels/day")


if __name__ == "__main__":
    main()
