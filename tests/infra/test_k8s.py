"""Kubernetes manifests, validated offline: core kinds against the Kubernetes JSON
schemas bundled in the kubernetes-validate package (strict: unknown fields fail), the
Prometheus Operator kinds against the subset of their CRD schemas packloop uses, and
the PrometheusRule against the rule files (same groups, so the rule files' unit tests
cover it; promtool checks the rules taken out of the manifest)."""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.infra.tools import (
    INFRA,
    RULE_FILES,
    load_yaml,
    requires_binary,
    run,
    tool,
)

K8S = INFRA / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
KUBERNETES_VERSION = "1.30.0"

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _STR_MAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["key", "operator"],
            "properties": {"key": {"type": "string"},
                           "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}}}},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                   "labels": _STR_MAP, "annotations": _STR_MAP},
}
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?"
             r"(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_KEY_SELECTOR = {"type": "object", "additionalProperties": False, "required": ["name", "key"],
                 "properties": {"name": {"type": "string"}, "key": {"type": "string"}}}
# Subsets of the monitoring.coreos.com/v1 CRD schemas (prometheus-operator), with
# additionalProperties false on the parts packloop fills in, so a typo fails.
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector"],
                "properties": {
                    "selector": _LABEL_SELECTOR,
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"any": {"type": "boolean"},
                                       "matchNames": {"type": "array",
                                                      "items": {"type": "string"}}}},
                    "endpoints": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"}, "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION, "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "tlsConfig": {
                                "type": "object", "additionalProperties": False,
                                "properties": {
                                    "ca": {"type": "object", "additionalProperties": False,
                                           "properties": {"secret": _KEY_SELECTOR,
                                                          "configMap": _KEY_SELECTOR}},
                                    "serverName": {"type": "string"},
                                    "insecureSkipVerify": {"type": "boolean"},
                                }},
                        }}},
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _METADATA,
            "spec": {
                "type": "object", "additionalProperties": False,
                "properties": {"groups": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _DURATION,
                        "rules": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "required": ["expr"],
                            "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                            "properties": {
                                "record": {"type": "string"}, "alert": {"type": "string"},
                                "expr": {"type": ["string", "integer"]},
                                "for": _DURATION, "keep_firing_for": _DURATION,
                                "labels": _STR_MAP, "annotations": _STR_MAP,
                            }}},
                    }}}},
            },
        },
    },
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc:
                out.append((path.name, doc))
    return out


DOCS = _documents()


def _kinds() -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for _, doc in DOCS:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def _validate(doc: dict[str, Any]) -> None:
    if doc["kind"] in CRD_SCHEMAS:
        jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
        return
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - a setup problem, reported as a failure
        pytest.fail("kubernetes-validate is not installed: pip install kubernetes-validate "
                    "(it belongs in packloop's dev extras)", pytrace=False)
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("doc", [d for _, d in DOCS],
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS])
def test_manifest_matches_its_schema(doc: dict[str, Any]) -> None:
    _validate(doc)


def test_schema_validation_can_fail() -> None:
    import copy

    import kubernetes_validate

    kinds = _kinds()
    sts = copy.deepcopy(kinds["StatefulSet"][0])
    sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        _validate(sts)
    sts = copy.deepcopy(kinds["StatefulSet"][0])
    sts["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="two"):
        _validate(sts)
    rule = copy.deepcopy(kinds["PrometheusRule"][0])
    rule["spec"]["groups"][0]["rules"][0]["fro"] = "5m"
    with pytest.raises(jsonschema.ValidationError):
        _validate(rule)
    sm = copy.deepcopy(kinds["ServiceMonitor"][0])
    sm["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(jsonschema.ValidationError):
        _validate(sm)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector matches ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        has, value = e["key"] in labels, labels.get(e["key"])
        if not {"In": has and value in e.get("values", []),
                "NotIn": not has or value not in e.get("values", []),
                "Exists": has, "DoesNotExist": not has}[e["operator"]]:
            return False
    return True


def _pods() -> dict[str, tuple[dict[str, str], dict[str, int], dict[str, Any]]]:
    """Each workload's pod: (labels, container ports by name, the container)."""
    out = {}
    for kind in ("StatefulSet", "Deployment"):
        for doc in _kinds()[kind]:
            template = doc["spec"]["template"]
            (c,) = template["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            out[doc["metadata"]["name"]] = (template["metadata"]["labels"], ports, c)
    return out


def _admitted(src_labels: dict[str, str], src_namespace: dict[str, str],
              dst: str, port: int) -> bool:
    """Whether the NetworkPolicies let a pod with ``src_labels`` in a namespace labelled
    ``src_namespace`` connect to workload ``dst``'s ``port`` (TCP): allowed when no policy
    selects the destination, else when one of those that do has an ingress rule whose
    peers and ports admit it."""
    dst_labels, dst_ports, _ = _pods()[dst]
    in_packloop = src_namespace.get("kubernetes.io/metadata.name") == "packloop"
    selecting = [p["spec"] for p in _kinds()["NetworkPolicy"]
                 if _selects(p["spec"]["podSelector"], dst_labels)
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True

    def peer_admits(peer: dict[str, Any]) -> bool:
        if "ipBlock" in peer:
            return False
        if "namespaceSelector" in peer:
            if not _selects(peer["namespaceSelector"], src_namespace):
                return False
        elif not in_packloop:
            return False
        return _selects(peer.get("podSelector", {}), src_labels)

    def port_admits(entry: dict[str, Any]) -> bool:
        if entry.get("protocol", "TCP") != "TCP":
            return False
        wanted = entry.get("port")
        return wanted is None or port == (dst_ports.get(wanted) if isinstance(wanted, str)
                                          else wanted)

    return any(
        ("from" not in rule or any(peer_admits(peer) for peer in rule["from"]))
        and ("ports" not in rule or any(port_admits(e) for e in rule["ports"]))
        for spec in selecting for rule in spec.get("ingress", []))


PACKLOOP_NS = {"kubernetes.io/metadata.name": "packloop"}


def _worker_url() -> urllib.parse.SplitResult:
    (cm,) = _kinds()["ConfigMap"]
    return urllib.parse.urlsplit(cm["data"]["PACKLOOP_WORKER_URL"])


def test_the_gateway_and_the_planner_find_the_workers() -> None:
    """Before: PACKLOOP_WORKER_URL was not set, so the gateway (GET /v1/pickups: 503) and
    the planner (--from-state, the daily dispatch) asked 127.0.0.1:6066 in their own pod.
    Now it names a Service of this namespace that selects the worker pods, not headless
    (balanced over the ready workers, any of which answers for all), on their web port."""
    (cm,) = _kinds()["ConfigMap"]
    url = _worker_url()
    assert url.scheme == "http" and url.hostname is not None
    name, _, rest = url.hostname.partition(".")
    assert rest in ("", "packloop", "packloop.svc", "packloop.svc.cluster.local"), rest
    services = {s["metadata"]["name"]: s for s in _kinds()["Service"]}
    assert name in services, f"{name}: no such Service"
    spec = services[name]["spec"]
    assert spec.get("clusterIP") != "None" and spec.get("type", "ClusterIP") == "ClusterIP"
    worker_labels, worker_ports, _ = _pods()["packloop-worker"]
    assert _selects({"matchLabels": spec["selector"]}, worker_labels)
    (svc_port,) = [p for p in spec["ports"] if p["port"] == (url.port or 80)]
    target = svc_port.get("targetPort", svc_port["port"])
    assert worker_ports.get(target, target) == int(cm["data"]["PACKLOOP_WEB_PORT"])
    for workload in ("packloop-gateway", "packloop-planner"):
        _, _, container = _pods()[workload]
        from_config = [e["configMapRef"]["name"] for e in container["envFrom"]
                       if "configMapRef" in e]
        assert from_config == [cm["metadata"]["name"]], workload
        assert "PACKLOOP_WORKER_URL" not in {e["name"] for e in container.get("env", [])}


def test_network_policies_let_the_gateway_and_the_planner_reach_the_workers() -> None:
    """Before: only workers were admitted to the workers' port 6066."""
    port = _worker_url().port
    assert port is not None
    for source in ("packloop-gateway", "packloop-planner", "packloop-worker"):
        labels, _, _ = _pods()[source]
        assert _admitted(labels, PACKLOOP_NS, "packloop-worker", port), source
    # and still no one else: another pod of the namespace, or any pod of another one
    stranger = {"app.kubernetes.io/name": "debug", "app.kubernetes.io/part-of": "packloop"}
    assert not _admitted(stranger, PACKLOOP_NS, "packloop-worker", port)
    gateway_labels, _, _ = _pods()["packloop-gateway"]
    assert not _admitted(gateway_labels, {"kubernetes.io/metadata.name": "other"},
                         "packloop-worker", port)
    assert not _admitted(gateway_labels, PACKLOOP_NS, "packloop-planner", 8081)
    # Prometheus scrapes every pod's web port
    assert _admitted({}, {"kubernetes.io/metadata.name": "monitoring"}, "packloop-worker",
                     port)


def test_replication_factor_3_for_topics_and_changelogs() -> None:
    """Before: `topics create` in the topics Job made every topic with one copy (its fixed
    default) and the workers' changelogs had one copy whatever the cluster."""
    from services.settings import Settings

    (cm,) = _kinds()["ConfigMap"]
    settings = Settings(**{k.removeprefix("PACKLOOP_").lower(): v
                           for k, v in cm["data"].items() if k.startswith("PACKLOOP_")})
    assert settings.replication_factor == 3
    assert settings.worker_options(settings.partitions).replication_factor == 3
    (job,) = _kinds()["Job"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["topics", "create"]  # the setting is its default
    for _, _, container in [*_pods().values(), (None, None, c)]:
        assert {"configMapRef": {"name": "packloop"}} in container["envFrom"]


def test_workers_have_longer_to_stop_than_their_stop_timeout() -> None:
    """PACKLOOP_WORKER_STOP_TIMEOUT_S must be below the pod's grace period, or the kubelet
    kills a worker that is still stopping."""
    from services.settings import Settings

    (sts,) = _kinds()["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    (cm,) = _kinds()["ConfigMap"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
    timeout = float(env.get("PACKLOOP_WORKER_STOP_TIMEOUT_S")
                    or cm["data"].get("PACKLOOP_WORKER_STOP_TIMEOUT_S")
                    or Settings.model_fields["worker_stop_timeout_s"].default)
    grace = pod.get("terminationGracePeriodSeconds", 30)  # the Kubernetes default
    assert grace >= timeout + 5, (grace, timeout)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
    assert all(d["metadata"].get("namespace", "packloop") == "packloop" for _, d in DOCS)


def test_workers_are_a_statefulset_with_static_membership() -> None:
    (sts,) = _kinds()["StatefulSet"]
    assert sts["metadata"]["name"] == "packloop-worker"
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["worker"]
    env = {e["name"]: e for e in c["env"]}
    assert env["PACKLOOP_WORKER_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] \
        == "metadata.name"
    services = {s["metadata"]["name"]: s for s in _kinds()["Service"]}
    assert services[sts["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_settings_for_apache_kafka_and_binding() -> None:
    (cm,) = _kinds()["ConfigMap"]
    data = cm["data"]
    assert data["PACKLOOP_KAFKA_SESSION_TIMEOUT_MS"] == "45000"
    assert data["PACKLOOP_KAFKA_FETCH_MAX_WAIT_MS"] == "500"
    assert data["PACKLOOP_WEB_HOST"] == "0.0.0.0"
    assert data["PACKLOOP_GATEWAY_HOST"] == data["PACKLOOP_PLANNER_HOST"] == "0.0.0.0"
    for deployment in _kinds()["Deployment"]:
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {e["secretRef"]["name"]: e["secretRef"].get("optional", False)
                   for e in c["envFrom"] if "secretRef" in e}
        # The token pepper and database URLs: required, never in the ConfigMap.
        assert secrets == {"packloop-kafka": True, "packloop-services": False}
    assert not {"PACKLOOP_TOKEN_PEPPER", "PACKLOOP_TOKEN_DB_URL"} & set(data)
    for _, doc in DOCS:
        assert doc["kind"] != "Secret", "no secrets in files"
        text = yaml.safe_dump(doc)
        assert "PASSWORD:" not in text


def test_nothing_is_exposed_outside_the_cluster() -> None:
    for svc in _kinds()["Service"]:
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
    for _, doc in DOCS:
        assert doc["kind"] not in {"Ingress", "Route"}
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        assert not pod.get("hostNetwork")
        for c in pod.get("containers", []):
            assert all("hostPort" not in p for p in c.get("ports", []))


def test_network_policies_close_the_read_side() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _kinds()["NetworkPolicy"]}
    deny = policies["packloop-default-deny-ingress"]
    assert deny["podSelector"] == {} and "ingress" not in deny
    open_to_all = [name for name, spec in policies.items()
                   for rule in spec.get("ingress", []) if "from" not in rule]
    assert open_to_all == ["packloop-gateway-ingress"]
    assert policies["packloop-gateway-ingress"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "packloop-gateway"}


def test_service_monitor_selects_the_jobs_the_rules_use() -> None:
    """One Service per job: the workers' second Service (packloop-worker-web, for the
    gateway and the planner) must not be scraped as well, or every worker series counts
    twice in the rules' sums."""
    (sm,) = _kinds()["ServiceMonitor"]
    (expr,) = sm["spec"]["selector"]["matchExpressions"]
    scraped = {s["metadata"]["name"] for s in _kinds()["Service"]
               if _selects(sm["spec"]["selector"], s["metadata"]["labels"])}
    assert set(expr["values"]) == scraped == {
        "packloop-worker", "packloop-gateway", "packloop-planner"}
    ports = {s["metadata"]["name"]: [p["name"] for p in s["spec"]["ports"]]
             for s in _kinds()["Service"]}
    assert ports == {"packloop-worker": ["web"], "packloop-worker-web": ["web"],
                     "packloop-gateway": ["https"], "packloop-planner": ["https"]}
    web, https = sm["spec"]["endpoints"]
    assert web["port"] == "web" and web.get("scheme", "http") == "http"
    assert https["port"] == "https" and https["scheme"] == "https"
    assert https["tlsConfig"]["ca"]["secret"] == {"name": "packloop-tls", "key": "ca.crt"}


def test_the_gateway_and_the_planner_serve_https() -> None:
    """Their certificate and key from the Secret packloop-tls, probed over HTTPS."""
    for deployment in _kinds()["Deployment"]:
        pod = deployment["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        service = c["args"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env[f"PACKLOOP_{service.upper()}_TLS_CERT"] == "/etc/packloop/tls/tls.crt"
        assert env[f"PACKLOOP_{service.upper()}_TLS_KEY"] == "/etc/packloop/tls/tls.key"
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/packloop/tls"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert mount["readOnly"] is True
        assert volume["secret"]["secretName"] == "packloop-tls"
        assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_prometheusrule_is_current_and_equals_the_rule_files() -> None:
    res = run([sys.executable, str(K8S / "build_prometheusrule.py"), "--check"])
    assert res.returncode == 0, res.stderr
    (pr,) = _kinds()["PrometheusRule"]
    groups = [g for p in RULE_FILES for g in load_yaml(p)["groups"]]
    assert sorted(pr["spec"]["groups"], key=lambda g: g["name"]) == sorted(
        groups, key=lambda g: g["name"])


@pytest.mark.slow
@requires_binary("promtool")
def test_rules_inside_the_prometheusrule_pass_promtool(tmp_path: Path) -> None:
    """promtool accepts the rules as the PrometheusRule carries them. Their unit tests are
    not run again here: the test above shows the groups equal the rule files', whose unit
    tests tests/infra/test_rules.py runs (running them twice took 24 s)."""
    (pr,) = _kinds()["PrometheusRule"]
    extracted = tmp_path / "from-prometheusrule.yml"
    extracted.write_text(yaml.safe_dump({"groups": pr["spec"]["groups"]}), "utf-8")
    res = run([tool("promtool"), "check", "rules", str(extracted)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in pr['spec']['groups'])} rules found" \
        in res.stdout, res.stdout


def test_the_countys_network_is_mounted_where_packloop_network_points() -> None:
    """Before: no manifest set PACKLOOP_NETWORK, so every pod ran on the bundled sample
    county (synthetic villages). Now the ConfigMap names /etc/packloop/network.json and
    the workers, the gateway and the planner mount the ConfigMap packloop-network there,
    required (a pod without it does not start). That ConfigMap is the operator's, made
    from the county's file: none is committed, so the sample cannot be deployed."""
    (cm,) = _kinds()["ConfigMap"]
    path = cm["data"]["PACKLOOP_NETWORK"]
    assert path == "/etc/packloop/network.json"
    assert cm["metadata"]["name"] != "packloop-network"
    for workload in ("packloop-worker", "packloop-gateway", "packloop-planner"):
        _, _, container = _pods()[workload]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
        assert mount["readOnly"] is True and mount["subPath"] == "network.json", workload
        pod = next(d["spec"]["template"]["spec"] for d in [*_kinds()["StatefulSet"],
                                                            *_kinds()["Deployment"]]
                   if d["metadata"]["name"] == workload)
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == "packloop-network", workload
        assert not volume["configMap"].get("optional", False), workload
        assert {"key": "network.json", "path": "network.json"} in volume["configMap"]["items"]
    text = (K8S / "configmap.yaml").read_text("utf-8")
    assert "kubectl -n packloop create configmap packloop-network " \
        "--from-file=network.json=" in text


def test_the_planner_plans_a_dispatch_every_day() -> None:
    """Before: PACKLOOP_DISPATCH_AT was not set, so nothing planned on its own and
    PlanStale fired 36 h after every new deployment."""
    from services.settings import Settings

    (cm,) = _kinds()["ConfigMap"]
    at = cm["data"]["PACKLOOP_DISPATCH_AT"]
    assert isinstance(at, str) and Settings(dispatch_at=at).dispatch_at == "18:00"


def test_worker_probes_are_cheap_and_readiness_follows_recovery() -> None:
    """Before: both probes asked /metrics with the default 1 s timeout; it renders every
    series (about 1.8 s at 3,000 villages) and answers 200 while the worker restores its
    state. Readiness now asks /local/status (milliseconds; 503 while recovering), liveness
    Faust's index page "/" (answered by the event loop whatever the state, so a long
    recovery is not killed), both with a timeout above the default."""
    _, _, c = _pods()["packloop-worker"]
    ready, alive = c["readinessProbe"], c["livenessProbe"]
    assert ready["httpGet"]["path"] == "/local/status"
    assert alive["httpGet"]["path"] == "/"
    assert ready["timeoutSeconds"] >= 5 and alive["timeoutSeconds"] >= 5
    # a recovering worker stays resolvable and scraped (its peers ask it by name)
    services = {s["metadata"]["name"]: s for s in _kinds()["Service"]}
    assert services["packloop-worker"]["spec"]["publishNotReadyAddresses"] is True
    assert not services["packloop-worker-web"]["spec"].get("publishNotReadyAddresses")
    # and the worker's views really are these routes
    views = (K8S.parents[1] / "streams" / "views.py").read_text("utf-8")
    assert '@app.page("/local/status")' in views


def test_every_workload_that_needs_the_services_secret_has_it() -> None:
    """docs/operations.md said the gateway and the planner need packloop-services; the
    workers read their ledger URL from it too."""
    (sts,) = _kinds()["StatefulSet"]
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {"packloop-services"}
    doc = (K8S.parents[1] / "docs" / "operations.md").read_text("utf-8")
    assert "required by the gateway, the planner and the workers" in doc
