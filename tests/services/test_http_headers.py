"""The headers both HTTP services send on every response (services/http/headers.py)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from services.http.headers import HTML_POLICY
from services.reports.frontier import frontier_html
from tests.services.helpers import TINY, auth

HOSTILE = '<script>alert(1)</script><img src="https://attacker.example/x">'


def test_a_report_naming_a_hostile_hub_is_escaped_and_served_under_a_policy(
        planner_env: dict[str, Any]) -> None:
    """The report's text comes partly from the client's scenario: what it names is escaped,
    and the page is served so that a browser would run nothing from it even if it were
    not (before: no policy, no nosniff, and any site could frame it)."""
    client = planner_env["client"]
    scenario = copy.deepcopy(TINY)
    scenario["name"] = HOSTILE
    scenario["hubs"][0]["name"] = HOSTILE
    submitted = client.post("/v1/plans", json={"scenario": scenario,
                                               "options": {"time_limit_s": 20}})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    planner_env["run_queued"]()
    report = client.get(f"/v1/plans/{job['job_id']}/report")
    assert report.status_code == 200, report.text
    assert report.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;" in report.text  # the name is on the page, escaped
    assert "<script" not in report.text.lower() and "attacker.example/x\">" not in report.text
    assert report.headers["content-security-policy"] == HTML_POLICY
    assert report.headers["x-frame-options"] == "DENY"
    assert report.headers["x-content-type-options"] == "nosniff"
    # the policy suits the page: nothing in it needs a script or a fetch from elsewhere
    assert "src=\"http" not in report.text and "<link" not in report.text.lower()
    # JSON answers, errors included, are not sniffed either
    for path in ("/v1/plans", "/v1/plans/nope"):
        answer = client.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert "content-security-policy" not in answer.headers, path


def test_the_gateway_sends_nosniff_and_leaves_its_api_pages_working(make_client) -> None:
    client = make_client()
    refused = client.post("/v1/events", json={}, headers=auth("not-a-token"))
    assert refused.status_code == 401
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["referrer-policy"] == "no-referrer"
    docs = client.get("/docs")
    # Swagger UI loads its script from a CDN: the policy would break it
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_an_unhandled_error_s_500_carries_the_headers_too(make_client) -> None:
    """Starlette answers an exception no handler took in a layer outside the middleware
    added with add_middleware: that plain-text 500 went out without nosniff."""
    client = make_client()

    @client.app.get("/boom")  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("boom")

    client.app.middleware_stack = None  # type: ignore[attr-defined]  # rebuilt with the route
    answer = TestClient(client.app, raise_server_exceptions=False).get("/boom")
    assert answer.status_code == 500
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_the_frontier_report_escapes_the_scenario_name() -> None:
    """The frontier page (served as a frontier job's report) put the scenario's name into
    its title and heading as sent: `<script>` went through."""
    point = {"front": "single_use", "role": "cost-optimal", "cost_cny": 100.0,
             "single_use_grams": 5000.0, "co2e_kg": 10.0, "gap": 0.0, "status": "optimal"}
    page = frontier_html({"points": [point, {**point, "role": "waste-optimal",
                                             "cost_cny": 120.0, "single_use_grams": 1000.0}]},
                         HOSTILE)
    assert "&lt;script&gt;" in page and "<script" not in page.lower()
    assert "<svg" in page  # the chart is still markup, not escaped text
