"""The hub ingestion gateway (``packloop gateway``)."""

from services.gateway.app import create_app
from services.gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
