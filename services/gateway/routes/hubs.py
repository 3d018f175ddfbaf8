"""``GET /v1/hubs/{hub_id}/villages``: the villages a hub may send events for, from the
network reference data the gateway checks events against (so a hub system can be set up
from the gateway alone, without a copy of the network file)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.auth.tokens import TokenInfo
from services.gateway.service import AUTH_ERRORS, Gateway
from services.http.openapi import error
from streams import Village


class VillageThresholds(BaseModel):
    outstanding_grams: int = Field(description="A pickup is requested at this much waste.")
    material_grams: dict[str, int] = Field(
        description="Per material: a pickup is requested at this much of it.")
    max_age_hours: float = Field(description="A pickup is requested when waste is this old.")


class VillageRow(BaseModel):
    village_id: str
    name: str
    lat: float
    lon: float
    thresholds: VillageThresholds


class HubVillages(BaseModel):
    hub_id: str
    hub_name: str
    count: int
    villages: list[VillageRow]


def village_row(village: Village) -> VillageRow:
    t = village.thresholds
    return VillageRow(
        village_id=village.village_id, name=village.name, lat=village.lat, lon=village.lon,
        thresholds=VillageThresholds(
            outstanding_grams=t.outstanding_grams,
            material_grams={str(m): g for m, g in t.material_grams.items()},
            max_age_hours=t.max_age_hours,
        ),
    )


def router(gw: Gateway) -> APIRouter:
    router = APIRouter()
    network = gw.config.network

    @router.get(
        "/v1/hubs/{hub_id}/villages",
        response_model=HubVillages,
        summary="The hub's villages (ids, names, positions, pickup thresholds)",
        responses={**AUTH_ERRORS, **error(403, "hub_id is not the token's hub."),
                   **error(404, "Unknown hub."),
                   **error(429, "Over the hub's rate limit (see Retry-After).")},
    )
    async def hub_villages(
        hub_id: Annotated[str, Path(min_length=1, max_length=128)],
        auth: TokenInfo = Depends(gw.hub_auth),  # noqa: B008
    ) -> Response:
        gw.rate_limit(auth.owner)
        gw.own_hub(hub_id, auth, "villages")
        hub = network.hubs.get(hub_id)
        rows = sorted((village_row(v) for v in network.villages.values()
                       if v.hub_id == hub_id), key=lambda r: r.village_id)
        return JSONResponse(HubVillages(hub_id=hub_id, hub_name=hub.name if hub else "",
                                        count=len(rows), villages=rows).model_dump())

    return router
