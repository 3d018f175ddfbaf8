"""Services starting together on one empty SQLite file all get their tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect

from services.db import create_tables, make_engine
from services.planner.store import metadata, plan_jobs


def test_a_table_created_by_another_process_meanwhile_is_found(tmp_path) -> None:
    """Another process creates plan_jobs between this one's check and its CREATE TABLE:
    the CREATE fails with 'already exists', and a second pass finds the table."""
    url = f"sqlite:///{tmp_path}/plans.db"
    engine, rival = make_engine(url), make_engine(url)
    raced: list[bool] = []

    @event.listens_for(plan_jobs, "before_create")
    def rival_first(*_: Any, **__: Any) -> None:
        if not raced:
            raced.append(True)
            plan_jobs.create(rival)

    try:
        create_tables(engine, metadata)
    finally:
        event.remove(plan_jobs, "before_create", rival_first)
    assert raced == [True]
    assert "plan_jobs" in inspect(engine).get_table_names()
    engine.dispose()
    rival.dispose()


def test_a_new_file_locked_by_another_process_switching_to_wal_is_retried(tmp_path) -> None:
    """Two workers opening one new ledger file together: the loser's switch to WAL gets
    "database is locked" at once (SQLite's busy timeout does not cover it; measured 1 open
    in 60 with four processes). Here the first two connections fail that way: the tables
    are still created, and the engine works."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/ledger.db"
    engine = make_engine(url)
    failures: list[int] = []

    @event.listens_for(engine, "connect")
    def locked_twice(*_: Any) -> None:
        if len(failures) < 2:
            failures.append(1)
            raise sqlite3.OperationalError("database is locked")

    create_tables(engine, metadata)
    assert failures == [1, 1]
    assert "plan_jobs" in inspect(engine).get_table_names()
    engine.dispose()
