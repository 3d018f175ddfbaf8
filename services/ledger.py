"""The officer's ledger in SQL: each village's monthly figures, kept across broker restarts.

Workers write (`streams.ledger`); `packloop report officer` reads. One row per (worker group,
village, month, epoch) holds that life of the village's state's cumulative figures for the month and
the applied-event count it reached (`seq`); a write replaces a row only with a higher seq,
so replays, retries and two workers during a rebalance change nothing, and a month's
figures are the sum over epochs: events after a broker restart add to what was there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from services.db import create_tables, make_engine
from streams.ledger import LedgerRow
from streams.officer_kpis import add_rows

ledger_metadata = MetaData()

ledger_months = Table(
    "ledger_months",
    ledger_metadata,
    Column("stream", String(255), primary_key=True),
    Column("village_id", String(128), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("epoch", String(32), primary_key=True),
    Column("hub_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("figures", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)


class Ledger:
    """A `streams.ledger.LedgerWriter` on SQLite or PostgreSQL, and the report's reader."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        create_tables(self.engine, ledger_metadata)

    def write(self, rows: Sequence[LedgerRow]) -> None:
        if not rows:
            return
        now = time.time()
        values = [{"stream": r.stream, "village_id": r.village_id, "month": r.month,
                   "epoch": r.epoch, "hub_id": r.hub_id, "seq": r.seq,
                   "figures": orjson.dumps(r.figures).decode(), "updated_at": now}
                  for r in rows]
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(ledger_months)
        stmt = stmt.on_conflict_do_update(
            index_elements=["stream", "village_id", "month", "epoch"],
            set_={"seq": stmt.excluded.seq, "figures": stmt.excluded.figures,
                  "hub_id": stmt.excluded.hub_id, "updated_at": stmt.excluded.updated_at},
            where=ledger_months.c.seq < stmt.excluded.seq,
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, values)

    def month(self, stream: str, month: str,
              live: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The month's rows of worker group `stream` (its app id) as `GET /months/{month}`
        gives them, one per village: the sum
        over epochs, where a `live` row (a worker's, carrying its epoch) stands in for the
        ledger's row of the same epoch (the ledger trails the worker by a second)."""
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(ledger_months.c.village_id, ledger_months.c.epoch,
                       ledger_months.c.hub_id, ledger_months.c.figures)
                .where(ledger_months.c.stream == stream, ledger_months.c.month == month)
            ).all()
        parts: dict[tuple[str, str], dict[str, Any]] = {}
        hubs: dict[str, str] = {}
        for vid, epoch, hub, figures in stored:
            parts[(str(vid), str(epoch))] = orjson.loads(str(figures))
            hubs[str(vid)] = str(hub)
        for row in live:
            parts[(row["village_id"], row.get("epoch", ""))] = row
            hubs[row["village_id"]] = row["hub_id"]
        by_village: dict[str, list[dict[str, Any]]] = {}
        for (vid, _epoch), figures in parts.items():
            by_village.setdefault(vid, []).append(figures)
        villages = [{"village_id": vid, "hub_id": hubs[vid], **add_rows(rows)}
                    for vid, rows in sorted(by_village.items())]
        return {"month": month, "villages": villages}

    def close(self) -> None:
        self.engine.dispose()
