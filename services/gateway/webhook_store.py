"""Each hub's webhook: the URL its pickup notices go to and the secret that signs them.

Kept in the token database next to the hub tokens (same owner, same backups); the
gateway's routes register them, its webhook delivery reads them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from services.db import hub_webhooks, iso_utc


class WebhookStore:
    """Register, look up and remove hub webhooks; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the token database's (services.db.open_token_db)

    def set(self, hub_id: str, url: str) -> tuple[str, str]:
        """Register (or replace) a hub's webhook; returns (url, new signing secret)."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(hub_webhooks.delete().where(hub_webhooks.c.hub_id == hub_id))
            conn.execute(
                hub_webhooks.insert().values(hub_id=hub_id, url=url, secret=secret,
                                             created_at=now)
            )
        return url, secret

    def get(self, hub_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(hub_webhooks).where(hub_webhooks.c.hub_id == hub_id)
            ).first()
        if row is None:
            return None
        return {"hub_id": row.hub_id, "url": row.url, "secret": row.secret,
                "created_at": iso_utc(row.created_at)}

    def delete(self, hub_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(hub_webhooks.delete().where(hub_webhooks.c.hub_id == hub_id))
        return bool(result.rowcount)
