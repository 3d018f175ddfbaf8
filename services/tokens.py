"""API tokens for hubs (gateway) and planners (planner job service).

A token is shown once, when it is created, and only its hash is stored. The
token carries its own id (``plk_<id>_<secret>``) so a lookup is one indexed row
read, followed by a constant-time comparison of the hash. The hash is an
HMAC-SHA256 keyed with a server pepper (``PACKLOOP_TOKEN_PEPPER``) when one is
set, plain SHA-256 otherwise; a stolen database alone then does not let anyone
test guesses offline. Tokens never appear in a log line, a repr or an error.

Both services use the same store (one SQLite file by default, or any SQLAlchemy
URL, e.g. PostgreSQL) with ``kind`` telling hub tokens from planner tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine

Kind = Literal["hub", "planner"]
TOKEN_PREFIX = "plk"

metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False, index=True),
    Column("owner", String(128), nullable=False, index=True),
    Column("hash", String(64), nullable=False),
    Column("label", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
)

webhooks = Table(
    "hub_webhooks",
    metadata,
    Column("hub_id", String(128), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout (several processes)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
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


#: PostgreSQL advisory lock held while creating tables ("pkloop")
SCHEMA_LOCK_KEY = 0x706B6C6F6F70


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create ``metadata``'s missing tables. On PostgreSQL under an advisory lock: services
    starting together on an empty database would otherwise race, and the loser's CREATE
    TABLE fails (unique violation in pg_type) instead of finding the table."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        metadata.create_all(conn)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    kind: str
    owner: str
    label: str | None
    created_at: float
    revoked_at: float | None
    last_used_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "kind": self.kind,
            "owner": self.owner,
            "label": self.label,
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
            "last_used_at": _iso(self.last_used_at),
            "active": self.active,
        }


class TokenStore:
    """Create, check, list and revoke tokens; safe to share between threads."""

    #: last_used_at is written at most this often per token (a hot token is not a hot row)
    TOUCH_EVERY_S = 60.0

    def __init__(self, url: str, pepper: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._pepper = pepper.encode("utf-8") if pepper else None
        create_tables(self.engine, metadata)
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def _hash(self, token: str) -> str:
        data = token.encode("utf-8")
        if self._pepper:
            return hmac.new(self._pepper, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def add(self, kind: Kind, owner: str, label: str | None = None) -> tuple[TokenInfo, str]:
        """Create a token; returns its record and the token itself (shown once, never stored)."""
        if len(owner) > 128:  # the column's limit (PostgreSQL enforces it, SQLite does not)
            raise ValueError("a token owner has at most 128 characters")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_id=token_id,
                    kind=kind,
                    owner=owner,
                    hash=self._hash(token),
                    label=label,
                    created_at=now,
                )
            )
        return TokenInfo(token_id, kind, owner, label, now, None, None), token

    def authenticate(self, kind: Kind, token: str | None) -> TokenInfo | None:
        """The token's record if it is a live token of ``kind``; None otherwise."""
        if not token or len(token) > 256:
            return None
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return None
        token_id = parts[1]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).first()
        # compare even when the row is missing, so timing does not reveal valid ids
        expected = row.hash if row is not None else "0" * 64
        ok = hmac.compare_digest(expected, self._hash(token))
        if row is None or not ok or row.kind != kind or row.revoked_at is not None:
            return None
        self._touch(token_id)
        return TokenInfo(
            row.token_id, row.kind, row.owner, row.label, row.created_at, None, row.last_used_at
        )

    def _touch(self, token_id: str) -> None:
        now = time.time()
        with self._lock:
            if now - self._touched.get(token_id, 0.0) < self.TOUCH_EVERY_S:
                return
            self._touched[token_id] = now
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.token_id == token_id)
                    .values(last_used_at=now)
                )
        except Exception:  # noqa: BLE001 - bookkeeping must never fail a request
            pass

    def list(self, kind: Kind, owner: str | None = None, include_revoked: bool = True
             ) -> list[TokenInfo]:
        query = select(api_tokens).where(api_tokens.c.kind == kind)
        if owner is not None:
            query = query.where(api_tokens.c.owner == owner)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(api_tokens.c.owner, api_tokens.c.created_at))
            return [
                TokenInfo(
                    r.token_id, r.kind, r.owner, r.label, r.created_at, r.revoked_at,
                    r.last_used_at,
                )
                for r in rows
            ]

    def revoke(self, kind: Kind, token_id: str) -> TokenInfo | None:
        """Revoke a token by id; None if there is no such token of that kind.

        Revoking twice is harmless (the first revocation time is kept).
        """
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.token_id == token_id,
                    api_tokens.c.kind == kind,
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
            row = conn.execute(
                select(api_tokens).where(
                    api_tokens.c.token_id == token_id, api_tokens.c.kind == kind
                )
            ).first()
        if row is None:
            return None
        return TokenInfo(
            row.token_id, row.kind, row.owner, row.label, row.created_at, row.revoked_at,
            row.last_used_at,
        )

    # -- hub webhooks (kept next to the hub tokens: same database, same owner) -------------

    def set_webhook(self, hub_id: str, url: str) -> tuple[str, str]:
        """Register (or replace) a hub's webhook; returns (url, new signing secret)."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(webhooks.delete().where(webhooks.c.hub_id == hub_id))
            conn.execute(
                webhooks.insert().values(hub_id=hub_id, url=url, secret=secret, created_at=now)
            )
        return url, secret

    def get_webhook(self, hub_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.hub_id == hub_id)).first()
        if row is None:
            return None
        return {"hub_id": row.hub_id, "url": row.url, "secret": row.secret,
                "created_at": _iso(row.created_at)}

    def delete_webhook(self, hub_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(webhooks.delete().where(webhooks.c.hub_id == hub_id))
        return bool(result.rowcount)

    def close(self) -> None:
        self.engine.dispose()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None if absent or malformed)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
