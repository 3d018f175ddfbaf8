"""A small, reproducible file of hub events over a network, for the quick start and tests.

This is not the simulator (that one models seasons, returns and collections in
detail); it draws plausible parcels so that a first run has something real to move.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from streams import Network

_NAMESPACE = uuid.UUID("6f1c2d1e-7a55-4b0e-9a43-0c2b7c1a9e10")

# (material, grams per item) for typical single-use packaging of one parcel.
_AMBIENT = [("cardboard", 200), ("tape", 8), ("paper_fill", 30)]
_MAILER = [("plastic_film", 15)]
_COLD = [("eps_foam", 250), ("ice_pack", 250), ("plastic_film", 15)]


def sample_events(
    network: Network, count: int, seed: int = 7, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    villages = sorted(network.villages.values(), key=lambda v: v.village_id)
    container_types = sorted(network.container_types)
    # default: the start of last month, recent enough for the gateway and `emit` to accept
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    t = start or (this_month - timedelta(days=1)).replace(day=1)
    issued: dict[tuple[str, str], int] = {}
    for i in range(count):
        t += timedelta(seconds=rng.randint(1, 40))
        village = rng.choice(villages)
        common = {
            "schema_version": 1,
            "event_id": str(uuid.uuid5(_NAMESPACE, f"{seed}-{i}")),
            "occurred_at": t.isoformat().replace("+00:00", "Z"),
            "hub_id": village.hub_id,
            "village_id": village.village_id,
        }
        roll = rng.random()
        if roll < 0.85:
            direction = "down" if rng.random() < 0.8 else "up"
            temperature = rng.choices(["ambient", "chilled", "frozen"], [0.85, 0.1, 0.05])[0]
            if temperature == "ambient":
                lines = rng.choice([_AMBIENT, _MAILER])
            else:
                lines = _COLD
            containers = []
            if temperature != "ambient" and rng.random() < 0.4:
                ctype = rng.choice(container_types).value
                containers = [{"container_type": ctype, "container_id": f"C-{i}"}]
                if direction == "down":
                    issued[(village.village_id, ctype)] = (
                        issued.get((village.village_id, ctype), 0) + 1
                    )
                lines = [line for line in lines if line[0] != "eps_foam"]
            n = rng.choice([1, 1, 1, 2])
            yield {
                "type": "shipment",
                **common,
                "shipment_id": f"S-{seed}-{i:07d}",
                "direction": direction,
                "temperature_class": temperature,
                "weight_grams": rng.randint(300, 8000),
                "packaging": [
                    {"material": m, "count": n, "grams": g * n} for m, g in lines
                ],
                "containers": containers,
            }
        elif roll < 0.93:
            out = [(k, n) for k, n in issued.items() if k[0] == village.village_id and n > 0]
            if not out:
                continue
            (vid, ctype), n_out = rng.choice(out)
            n_back = rng.randint(1, n_out)
            issued[(vid, ctype)] = n_out - n_back
            condition = rng.choices(["ok", "damaged", "lost"], [0.9, 0.07, 0.03])[0]
            yield {"type": "packaging_return", **common, "container_type": ctype,
                   "count": n_back, "condition": condition}
        else:
            yield {
                "type": "recycling_collected",
                **common,
                "collected_grams": {"cardboard": rng.randint(500, 6000),
                                    "plastic_film": rng.randint(0, 400)},
            }

