"""State queries over the worker's web server.

Village queries are routed to the worker that owns the village (Faust table
routing); hub, list and status queries are gathered from every worker (each
answers ``/local/...`` for the partitions it owns) and merged, so any worker
answers any query. Numbers are computed by pure functions over the state records
(:func:`village_summary`, :func:`local_status`, :func:`merge_status`), so the tests
check the figures without a web server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from streams.months import merge_months, month_rows_reached, valid_month
from streams.state import Limits, PartitionMarker, VillageState, iso, marker_key, snooze_until
from streams.state.times import month_key

if TYPE_CHECKING:
    from streams.worker import StreamsWorker

log = logging.getLogger("packloop.views")

CONTAINER_FIELDS = ("issued", "returned", "in_circulation", "damaged", "lost", "overdue")
#: the highest /villages page asked for: pages past the last are empty, not errors
MAX_PAGE = 1_000_000


# -- pure summaries -----------------------------------------------------------------------


def village_summary(state: VillageState) -> dict[str, Any]:
    """The status-contract form of one village."""
    op = state.open_pickup
    return {
        "generated_grams": dict(state.generated),
        "recovered_grams": dict(state.recovered),
        "outstanding_grams": state.outstanding,
        "over_collected_grams": state.over_collected,
        "open_pickup": op.pickup_id if op else None,
        # reusable containers out at the village (issued, not back, not lost): what a plan
        # from the state must expect to collect there
        "containers_out": {ct: pool.in_circulation for ct, pool in sorted(state.containers.items())
                           if pool.in_circulation > 0},
    }


def container_figures(state: VillageState, now: int | None, overdue_us: int) -> dict[str, dict]:
    out: dict[str, dict[str, int]] = {}
    for ct, pool in state.containers.items():
        out[ct] = {
            "issued": pool.issued,
            "returned": pool.returned,
            "in_circulation": pool.in_circulation,
            "damaged": pool.damaged,
            "lost": pool.lost,
            "overdue": pool.overdue(now, overdue_us) if now is not None else 0,
        }
    return out


def village_detail(
    state: VillageState, now: int | None, network: Any, overdue_us: int
) -> dict[str, Any]:
    """Everything about one village (``GET /villages/{id}``)."""
    detail = village_summary(state)
    op = state.open_pickup
    containers = container_figures(state, now, overdue_us)
    for figures in containers.values():
        figures["return_rate"] = (
            round(figures["returned"] / figures["issued"], 4) if figures["issued"] else None
        )
    issued = sum(c["issued"] for c in containers.values())
    returned = sum(c["returned"] for c in containers.values())
    windows = {}
    if now is not None:
        windows = {k: state.window(now, network.timezone, k) for k in ("day", "7d", "month")}
    detail.update(
        {
            "village_id": state.village_id,
            "hub_id": state.hub_id,
            "stream_time": iso(now),
            "last_event_at": iso(state.last_at),
            # the oldest uncollected waste (to the hour): collections take the oldest first
            "waste_since": iso(state.waste_since),
            "waste_age_hours": round((now - state.waste_since) / 3.6e9, 3)
            if now is not None and state.waste_since is not None
            else None,
            "windows": windows,
            "packaging_used_grams": {"down": dict(state.used_down), "up": dict(state.used_up)},
            "pickup": None
            if op is None
            else {
                "pickup_id": op.pickup_id,
                "requested_at": iso(op.requested_at),
                "reasons": op.reasons,
                "overdue": op.overdue,
            },
            "pickups": {
                "requested": state.pickups_requested,
                "open": 1 if op else 0,
                "overdue": state.pickups_overdue,
                "collected": state.pickups_collected,
                "cancelled": state.pickups_cancelled,
                # a cancel holds the next request back until then (or enough new waste)
                "snoozed_until": iso(
                    snooze_until(state, Limits.for_village(network, state.village_id))
                )
                if state.village_id in network.villages
                else None,
            },
            "containers": containers,
            "return_rate": round(returned / issued, 4) if issued else None,
            "events": {
                "applied": state.applied,
                "duplicates": state.duplicates,
                "dead_lettered": state.dead_lettered,
            },
        }
    )
    return detail


def _add_into(target: dict[str, int], source: dict[str, int]) -> None:
    for k, v in source.items():
        target[k] = target.get(k, 0) + v


def failure(web: Any, status: int, code: str, message: str) -> Any:
    """An error answer of the worker's views, in the shape the gateway and the planner
    answer with: ``{"error": code, "message": why}``."""
    return web.json({"error": code, "message": message}, status=status)


class Recovering(RuntimeError):
    """This worker's state is not whole yet (`Runtime.ready`): a gathered view waits."""


def unavailable(web: Any, exc: RuntimeError) -> Any:
    """503 for a gathered view: ``recovering`` while a worker restores its state, else
    ``unavailable`` (a worker that did not answer)."""
    code = "recovering" if isinstance(exc, Recovering) else "unavailable"
    return failure(web, 503, code, str(exc))


def local_status(
    villages: list[tuple[VillageState, int | None]],
    markers: list[PartitionMarker],
    overdue_us: int,
    village: str | None = None,
    hub: str | None = None,
) -> dict[str, Any]:
    """Status of a set of villages (with their partition's stream time); ``village`` or
    ``hub`` cut the villages and the hubs' containers, the event and pickup counters stay
    the worker's."""
    out_v: dict[str, Any] = {}
    hubs: dict[str, dict[str, Any]] = {}
    pickups = {"requested": 0, "open": 0, "overdue": 0, "cancelled": 0}
    events = {"applied": 0, "duplicates": 0, "dead_lettered": 0, "rerouted": 0}
    for state, now in villages:
        events["applied"] += state.applied
        events["duplicates"] += state.duplicates
        events["dead_lettered"] += state.dead_lettered
        pickups["requested"] += state.pickups_requested
        pickups["overdue"] += state.pickups_overdue
        pickups["cancelled"] += state.pickups_cancelled
        pickups["open"] += 1 if state.open_pickup else 0
        shown = (village is None or state.village_id == village) and (
            hub is None or state.hub_id == hub)
        if state.applied and shown:
            out_v[state.village_id] = village_summary(state)
        if state.containers and shown:
            entry = hubs.setdefault(state.hub_id, {"containers": {}})
            for ct, figs in container_figures(state, now, overdue_us).items():
                _add_into(
                    entry["containers"].setdefault(ct, dict.fromkeys(CONTAINER_FIELDS, 0)), figs
                )
    for m in markers:
        events["dead_lettered"] += m.dead_lettered
        events["rerouted"] += m.rerouted
    return {"villages": out_v, "hubs": hubs, "pickups": pickups, "events": events}


def merge_status(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "villages": {},
        "hubs": {},
        "pickups": {"requested": 0, "open": 0, "overdue": 0, "cancelled": 0},
        "events": {"applied": 0, "duplicates": 0, "dead_lettered": 0, "rerouted": 0},
    }
    for part in parts:
        merged["villages"].update(part.get("villages", {}))
        for hub_id, hub in part.get("hubs", {}).items():
            target = merged["hubs"].setdefault(hub_id, {"containers": {}})
            for ct, figs in hub.get("containers", {}).items():
                _add_into(
                    target["containers"].setdefault(ct, dict.fromkeys(CONTAINER_FIELDS, 0)), figs
                )
        _add_into(merged["pickups"], part.get("pickups", {}))
        _add_into(merged["events"], part.get("events", {}))
    merged["villages"] = dict(sorted(merged["villages"].items()))
    merged["hubs"] = dict(sorted(merged["hubs"].items()))
    return merged


# -- the worker's local view --------------------------------------------------------------


#: what a view answers (503) while the worker's state is being recovered
RECOVERING = ("this worker is recovering its state (partitions being assigned or its table "
              "restored from the changelog); ask again in a few seconds")


class LocalState:
    """Reads the table for the partitions this worker owns (never standby data)."""

    def __init__(self, worker: StreamsWorker) -> None:
        self.worker = worker
        self.runtime = worker.runtime
        net = worker.network
        self.overdue_us = int(net.container_overdue_days * 86_400_000_000)

    def ready(self) -> bool:
        return self.runtime.ready()

    def villages(self) -> list[tuple[VillageState, int | None]]:
        rt = self.runtime
        owned = rt.assigned
        out = []
        times: dict[int, int | None] = {}
        for key, value in list(self.worker.table.data.items()):
            if not isinstance(value, VillageState):
                continue
            p = rt.partition_of(key)
            if p not in owned:
                continue
            if p not in times:
                times[p] = rt.stream_time(p)
            proc = rt.processors.get(p)
            if proc is not None:  # the live object (same as the table's, normally)
                value = proc.villages.get(key, value)
            out.append((value, times[p]))
        return out

    def markers(self) -> list[PartitionMarker]:
        rt = self.runtime
        out = []
        for p in rt.assigned:
            proc = rt.processors.get(p)
            m = proc.marker if proc is not None else self.worker.table.data.get(marker_key(p))
            if isinstance(m, PartitionMarker):
                out.append(m)
        return out

    def status(self, village: str | None = None, hub: str | None = None) -> dict[str, Any]:
        part = local_status(self.villages(), self.markers(), self.overdue_us, village, hub)
        part["worker"] = {
            "url": self.worker.options.url,
            "partitions": sorted(self.runtime.assigned),
            "short_recoveries": self.runtime.short_recoveries,
        }
        return part

    def village(self, village_id: str) -> dict[str, Any] | None:
        rt = self.runtime
        p = rt.partition_of(village_id)
        proc = rt.processors.get(p)
        state = proc.villages.get(village_id) if proc is not None else None
        if state is None:
            value = self.worker.table.data.get(village_id)
            state = value if isinstance(value, VillageState) else None
        if state is None:
            return None
        return village_detail(state, rt.stream_time(p), self.worker.network, self.overdue_us)

    def village_rows(self, hub: str | None) -> list[dict[str, Any]]:
        rows = []
        for state, _now in self.villages():
            if hub is not None and state.hub_id != hub:
                continue
            if not state.applied:
                continue
            row = village_summary(state)
            row["village_id"] = state.village_id
            row["hub_id"] = state.hub_id
            rows.append(row)
        return rows

    def hub(self, hub_id: str) -> dict[str, Any]:
        containers: dict[str, dict[str, int]] = {}
        generated: dict[str, int] = {}
        recovered: dict[str, int] = {}
        used: dict[str, int] = {}
        villages = 0
        for state, now in self.villages():
            if state.hub_id != hub_id:
                continue
            villages += 1
            _add_into(generated, state.generated)
            _add_into(recovered, state.recovered)
            _add_into(used, state.used_down)
            _add_into(used, state.used_up)
            for ct, figs in container_figures(state, now, self.overdue_us).items():
                _add_into(containers.setdefault(ct, dict.fromkeys(CONTAINER_FIELDS, 0)), figs)
        return {
            "hub_id": hub_id,
            "villages": villages,
            "generated_grams": generated,
            "recovered_grams": recovered,
            "packaging_used_grams": used,
            "containers": containers,
        }

    def pickups(self, status: str | None) -> list[dict[str, Any]]:
        rows = []
        for state, _now in self.villages():
            op = state.open_pickup
            if op is None:
                continue
            if status == "overdue" and not op.overdue:
                continue
            rows.append(
                {
                    "pickup_id": op.pickup_id,
                    "village_id": state.village_id,
                    "hub_id": state.hub_id,
                    "requested_at": iso(op.requested_at),
                    "reasons": op.reasons,
                    "overdue": op.overdue,
                    "outstanding_grams": state.outstanding,
                }
            )
        return rows


def merge_hub(parts: list[dict[str, Any]], hub_id: str) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "hub_id": hub_id,
        "villages": 0,
        "generated_grams": {},
        "recovered_grams": {},
        "packaging_used_grams": {},
        "containers": {},
    }
    for part in parts:
        merged["villages"] += part.get("villages", 0)
        _add_into(merged["generated_grams"], part.get("generated_grams", {}))
        _add_into(merged["recovered_grams"], part.get("recovered_grams", {}))
        _add_into(merged["packaging_used_grams"], part.get("packaging_used_grams", {}))
        for ct, figs in part.get("containers", {}).items():
            _add_into(merged["containers"].setdefault(ct, dict.fromkeys(CONTAINER_FIELDS, 0)), figs)
    out: dict[str, int] = {}
    for m, g in merged["generated_grams"].items():
        d = g - merged["recovered_grams"].get(m, 0)
        if d > 0:
            out[m] = d
    merged["outstanding_grams"] = out
    for figs in merged["containers"].values():
        figs["return_rate"] = (
            round(figs["returned"] / figs["issued"], 4) if figs["issued"] else None
        )
    return merged


# -- web ----------------------------------------------------------------------------------


def register_views(worker: StreamsWorker) -> LocalState:
    """Serve the state queries on the worker's web server; returns the worker's local
    view, which ``/metrics`` reads too."""
    app = worker.app
    local = LocalState(worker)

    def _int(request: Any, name: str, default: int, most: int) -> int:
        """A whole-number query parameter from 1 to `most`. A bad one is a 400 naming it:
        it was taken as 1 silently, and one past 64 bits was a 500 and a traceback."""
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= most:
            raise ValueError(f"{name} must be a whole number from 1 to {most}, not {raw!r}")
        return value

    def recovering(web: Any) -> Any | None:
        """503 while this worker's state is not whole (`Runtime.ready`): an answer from part
        of a partition, or from none, reads as figures that went backwards."""
        if local.ready():
            return None
        return failure(web, 503, "recovering", RECOVERING)

    async def gather(path: str, local_fn: Any, params: dict[str, str] | None = None) -> list:
        """Ask every worker (this one directly) and return the list of answers; a worker
        still recovering its state fails the whole answer (Recovering, a RuntimeError like
        a worker that does not answer: the views' 503)."""
        if not local.ready():
            raise Recovering(RECOVERING)
        me = worker.options.url.rstrip("/")
        hosts: set[str] = set()
        try:
            hosts = {str(h).rstrip("/") for h in app.router.table_metadata(worker.table.name)}
        except Exception:
            hosts = set()
        hosts.discard(me)
        results = [local_fn()]

        async def fetch(host: str) -> Any:
            async with app.http_client.get(f"{host}{path}", params=params or {}) as resp:
                resp.raise_for_status()
                return await resp.json()

        if hosts:
            answers = await asyncio.gather(
                *(fetch(h) for h in sorted(hosts)), return_exceptions=True
            )
            for host, ans in zip(sorted(hosts), answers, strict=True):
                if isinstance(ans, BaseException):
                    log.warning("worker %s did not answer %s: %r", host, path, ans)
                    raise RuntimeError(f"worker {host} did not answer: {ans!r}")
                results.append(ans)
        return results

    def _params(request: Any) -> dict[str, str]:
        return {k: v for k, v in request.query.items()}

    @app.page("/local/status")
    async def local_status_view(web: Any, request: Any) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        return web.json(local.status(request.query.get("village"), request.query.get("hub")))

    @app.page("/status")
    async def status_view(web: Any, request: Any) -> Any:
        village = request.query.get("village")
        hub = request.query.get("hub")
        if village is not None and village not in worker.network.villages:
            return failure(web, 404, "unknown_village", f"unknown village {village!r}")
        if hub is not None and hub not in worker.network.hubs:
            return failure(web, 404, "unknown_hub", f"unknown hub {hub!r}")
        try:
            parts = await gather("/local/status", lambda: local.status(village, hub),
                                 _params(request))
        except RuntimeError as exc:
            return unavailable(web, exc)
        merged = merge_status(parts)
        merged["workers"] = [p.get("worker") for p in parts]
        return web.json(merged)

    @app.page("/villages/{village_id}")
    @app.table_route(table=worker.table, match_info="village_id")
    async def village_view(web: Any, request: Any, village_id: str) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        detail = local.village(village_id)
        if detail is None:
            if village_id not in worker.network.villages:
                return failure(web, 404, "unknown_village", f"unknown village {village_id!r}")
            return web.json({"village_id": village_id, "activity": False}, status=404)
        return web.json(detail)

    @app.page("/local/villages")
    async def local_villages_view(web: Any, request: Any) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        return web.json(local.village_rows(request.query.get("hub")))

    @app.page("/villages")
    async def villages_view(web: Any, request: Any) -> Any:
        hub = request.query.get("hub")
        if hub is not None and hub not in worker.network.hubs:
            return failure(web, 404, "unknown_hub", f"unknown hub {hub!r}")
        try:
            page = _int(request, "page", 1, MAX_PAGE)
            per_page = _int(request, "per_page", 50, 500)
        except ValueError as exc:
            return failure(web, 400, "invalid_parameter", str(exc))
        try:
            parts = await gather(
                "/local/villages", lambda: local.village_rows(hub), {"hub": hub} if hub else {}
            )
        except RuntimeError as exc:
            return unavailable(web, exc)
        rows = sorted((r for part in parts for r in part), key=lambda r: r["village_id"])
        start = (page - 1) * per_page
        return web.json(
            {
                "hub": hub,
                "page": page,
                "per_page": per_page,
                "total": len(rows),
                "pages": (len(rows) + per_page - 1) // per_page,
                "villages": rows[start : start + per_page],
            }
        )

    @app.page("/local/hubs/{hub_id}/containers")
    async def local_hub_view(web: Any, request: Any, hub_id: str) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        return web.json(local.hub(hub_id))

    async def hub_answer(web: Any, hub_id: str) -> Any:
        if hub_id not in worker.network.hubs:
            return failure(web, 404, "unknown_hub", f"unknown hub {hub_id!r}")
        try:
            parts = await gather(f"/local/hubs/{hub_id}/containers", lambda: local.hub(hub_id))
        except RuntimeError as exc:
            return unavailable(web, exc)
        return web.json(merge_hub(parts, hub_id))

    @app.page("/hubs/{hub_id}")
    async def hub_summary_view(web: Any, request: Any, hub_id: str) -> Any:
        return await hub_answer(web, hub_id)

    @app.page("/hubs/{hub_id}/containers")
    async def hub_view(web: Any, request: Any, hub_id: str) -> Any:
        return await hub_answer(web, hub_id)

    def local_month_rows(month: str) -> list[dict[str, Any]]:
        tz = worker.network.timezone
        return month_rows_reached(
            ((s, None if now is None else month_key(now, tz)) for s, now in local.villages()),
            month)

    @app.page("/local/months/{month}")
    async def local_months_view(web: Any, request: Any, month: str) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        return web.json(local_month_rows(month))

    @app.page("/months/{month}")
    async def months_view(web: Any, request: Any, month: str) -> Any:
        """The officer's monthly records of every village (gathered from all workers)."""
        if not valid_month(month):
            return failure(web, 400, "invalid_parameter", "month must be YYYY-MM")
        try:
            parts = await gather(
                f"/local/months/{month}", lambda: local_month_rows(month))
        except RuntimeError as exc:
            return unavailable(web, exc)
        merged = merge_months(parts, month)
        merged["timezone"] = str(worker.network.timezone)
        return web.json(merged)

    @app.page("/local/pickups")
    async def local_pickups_view(web: Any, request: Any) -> Any:
        if (busy := recovering(web)) is not None:
            return busy
        return web.json(local.pickups(request.query.get("status")))

    @app.page("/pickups")
    async def pickups_view(web: Any, request: Any) -> Any:
        status = request.query.get("status", "open")
        if status not in ("open", "overdue"):
            return failure(web, 400, "invalid_parameter", "status must be open or overdue")
        try:
            parts = await gather(
                "/local/pickups", lambda: local.pickups(status), {"status": status}
            )
        except RuntimeError as exc:
            return unavailable(web, exc)
        rows = sorted((r for part in parts for r in part), key=lambda r: r["pickup_id"])
        return web.json({"status": status, "count": len(rows), "pickups": rows})

    return local
