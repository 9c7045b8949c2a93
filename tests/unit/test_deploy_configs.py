"""The deployment files are valid and agree with the code: Prometheus rules and config (promtool),
alert unit tests, Alertmanager (amtool), Grafana dashboards, Kubernetes manifests (validated offline
against the API schemas), the compose file (against the Compose specification, and by
`docker compose config` where the compose plugin exists), the image and its lock file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from chorus.lag import DEFAULT_PORT as LAG_PORT
from processors.runtime.metrics import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.31.0"
PROCESSORS = tuple(DEFAULT_PORTS)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def tool(name: str) -> str:
    """A tool CI installs (deploy/install-deps.sh); elsewhere its absence skips, in CI it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (deploy/install-deps.sh installs it)"
        if os.environ.get("CHORUS_REQUIRE_SERVICES") == "1" or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*args: str, cwd: Path = DEPLOY) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def manifests(pattern: str = "*.yaml") -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob(pattern)) for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# --- Prometheus, Alertmanager ---------------------------------------------------------------


def test_promtool_accepts_the_rules_and_the_config_and_the_alerts_fire_as_their_unit_tests_say() -> None:
    promtool = tool("promtool")
    assert "SUCCESS: 11 rules found" in run(promtool, "check", "rules", "prometheus/alerts.yml")
    run(promtool, "check", "config", "prometheus/prometheus.yml")
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")


def test_every_alert_has_a_severity_a_summary_and_a_runbook_line_and_a_unit_test() -> None:
    tests = (DEPLOY / "prometheus" / "alerts_test.yml").read_text()
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and "\n" not in rule["annotations"]["runbook"].strip(), rule["alert"]
        assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no promtool unit test"


def test_amtool_accepts_the_alertmanager_config_which_sends_to_the_receiver_command() -> None:
    run(tool("amtool"), "check-config", "alertmanager/alertmanager.yml")
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert urls == ["http://alerts:9420/"]
    assert compose()["services"]["alerts"]["command"] == ["alerts", "tail", "--port", "9420"]


def test_prometheus_scrapes_every_processor_on_its_port_and_the_lag_exporter() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {(sd["names"][0], sd["port"]) for sd in jobs["chorus"]["dns_sd_configs"]}
    assert targets == set(DEFAULT_PORTS.items())
    assert jobs["chorus-lag"]["static_configs"][0]["targets"] == [f"exporter:{LAG_PORT}"]
    services = compose()["services"]
    for name, port in DEFAULT_PORTS.items():
        assert services[name]["environment"]["CHORUS_METRICS_PORT"] == str(port)


# --- Grafana ----------------------------------------------------------------------------------


def dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))}


def test_dashboards_are_grafana_json_whose_panels_query_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    boards = dashboards()
    assert set(boards) == {"pipeline", "fleet"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]


# --- Kubernetes -------------------------------------------------------------------------------


def test_kubernetes_manifests_validate_offline_against_the_api_schemas_strictly() -> None:
    docs = manifests()
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"
    ]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_offline_validation_rejects_a_broken_manifest() -> None:
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/livez"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_each_processor_has_truthful_probes_limits_a_budget_and_a_pinned_image() -> None:
    docs = manifests()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    for name in PROCESSORS:
        pod = deployments[f"chorus-{name}"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == f"chorus:{VERSION}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert f"chorus-{name}" in budgets
        refs = {ref["configMapRef"]["name"] for ref in container["envFrom"]}
        assert "chorus-config" in refs
    port_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    for name, port in DEFAULT_PORTS.items():
        assert port_maps[f"chorus-{name}"]["CHORUS_METRICS_PORT"] == str(port)


def test_keda_scaled_objects_scale_existing_deployments_on_their_consumer_groups() -> None:
    deployments = {d["metadata"]["name"] for d in manifests() if d["kind"] == "Deployment"}
    scaled = manifests("keda/*.yaml")
    assert scaled
    for obj in scaled:
        assert (obj["apiVersion"], obj["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
        target = obj["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka" and trigger["metadata"]["consumerGroup"] == target  # group = app id
        assert obj["spec"]["maxReplicaCount"] <= 8


# --- compose and the image ---------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    # The schema `docker compose` itself validates with (compose-go's schema/compose-spec.json).
    validator = jsonschema.Draft7Validator(json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text()))
    validator.validate(compose())
    broken = compose()
    broken["services"]["baseline"]["helthcheck"] = {"test": ["CMD", "true"]}
    assert not validator.is_valid(broken)


def test_docker_compose_config_validates_where_the_compose_plugin_exists() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` here (the Compose-spec validation above still ran)")
    run(docker, "compose", "config", "--quiet", cwd=ROOT)
    services = run(docker, "compose", "--profile", "sim", "config", "--services", cwd=ROOT).split()
    assert "sim" in services


def test_compose_runs_the_whole_system_with_scalable_processors_and_named_volumes() -> None:
    spec = compose()
    services = spec["services"]
    for name in (*PROCESSORS, "kafka", "redis", "topics", "exporter", "api", "alerts", "prometheus", "grafana",
                 "alertmanager", "sim"):
        assert name in services, name
    assert services["sim"]["profiles"] == ["sim"]
    for name in PROCESSORS:
        assert "ports" not in services[name], f"{name} publishes a host port: --scale would collide"
        assert services[name]["command"] == ["worker", name]
    kafka = services["kafka"]["environment"]
    assert "INTERNAL://kafka:29092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert "EXTERNAL://127.0.0.1:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert services["baseline"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert "--appendonly" in services["redis"]["command"]
    assert set(spec["volumes"]) >= {"kafka-data", "redis-data", "prometheus-data", "grafana-data"}


def test_every_image_has_a_pinned_tag_and_ours_is_the_package_version() -> None:
    text = (ROOT / "docker-compose.yml").read_text() + "".join(p.read_text() for p in (DEPLOY / "k8s").rglob("*.yaml"))
    images = re.findall(r"image:\s*([^\s#]+)", text)
    assert images
    for image in images:
        assert ":" in image and not image.endswith(":latest"), image
        if image.split(":")[0] == "chorus":
            assert image == f"chorus:{VERSION}"


def test_the_image_installs_the_lock_file_non_editably_as_a_non_root_user_with_a_healthcheck() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert not re.search(r"pip install[^\n]*\s-e\s", dockerfile)
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/livez", dockerfile, re.M)


def test_the_lock_file_pins_every_dependency_with_hashes() -> None:
    lock = (DEPLOY / "requirements.lock").read_text()
    pinned = {
        canonicalize_name(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M)
    }
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in [*wanted, *re.findall(r"^[^#\s].*$", (DEPLOY / "lock.in").read_text(), re.M)]:
        requirement = Requirement(line)
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in deploy/requirements.lock: run `make lock`"
        assert requirement.specifier.contains(version), f"lock has {requirement.name}=={version}, not {line}: run `make lock`"
    requirements = re.findall(r"^\S+==\S+", lock, re.M)
    hashed = re.findall(r"^\S+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", lock, re.M)
    assert requirements and len(hashed) == len(requirements), "every pinned requirement carries its hashes"
