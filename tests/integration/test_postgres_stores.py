"""The job and token stores on a real PostgreSQL server (the multi-machine deployment path).

SQLite is what the other tests use; these run the same store behaviour through the
`postgresql+psycopg` driver, where column types, lengths, transactions and concurrent
writers behave differently. Nothing is faked: the server is the ``postgres_server``
fixture (``fixtures.py``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from services.auth.tokens import TokenStore
from services.gateway.webhook_store import WebhookStore
from services.planner import JobStore, PlannerConfig, create_app
from services.planner.store import CANCELLED, DONE, FAILED, QUEUED, RUNNING
from services.settings import Settings
from streams.consume import read_topic
from tests.helpers import WaitTimeout
from tests.integration.helpers import start_planner_worker, terminate
from tests.services.helpers import TINY, wait_for_job


def test_the_fixture_gives_a_real_postgresql_server(postgres_url: str) -> None:
    """The stores below must really talk to PostgreSQL, not fall back to anything else."""
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert engine.dialect.name == "postgresql" and engine.driver == "psycopg"
        assert conn.execute(text("select version()")).scalar().startswith("PostgreSQL ")
        assert conn.execute(text("show listen_addresses")).scalar() == "127.0.0.1"
    engine.dispose()


def test_job_store_lifecycle_and_conditional_updates(pg_db_url: str) -> None:
    """Create → claim → renew → finish; a second claim, a duplicate finish and a late cancel
    change nothing; an expired lease is handed over and the old owner loses it."""
    store = JobStore(pg_db_url)
    assert store.engine.dialect.name == "postgresql"
    scenario = {"name": "tiny", "nested": {"ü": [1, 2.5, None]}}
    job = store.create(scenario, {"time_limit_s": 5}, "scenario", "ops", name="n1",
                       inputs={"from": "state"})
    row = store.get(job, ("scenario", "inputs"))
    assert row["status"] == QUEUED and row["attempts"] == 0 and row["published"] == 0
    assert row["scenario"] == scenario and row["inputs"] == {"from": "state"}
    assert row["options"] == {"time_limit_s": 5} and row["submitted_by"] == "ops"
    assert store.list() == [{"job_id": job, "status": QUEUED, "name": "n1",
                             "source": "scenario", "created_at": row["created_at"],
                             "finished_at": None}]

    assert store.claim(job, "w1", lease_s=60)
    assert not store.claim(job, "w2", lease_s=60)  # live lease: no second run
    running = store.get(job)
    assert running["status"] == RUNNING and running["worker_id"] == "w1"
    assert running["attempts"] == 1 and running["started_at"] >= row["created_at"]
    assert store.renew(job, "w1", 60, progress={"incumbent": 3.0, "gap": float("inf")})
    assert store.get(job)["progress"] == {"incumbent": 3.0, "gap": None}
    assert not store.renew(job, "w2", 60)  # not the lease holder
    assert store.finish(job, "w1", DONE, result={"objective": 1.0}, report="<html>r</html>",
                        summary={"objective": 1.0})
    assert not store.finish(job, "w2", DONE, result={"objective": 2.0})  # duplicate run
    assert not store.finish(job, "w1", FAILED, error="late")  # first finish wins
    done = store.get(job, ("result", "report"))
    assert done["status"] == DONE and done["result"] == {"objective": 1.0}
    assert done["report"] == "<html>r</html>" and done["error"] is None
    assert done["lease_expires_at"] is None and done["finished_at"] >= done["started_at"]
    assert not store.cancel(job)  # finished jobs stay finished
    assert store.unpublished() == [job]
    store.mark_published(job)
    assert store.unpublished() == []

    # an expired lease is taken over; started_at keeps the first start
    other = store.create({"a": 2}, {}, "scenario", "ops")
    assert store.claim(other, "w1", lease_s=-1)
    first_start = store.get(other)["started_at"]
    assert store.expired() == [other]
    assert store.claim(other, "w2", lease_s=60)
    assert store.expired() == []
    assert not store.renew(other, "w1", 60)  # the old owner lost it
    assert not store.release(other, "w1")
    took_over = store.get(other)
    assert took_over["attempts"] == 2 and took_over["worker_id"] == "w2"
    assert took_over["started_at"] == first_start
    assert store.cancel(other) and store.get(other)["status"] == CANCELLED
    assert not store.cancel(other)
    assert not store.renew(other, "w2", 60)  # cancel ends the lease
    assert not store.finish(other, "w2", DONE, result={})
    assert store.get(other)["status"] == CANCELLED

    # a stopping worker hands its job back; a queued job can be cancelled
    third = store.create({"a": 3}, {}, "scenario", None)
    assert store.claim(third, "w3", lease_s=60) and store.release(third, "w3")
    back = store.get(third)
    assert back["status"] == QUEUED and back["worker_id"] is None
    assert store.cancel(third) and store.get(third)["status"] == CANCELLED
    store.delete(third)
    assert store.get(third) is None and store.get("plan-missing") is None
    assert [j["job_id"] for j in store.list(status=CANCELLED)] == [other]

    snap = store.metrics_snapshot()
    assert snap["counts"] == {QUEUED: 0, RUNNING: 0, DONE: 1, FAILED: 0, CANCELLED: 1}
    assert snap["duration_count"] == 1
    assert snap["duration_sum"] == pytest.approx(done["finished_at"] - done["started_at"])
    assert all(n == 1 for _, n in snap["duration_buckets"])
    assert snap["last_success"] == done["finished_at"]
    assert snap["last_summary"] == {"objective": 1.0}
    store.close()


def _race(store: JobStore, job: str, racers: int) -> tuple[dict[str, bool], dict[str, bool]]:
    """Every racer claims ``job`` at once, then every racer tries to finish it at once."""
    barrier = threading.Barrier(racers)
    claims: dict[str, bool] = {}
    finishes: dict[str, bool] = {}

    def run(worker: str) -> None:
        barrier.wait()
        claims[worker] = store.claim(job, worker, lease_s=60)
        barrier.wait()
        finishes[worker] = store.finish(job, worker, DONE, result={"by": worker})

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return claims, finishes


def test_concurrent_claims_and_finishes_have_one_winner(pg_db_url: str) -> None:
    """Many workers race for one job on separate connections (READ COMMITTED): exactly one
    claim and one finish may succeed, and the stored result is the winner's."""
    store = JobStore(pg_db_url)
    for _ in range(3):
        job = store.create({"a": 1}, {}, "scenario", "ops")
        claims, finishes = _race(store, job, racers=8)
        assert len(claims) == len(finishes) == 8, (claims, finishes)
        assert sum(claims.values()) == 1, claims
        assert sum(finishes.values()) == 1, finishes
        [winner] = [w for w, ok in finishes.items() if ok]
        final = store.get(job, ("result",))
        assert final["result"] == {"by": winner} and final["worker_id"] == winner
        assert final["attempts"] == 1
    store.close()


def test_stores_start_together_on_an_empty_database(pg_db_url: str) -> None:
    """Gateway, planner API and workers start at once against a new database (e.g. compose
    up): each creates the tables it needs, and none may fail because another did first."""
    starters = 6
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []
    opened: list[Any] = []

    def start(i: int) -> None:
        barrier.wait()
        try:
            opened.append(JobStore(pg_db_url) if i % 2 else TokenStore(pg_db_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for store in opened:
        store.close()
    assert not errors, [repr(e)[:300] for e in errors]
    engine = create_engine(pg_db_url)
    assert {"plan_jobs", "api_tokens", "hub_webhooks"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_input_postgresql_cannot_store_is_handled_as_on_sqlite(pg_db_url: str) -> None:
    """PostgreSQL refuses NUL characters in text and over-long VARCHARs where SQLite stores
    them: a scenario named with a NUL (JSON allows it) must not fail the submit or the
    worker's finish, and an over-long token owner is refused before the database."""
    jobs = JobStore(pg_db_url)
    job = jobs.create({"name": "a\x00b"}, {}, "scenario", "ops", name="tiny\x00run")
    assert jobs.get(job)["name"] == "tinyrun"
    assert jobs.get(job, ("scenario",))["scenario"] == {"name": "a\x00b"}  # JSON escapes it
    assert jobs.claim(job, "w1", lease_s=60)
    assert jobs.finish(job, "w1", FAILED, error="bad\x00input", report="<p>\x00</p>")
    failed = jobs.get(job, ("report",))
    assert failed["error"] == "badinput" and failed["report"] == "<p></p>"
    jobs.close()
    tokens = TokenStore(pg_db_url)
    with pytest.raises(ValueError, match="128"):
        tokens.add("planner", "o" * 129)
    _, token = tokens.add("planner", "o" * 128)
    assert tokens.authenticate("planner", token).owner == "o" * 128
    tokens.close()


def test_token_store_add_verify_list_revoke_hash_only(pg_db_url: str) -> None:
    """Tokens work the same on PostgreSQL, and only a keyed hash of each is stored."""
    pepper = "pepper-for-tests"
    store = TokenStore(pg_db_url, pepper=pepper)
    info, token = store.add("planner", "ops", label="laptop")
    hub, hub_token = store.add("hub", "H01")
    assert token.startswith(f"plk_{info.token_id}_")
    seen = store.authenticate("planner", token)
    assert seen is not None and seen.token_id == info.token_id and seen.owner == "ops"
    assert store.authenticate("hub", token) is None  # wrong kind
    assert store.authenticate("planner", token + "x") is None
    assert store.authenticate("planner", f"plk_nosuchid_{token.split('_', 2)[2]}") is None
    assert store.authenticate("hub", hub_token).owner == "H01"

    # only the hash is in the database: no column holds the token or its secret part
    engine = create_engine(pg_db_url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("select * from api_tokens"))]
    engine.dispose()
    assert len(rows) == 2
    stored = {r["token_id"]: r for r in rows}
    secret = token.split("_", 2)[2]
    for value in stored[info.token_id].values():
        assert not (isinstance(value, str) and (token in value or secret in value))
    import hmac

    assert stored[info.token_id]["hash"] == hmac.new(
        pepper.encode(), token.encode(), hashlib.sha256).hexdigest()
    assert stored[info.token_id]["last_used_at"] is not None  # touched on use

    listed = store.list("planner")
    assert [(t.token_id, t.owner, t.label, t.active) for t in listed] == [
        (info.token_id, "ops", "laptop", True)]
    assert [t.token_id for t in store.list("hub", owner="H01")] == [hub.token_id]
    assert store.list("hub", owner="H02") == []

    revoked = store.revoke("planner", info.token_id)
    assert revoked is not None and not revoked.active
    again = store.revoke("planner", info.token_id)
    assert again.revoked_at == revoked.revoked_at  # the first revocation time is kept
    assert store.revoke("hub", info.token_id) is None  # wrong kind
    assert store.authenticate("planner", token) is None
    assert store.list("planner", include_inactive=False) == []
    assert store.authenticate("hub", hub_token) is not None  # others unaffected

    hooks = WebhookStore(store.engine)
    url, secret_ = hooks.set("H01", "https://example.invalid/hook")
    assert hooks.get("H01")["secret"] == secret_
    _, newer = hooks.set("H01", url)
    assert newer != secret_ and hooks.get("H01")["secret"] == newer
    assert hooks.delete("H01") and hooks.get("H01") is None
    store.close()


def test_a_plan_job_end_to_end_with_postgresql(pg_db_url, kafka, topics, tmp_path,
                                               monkeypatch) -> None:
    """The planner API and a separate `packloop planner --no-api` worker process share jobs
    and tokens only through PostgreSQL (PACKLOOP_PLANNER_DB_URL, PACKLOOP_TOKEN_DB_URL)."""
    env = {"PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
           "PACKLOOP_TOPIC_PREFIX": topics.prefix, "PACKLOOP_PLANNER_DB_URL": pg_db_url,
           "PACKLOOP_TOKEN_DB_URL": pg_db_url, "PACKLOOP_PLANNER_LEASE_S": "8",
           "PACKLOOP_PLANNER_THREADS": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = PlannerConfig.from_settings(Settings())
    assert config.jobs.engine.dialect.name == "postgresql"
    assert config.tokens.engine.dialect.name == "postgresql"
    _, token = config.tokens.add("planner", "ops")
    log = tmp_path / "worker.log"
    worker = start_planner_worker({**os.environ, **env}, log)
    try:
        with TestClient(create_app(config)) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.get("/v1/plans", headers={"Authorization": "Bearer plk_x_y"}
                              ).status_code == 401
            # JSON allows NUL in strings; PostgreSQL text does not (name, report)
            scenario = {**TINY, "name": "tiny\u0000run"}
            resp = client.post("/v1/plans", json={"scenario": scenario,
                                                  "options": {"time_limit_s": 20}})
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            try:
                job = wait_for_job(client, job_id, timeout_s=120)
            except WaitTimeout as exc:
                raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
            assert job["status"] == DONE, (job, log.read_text()[-3000:])
            assert job["name"] == "tinyrun"
            assert job["attempts"] == 1 and job["worker_id"].split("-")[-2] == str(worker.pid)
            assert job["summary"]["kpis"]["joint"]["cost_cny"] > 0
            result = client.get(f"/v1/plans/{job_id}/result").json()
            assert result["status"] == job["summary"]["plan_status"] and result["trips"]
            report = client.get(f"/v1/plans/{job_id}/report").text
            assert "<html" in report.lower() and "Plan: tinyrun" in report
            assert [j["job_id"] for j in client.get("/v1/plans").json()["jobs"]] == [job_id]
            metrics = client.get("/metrics").text
            assert 'packloop_plan_jobs{status="done"} 1.0' in metrics
            assert "packloop_plan_duration_seconds_count 1.0" in metrics
            [published] = read_topic(kafka, topics.plan_results, expected=1)
            message = orjson.loads(published.value)
            assert message["job_id"] == job_id and message["status"] == DONE
    finally:
        terminate(worker)
        config.jobs.close()
        config.tokens.close()
    # the job row written by the worker process is what a fresh connection reads
    jobs = JobStore(pg_db_url)
    assert jobs.get(job_id)["status"] == DONE and jobs.unpublished() == []
    jobs.close()


def test_the_ledger_on_postgresql_keeps_the_highest_seq_and_adds_epochs(pg_db_url: str) -> None:
    """The ledger's upsert through PostgreSQL's ON CONFLICT: a replayed older row changes
    nothing, a newer one replaces, another epoch adds, another worker group stays apart."""
    from services.ledger import Ledger
    from streams.ledger import LedgerRow

    def row(epoch: str, seq: int, grams: int, stream: str = "w") -> LedgerRow:
        return LedgerRow(stream, "H01-V001", "H01", "2026-11", epoch, seq,
                         {"generated_grams": {"cardboard": grams}, "counts": {"parcels": seq}})

    ledger = Ledger(pg_db_url)
    ledger.write([row("a", 10, 2000)])
    ledger.write([row("a", 4, 800), row("a", 10, 2000)])
    ledger.write([row("b", 3, 600), row("a", 1, 1, stream="other")])
    [v] = Ledger(pg_db_url).month("w", "2026-11")["villages"]
    assert v["generated_grams"] == {"cardboard": 2600} and v["counts"] == {"parcels": 13}
    assert engine_dialect(ledger) == "postgresql"
    # event ids through ON CONFLICT DO NOTHING: a digest stored once, read back by day
    ids_row = LedgerRow("w", "H01-V001", "H01", "2026-11", "c", 1,
                        {"pickups": {"requested": 2}}, ((2**62 + 1, 300), (5, 299)))
    ledger.write([ids_row])
    ledger.write([ids_row])
    prior = ledger.prior("w", "H01-V001", 300)
    assert prior.ids == ((2**62 + 1, 300),) and prior.pickups_requested == 2
    ledger.close()


def engine_dialect(ledger: Any) -> str:
    return str(ledger.engine.dialect.name)
