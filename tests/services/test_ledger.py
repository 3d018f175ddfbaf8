"""The officer's ledger (services.ledger): idempotent per (village, month, epoch), epochs
add up, a worker's live row stands in for the ledger's row of its own epoch."""

from __future__ import annotations

from pathlib import Path

from services.ledger import Ledger
from streams.ledger import LedgerRow


def _row(epoch: str, seq: int, cardboard: int, parcels: int) -> LedgerRow:
    figures = {"village_id": "H01-V001", "hub_id": "H01", "epoch": epoch,
               "generated_grams": {"cardboard": cardboard}, "recovered_grams": {},
               "counts": {"parcels": parcels}, "pickups": {"requested": 1}}
    return LedgerRow("packloop-worker", "H01-V001", "H01", "2026-11", epoch, seq, figures)


def _village(ledger: Ledger, live: list | None = None) -> dict:
    [v] = ledger.month("packloop-worker", "2026-11", live or [])["villages"]
    return v


def test_rewrites_replays_and_stale_rows_change_nothing(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.write([_row("a", 10, 2000, 10)])
    ledger.write([_row("a", 10, 2000, 10)])  # the same again (a retry)
    ledger.write([_row("a", 4, 800, 4)])  # an older one after it (a replay, a rebalance)
    v = _village(ledger)
    assert v["generated_grams"] == {"cardboard": 2000} and v["counts"] == {"parcels": 10}
    ledger.write([_row("a", 12, 2400, 12)])
    assert _village(ledger)["generated_grams"] == {"cardboard": 2400}


def test_a_new_epoch_adds_to_the_month_and_survives_reopening(tmp_path: Path) -> None:
    """After a broker restart the village's state starts again (a new epoch): its figures
    add to what the ledger holds for the month, also for a reader opened afterwards."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    Ledger(url).write([_row("a", 10, 2000, 10)])
    Ledger(url).write([_row("b", 3, 600, 3)])
    v = _village(Ledger(url))
    assert v["generated_grams"] == {"cardboard": 2600}
    assert v["counts"] == {"parcels": 13} and v["pickups"] == {"requested": 2}


def test_a_live_row_stands_in_for_its_own_epoch(tmp_path: Path) -> None:
    """The worker's row (a second ahead of the ledger) replaces the ledger's row of the
    same epoch and adds to the other epochs'."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.write([_row("a", 10, 2000, 10), _row("b", 3, 600, 3)])
    live = _row("b", 5, 1000, 5).figures
    v = _village(ledger, [live])
    assert v["generated_grams"] == {"cardboard": 3000} and v["counts"] == {"parcels": 15}


def test_worker_groups_sharing_a_database_stay_apart(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.write([_row("a", 10, 2000, 10)])
    assert ledger.month("other-worker", "2026-11")["villages"] == []


def _month_row(vid: str, month: str, seq: int, end: dict | None, generated: int = 0
               ) -> LedgerRow:
    figures = {"village_id": vid, "hub_id": "H01", "epoch": "a",
               "generated_grams": {"cardboard": generated} if generated else {},
               "recovered_grams": {}, "counts": {"parcels": 1}, "pickups": {},
               "on_hand_start_grams": {}}
    if end is not None:
        figures["on_hand_end_grams"] = end
    return LedgerRow("packloop-worker", vid, "H01", month, "a", seq, figures)


def test_a_quiet_month_carries_what_the_village_held_at_the_end_of_its_last_one(
        tmp_path: Path) -> None:
    """V001's last row is September's (it held 40 kg at its end), V002's October's (it
    held nothing), V003's predates the end figure. In November, which the stream has
    reached (V004 has a row), V001 still holds its 40 kg; December is not reached yet."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.write([
        _month_row("H01-V001", "2026-08", 3, {"cardboard": 10_000}, 10_000),
        _month_row("H01-V001", "2026-09", 5, {"cardboard": 40_000}, 30_000),
        _month_row("H01-V002", "2026-10", 2, {}, 1_000),
        _month_row("H01-V003", "2026-10", 2, None, 1_000),
        _month_row("H01-V004", "2026-11", 9, {"cardboard": 2_000}, 2_000),
    ])
    nov = {v["village_id"]: v for v in ledger.month("packloop-worker", "2026-11")["villages"]}
    assert set(nov) == {"H01-V001", "H01-V004"}
    v1 = nov["H01-V001"]
    assert v1["on_hand_start_grams"] == {"cardboard": 40_000}
    assert v1["generated_grams"] == {} and v1["counts"]["parcels"] == 0
    assert nov["H01-V004"]["generated_grams"] == {"cardboard": 2_000}
    assert ledger.month("packloop-worker", "2026-12")["villages"] == []
    # a worker's live row of December says the stream is there: the stock carries on
    live = _month_row("H01-V004", "2026-12", 10, {"cardboard": 2_000}).figures
    dec = {v["village_id"] for v in ledger.month("packloop-worker", "2026-12", [live])
           ["villages"]}
    assert dec == {"H01-V001", "H01-V004"}


def test_a_lost_epochs_stock_is_not_carried_past_the_next_one(tmp_path: Path) -> None:
    """Epoch a ended holding 40 kg in October; the broker lost it, and epoch b collected
    the 40 kg in November. Carrying every epoch's last row, November counted a's 40 kg on
    hand beside b's collection (ratio 0.0) and December still held it (0.024 for 1.0)."""
    from streams.officer_kpis import kpis

    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    a = _month_row("H01-V001", "2026-10", 5, {"cardboard": 40_000}, 40_000)
    b_figures = {"village_id": "H01-V001", "hub_id": "H01", "epoch": "b",
                 "generated_grams": {}, "recovered_grams": {"cardboard": 40_000},
                 "counts": {}, "pickups": {}, "on_hand_start_grams": {},
                 "on_hand_end_grams": {}}
    ledger.write([a])
    ledger.write([LedgerRow("packloop-worker", "H01-V001", "H01", "2026-11", "b", 3,
                            b_figures),
                  _month_row("H01-V004", "2026-12", 9, {"cardboard": 2_000}, 2_000)])
    nov = {v["village_id"]: v for v in ledger.month("packloop-worker", "2026-11")["villages"]}
    assert nov["H01-V001"]["on_hand_start_grams"] == {}
    dec = {v["village_id"]: v for v in ledger.month("packloop-worker", "2026-12")["villages"]}
    assert "H01-V001" not in dec  # b ended holding nothing
    assert kpis(dec["H01-V004"])["generated_grams"] == {"cardboard": 2_000}


def test_a_ledger_written_before_epochs_of_ids_gains_the_column(tmp_path: Path) -> None:
    """An older packloop's ledger has no epoch on its ids: opening it adds the column, and
    its ids count as an earlier life's for whichever epoch is starting."""
    import sqlite3

    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ledger_event_ids (stream VARCHAR(255) NOT NULL, village_id "
                     "VARCHAR(128) NOT NULL, id_hash BIGINT NOT NULL, day INTEGER NOT NULL, "
                     "PRIMARY KEY (stream, village_id, id_hash))")
        conn.execute("INSERT INTO ledger_event_ids VALUES ('packloop-worker', 'H01-V001', 7, 5)")
    ledger = Ledger(f"sqlite:///{path}")
    Ledger(f"sqlite:///{path}").close()  # a second opening finds the column
    row = _row("a", 1, 200, 1)
    ledger.write([LedgerRow(row.stream, row.village_id, row.hub_id, row.month, "a", 1,
                            row.figures, ((8, 6),))])
    assert sorted(ledger.prior("packloop-worker", "H01-V001", 0, "a").ids) == [(7, 5)]
    assert sorted(ledger.prior("packloop-worker", "H01-V001", 0, "b").ids) == [(7, 5), (8, 6)]
    ledger.close()
