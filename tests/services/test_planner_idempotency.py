"""Idempotency-Key on POST /v1/plans: a submission sent again (a client retrying after a
timeout it cannot see through) gets the job the first made, not a second solve."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner

from services.cli import cli
from services.planner import JobStore
from services.planner.store import IDEMPOTENCY_TTL_S, KeyReused
from tests.services.helpers import TINY, TOPICS

BODY = {"scenario": TINY, "options": {"time_limit_s": 20}}


@pytest.mark.slow
def test_a_key_sent_again_gets_its_job_and_queues_nothing(planner_env, fake_kafka) -> None:
    client = planner_env["client"]
    first = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "run-42"})
    again = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "run-42"})
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(fake_kafka.records[TOPICS.plan_requests]) == 1
    # the structured-field spelling ("…") names the same key
    quoted = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": '"run-42"'})
    assert quoted.json()["job_id"] == first.json()["job_id"]
    # without a key each submission is a job of its own
    a = client.post("/v1/plans", json=BODY).json()["job_id"]
    b = client.post("/v1/plans", json=BODY).json()["job_id"]
    assert len({a, b, first.json()["job_id"]}) == 3
    # the replay shows the job as it is now
    planner_env["run_queued"]()
    done = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "run-42"}).json()
    assert done["job_id"] == first.json()["job_id"] and done["status"] == "done"


def test_a_key_reused_for_another_request_is_refused(planner_env, fake_kafka) -> None:
    client = planner_env["client"]
    first = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "k1"}).json()
    other = {"scenario": TINY, "options": {"time_limit_s": 25}}
    resp = client.post("/v1/plans", json=other, headers={"Idempotency-Key": "k1"})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "idempotency_key_reused"
    assert body["message"].startswith("Idempotency-Key: ") and first["job_id"] in body["message"]
    assert len(fake_kafka.records[TOPICS.plan_requests]) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a\tb"])
def test_a_bad_key_is_a_400_naming_the_header(planner_env, key) -> None:
    resp = planner_env["client"].post(
        "/v1/plans", json=BODY, headers={"Idempotency-Key": key.encode("utf-8")})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_idempotency_key"
    assert resp.json()["message"].startswith("Idempotency-Key: ")


def test_keys_are_per_planner(planner_env) -> None:
    client = planner_env["client"]
    _, other_token = planner_env["tokens"].add("planner", "analyst")
    mine = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "same"}).json()
    theirs = client.post("/v1/plans", json=BODY, headers={
        "Idempotency-Key": "same", "Authorization": f"Bearer {other_token}"})
    assert theirs.status_code == 202 and theirs.json()["job_id"] != mine["job_id"]


def test_a_job_that_could_not_be_queued_frees_its_key(planner_env, fake_kafka) -> None:
    client = planner_env["client"]
    fake_kafka.refuse = RuntimeError("broker gone")
    failed = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "k"})
    assert failed.status_code == 503
    fake_kafka.refuse = None
    fake_kafka.down = None
    ok = client.post("/v1/plans", json=BODY, headers={"Idempotency-Key": "k"})
    assert ok.status_code == 202 and "idempotent-replayed" not in ok.headers
    assert len(fake_kafka.records[TOPICS.plan_requests]) == 1
    # the job that could not be queued is kept, failed, not deleted: a retry racing with
    # the first request may have been answered with it, and must not find a 404
    jobs = {j["job_id"]: j for j in client.get("/v1/plans").json()["jobs"]}
    [gone] = [j for j in jobs if j != ok.json()["job_id"]]
    assert gone in failed.json()["message"] and jobs[gone]["status"] == "failed"
    assert "could not be queued" in client.get(f"/v1/plans/{gone}").json()["error"]


def test_store_keys_expire_and_race_to_one_job(tmp_path) -> None:
    store = JobStore(f"sqlite:///{tmp_path}/p.db")
    job, created = store.create_keyed({"a": 1}, {}, "scenario", "ops", "k", "f1", now=1000.0)
    assert created
    assert store.create_keyed({"a": 1}, {}, "scenario", "ops", "k", "f1",
                              now=1000.0 + IDEMPOTENCY_TTL_S - 1) == (job, False)
    with pytest.raises(KeyReused) as reused:
        store.create_keyed({"a": 2}, {}, "scenario", "ops", "k", "f2", now=1001.0)
    assert reused.value.job_id == job
    later, created = store.create_keyed({"a": 2}, {}, "scenario", "ops", "k", "f2",
                                        now=1000.0 + IDEMPOTENCY_TTL_S + 1)
    assert created and later != job
    # eight requests racing with one fresh key make one job
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        results.append(store.create_keyed({"a": 3}, {}, "scenario", "ops", "race", "f"))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    store.close()


def test_cli_submit_retries_a_lost_answer_with_the_same_key(planner_env, fake_kafka,
                                                             monkeypatch, tmp_path) -> None:
    """The first answer is lost after the service made the job (a read timeout): the CLI
    sends the request again with the same key and prints the one job."""
    app_client = planner_env["client"]
    seen: list[str | None] = []

    def transport(request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type", "idempotency-key")}
        resp = app_client.request(request.method, request.url.raw_path.decode("ascii"),
                                  content=request.content, headers=headers)
        if request.method == "POST":
            seen.append(request.headers.get("idempotency-key"))
            if len(seen) == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(resp.status_code, content=resp.content, headers=resp.headers)

    real = httpx.Client

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(transport)
        return real(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
    monkeypatch.setattr("services.cli.plan.time.sleep", lambda _s: None)
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", planner_env["token"])
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    out = CliRunner().invoke(cli, ["plan", "submit", str(scenario), "--json"])
    assert out.exit_code == 0, out.output
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0]
    assert "trying again" in out.stderr
    assert len(fake_kafka.records[TOPICS.plan_requests]) == 1
    [listed] = app_client.get("/v1/plans").json()["jobs"]
    assert orjson.loads(out.stdout)["job_id"] == listed["job_id"]
