"""The KServe manifests (deploy/kserve): rendered by kustomize, valid against KServe's own CRD
schemas (``../shared/kserve-crds``, GENRE_KSERVE_CRDS_DIR; tests/deploy/crd_schemas.py) with
unknown fields refused, and held to what a gRPC v2 runtime and the server need: the fields KServe
reads, and the container's settings parsed with the server's own config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from server.config import ServerConfig
from tests.deploy.conftest import DEPLOY, Manifest, only, render, server_container
from tests.deploy.crd_schemas import Schema, load_crds, problems, unchecked

KINDS = ("InferenceService", "ServingRuntime")


@pytest.fixture(scope="module")
def kserve() -> list[Manifest]:
    return render(DEPLOY / "kserve")


def test_the_runtime_serves_grpc_v2_on_its_h2c_port(kserve: list[Manifest]) -> None:
    runtime = only(kserve, "ServingRuntime", "genre-serve")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    spec = runtime["spec"]
    assert "grpc-v2" in spec["protocolVersions"]
    (container,) = spec["containers"]
    settings = {item["name"]: item["value"] for item in container["env"]}
    config = ServerConfig.from_sources([], environ=settings)
    (port,) = container["ports"]
    assert port["name"] == "h2c"
    assert port["containerPort"] == config.grpc_port
    assert config.workers >= 1
    assert config.torch_threads >= 1
    assert runtime["metadata"]["namespace"] == "genre-serve"


def test_the_inference_service_asks_for_the_runtime_by_format(kserve: list[Manifest]) -> None:
    runtime = only(kserve, "ServingRuntime", "genre-serve")
    service = only(kserve, "InferenceService", "genre-serve")
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    model = service["spec"]["predictor"]["model"]
    formats = {item["name"] for item in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]


def test_the_runtime_runs_the_image_the_overlays_deploy(
    kserve: list[Manifest], rendered: dict[str, list[Manifest]]
) -> None:
    (container,) = only(kserve, "ServingRuntime", "genre-serve")["spec"]["containers"]
    assert container["image"] == server_container(rendered["cpu"])["image"]


@pytest.fixture(scope="module")
def crds(kserve_crds_dir: Path) -> dict[tuple[str, str], Schema]:
    return load_crds(kserve_crds_dir)


@pytest.mark.parametrize("kind", KINDS)
def test_the_manifests_are_valid_against_kserves_own_schemas(
    kserve: list[Manifest], crds: dict[tuple[str, str], Schema], kind: str
) -> None:
    manifest = only(kserve, kind)
    assert problems(manifest, crds) == []
    # Every field we write is checked: none falls under a node that keeps anything (status).
    schema = crds[manifest["apiVersion"], kind]
    assert list(unchecked(manifest, schema)) == []


def changed(manifest: Manifest, path: str, value: object) -> Manifest:
    """A copy with ``path`` (dotted; a number indexes a list) set to ``value``."""
    edited = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node: object = edited
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    node[last] = value  # type: ignore[index]
    return edited


@pytest.mark.parametrize(
    ("kind", "path", "value", "complaint"),
    [
        ("InferenceService", "spec.predictor.minReplica", 2, "'minReplica' was unexpected"),
        ("InferenceService", "spec.predictor.model.protocol", "grpc-v2", "'protocol' was"),
        ("InferenceService", "spec.predictor.minReplicas", "two", "'two' is not of type"),
        ("InferenceService", "metadata.annotation", {}, "'annotation' was unexpected"),
        ("ServingRuntime", "spec.containers.0.imagePullPolicyy", "Always", "'imagePullPolicyy'"),
        ("ServingRuntime", "spec.containers.0.ports.0.containerPort", "h2c", "not of type"),
        ("ServingRuntime", "spec.protocolVersion", ["grpc-v2"], "'protocolVersion' was"),
    ],
)
def test_a_field_kserve_does_not_define_or_a_wrong_type_is_refused(
    kserve: list[Manifest],
    crds: dict[tuple[str, str], Schema],
    kind: str,
    path: str,
    value: object,
    complaint: str,
) -> None:
    """A control: each misspelling fails, naming itself, or the pass above proves nothing."""
    found = problems(changed(only(kserve, kind), path, value), crds)
    assert any(complaint in problem for problem in found), found


def test_a_kind_or_version_the_crds_do_not_serve_is_refused(
    kserve: list[Manifest], crds: dict[tuple[str, str], Schema]
) -> None:
    service = changed(only(kserve, "InferenceService"), "apiVersion", "serving.kserve.io/v1alpha9")
    (problem,) = problems(service, crds)
    assert "is no kind the CRDs serve" in problem
