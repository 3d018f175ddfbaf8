"""Regenerate ``sample_county.json``: a county modelled on Suichang, Zhejiang.

Township names and their rough positions follow Suichang's 20 township-level
divisions (2 subdistricts, 7 towns, 11 townships); coordinates are approximate.
Villages, their coordinates, populations and parcel rates are SYNTHETIC
(seeded, reproducible): plausible, not real. The populations add up to Suichang's
194,385 residents of the 2020 census (China's Seventh National Population Census);
a village's parcel rates follow its drawn size, about one down parcel a day
per nine residents. Run ``python -m
streams.data.build_sample_county`` after changing anything here.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

# hub_id, pinyin, Chinese name, approx lat, lon, villages, kind
TOWNSHIPS = [
    ("H01", "Miaogao", "妙高街道", 28.592, 119.276, 30, "subdistrict"),
    ("H02", "Yunfeng", "云峰街道", 28.621, 119.247, 26, "subdistrict"),
    ("H03", "Beijie", "北界镇", 28.686, 119.327, 24, "town"),
    ("H04", "Jinzhu", "金竹镇", 28.641, 119.148, 22, "town"),
    ("H05", "Dazhe", "大柘镇", 28.536, 119.176, 24, "town"),
    ("H06", "Shilian", "石练镇", 28.478, 119.108, 24, "town"),
    ("H07", "Wangcunkou", "王村口镇", 28.381, 119.012, 20, "town"),
    ("H08", "Huangshayao", "黄沙腰镇", 28.423, 118.902, 18, "town"),
    ("H09", "Xinluwan", "新路湾镇", 28.541, 119.330, 22, "town"),
    ("H10", "Hushan", "湖山乡", 28.642, 118.992, 16, "township"),
    ("H11", "Caiyuan", "蔡源乡", 28.561, 119.058, 16, "township"),
    ("H12", "Jiaotan", "焦滩乡", 28.702, 119.063, 16, "township"),
    ("H13", "Longyang", "龙洋乡", 28.472, 119.222, 16, "township"),
    ("H14", "Zhedaikou", "柘岱口乡", 28.718, 119.418, 18, "township"),
    ("H15", "Xifan", "西畈乡", 28.583, 118.918, 16, "township"),
    ("H16", "Gaoping", "高坪乡", 28.468, 119.302, 16, "township"),
    ("H17", "Sanren", "三仁畲族乡", 28.700, 119.198, 18, "township"),
    ("H18", "Lianzhu", "濂竹乡", 28.382, 119.132, 16, "township"),
    ("H19", "Yingcun", "应村乡", 28.331, 119.071, 16, "township"),
    ("H20", "Ankou", "垵口乡", 28.301, 118.951, 16, "township"),
]

SEED = 20261111
#: residents of Suichang County, 2020 census
CENSUS_POPULATION = 194_385
OUT = Path(__file__).with_name("sample_county.json")


def _scale_to_census(villages: list[dict]) -> None:
    """Scale the drawn sizes to the census total (largest remainders, so the sum is exact)."""
    drawn = sum(v["population"] for v in villages)
    exact = [v["population"] * CENSUS_POPULATION / drawn for v in villages]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: CENSUS_POPULATION - sum(counts)]:
        counts[i] += 1
    for v, n in zip(villages, counts, strict=True):
        v["population"] = n


def build() -> dict:
    rng = random.Random(SEED)
    hubs, villages = [], []
    for hub_id, pinyin, hanzi, lat, lon, n_villages, kind in TOWNSHIPS:
        hubs.append(
            {
                "hub_id": hub_id,
                "name": f"{pinyin} ({hanzi})",
                "kind": kind,
                "lat": lat,
                "lon": lon,
                "container_pool": {
                    "reusable_crate": 20 * n_villages,
                    "insulated_box": 12 * n_villages,
                },
            }
        )
        for i in range(1, n_villages + 1):
            # Villages lie along valleys within ~2-9 km of the township seat.
            radius_km = rng.uniform(1.5, 9.0)
            angle = rng.uniform(0, 2 * math.pi)
            v_lat = lat + radius_km * math.sin(angle) / 111.0
            v_lon = lon + radius_km * math.cos(angle) / (111.0 * math.cos(math.radians(lat)))
            population = int(rng.lognormvariate(math.log(900), 0.5))
            population = max(250, min(population, 3500))
            down = max(20, min(150, round(population / 18 + rng.uniform(-8, 8))))
            up = max(3, round(down * rng.uniform(0.15, 0.35)))
            village = {
                "village_id": f"{hub_id}-V{i:03d}",
                "hub_id": hub_id,
                "name": f"{pinyin} village {i} (synthetic)",
                "lat": round(v_lat, 5),
                "lon": round(v_lon, 5),
                "population": population,
                "down_parcels_per_day": down,
                "up_parcels_per_day": up,
                "cold_chain_share_up": round(rng.uniform(0.05, 0.15), 3),
            }
            # Bigger villages get a bigger bin before a truck is called.
            if population > 1800:
                village["thresholds"] = {"outstanding_grams": 80000}
            villages.append(village)
    _scale_to_census(villages)
    return {
        "county": "Suichang County, Lishui, Zhejiang (sample; villages synthetic)",
        "synthetic": (
            "Township names follow Suichang's 20 township-level divisions with approximate "
            "coordinates; villages, coordinates, populations and parcel rates are synthetic."
        ),
        "county_seat": {"name": "Suichang county seat (county logistics centre)",
                        "lat": 28.5925, "lon": 119.2760},
        "timezone": "Asia/Shanghai",
        "hubs": hubs,
        "villages": villages,
        "container_types": [
            {"container_type": "reusable_crate", "material": "pp_plastic", "unit_grams": 1500},
            {"container_type": "insulated_box", "material": "pp_plastic", "unit_grams": 900},
        ],
        "defaults": {
            "thresholds": {
                "outstanding_grams": 50000,
                "material_grams": {"eps_foam": 5000},
                "max_age_hours": 168,
            },
            "pickup_sla_hours": 72,
            "container_overdue_days": 14,
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
