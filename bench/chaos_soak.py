"""Chaos soak: the faults packloop survives one at a time, together and at random.

    python bench/chaos_soak.py --minutes 30 --seed 7 [--rate 50] [--out DIR]

On the embedded broker it runs two stream workers, the gateway, the planner API and two
planner workers, each a `packloop` process. Simulated hubs (the sample county's
simulator) post their events through the gateway at a steady rate, and a planner client
submits a small plan job every few seconds. Meanwhile, at random (seeded): kill -9 and
restart of a stream worker, of the gateway, of a planner worker; the broker frozen
(SIGSTOP) for 5-15 s; a burst of duplicate re-sends of accepted events. The first five
faults are one of each kind, so a one-minute run injects every kind.

At the end, once the workers have caught up, it checks:

* every accepted event applied exactly once: each village's applied-event count equals
  the distinct events the gateway accepted for it, nothing dead-lettered;
* no pickup requested twice: the soak sends no collections, so a village crosses its
  threshold at most once (a second request would be a replay counted twice);
* one stored outcome per plan job: every job final and ``done``, exactly one record per
  job id on plan-results;
* every kind of fault injected, and every fault survived (the process back and ready);
* the tallies of every village against the independent reference model: not run here,
  since the model lives in tests/streams/ and bench/ does not import tests/; the events
  the gateway accepted and the final village states are written to ``--out`` for
  ``python -m tests.integration.soak_check DIR``, which CI runs after a one-minute soak
  (tests/integration/test_chaos_soak.py).

It prints the faults by kind, the events accepted, and the p99 ingest latency (from the
POST that was accepted until the worker's state shows the event, sampled on one event in
ten by polling the village). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker, free_port
from services.planner.store import FINAL, JobStore
from services.simulation.simulator import SimulationConfig, Simulator
from streams import KafkaConnection, Network, Topics, create_topics, load_network, read_topic

REPO = Path(__file__).resolve().parents[1]
KINDS = ("worker_kill", "gateway_kill", "planner_kill", "broker_freeze", "duplicate_burst")
PARTITIONS = 4
BATCH = 25
PROBE_EVERY = 10
RECOVERY_S = 180.0


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def answers(url: str, ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200
            ) -> bool:
    try:
        return ok(httpx.get(url, timeout=5))
    except httpx.HTTPError:
        return False


def wait_for(condition: Callable[[], bool], timeout_s: float, stop: threading.Event | None = None
             ) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if stop is not None and stop.is_set():
            return False
        time.sleep(0.25)
    return condition()


def worker_ready(url: str) -> Callable[[], bool]:
    """A stream worker is ready when it answers with partitions assigned."""

    def owns_partitions(resp: httpx.Response) -> bool:
        return resp.status_code == 200 and bool(resp.json()["worker"]["partitions"])

    return lambda: answers(f"{url}/local/status", owns_partitions)


class Service:
    """One `packloop` command in its own process group: start, kill -9, stop, ready."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path,
                 ready: Callable[[], bool] | None = None) -> None:
        self.name, self.args, self.env, self.logs = name, args, env, logs
        self.ready = ready or self.alive
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Service:
        self.starts += 1
        log = open(self.logs / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args], cwd=REPO,
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


@dataclass
class Fault:
    kind: str
    target: str
    started: float
    survived: bool | None = None
    recovered_s: float | None = None


@dataclass
class Ingest:
    """Hubs posting the simulated county's events through the gateway."""

    gateway_url: str
    tokens: dict[str, str]
    rate: float
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_village: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refused: Counter[str] = field(default_factory=Counter)
    probes: list[tuple[str, int, float]] = field(default_factory=list)
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, client: httpx.Client, hub: str, batch: list[dict[str, Any]],
             stop: threading.Event) -> None:
        """POST ``batch`` until every event is accepted or refused (as a hub retries)."""
        pending, delay = list(batch), 0.2
        while pending and not stop.is_set():
            sent = time.monotonic()
            try:
                resp = client.post(f"{self.gateway_url}/v1/events", content=orjson.dumps(pending),
                                   headers={"Authorization": f"Bearer {self.tokens[hub]}",
                                            "Content-Type": "application/json"})
            except httpx.HTTPError:
                resp = None
            if resp is None or resp.status_code in (429, 503) or resp.status_code >= 500:
                time.sleep(delay)
                delay = min(2.0, delay * 2)
                continue
            if resp.status_code != 200:
                self.refused[f"HTTP {resp.status_code}"] += len(pending)
                return
            retry = []
            for event, result in zip(pending, resp.json()["results"], strict=True):
                if result["status"] == "accepted":
                    self._accepted(event, sent)
                elif result["status"] == "unavailable":
                    retry.append(event)
                else:
                    self.refused[result.get("reason") or "rejected"] += 1
            pending = retry

    def _accepted(self, event: dict[str, Any], sent: float) -> None:
        with self.lock:
            if event["event_id"] in self.accepted:
                return
            self.accepted[event["event_id"]] = event
            village = self.by_village[event["village_id"]]
            village.append(event["event_id"])
            if len(self.accepted) % PROBE_EVERY == 0:
                self.probes.append((event["village_id"], len(village), sent))

    def run(self, network: Network, seed: int, deadline: float, stop: threading.Event) -> None:
        """Feed every hub's queue at the steady rate until ``deadline``; one thread per hub
        posts its own events in order."""
        queues: dict[str, queue.Queue[dict[str, Any] | None]] = {
            hub: queue.Queue() for hub in self.tokens}
        threads = [threading.Thread(target=self._hub, args=(hub, q, stop), daemon=True)
                   for hub, q in queues.items()]
        for t in threads:
            t.start()
        sim = Simulator(network, SimulationConfig(days=7, scale=1.0, seed=seed))
        started = time.monotonic()
        for i, event in enumerate(sim.events()):
            now = time.monotonic()
            if now >= deadline or stop.is_set():
                break
            time.sleep(max(0.0, started + i / self.rate - now))
            queues[event["hub_id"]].put(event)
        for q in queues.values():
            q.put(None)
        for t in threads:
            t.join()

    def _hub(self, hub: str, q: queue.Queue[dict[str, Any] | None],
             stop: threading.Event) -> None:
        with httpx.Client(timeout=15) as client:
            done = False
            while not done:
                first = q.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < BATCH:
                    try:
                        item = q.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                self.post(client, hub, batch, stop)

    def resend(self, count: int, rng: random.Random, stop: threading.Event) -> bool:
        """Re-send ``count`` accepted events (duplicates); True when all were accepted."""
        wait_for(lambda: len(self.accepted) >= count, RECOVERY_S, stop)
        with self.lock:
            sample = rng.sample(list(self.accepted.values()),
                                     min(count, len(self.accepted)))
        by_hub: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in sample:
            by_hub[event["hub_id"]].append(event)
        before = sum(self.refused.values())
        with httpx.Client(timeout=15) as client:
            for hub, events in by_hub.items():
                for i in range(0, len(events), BATCH):
                    self.post(client, hub, events[i:i + BATCH], stop)
        self.resent += len(sample)
        return sum(self.refused.values()) == before and not stop.is_set()


class Soak:
    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.faults: list[Fault] = []
        self.busy: set[str] = set()
        self.down: set[str] = set()  # killed on purpose, being restarted
        self.crashes: list[tuple[float, str, str]] = []
        self.fault_lock = threading.Lock()
        # one pooled client for the many state reads (a client per request spent most of
        # the soak's own CPU setting up TLS contexts)
        self.http = httpx.Client(timeout=5)
        self.latencies: list[float] = []
        self.jobs: list[str] = []
        self.network = load_network()
        self.started = time.monotonic()

    # -- the cluster -----------------------------------------------------------------------

    def start(self, broker: EmbeddedBroker) -> None:
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.topics = Topics(f"soak{self.args.seed}-")
        self.kafka = KafkaConnection(bootstrap_servers=broker.bootstrap)
        create_topics(self.kafka, self.topics, partitions=PARTITIONS)
        tokens_url = f"sqlite:///{self.out}/tokens.db"
        self.jobs_url = f"sqlite:///{self.out}/plans.db"
        store = TokenStore(tokens_url)
        hub_tokens = {hub: store.add("hub", hub)[1] for hub in sorted(self.network.hubs)}
        self.planner_token = store.add("planner", "soak")[1]
        store.close()
        common = {"PACKLOOP_KAFKA_BOOTSTRAP": broker.bootstrap,
                  "PACKLOOP_TOPIC_PREFIX": self.topics.prefix,
                  "PACKLOOP_PARTITIONS": str(PARTITIONS), "PACKLOOP_DATA_DIR": str(self.out),
                  "PACKLOOP_TOKEN_DB_URL": tokens_url, "PACKLOOP_PLANNER_DB_URL": self.jobs_url,
                  "PACKLOOP_GATEWAY_WEBHOOKS": "false", "PACKLOOP_PLANNER_LEASE_S": "6"}
        self.workers = []
        for n in (1, 2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            self.workers.append(Service(
                f"worker-{n}", ["worker"],
                {**common, "PACKLOOP_WEB_PORT": str(port), "PACKLOOP_WORKER_URL": url,
                 "PACKLOOP_WORKER_GROUP_INSTANCE_ID": f"soak-worker-{n}"}, logs,
                ready=worker_ready(url)))
        self.worker_urls = [w.env["PACKLOOP_WORKER_URL"] for w in self.workers]
        gateway_port, planner_port = free_port(), free_port()
        self.gateway_url = f"http://127.0.0.1:{gateway_port}"
        self.planner_url = f"http://127.0.0.1:{planner_port}"
        self.gateway = Service("gateway", ["gateway", "--log-level", "warning"],
                               {**common, "PACKLOOP_GATEWAY_PORT": str(gateway_port),
                                "PACKLOOP_WORKER_URL": self.worker_urls[0]}, logs,
                               ready=lambda: answers(f"{self.gateway_url}/readyz"))
        self.planner_api = Service("planner-api", ["planner", "--workers", "0"],
                                   {**common, "PACKLOOP_PLANNER_PORT": str(planner_port)}, logs,
                                   ready=lambda: answers(f"{self.planner_url}/readyz"))
        self.planners = [Service(f"planner-{n}", ["planner", "--no-api", "--workers", "1"],
                                 common, logs) for n in (1, 2)]
        self.services = [*self.workers, self.gateway, self.planner_api, *self.planners]
        for service in self.services:
            service.start()
        for service in self.services:
            if not wait_for(service.ready, RECOVERY_S):
                raise SystemExit(f"{service.name} did not become ready: see {logs}")
        self.ingest = Ingest(self.gateway_url, hub_tokens, self.args.rate)

    def close(self) -> None:
        with self.fault_lock:  # no restart starts after this
            self.stop.set()
        if self.broker.is_running():
            self.broker.resume()
        for service in getattr(self, "services", []):
            service.stop()

    # -- faults ----------------------------------------------------------------------------

    def _restart(self, fault: Fault, service: Service, ready: Callable[[], bool],
                 rng: random.Random) -> None:
        with self.fault_lock:
            self.down.add(service.name)
        service.kill9()
        time.sleep(rng.uniform(0.5, 3.0))
        with self.fault_lock:
            if self.stop.is_set():  # the soak is closing: a restart now would outlive it
                return
            service.start()
        with self.fault_lock:
            self.down.discard(service.name)
        fault.survived = wait_for(ready, RECOVERY_S, self.stop)

    def supervise(self) -> None:
        """What compose's `restart: unless-stopped` and Kubernetes do: restart a service
        that exited on its own, and record it as a crash (with its last error line)."""
        exited: dict[str, float] = {}
        while not self.stop.wait(1.0):
            for service in self.services:
                with self.fault_lock:
                    if self.stop.is_set():
                        return
                    if service.name in self.down or service.alive():
                        continue
                    # restart after 5 s, as a supervisor's back-off would
                    if time.monotonic() - exited.setdefault(service.name, time.monotonic()) < 5:
                        continue
                    del exited[service.name]
                    log = self.out / "logs" / f"{service.name}-{service.starts}.log"
                    errors = [line for line in log.read_text("utf-8", "replace").splitlines()
                              if "Error" in line or "CRITICAL" in line]
                    self.crashes.append((round(time.monotonic() - self.started, 1),
                                         service.name, (errors or ["?"])[-1][-300:]))
                    service.start()

    def _inject(self, kind: str, seed: int) -> None:
        """One fault, drawn from its own generator (the schedule stays the seed's whatever
        the threads' timing)."""
        rng = random.Random(seed)
        fault = Fault(kind, "", time.monotonic())
        if kind == "worker_kill":
            service = rng.choice(self.workers)
            fault.target = service.name
            self._restart(fault, service, service.ready, rng)
        elif kind == "gateway_kill":
            fault.target = "gateway"
            self._restart(fault, self.gateway, self.gateway.ready, rng)
        elif kind == "planner_kill":
            service = rng.choice(self.planners)
            fault.target = service.name

            def stays_up(s: Service = service) -> bool:
                time.sleep(5)
                return s.alive()

            self._restart(fault, service, stays_up, rng)
        elif kind == "broker_freeze":
            frozen_s = rng.uniform(5, 15)
            fault.target = f"broker {frozen_s:.1f} s"
            self.broker.pause()
            self.stop.wait(frozen_s)
            self.broker.resume()
            fault.survived = wait_for(
                lambda: self.gateway.ready() and all(w.ready() for w in self.workers),
                RECOVERY_S, self.stop)
        else:
            count = rng.randint(50, 200)
            fault.target = f"{count} events"
            fault.survived = self.ingest.resend(count, rng, self.stop)
        fault.recovered_s = round(time.monotonic() - fault.started, 1)
        with self.fault_lock:
            self.faults.append(fault)
            self.busy.discard(kind)

    def inject_faults(self, deadline: float) -> list[threading.Thread]:
        order = list(KINDS)
        self.rng.shuffle(order)
        threads = []
        while (not self.stop.wait(self.rng.uniform(3, 9) if order
                                  else self.rng.uniform(*self.args.fault_gap_s))
               and time.monotonic() < deadline):
            with self.fault_lock:
                kind = order.pop(0) if order else self.rng.choice(KINDS)
                if kind in self.busy:
                    continue
                self.busy.add(kind)
            thread = threading.Thread(target=self._inject, daemon=True,
                                      args=(kind, self.rng.randrange(2**32)))
            thread.start()
            threads.append(thread)
        return threads

    # -- latency and plan jobs ---------------------------------------------------------------

    def village(self, village_id: str) -> dict[str, Any] | None:
        for url in self.worker_urls:
            try:
                resp = self.http.get(f"{url}/villages/{village_id}", timeout=5)
            except httpx.HTTPError:
                continue
            if resp.status_code == 200:
                return dict(resp.json())
        return None

    def measure_latency(self) -> None:
        """Resolve the sampled events' probes: seen once the village has applied as many
        events as had been accepted for it up to that event."""
        taken = 0
        pending: dict[str, list[tuple[int, float]]] = defaultdict(list)
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe") as pool:
            while not self.stop.is_set():
                with self.ingest.lock:
                    new = self.ingest.probes[taken:]
                taken += len(new)
                for village_id, k, sent in new:
                    pending[village_id].append((k, sent))
                villages = [v for v, probes in pending.items() if probes]
                for village_id, (applied, now) in zip(
                        villages, pool.map(self.applied_now, villages), strict=True):
                    waiting = []
                    for k, sent in pending[village_id]:
                        if applied >= k:
                            self.latencies.append(now - sent)
                        else:
                            waiting.append((k, sent))
                    pending[village_id] = waiting
                time.sleep(0.05)

    def applied_now(self, village_id: str) -> tuple[int, float]:
        """(events the village's state has applied, when that was read); -1 if no answer."""
        detail = self.village(village_id)
        return (detail["events"]["applied"] if detail else -1), time.monotonic()

    def submit_jobs(self, deadline: float) -> None:
        scenario = yaml.safe_load((REPO / "examples/scenarios/tiny.yaml").read_text("utf-8"))
        # a job's limit is its whole wall clock: the solve process's start (seconds while a
        # broker freezes and services restart), the report and the hand-over come out of it
        body = {"scenario": scenario, "options": {"time_limit_s": 20, "baselines": False}}
        headers = {"Authorization": f"Bearer {self.planner_token}"}
        while time.monotonic() < deadline and not self.stop.wait(self.args.job_every_s):
            try:
                resp = httpx.post(f"{self.planner_url}/v1/plans", json=body, headers=headers,
                                  timeout=30)
            except httpx.HTTPError:
                continue
            if resp.status_code == 202:
                self.jobs.append(resp.json()["job_id"])

    # -- the end ---------------------------------------------------------------------------

    def caught_up(self) -> bool:
        try:
            status = httpx.get(f"{self.worker_urls[0]}/status", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(status["events"]["applied"] >= len(self.ingest.accepted))

    def checks(self) -> list[tuple[str, str, str]]:
        results: list[tuple[str, str, str]] = []

        def check(name: str, ok: bool | None, detail: str) -> None:
            results.append((name, "NOT RUN" if ok is None else "PASS" if ok else "FAIL",
                            detail))

        caught_up = wait_for(self.caught_up, 300)
        states = {v: self.village(v) for v in sorted(self.ingest.by_village)}
        (self.out / "state.json").write_bytes(orjson.dumps(states, option=orjson.OPT_INDENT_2))
        with open(self.out / "accepted.jsonl", "wb") as out:
            for event in self.ingest.accepted.values():
                out.write(orjson.dumps(event) + b"\n")
        silent = [v for v, state in states.items() if state is None]
        wrong = [v for v, state in states.items() if state is not None
                 and (state["events"]["applied"] != len(self.ingest.by_village[v])
                      or state["events"]["dead_lettered"])]
        check("every accepted event applied exactly once", caught_up and not wrong and not silent,
              f"{len(self.ingest.accepted)} events in {len(states)} villages"
              + ("" if caught_up else "; the workers did not catch up within 300 s")
              + (f"; no answer for {len(silent)} villages" if silent else "")
              + (f"; wrong counts: {', '.join(wrong[:5])}" if wrong else ""))
        twice = [v for v, s in states.items() if (s or {}).get("pickups", {}).get("requested",
                                                                                0) > 1]
        check("no pickup requested twice", not twice,
              f"{sum((s or {}).get('pickups', {}).get('requested', 0) for s in states.values())}"
              f" requested" + (f"; twice: {', '.join(twice[:5])}" if twice else ""))
        kept = f"inputs in {self.out}" if self.args.out else "--out DIR keeps its inputs"
        check("every village's tallies against the reference model", None,
              f"run `python -m tests.integration.soak_check DIR` on the output; {kept}")
        jobs = JobStore(self.jobs_url)
        wait_for(lambda: all((jobs.get(j) or {}).get("status") in FINAL for j in self.jobs), 300)
        statuses = Counter((jobs.get(j) or {}).get("status") for j in self.jobs)
        jobs.close()
        published = Counter(orjson.loads(r.value)["job_id"] for r in read_topic(
            self.kafka, self.topics.plan_results, expected=len(self.jobs), max_wait_s=60))
        check("one stored outcome per plan job", statuses == Counter({"done": len(self.jobs)}),
              f"{len(self.jobs)} jobs: {dict(statuses)}; plan-results carries "
              f"{sum(published.values())} records for {len(published)} of them (at least once)")
        (self.out / "faults.json").write_bytes(orjson.dumps(
            [{**f.__dict__, "started": round(f.started - self.started, 1)} for f in self.faults],
            option=orjson.OPT_INDENT_2))
        kinds = Counter(f.kind for f in self.faults)
        check("every kind of fault injected", all(kinds[k] for k in KINDS), str(dict(kinds)))
        check("no service crashed on its own", not self.crashes,
              "; ".join(f"{name} at {at} s: {line}" for at, name, line in self.crashes[:3])
              + (f" (and {len(self.crashes) - 3} more)" if len(self.crashes) > 3 else ""))
        lost = [f"{f.kind} {f.target}" for f in self.faults if not f.survived]
        check("every fault survived", not lost, ", ".join(lost) or f"{len(self.faults)} faults")
        check("no event refused", not self.ingest.refused, str(dict(self.ingest.refused)))
        return results

    def run(self) -> int:
        started = self.started = time.monotonic()  # the soak proper, after start-up
        deadline = started + self.args.minutes * 60
        feeder = threading.Thread(target=self.ingest.run, daemon=True,
                                  args=(self.network, self.args.seed, deadline, self.stop))
        prober = threading.Thread(target=self.measure_latency, daemon=True)
        jobs = threading.Thread(target=self.submit_jobs, args=(deadline,), daemon=True)
        supervisor = threading.Thread(target=self.supervise, daemon=True)
        for thread in (feeder, prober, jobs, supervisor):
            thread.start()
        fault_threads = self.inject_faults(deadline)
        for thread in (*fault_threads, feeder, jobs):
            thread.join()
        results = self.checks()
        self.stop.set()
        prober.join(10)
        self.report(results, time.monotonic() - started)
        return 1 if any(status == "FAIL" for _, status, _ in results) else 0

    def report(self, results: list[tuple[str, str, str]], elapsed_s: float) -> None:
        injected = Counter(f.kind for f in self.faults)
        survived = Counter(f.kind for f in self.faults if f.survived)
        p99 = pct(self.latencies, 99)
        print(f"chaos soak: {self.args.minutes:g} min at {self.args.rate:g} events/s, "
              f"seed {self.args.seed}, {elapsed_s:.0f} s in all")
        print(f"{'fault':<18}{'injected':>9}{'survived':>9}")
        for kind in KINDS:
            print(f"{kind:<18}{injected[kind]:>9}{survived[kind]:>9}")
        print(f"events accepted: {len(self.ingest.accepted)} (duplicates re-sent "
              f"{self.ingest.resent}); plan jobs: {len(self.jobs)}")
        print(f"ingest latency (POST to worker state), {len(self.latencies)} probes: "
              + (f"p50 {pct(self.latencies, 50):.2f} s, p99 {p99:.2f} s" if p99 is not None
                 else "none resolved"))
        for name, status, detail in results:
            print(f"{status:<8} {name}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s the hubs post")
    parser.add_argument("--job-every-s", type=float, default=10.0)
    parser.add_argument("--fault-gap-s", type=float, nargs=2, default=(15.0, 45.0),
                        metavar=("MIN", "MAX"),
                        help="seconds between faults after the first round of one per kind")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep logs, accepted events and final state here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        with EmbeddedBroker(log_path=out / "broker.log") as broker:
            soak = Soak(args, out)
            try:
                soak.start(broker)
                code = soak.run()
            finally:
                soak.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
