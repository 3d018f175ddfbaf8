"""The services' SQL databases: one way to open an engine and create tables, and the
tables of the token database.

The token database (``PACKLOOP_TOKEN_DB_URL``) holds the API tokens of hubs and planners,
the hubs' webhooks and the hubs' dispatches (run sheets) the gateway serves; the gateway
and the planner share it. The plan job store has its own database and tables
(:mod:`services.planner.store`).
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

#: PostgreSQL advisory lock held while creating tables ("pkloop")
SCHEMA_LOCK_KEY = 0x706B6C6F6F70

token_metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    token_metadata,
    Column("token_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False, index=True),
    Column("owner", String(128), nullable=False, index=True),
    Column("hash", String(64), nullable=False),
    Column("label", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    # null: the token lives until revoked (every token made before expiry existed)
    Column("expires_at", Float, nullable=True),
)

hub_webhooks = Table(
    "hub_webhooks",
    token_metadata,
    Column("hub_id", String(128), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

hub_dispatches = Table(
    "hub_dispatches",
    token_metadata,
    Column("hub_id", String(128), primary_key=True),
    Column("date", String(10), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout (several processes)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if path and path != ":memory:":
            _private_file(Path(path).expanduser())
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, future=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if path and path != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, future=True)


def _private_file(path: Path) -> None:
    """Create a new SQLite file, and a new folder for it, readable by the owner alone before
    SQLite would create it world-readable: tokens.db holds the hubs' webhook signing
    secrets, and SQLite gives a database's WAL and shared-memory files its mode. An
    existing file or folder keeps its mode (an operator may have chosen it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    except OSError:  # SQLite says why when it opens the file
        pass


#: what stands for a hidden secret in a printed URL (SQLAlchemy's own mark for a password)
HIDDEN = "***"
#: the user information of a URL: everything between the scheme and the last ``@``
_USERINFO = re.compile(r"://(?P<info>.*)@", re.DOTALL)
#: one ``key=value`` of a query string (or of a libpq ``key=value`` connection string)
_PARAM = re.compile(r"(?P<lead>(?:^|[?&;\s])(?P<key>[^=&;?#\s]+)=)(?P<value>[^&;#\s]*)")
#: keys whose values are secrets: libpq's password and sslpassword, MySQL's passwd, …
_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(unquote_plus(key)))


def redact_url(url: str) -> str:
    """``url`` fit to print: its password and the values of its secret query parameters
    hidden. A URL SQLAlchemy cannot parse is printed by people asking why it does not work,
    so its whole user information goes too, whatever it holds."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is still shown, less its secrets
        if "://" in url:
            shown = _USERINFO.sub(f"://{HIDDEN}@", url)
        elif "@" in url:
            # no "://" to find it by (`postgresql+psycopg//user:pw@db`, `user:pw@db`): all
            # before the last "@" goes, scheme included (the password was printed)
            shown = f"{HIDDEN}@{url.rsplit('@', 1)[1]}"
        else:
            shown = url
    return _PARAM.sub(lambda m: m["lead"] + HIDDEN if m["value"] and _secret_key(m["key"])
                      else m[0], shown)


def _secrets(url: str) -> list[str]:
    """The secrets written in ``url``, as written and decoded, longest first."""
    found: list[str] = []
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable: the user information below stands in
        password = None
    if password:
        found.append(str(password))
    info = _USERINFO.search(url)
    if info and ":" in info["info"]:
        found.append(info["info"].split(":", 1)[1])
    elif info is None and "@" in url:  # no "://": what `redact_url` hides stands in
        found.append(url.rsplit("@", 1)[0])
    found += [m["value"] for m in _PARAM.finditer(url) if m["value"] and _secret_key(m["key"])]
    found += [unquote_plus(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def cannot_open(what: str, variable: str, url: str, exc: BaseException) -> str:
    """One line on why database ``url`` (setting ``variable``) cannot be opened, without its
    secrets: a driver's message may quote its connection string, and runs over lines."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    reason = lines[0].strip() if lines else type(cause).__name__
    for secret in _secrets(url):
        reason = reason.replace(secret, HIDDEN)
    return f"cannot open {what} ({variable}={redact_url(url)}): {reason}"


#: a "database is locked" that came within this long of trying is a race lost, retried
LOCKED_AT_ONCE_S = 1.0


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create ``metadata``'s missing tables. Services starting together on an empty database
    race: on PostgreSQL the loser's CREATE TABLE would fail (unique violation in pg_type),
    so tables are created under an advisory lock; SQLite has no such lock, so a CREATE that
    lost ("already exists") is retried, and then finds the table. So is SQLite's "database
    is locked", which its busy timeout does not cover while a new file switches to WAL: two
    stream workers started together on a fresh ledger lost one of them 1 time in 60
    (four processes opening one new file, 15 rounds)."""
    attempts = 8
    for attempt in range(1, attempts + 1):
        t0 = time.monotonic()
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": SCHEMA_LOCK_KEY})
                metadata.create_all(conn)
            return
        except OperationalError as exc:
            # "locked" only when it came at once (the WAL switch's race); a lock held so
            # long that the busy timeout ran out is an error now, not after 8 more timeouts
            locked = ("database is locked" in str(exc)
                      and time.monotonic() - t0 < LOCKED_AT_ONCE_S)
            if not (locked or "already exists" in str(exc)) or attempt == attempts:
                raise
            time.sleep(min(1.0, 0.05 * 2 ** attempt))


def add_missing_columns(engine: Engine, table: Table) -> None:
    """Add the columns of ``table`` that a database created by an older packloop lacks (each
    has a server default). Two services may race: the loser's ALTER finds the column."""
    have = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for column in table.columns:
        if column.name in have:
            continue
        kind = column.type.compile(dialect=engine.dialect)
        default = getattr(column.server_default, "arg", None)
        clause = "" if default is None else f" NOT NULL DEFAULT '{default}'"
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} "  # noqa: S608
                                  f"{kind}{clause}"))
        except (OperationalError, ProgrammingError) as exc:
            if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                raise exc from None


def open_token_db(url: str) -> Engine:
    """An engine on the token database, its tables created when missing."""
    engine = make_engine(url)
    create_tables(engine, token_metadata)
    add_missing_columns(engine, api_tokens)  # expires_at, in a database made before it
    return engine


def iso_utc(ts: float | None) -> str | None:
    """A stored Unix time as the services show it: RFC 3339, whole seconds, ``Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
