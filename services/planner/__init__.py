"""The planner job service (``packloop planner``): HTTP API, job store, workers."""

from services.planner.app import PlannerConfig, create_app
from services.planner.store import JobStore
from services.planner.worker import PlannerWorker

__all__ = ["JobStore", "PlannerConfig", "PlannerWorker", "create_app"]
