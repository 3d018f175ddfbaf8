"""The hubs' dispatches (run sheets) as the gateway serves them, kept in the token database.

The embedded broker keeps nothing across a restart, so the gateway answers from its own
table, never from the topic. A (hub, date) keeps the first dispatch stored for it: the
same one again (a redelivery, the planner's retried publish) is a no-op, a different one
is rejected — a hub may already have loaded its vans by the first.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.db import hub_dispatches

log = logging.getLogger("packloop.gateway.dispatch")

Outcome = Literal["stored", "same", "rejected"]

#: what may differ between two publications of the same dispatch
VOLATILE = ("job_id", "planned_at")


#: fields added to the sheet after sheets were stored: left out of the fingerprint while
#: null, so a sheet stored before one existed matches itself delivered again after (a
#: review: a re-delivery across the upgrade came back "rejected", and DispatchRejected fired)
ADDED_LATER = ("no_plan",)


def digest(dispatch: dict[str, Any]) -> str:
    """SHA-256 of the dispatch's content: what the hub acts on, not which job said it."""
    content = {k: v for k, v in dispatch.items() if k not in VOLATILE
               and not (k in ADDED_LATER and v is None)}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


class DispatchStore:
    """Store and read dispatches; safe to share between threads and gateways."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the token database's (services.db.open_token_db)

    def put(self, dispatch: dict[str, Any]) -> Outcome:
        """Keep ``dispatch`` (a validated Dispatch as plain data) unless its (hub, date)
        has one already."""
        hub_id, day, fingerprint = dispatch["hub_id"], dispatch["date"], digest(dispatch)
        try:
            with self.engine.begin() as conn:
                conn.execute(hub_dispatches.insert().values(
                    hub_id=hub_id, date=day, digest=fingerprint, job_id=dispatch["job_id"],
                    body=orjson.dumps(dispatch).decode(), received_at=time.time()))
            return "stored"
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(select(hub_dispatches.c.digest, hub_dispatches.c.job_id).where(
                hub_dispatches.c.hub_id == hub_id, hub_dispatches.c.date == day)).first()
        if row is not None and row.digest == fingerprint:
            return "same"
        log.warning("dispatch of hub %s for %s from job %s rejected: a different one (job "
                    "%s) is already published", hub_id, day, dispatch["job_id"],
                    row.job_id if row else "?")
        return "rejected"

    def get(self, hub_id: str, day: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(hub_dispatches.c.body).where(
                hub_dispatches.c.hub_id == hub_id, hub_dispatches.c.date == day)).first()
        return orjson.loads(row.body) if row is not None else None
