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
