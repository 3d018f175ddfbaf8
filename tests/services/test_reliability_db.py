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
