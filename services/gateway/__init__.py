"""The hub ingestion gateway (``packloop gateway``)."""

from services.gateway.app import GatewayConfig, create_app

__all__ = ["GatewayConfig", "create_app"]
