"""The officer's ledger in SQL: each village's monthly figures, kept across broker restarts.

Workers write (`streams.ledger`); `packloop report officer` reads. One row per (worker
group, village, month, epoch) holds that life of the village's state's cumulative figures for
the month and the count of changes it reached (`seq`, `VillageState.changes`); a write
replaces a row only with a higher seq, so replays, retries and two workers during a
rebalance change nothing, and a month's figures are the sum over epochs: events after a
broker restart add to what was there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from services.db import add_missing_columns, create_tables, make_engine
from streams.ledger import LedgerRow, Prior
from streams.months import carried_row
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


#: the event ids each village's lives applied (`streams.ledger.Prior`): a digest once per
#: village, with its dedupe segment day and the epoch that applied it ('' in a ledger
#: written before epochs were stored: an earlier life's, whichever is asking)
ledger_event_ids = Table(
    "ledger_event_ids",
    ledger_metadata,
    Column("stream", String(255), primary_key=True),
    Column("village_id", String(128), primary_key=True),
    Column("id_hash", BigInteger, primary_key=True),
    Column("day", Integer, nullable=False, index=True),
    Column("epoch", String(32), nullable=False, server_default=""),
)

#: ids older than this many days before the newest written are deleted: far beyond any
#: dedupe horizon in use (the default is about 10 days; the bench runs 92)
IDS_KEPT_DAYS = 400


class Ledger:
    """A `streams.ledger.LedgerWriter` on SQLite or PostgreSQL, and the report's reader."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        create_tables(self.engine, ledger_metadata)
        add_missing_columns(self.engine, ledger_event_ids)
        self._pruned_to = -1

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
        ids = [(r.stream, r.village_id, h, day, r.epoch) for r in rows for h, day in r.ids]
        with self.engine.begin() as conn:
            conn.execute(stmt, values)
            if ids:
                # the driver's executemany on plain tuples: SQLAlchemy's statement over
                # dicts took 0.47 s for 100,000 ids, in the worker's writer thread
                mark = "%s" if dialect == "postgresql" else "?"
                conn.exec_driver_sql(
                    "INSERT INTO ledger_event_ids (stream, village_id, id_hash, day, epoch) "
                    f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) "  # noqa: S608
                    "ON CONFLICT (stream, village_id, id_hash) DO NOTHING", ids)
                newest = max(day for r in rows for _h, day in r.ids)
                if newest > self._pruned_to:  # once a day of ids, not every write
                    self._pruned_to = newest
                    t = ledger_event_ids.c
                    conn.execute(ledger_event_ids.delete().where(
                        t.stream == rows[0].stream, t.day < newest - IDS_KEPT_DAYS))

    def prior(self, stream: str, village_id: str, since_day: int, epoch: str = "") -> Prior:
        t, m = ledger_event_ids.c, ledger_months.c
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(t.id_hash, t.day).where(t.stream == stream, t.village_id == village_id,
                                               t.day >= since_day, t.epoch != epoch)
                .order_by(t.day)).all()
            figures: list[Any] = list(conn.execute(select(m.figures).where(
                m.stream == stream, m.village_id == village_id, m.epoch != epoch)).scalars())
        pickups = 0
        for text in figures:
            requested: Any = (orjson.loads(str(text)).get("pickups") or {}).get("requested", 0)
            pickups += int(requested)
        return Prior(tuple((int(row.id_hash), int(row.day)) for row in ids), pickups)

    def month(self, stream: str, month: str,
              live: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The month's rows of worker group `stream` (its app id) as `GET /months/{month}`
        gives them, one per village: the sum
        over epochs, where a `live` row (a worker's, carrying its epoch) stands in for the
        ledger's row of the same epoch (the ledger trails the worker by a second). A village
        with no row for a month the stream has reached (a row of it or a later month, or a
        live one) but holding waste from before gets its quiet month's row
        (`streams.months.carried_row`) from its latest earlier row: its stock is part of
        what its township had to recover."""
        t = ledger_months.c
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(t.village_id, t.epoch, t.hub_id, t.figures)
                .where(t.stream == stream, t.month == month)
            ).all()
            reached = conn.execute(
                select(t.month).where(t.stream == stream, t.month >= month).limit(1)
            ).first() is not None or bool(live)
            before = self._latest_before(conn, stream, month) if reached else []
        parts: dict[tuple[str, str], dict[str, Any]] = {}
        hubs: dict[str, str] = {}
        for vid, epoch, hub, figures in stored:
            parts[(str(vid), str(epoch))] = orjson.loads(str(figures))
            hubs[str(vid)] = str(hub)
        present = {vid for vid, _epoch in parts} | {row["village_id"] for row in live}
        for vid, epoch, hub, figures in before:
            # a quiet month: no row in any epoch, but what the village held at the end of its
            # latest month with one is still there
            if str(vid) in present:
                continue
            row = carried_row({**orjson.loads(str(figures)), "village_id": str(vid),
                               "epoch": str(epoch), "hub_id": str(hub)})
            if row is not None:
                parts[(str(vid), str(epoch))] = row
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

    def epochs(self, stream: str, month: str) -> dict[str, set[str]]:
        """The epochs (lives of a village's state) the ledger holds rows of for `month`."""
        t = ledger_months.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.village_id, t.epoch)
                                .where(t.stream == stream, t.month == month)).all()
        out: dict[str, set[str]] = {}
        for vid, epoch in rows:
            out.setdefault(str(vid), set()).add(str(epoch))
        return out

    @staticmethod
    def _latest_before(conn: Any, stream: str, month: str) -> list[Any]:
        """Each village's row of its latest month before `month`, of the epoch written
        last in that month. One row, not one per epoch: an epoch whose state the broker
        lost is never written again, and carried on it would add its old stock to every
        month after (40 kg collected by the next epoch in November, still on hand in
        December: a ratio of 0.024 for 1.0)."""
        t = ledger_months.c
        rows = conn.execute(
            select(t.village_id, t.epoch, t.hub_id, t.figures, t.month, t.updated_at)
            .where(t.stream == stream, t.month < month)
        ).all()
        latest: dict[str, Any] = {}
        for row in rows:
            vid = str(row.village_id)
            seen = latest.get(vid)
            if seen is None or (row.month, row.updated_at) > (seen.month, seen.updated_at):
                latest[vid] = row
        return [(r.village_id, r.epoch, r.hub_id, r.figures)
                for _vid, r in sorted(latest.items())]

    def close(self) -> None:
        self.engine.dispose()
