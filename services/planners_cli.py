"""`packloop planners add-token|list-tokens|revoke-token`: tokens of the planner service."""

from __future__ import annotations

from services.hubs_cli import token_group

planners = token_group("planner", "planner", "NAME")
