"""docker-compose deployment, validated offline (Docker does not run here): syntax with
Debian's docker-compose v1 (`config -q`), then what it runs and what it exposes."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.tools import INFRA, REPO, load_yaml, requires_binary, run, tool

COMPOSE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
PACKLOOP_SERVICES = {"topics", "worker-1", "worker-2", "gateway", "planner"}
#: the services that read the county's network reference data (topics create does not)
NETWORK_READERS = {"worker-1", "worker-2", "gateway", "planner"}
NETWORK_PATH = "/etc/packloop/network.json"
#: stands in for the county's own file, which an operator names in infra/.env
COUNTY_FILE = REPO / "streams" / "data" / "sample_county.json"


def filled_env(folder: Path) -> Path:
    """.env.example as an operator fills it in: the county's network file named (the
    example leaves it empty, and compose refuses that)."""
    env = folder / "filled.env"
    env.write_text(ENV_EXAMPLE.read_text("utf-8")
                   + f"\nPACKLOOP_NETWORK_FILE={COUNTY_FILE}\n", "utf-8")
    return env


def compose(*args: str, env: Path, file: Path = COMPOSE) -> Any:
    res = run([tool("docker-compose"), "-f", str(file), "--env-file", str(env), *args])
    assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return filled_env(tmp_path_factory.mktemp("compose-env"))


@pytest.fixture(scope="module")
def resolved(env_file: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it with .env.example filled in."""
    return yaml.safe_load(compose("config", env=env_file).stdout)


@requires_binary("docker-compose")
def test_compose_config_is_valid(env_file: Path) -> None:
    compose("config", "-q", env=env_file)


@requires_binary("docker-compose")
def test_compose_check_can_fail(tmp_path: Path, env_file: Path) -> None:
    broken = load_yaml(COMPOSE)
    broken["services"]["kafka"]["ports"] = {"not": "a list"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), "utf-8")
    res = run([tool("docker-compose"), "-f", str(path), "--env-file", str(env_file),
               "config", "-q"])
    assert res.returncode != 0


@requires_binary("docker-compose")
@pytest.mark.parametrize("secret", ["GF_SECURITY_ADMIN_PASSWORD", "PACKLOOP_TOKEN_PEPPER"])
def test_secrets_are_required(secret: str, tmp_path: Path, env_file: Path) -> None:
    env = tmp_path / "partial.env"
    env.write_text("".join(line + "\n" for line in env_file.read_text("utf-8").splitlines()
                           if not line.startswith(secret + "=")), "utf-8")
    res = run([tool("docker-compose"), "-f", str(COMPOSE), "--env-file", str(env),
               "config", "-q"], cwd=tmp_path)
    assert res.returncode != 0 and secret in res.stderr


@requires_binary("docker-compose")
def test_services(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == PACKLOOP_SERVICES | {"kafka", "prometheus", "alertmanager",
                                                 "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    commands = {name: services[name]["command"] for name in PACKLOOP_SERVICES}
    assert commands == {
        "topics": ["topics", "create"],
        "worker-1": ["worker"],
        "worker-2": ["worker"],
        "gateway": ["gateway", "--port", "8080"],
        "planner": ["planner", "--port", "8081"],
    }


@requires_binary("docker-compose")
def test_kafka_runs_in_kraft_mode(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "ZOOKEEPER" not in " ".join(env)
    assert env["CLUSTER_ID"]


@requires_binary("docker-compose")
def test_packloop_settings_for_apache_kafka(resolved: dict[str, Any]) -> None:
    ids = set()
    for name in PACKLOOP_SERVICES:
        svc = resolved["services"][name]
        env = svc["environment"]
        assert env["PACKLOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["PACKLOOP_KAFKA_SESSION_TIMEOUT_MS"] == "45000"
        assert env["PACKLOOP_KAFKA_FETCH_MAX_WAIT_MS"] == "500"
        assert env["PACKLOOP_WEB_HOST"] == "0.0.0.0"
        assert svc["build"]["dockerfile"] == "infra/Dockerfile"
        if name in ("gateway", "planner"):
            assert env[f"PACKLOOP_{name.upper()}_HOST"] == "0.0.0.0"
            assert env["PACKLOOP_TOKEN_PEPPER"] == "change-me"
            assert env["PACKLOOP_TOKEN_DB_URL"] == "sqlite:////var/lib/packloop/db/tokens.db"
        if name.startswith("worker-"):
            ids.add(env["PACKLOOP_WORKER_GROUP_INSTANCE_ID"])
    assert ids == {"worker-1", "worker-2"}, "static membership ids must be distinct"
    dockerfile = (INFRA / "Dockerfile").read_text("utf-8")
    assert "pip install" in dockerfile and "USER 10001" in dockerfile


@requires_binary("docker-compose")
def test_only_the_gateway_and_grafana_publish_ports(resolved: dict[str, Any]) -> None:
    published = {name: svc.get("ports", []) for name, svc in resolved["services"].items()
                 if svc.get("ports")}
    assert set(published) == {"gateway", "grafana"}
    # docker-compose v1 prints short syntax: HOST_IP:HOST_PORT:CONTAINER_PORT/tcp
    assert published["gateway"] == ["0.0.0.0:8080:8080/tcp"]
    assert published["grafana"] == ["127.0.0.1:3000:3000/tcp"]
    for svc in resolved["services"].values():
        assert "network_mode" not in svc and not svc.get("privileged")


@requires_binary("docker-compose")
def test_internal_networks_separate_the_read_side(resolved: dict[str, Any]) -> None:
    nets = resolved["networks"]
    assert {n for n, cfg in nets.items() if cfg.get("internal")} == {"kafka", "metrics", "ui"}
    member = {name: set(svc["networks"]) for name, svc in resolved["services"].items()}
    # Kafka is reachable only by packloop's own services.
    assert {s for s, n in member.items() if "kafka" in n} == PACKLOOP_SERVICES | {"kafka"}
    # The workers' web servers (/metrics, state queries) are on internal networks only.
    for w in ("worker-1", "worker-2", "planner"):
        assert member[w] <= {"kafka", "metrics"}, w
    assert "metrics" in member["prometheus"] and "ui" in member["prometheus"]
    assert member["prometheus"] <= {"metrics", "ui"}
    assert member["grafana"] == {"ui", "edge"}
    # Only Alertmanager (webhooks) and the published services have a way out.
    outward = {s for s, n in member.items() if n & {"edge", "egress"}}
    assert outward == {"gateway", "grafana", "alertmanager"}


@requires_binary("docker-compose")
def test_prometheus_and_grafana_mounts(resolved: dict[str, Any]) -> None:
    def targets(svc: str) -> dict[str, str]:
        mounts = (v.split(":") for v in resolved["services"][svc]["volumes"])
        return {m[1]: m[0] for m in mounts}

    prom = targets("prometheus")
    assert prom["/etc/prometheus/rules"].endswith("infra/prometheus/rules")
    assert prom["/etc/prometheus/prometheus.yml"].endswith("infra/prometheus/prometheus.yml")
    graf = targets("grafana")
    assert graf["/etc/grafana/provisioning"].endswith("infra/grafana/provisioning")
    assert graf["/var/lib/grafana/dashboards/packloop"].endswith("infra/grafana/dashboards")
    am = targets("alertmanager")
    assert am["/etc/alertmanager/alertmanager.yml"].endswith("infra/alertmanager/alertmanager.yml")


def test_prometheus_scrapes_the_compose_services() -> None:
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
            for j in config["scrape_configs"]}
    assert jobs["packloop-worker"] == ["worker-1:6066", "worker-2:6066"]
    assert jobs["packloop-gateway"] == ["gateway:8080"]
    assert jobs["packloop-planner"] == ["planner:8081"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_env_example_has_placeholders_only() -> None:
    values = {}
    for line in ENV_EXAMPLE.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    assert values["GF_SECURITY_ADMIN_PASSWORD"] == "change-me"
    for key, value in values.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|KEY|PEPPER|DB_URL", key):
            assert value in {"", "change-me"}, key
    compose_vars = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text("utf-8")))
    assert compose_vars <= set(values), compose_vars - set(values)


def test_web_servers_bind_loopback_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 8: the read side binds 127.0.0.1 by default; only deployments open it."""
    from services.settings import Settings

    for var in ("PACKLOOP_WEB_HOST", "PACKLOOP_GATEWAY_HOST", "PACKLOOP_PLANNER_HOST"):
        monkeypatch.delenv(var, raising=False)
    defaults = Settings()
    assert (defaults.web_host, defaults.gateway_host, defaults.planner_host) == (
        "127.0.0.1", "127.0.0.1", "127.0.0.1")
    monkeypatch.setenv("PACKLOOP_WEB_HOST", "0.0.0.0")
    assert Settings().web_host == "0.0.0.0"


def test_the_gateway_and_the_planner_serve_https(resolved: dict[str, Any]) -> None:
    """Certificates from PACKLOOP_TLS_DIR; Prometheus scrapes them over HTTPS with its CA."""
    services = resolved["services"]
    for name in ("gateway", "planner"):
        env = services[name]["environment"]
        assert env[f"PACKLOOP_{name.upper()}_TLS_CERT"] == f"/etc/packloop/tls/{name}.pem"
        assert env[f"PACKLOOP_{name.upper()}_TLS_KEY"] == f"/etc/packloop/tls/{name}.key"
        mounts = {v.split(":")[1]: v for v in services[name]["volumes"]}
        assert mounts["/etc/packloop/tls"].endswith(":ro")
    prom_mounts = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert "/etc/prometheus/tls/ca.pem" in prom_mounts
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for job in ("packloop-gateway", "packloop-planner"):
        assert jobs[job]["scheme"] == "https"
        assert jobs[job]["tls_config"] == {"ca_file": "/etc/prometheus/tls/ca.pem"}
    assert jobs["packloop-worker"].get("scheme", "http") == "http"


def _networks(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A service's networks with their settings (the list form has none)."""
    nets = svc.get("networks", [])
    return {n: {} for n in nets} if isinstance(nets, list) else {
        n: cfg or {} for n, cfg in nets.items()}


def test_the_gateway_and_the_planner_find_the_workers() -> None:
    """Before: PACKLOOP_WORKER_URL was not set, so the gateway (GET /v1/pickups: 503) and
    the planner (--from-state, the daily dispatch) asked 127.0.0.1:6066 in their own
    container. Now its host is a name every worker answers to on a network shared with
    them (any worker answers for all, so one that is down is not asked), on the workers'
    web port."""
    services = load_yaml(COMPOSE)["services"]
    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    assert set(workers) == {"worker-1", "worker-2"}
    for name in ("gateway", "planner"):
        url = urllib.parse.urlsplit(services[name]["environment"]["PACKLOOP_WORKER_URL"])
        assert url.scheme == "http" and url.hostname, url
        mine = _networks(services[name])
        behind = {w for w, svc in workers.items()
                  if any(net in mine and (url.hostname == w
                                          or url.hostname in cfg.get("aliases", []))
                         for net, cfg in _networks(svc).items())}
        assert behind == set(workers), (name, url.hostname, behind)
        for w, svc in workers.items():
            assert int(svc["environment"]["PACKLOOP_WEB_PORT"]) == url.port, w


def _seconds(duration: str) -> float:
    """A compose duration (``30s``, ``1m30s``, ``1h``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, duration
    h, m, s = (float(x or 0) for x in parts.groups())
    return h * 3600 + m * 60 + s


def test_workers_have_longer_to_stop_than_their_stop_timeout() -> None:
    """Before: no stop_grace_period, so Docker killed a worker after 10 s while its stop
    may take PACKLOOP_WORKER_STOP_TIMEOUT_S (20 s by default)."""
    from services.settings import Settings

    default = Settings.model_fields["worker_stop_timeout_s"].default
    services = load_yaml(COMPOSE)["services"]
    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    for name, svc in workers.items():
        timeout = float(svc["environment"].get("PACKLOOP_WORKER_STOP_TIMEOUT_S", default))
        grace = _seconds(str(svc.get("stop_grace_period", "10s")))  # Docker's default
        assert grace >= timeout + 5, (name, grace, timeout)
    assert _seconds("1m30s") == 90 and _seconds("10s") == 10


def test_one_copy_of_each_partition_on_the_one_broker() -> None:
    """The compose Kafka is a single broker: a replication factor above 1 could not be met."""
    services = load_yaml(COMPOSE)["services"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in PACKLOOP_SERVICES:
        assert services[name]["environment"]["PACKLOOP_REPLICATION_FACTOR"] == "1", name


@requires_binary("docker-compose")
def test_compose_refuses_to_start_without_the_countys_network(tmp_path: Path) -> None:
    """Before: no service set PACKLOOP_NETWORK, so the deployment ran on the bundled sample
    county (synthetic villages). Now .env.example leaves PACKLOOP_NETWORK_FILE empty and
    compose refuses it with a line saying what to set and in which format."""
    res = run([tool("docker-compose"), "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE),
               "config", "-q"], cwd=tmp_path)
    assert res.returncode != 0
    assert "PACKLOOP_NETWORK_FILE" in res.stderr and "sample_county.json" in res.stderr


@requires_binary("docker-compose")
def test_services_read_the_countys_network_file(resolved: dict[str, Any]) -> None:
    """Every service that loads the reference data reads the county's file, mounted
    read-only at the path PACKLOOP_NETWORK names; nothing points at the sample county."""
    services = resolved["services"]
    for name in NETWORK_READERS:
        svc = services[name]
        assert svc["environment"]["PACKLOOP_NETWORK"] == NETWORK_PATH, name
        mounts = {v.split(":")[1]: v for v in svc["volumes"]}
        assert mounts[NETWORK_PATH] == f"{COUNTY_FILE}:{NETWORK_PATH}:ro", name
    assert "PACKLOOP_NETWORK" not in services["topics"]["environment"]  # never reads it
    # the file comes from the operator's variable alone: no default, no sample county
    raw = load_yaml(COMPOSE)["services"]
    for name in NETWORK_READERS:
        (source,) = [v for v in raw[name]["volumes"] if NETWORK_PATH in v]
        assert source.startswith("${PACKLOOP_NETWORK_FILE:?"), (name, source)


def test_the_commands_the_network_is_mounted_for_read_it() -> None:
    """The worker, the gateway and the planner load PACKLOOP_NETWORK; `topics create`
    does not, so the topics job is given no county file."""
    import inspect

    from services.cli import kafka, worker
    from services.gateway import config as gateway_config
    from services.planner import app as planner_app

    for module in (worker, gateway_config, planner_app):
        assert "load_network(settings.network)" in inspect.getsource(module), module
    assert "load_network" not in inspect.getsource(kafka.topics_create.callback)


@requires_binary("docker-compose")
def test_the_planner_plans_a_dispatch_every_day(resolved: dict[str, Any],
                                                 tmp_path: Path, env_file: Path) -> None:
    """Before: PACKLOOP_DISPATCH_AT was not set, so nothing planned on its own and
    PlanStale fired 36 h after every new deployment. Now the planner plans tomorrow at
    18:00 (the network's time zone) unless infra/.env sets it empty."""
    from services.settings import Settings

    at = resolved["services"]["planner"]["environment"]["PACKLOOP_DISPATCH_AT"]
    assert at == "18:00" and Settings(dispatch_at=at).dispatch_at == "18:00"
    off = tmp_path / "off.env"
    off.write_text(env_file.read_text("utf-8").replace("PACKLOOP_DISPATCH_AT=18:00",
                                                       "PACKLOOP_DISPATCH_AT="), "utf-8")
    planner = yaml.safe_load(compose("config", env=off).stdout)["services"]["planner"]
    assert planner["environment"]["PACKLOOP_DISPATCH_AT"] in ("", None)


def test_worker_healthcheck_asks_the_cheap_status_route() -> None:
    """/metrics renders every series (about 1.8 s at 3,000 villages) and answers 200
    while the worker restores its state; /local/status answers in milliseconds, 503 then."""
    services = load_yaml(COMPOSE)["services"]
    for name in ("worker-1", "worker-2"):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "/local/status" in test and "/metrics" not in test, name


def test_local_deployment_settings_are_not_committed(tmp_path: Path) -> None:
    """infra/.env holds the token pepper, Grafana's password and database URLs with
    passwords; it was not git-ignored. The example stays tracked."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run([git, "check-ignore", "-q", path], cwd=REPO).returncode == 0

    for path in ("infra/.env", "infra/.env.local", "infra/docker-compose.override.yml"):
        assert ignored(path), path
    assert not ignored("infra/.env.example")
