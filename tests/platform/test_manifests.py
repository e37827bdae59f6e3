"""``make platform-check``: every kustomize overlay builds, every rendered object validates
against the Kubernetes schemas (kubernetes-validate ships them: nothing is downloaded), the
workloads keep the rules the README promises, and the compose file matches the compose spec.

kustomize is a Go binary built by ``make platform-check`` into ``.tools/bin`` (or found as
``$KUSTOMIZE`` / on PATH); without it these tests skip locally and fail under ``CI=true``."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from workbench.testing.servers import in_ci

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "platform" / "kubernetes"
BUILDS = {
    "dev": KUBERNETES / "overlays" / "dev",
    "production": KUBERNETES / "overlays" / "production",
    "edge": ROOT / "platform" / "edge",
}
KUBERNETES_VERSION = kubernetes_validate.latest_version()
#: custom resources outside the Kubernetes API: listed, not validated (no schema offline)
NOT_VALIDATED = {("cert-manager.io/v1", "ClusterIssuer")}
SERVICES = {
    "identity": 5003,
    "asset-repository": 5001,
    "communication-controller": 5015,
    "bot-service": 5009,
    "admin": 5005,
}
#: services that run as one pod: the Admin Panel (sessions live in its process) and the Bot
#: Service (the scheduler: two would fire every cron and interval run twice)
SINGLE_REPLICA = {"admin", "bot-service"}


def kustomize_binary() -> str:
    for candidate in (os.environ.get("KUSTOMIZE"), str(ROOT / ".tools" / "bin" / "kustomize")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("kustomize")
    if found:
        return found
    message = "needs kustomize: run `make platform-check` (go install into .tools/bin)"
    if in_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


@functools.cache
def _build(path: Path, binary: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [binary, "build", str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, f"kustomize build {path} failed:\n{out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def rendered(name: str) -> tuple[dict[str, Any], ...]:
    return _build(BUILDS[name], kustomize_binary())


def find(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def find_optional(
    objects: tuple[dict[str, Any], ...], kind: str, name: str
) -> dict[str, Any] | None:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return matches[0] if matches else None


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_every_rendered_object_is_valid_kubernetes(name: str) -> None:
    objects = rendered(name)
    assert objects
    skipped = set()
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in NOT_VALIDATED:
            skipped.add(key)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{name}: {key} has no Kubernetes schema; add it to NOT_VALIDATED")
    assert skipped <= NOT_VALIDATED


def test_the_validation_rejects_a_broken_object() -> None:
    """The positive twin: a Deployment with a string port does not pass."""
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "http"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_each_service_has_a_deployment_a_service_probes_and_limits(overlay: str) -> None:
    objects = rendered(overlay)
    for name, port in SERVICES.items():
        deployment = find(objects, "Deployment", name)
        container = pod_spec(deployment)["containers"][0]
        assert container["command"][:3] == ["workbench", "serve", name], container["command"]
        assert container["ports"][0]["containerPort"] == port
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert find(objects, "Service", name)["spec"]["ports"][0]["port"] == port
        if name in SINGLE_REPLICA:  # a budget would block every node drain
            assert deployment["spec"]["replicas"] == 1
            assert not find_optional(objects, "PodDisruptionBudget", name)
            if name == "bot-service":  # never an old and a new scheduler side by side
                assert deployment["spec"]["strategy"]["type"] == "Recreate"
        else:
            assert find(objects, "PodDisruptionBudget", name)
    # bot workers: no Service (nothing calls them), but probes on their HTTP side
    worker = pod_spec(find(objects, "Deployment", "bot-worker"))["containers"][0]
    assert worker["command"][:3] == ["workbench", "serve", "bot-worker"]
    assert worker["ports"][0]["containerPort"] == 5010
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings = next(
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("workbench-settings")
    )
    assert settings["WORKBENCH_BOT_EXECUTOR"] == "celery"  # the Bot Service sends runs to them
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = pod_spec(obj)
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            assert {"requests", "limits"} <= set(container.get("resources", {})), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]


def test_production_runs_n_asset_repositories_and_three_member_backends() -> None:
    objects = rendered("production")
    assert find(objects, "Deployment", "asset-repository")["spec"]["replicas"] >= 2
    autoscaler = find(objects, "HorizontalPodAutoscaler", "asset-repository")
    assert autoscaler["spec"]["minReplicas"] >= 2
    for name in ("mongodb", "cratedb", "rabbitmq"):
        assert find(objects, "StatefulSet", name)["spec"]["replicas"] == 3, name
        assert find(objects, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1
    mongod = pod_spec(find(objects, "StatefulSet", "mongodb"))["containers"][0]
    assert "--replSet=rs0" in mongod["command"][-1]
    members = find(objects, "Job", "mongodb-rs-init")["spec"]["template"]["spec"]["containers"][0]
    assert members["env"][0]["value"].count("mongodb-") == 3
    rabbit = find(objects, "ConfigMap", "rabbitmq-config")["data"]["rabbitmq.conf"]
    assert "cluster_formation.peer_discovery_backend = k8s" in rabbit
    assert "default_queue_type = quorum" in rabbit
    crate = pod_spec(find(objects, "StatefulSet", "cratedb"))["containers"][0]
    crate_env = {e["name"]: e.get("value") for e in crate["env"]}
    assert crate_env["CRATE_INITIAL_MASTER_NODES"] == "cratedb-0,cratedb-1,cratedb-2"
    # transactions need the replica set: every MongoDB URL names it and writes to a majority
    secrets = (KUBERNETES / "secrets.env.example").read_text()
    for line in secrets.splitlines():
        if "mongodb://" in line:
            assert "replicaSet=rs0" in line, line
            assert "w=majority" in line, line


def test_the_dev_overlay_is_small_but_keeps_a_replica_set() -> None:
    objects = rendered("dev")
    for name in ("mongodb", "cratedb", "rabbitmq"):
        assert find(objects, "StatefulSet", name)["spec"]["replicas"] == 1
    job = find(objects, "Job", "mongodb-rs-init")["spec"]["template"]["spec"]["containers"][0]
    assert job["env"][0]["value"] == "mongodb-0.mongodb:27017"


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_ingress_terminates_tls_with_cert_manager(overlay: str) -> None:
    ingress = find(rendered(overlay), "Ingress", "workbench")
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    tls_hosts = set(ingress["spec"]["tls"][0]["hosts"])
    assert {rule["host"] for rule in ingress["spec"]["rules"]} == tls_hosts


def _egress_ports(policy: dict[str, Any]) -> dict[str, set[int]]:
    """``{peer app name: ports}`` of a NetworkPolicy's egress rules that name pods."""
    ports: dict[str, set[int]] = {}
    for rule in policy["spec"].get("egress", []):
        for peer in rule.get("to", []):
            app = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            if app:
                ports.setdefault(app, set()).update(p["port"] for p in rule.get("ports", []))
    return ports


def test_edge_adapters_reach_only_the_controller_and_the_bus() -> None:
    objects = rendered("dev")
    edge = find(objects, "NetworkPolicy", "edge-adapters")
    assert _egress_ports(edge) == {"communication-controller": {5015}, "rabbitmq": {5672}}
    assert all("ipBlock" not in p for r in edge["spec"]["egress"] for p in r.get("to", []))
    mesh = find(objects, "NetworkPolicy", "mesh-adapters")
    assert _egress_ports(mesh) == {
        "communication-controller": {5015},
        "rabbitmq": {5672},
        "identity": {5003},
        "asset-repository": {5001},
    }
    deny = find(objects, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {
        "Ingress",
        "Egress",
    }


def test_edge_box_manifests_have_an_outbox_volume_credentials_and_small_limits() -> None:
    objects = rendered("edge")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    kinds = {
        d["spec"]["template"]["metadata"]["labels"]["workbench.io/adapter-kind"]
        for d in deployments
    }
    assert kinds == {"mqtt", "opcua", "modbus", "http", "simulator"}
    for deployment in deployments:
        spec = pod_spec(deployment)
        volumes = {v["name"]: v for v in spec["volumes"]}
        claim = volumes["outbox"]["persistentVolumeClaim"]["claimName"]
        assert find(objects, "PersistentVolumeClaim", claim)
        assert volumes["credentials"]["secret"]["secretName"].endswith("-credentials")
        container = spec["containers"][0]
        assert container["resources"]["limits"]["memory"] == "256Mi"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/var/lib/workbench" in mounts  # WORKBENCH_HOME: the outbox survives restarts
        assert deployment["spec"]["strategy"]["type"] == "Recreate"


# --- the compose file -------------------------------------------------------------------

COMPOSE = ROOT / "platform" / "compose" / "compose.yaml"


def compose_schema() -> dict[str, Any]:
    """The compose-spec JSON schema as vendored by check-jsonschema (a PyPI package)."""
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def compose_errors(document: Any) -> list[str]:
    import jsonschema

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_matches_the_compose_spec() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    assert compose_errors(document) == []
    services = document["services"]
    assert {"mongodb", "cratedb", "rabbitmq", *SERVICES, "bot-worker"} <= set(services)
    assert "--replSet" in services["mongodb"]["command"]
    assert "replicaSet=rs0" in document["x-workbench-settings"]["WORKBENCH_SYSTEM_ENTITIES_URL"]
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published
    assert all(p.startswith("127.0.0.1:") for p in published)


def test_the_compose_check_catches_a_misspelt_key() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    document["services"]["identity"]["comand"] = document["services"]["identity"].pop("command")
    assert any("comand" in e for e in compose_errors(document))


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "info"], capture_output=True, check=False).returncode
    ):
        pytest.skip("no container engine here (docker): the compose spec schema check stands in")
    env = tmp_path / ".env"
    env.write_text("ADMIN_PASSWORD=x\nMONGO_PASSWORD=x\nRABBITMQ_PASSWORD=x\n")
    out = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(env), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_the_operator_alternatives_parse_and_say_they_are_not_validated() -> None:
    folder = KUBERNETES / "operators"
    kinds = set()
    for path in sorted(folder.glob("*.yaml")):
        assert "Not validated offline" in path.read_text(), path.name
        kinds.update(doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc)
    assert kinds == {"MongoDBCommunity", "CrateDB", "RabbitmqCluster"}
