"""Where packloop keeps its databases: one per-user data folder, whatever the current folder.

A default that names a file relative to the current folder splits the data between
folders: a token added in one is unknown to a gateway started in another, which then
answers every request with 401. So every database that is not given a URL of its own
is a SQLite file in one data folder: ``PACKLOOP_DATA_DIR`` when set, else the per-user
data folder of the platform (``platformdirs``; on Linux ``~/.local/share/packloop``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "packloop"

#: each database that defaults to a file in the data folder: its URL setting → the file
DEFAULT_DATABASES: Mapping[str, str] = {
    "token_db_url": "tokens.db",
    "planner_db_url": "plans.db",
    "ledger_db_url": "ledger.db",
}


def default_data_dir() -> Path:
    """The platform's per-user data folder for packloop (not created here)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resolve_data_dir(configured: str | os.PathLike[str] | None) -> Path:
    """``configured`` (``PACKLOOP_DATA_DIR``) made absolute, or the per-user default."""
    if configured is None or str(configured) == "":
        return default_data_dir()
    return Path(configured).expanduser().resolve()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def default_url(field: str, data_dir: Path) -> str:
    """The URL of database ``field`` when no URL of its own is set."""
    return sqlite_url(data_dir / DEFAULT_DATABASES[field])


def fill_default_databases(values: Any) -> Any:
    """The settings' raw values with every unset database URL pointing into the data
    folder (and the data folder itself made absolute)."""
    if not isinstance(values, dict):
        return values
    filled = dict(values)
    data_dir = resolve_data_dir(filled.get("data_dir"))
    if "data_dir" in filled:
        filled["data_dir"] = data_dir if filled["data_dir"] not in (None, "") else None
    for field in DEFAULT_DATABASES:
        if not filled.get(field):
            filled[field] = default_url(field, data_dir)
    return filled
