"""The rendered overlays: valid Kubernetes, safe defaults, and ports and settings the server has."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from server.app import LIVENESS_SERVICE
from server.config import ENV_PREFIX, ServerConfig
from tests.deploy.conftest import (
    DEPLOY,
    OVERLAYS,
    Manifest,
    config_map_data,
    only,
    render,
    server_container,
)

# Prometheus Operator kinds: kubernetes-validate has no schema for CRDs, so these are checked
# structurally below (and their content against a real server in test_observability).
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The oldest Kubernetes these manifests claim (native gRPC probes, matchLabelKeys) and the newest
# schema the validator ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
VALIDATOR = Path(sys.executable).parent / "kubernetes-validate"


def validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate as a subprocess: offline JSON schemas, strict (unknown fields fail)."""
    return subprocess.run(
        [str(VALIDATOR), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_objects(path: Path, objects: list[Manifest]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], tmp_path: Path, version: str
) -> None:
    for overlay, objects in rendered.items():
        result = validate(write_objects(tmp_path / f"{overlay}.yaml", objects), version)
        assert result.returncode == 0, f"{overlay} on {version}:\n{result.stdout}{result.stderr}"
        for line in (result.stdout + result.stderr).splitlines():
            # The only thing the validator may not know is a Prometheus Operator kind.
            assert any(f"kind {kind} " in line for kind in CUSTOM_KINDS), line


def test_the_validator_rejects_an_unknown_field(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    """A control: a misspelt probe field must fail, or the validation above proves nothing."""
    # A copy: the rendered objects are shared by the whole session.
    deployment = copy.deepcopy(only(rendered["cpu"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["servce"] = ""
    result = validate(write_objects(tmp_path / "broken.yaml", [deployment]), KUBERNETES_VERSIONS[0])
    assert result.returncode != 0
    assert "servce" in result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_map_holds_only_real_settings_that_parse(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    data = config_map_data(rendered[overlay])
    fields = set(ServerConfig.__dataclass_fields__)
    for key in data:
        assert key.startswith(ENV_PREFIX), key
        assert key.removeprefix(ENV_PREFIX).lower() in fields, key
    config = ServerConfig.from_sources([], environ=data)  # raises on a bad value
    assert str(config.model_repository) == "/opt/genre-serve/models"
    assert config.log_format == "json"
    assert config.device == ("cuda" if overlay == "gpu" else "cpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_ports_are_the_servers(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    defaults = ServerConfig()
    assert (config.grpc_port, config.metrics_port) == (defaults.grpc_port, defaults.metrics_port)
    container = server_container(objects)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": config.grpc_port, "metrics": config.metrics_port}
    services = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        grpc_probe = container[probe]["grpc"]
        assert grpc_probe["port"] == config.grpc_port, probe
        services[probe] = grpc_probe["service"]
    assert services["readinessProbe"] == "genre.v1.GenreClassifier"
    assert services["startupProbe"] == ""  # readiness, with the time model loading needs
    assert services["livenessProbe"] == LIVENESS_SERVICE  # never follows the models
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # model load, CUDA init


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_expose_grpc_and_metrics_by_name(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    template_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    cluster_ip = only(objects, "Service", "genre-serve")["spec"]
    headless = only(objects, "Service", "genre-serve-headless")["spec"]
    assert cluster_ip["type"] == "ClusterIP"
    assert "clusterIP" not in cluster_ip
    assert headless["clusterIP"] == "None"
    for spec in (cluster_ip, headless):
        assert spec["selector"].items() <= template_labels.items()
        grpc_port = next(port for port in spec["ports"] if port["name"] == "grpc")
        assert (grpc_port["port"], grpc_port["targetPort"]) == (config.grpc_port, "grpc")
        assert grpc_port["appProtocol"] == "grpc"
    metrics_port = next(port for port in cluster_ip["ports"] if port["name"] == "metrics")
    assert (metrics_port["port"], metrics_port["targetPort"]) == (config.metrics_port, "metrics")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_is_locked_down(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    pod = only(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    container = server_container(rendered[overlay])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    tmp = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp")
    volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume
    for key in ("cpu", "memory"):
        assert key in container["resources"]["requests"]
        assert key in container["resources"]["limits"]
    spread_keys = {item["topologyKey"] for item in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in spread_keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_outlasts_pre_stop_and_drain(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    command = server_container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop > 0
    assert pod["terminationGracePeriodSeconds"] > pre_stop + (config.drain_grace_seconds)


def test_only_the_gpu_overlay_asks_for_a_gpu(rendered: dict[str, list[Manifest]]) -> None:
    cpu = server_container(rendered["cpu"])["resources"]
    gpu = server_container(rendered["gpu"])["resources"]
    assert "nvidia.com/gpu" not in cpu["limits"]
    assert gpu["limits"]["nvidia.com/gpu"] == "1"
    pod = only(rendered["gpu"], "Deployment")["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = {e["key"] for t in terms["nodeSelectorTerms"] for e in t["matchExpressions"]}
    assert "nvidia.com/gpu.present" in keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_disruption_budget_and_network_policy(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    template_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    hpa = only(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "genre-serve"
    kinds = {
        ("Resource", m["resource"]["name"])
        if m["type"] == "Resource"
        else (m["type"], m["pods"]["metric"]["name"])
        for m in hpa["spec"]["metrics"]
    }
    assert kinds == {("Resource", "cpu"), ("Pods", "genre_in_flight_requests")}
    pdb = only(objects, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= template_labels.items()
    assert hpa["spec"]["minReplicas"] > pdb["maxUnavailable"]
    policy = only(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= template_labels.items()
    allowed = {rule["ports"][0]["port"]: rule["from"][0] for rule in policy["ingress"]}
    assert allowed["grpc"]["podSelector"]["matchLabels"] == {"genre-serve/client": "true"}
    assert allowed["metrics"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    container_ports = {port["name"] for port in server_container(objects)["ports"]}
    assert set(allowed) == container_ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_one_service_on_its_metrics_port(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    monitor = only(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    selected = [
        s for s in objects if s["kind"] == "Service" and wanted <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["genre-serve"]  # each pod scraped once
    ports = {port["name"] for port in selected[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] == "metrics"
        assert endpoint["port"] in ports
        assert endpoint.get("path", "/metrics") == "/metrics"
    rule = only(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            assert item["alert"]
            assert item["expr"]
            assert item["labels"]["severity"]


def test_base_alone_renders_and_names_a_namespace() -> None:
    objects = render(DEPLOY / "base")
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"genre-serve"}


def test_models_volume_component_mounts_over_the_model_repository(tmp_path: Path) -> None:
    """The README's volume roll-out: an overlay with the component still validates."""
    deploy = os.path.relpath(DEPLOY, tmp_path)  # kustomize refuses absolute resource roots
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {deploy}/overlays/cpu\n"
        f"components:\n  - {deploy}/components/models-volume\n"
    )
    objects = render(tmp_path)
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    mounts = {m["mountPath"]: m for m in server_container(objects)["volumeMounts"]}
    assert mounts[str(config.model_repository)]["readOnly"] is True
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(
        v for v in pod["volumes"] if v["name"] == mounts[str(config.model_repository)]["name"]
    )
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    result = validate(write_objects(tmp_path / "rendered.yaml", objects), KUBERNETES_VERSIONS[-1])
    assert result.returncode == 0, result.stdout + result.stderr
