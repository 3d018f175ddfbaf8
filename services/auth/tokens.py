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
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update

from services.db import api_tokens, iso_utc, open_token_db

Kind = Literal["hub", "planner"]
TOKEN_PREFIX = "plk"
#: a longer presented token is malformed, never looked up
MAX_TOKEN_LENGTH = 256
#: the id part of a token; anything else is refused before the database is asked
TOKEN_ID = re.compile(r"[0-9a-f]{1,32}")


def token_id_of(token: str) -> str | None:
    """The id part of a whole token (``plk_<id>_<secret>``), None if it is not one.

    Shared by the check of a request and by ``revoke-token``, which takes a pasted token
    too: both must agree on where the id ends and the secret begins.
    """
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not TOKEN_ID.fullmatch(parts[1]):
        return None
    return parts[1]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    kind: str
    owner: str
    label: str | None
    created_at: float
    revoked_at: float | None
    last_used_at: float | None
    expires_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "kind": self.kind,
            "owner": self.owner,
            "label": self.label,
            "created_at": iso_utc(self.created_at),
            "revoked_at": iso_utc(self.revoked_at),
            "last_used_at": iso_utc(self.last_used_at),
            "expires_at": iso_utc(self.expires_at),
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of one token check, for the audit log and the failure metrics.

    ``outcome``: ok, missing, malformed, unknown (no such id), bad_secret, wrong_kind
    (a planner token at the gateway or the reverse), revoked or expired. ``token_id`` and ``owner``
    are known once the token names an existing id; neither is a secret.
    """

    info: TokenInfo | None
    outcome: str
    token_id: str | None = None
    owner: str | None = None


class TokenStore:
    """Create, check, list and revoke tokens; safe to share between threads."""

    #: last_used_at is written at most this often per token (a hot token is not a hot row)
    TOUCH_EVERY_S = 60.0

    def __init__(self, url: str, pepper: str | None = None) -> None:
        self.url = url
        self.engine = open_token_db(url)
        self._pepper = pepper.encode("utf-8") if pepper else None
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def _hash(self, token: str) -> str:
        data = token.encode("utf-8")
        if self._pepper:
            return hmac.new(self._pepper, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def add(self, kind: Kind, owner: str, label: str | None = None,
            expires_in_s: float | None = None) -> tuple[TokenInfo, str]:
        """Create a token; returns its record and the token itself (shown once, never stored).
        With ``expires_in_s`` it is refused from then on, as if revoked (a token handed to a
        hub's device or a contractor need not outlive the job)."""
        if len(owner) > 128:  # the column's limit (PostgreSQL enforces it, SQLite does not)
            raise ValueError("a token owner has at most 128 characters")
        if expires_in_s is not None and not expires_in_s > 0:
            raise ValueError("a token's lifetime must be more than 0 seconds")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        expires_at = None if expires_in_s is None else now + expires_in_s
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_id=token_id,
                    kind=kind,
                    owner=owner,
                    hash=self._hash(token),
                    label=label,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return TokenInfo(token_id, kind, owner, label, now, None, None, expires_at), token

    def authenticate(self, kind: Kind, token: str | None) -> TokenInfo | None:
        """The token's record if it is a live token of ``kind``; None otherwise."""
        return self.check(kind, token).info

    def check(self, kind: Kind, token: str | None) -> TokenCheck:
        """What ``token`` is, for a request of ``kind`` (see :class:`TokenCheck`)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return TokenCheck(None, "missing" if not token else "malformed")
        token_id = token_id_of(token)
        if token_id is None:
            return TokenCheck(None, "malformed")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).first()
        # compare even when the row is missing, so timing does not reveal valid ids
        expected = row.hash if row is not None else "0" * 64
        ok = hmac.compare_digest(expected, self._hash(token))
        if row is None:
            return TokenCheck(None, "unknown", token_id)
        if not ok:
            return TokenCheck(None, "bad_secret", token_id, row.owner)
        if row.kind != kind:
            return TokenCheck(None, "wrong_kind", token_id, row.owner)
        if row.revoked_at is not None:
            return TokenCheck(None, "revoked", token_id, row.owner)
        info = _info(row)
        if info.expired:
            return TokenCheck(None, "expired", token_id, row.owner)
        self._touch(token_id)
        return TokenCheck(info, "ok", token_id, row.owner)

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

    def list(self, kind: Kind, owner: str | None = None, include_inactive: bool = True
             ) -> list[TokenInfo]:
        """The tokens of ``kind``; without ``include_inactive`` only those that still
        pass (neither revoked nor expired)."""
        query = select(api_tokens).where(api_tokens.c.kind == kind)
        if owner is not None:
            query = query.where(api_tokens.c.owner == owner)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(api_tokens.c.owner, api_tokens.c.created_at))
            infos = [_info(r) for r in rows]
        return infos if include_inactive else [t for t in infos if t.active]

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
        return None if row is None else _info(row)

    def close(self) -> None:
        self.engine.dispose()


def _info(row: Any) -> TokenInfo:
    """A stored token's record (an ``api_tokens`` row), never its hash."""
    return TokenInfo(row.token_id, row.kind, row.owner, row.label, row.created_at,
                     row.revoked_at, row.last_used_at, row.expires_at)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None if absent or malformed)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
