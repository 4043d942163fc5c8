"""The KServe manifests (deploy/kserve): rendered by kustomize and held to what KServe and the
server need. KServe's CRDs are not available offline, so these check the fields KServe reads for
a gRPC v2 runtime by hand, and parse the container's settings with the server's own config."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.deploy.conftest import DEPLOY, Manifest, only, render, server_container


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
