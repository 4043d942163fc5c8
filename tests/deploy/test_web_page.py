"""The web page's components (deploy/components/web-page and web-page-ingress) in either overlay:
rendered by kustomize, valid Kubernetes, wired port to port, and the settings they render
started on a real server, whose page answers and whose WebSocket takes the Ingress's origin and
refuses another."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from server.app import create_server
from server.config import ServerConfig
from tests.deploy.conftest import (
    DEPLOY,
    OVERLAYS,
    Manifest,
    config_map_data,
    only,
    render,
    server_container,
)
from tests.deploy.test_dockerfile import DOCKERFILE, final_stage, instructions
from tests.deploy.test_manifests import KUBERNETES_VERSIONS, validate, write_objects
from tests.support.harness import loopback_config
from tests.support.web import AUDIO, END, RATE, Frame, config_frame, free_port, stream_frames
from tests.support.web import web_repository as write_web_repository

COMPONENTS = ("web-page", "web-page-ingress")


def render_with(directory: Path, overlay: str, components: tuple[str, ...]) -> list[Manifest]:
    """An overlay with components added, as deploy/README.md tells a user to add them."""
    deploy = os.path.relpath(DEPLOY, directory)  # kustomize refuses absolute resource roots
    listed = "".join(f"  - {deploy}/components/{name}\n" for name in components)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {deploy}/overlays/{overlay}\ncomponents:\n{listed}"
    )
    return render(directory)


@pytest.fixture(scope="module")
def with_page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Overlay -> its objects with the page on, without an Ingress."""
    root = tmp_path_factory.mktemp("web-page")
    return {overlay: render_with(root / overlay, overlay, COMPONENTS[:1]) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def with_ingress(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Overlay -> its objects with the page on and its Ingress."""
    root = tmp_path_factory.mktemp("web-ingress")
    return {overlay: render_with(root / overlay, overlay, COMPONENTS) for overlay in OVERLAYS}


def settings(objects: list[Manifest]) -> ServerConfig:
    return ServerConfig.from_sources([], environ=config_map_data(objects))


def named_port(ports: list[Manifest], name: str) -> Manifest | None:
    return next((port for port in ports if port["name"] == name), None)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_without_the_component_the_page_stays_off(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    assert settings(objects).http_port == 0
    assert named_port(server_container(objects)["ports"], "http") is None
    assert named_port(only(objects, "Service", "genre-serve")["spec"]["ports"], "http") is None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_component_turns_the_page_on_port_to_port(
    rendered: dict[str, list[Manifest]], with_page: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = with_page[overlay]
    config = settings(objects)
    assert config.http_port > 0
    container = server_container(objects)
    assert named_port(container["ports"], "http") == {
        "name": "http",
        "containerPort": config.http_port,
        "protocol": "TCP",
    }
    service = only(objects, "Service", "genre-serve")["spec"]
    page = named_port(service["ports"], "http")
    assert page is not None
    assert (page["port"], page["targetPort"], page["appProtocol"]) == (
        config.http_port,
        "http",
        "http",
    )
    policy = only(objects, "NetworkPolicy", "genre-serve-web")
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert [port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]] == [
        "http"
    ]
    # Everything else is the overlay's: the same settings but the page's, the same gRPC probes.
    before = config_map_data(rendered[overlay])
    assert {k: v for k, v in config_map_data(objects).items() if k != "GENRE_HTTP_PORT"} == before
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe] == server_container(rendered[overlay])[probe]
    namespaces = {
        item["metadata"].get("namespace") for item in objects if item["kind"] != "Namespace"
    }
    assert namespaces == {"genre-serve"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_to_the_page_and_its_origin_is_allowed(
    with_ingress: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = with_ingress[overlay]
    config = settings(objects)
    ingress = only(objects, "Ingress", "genre-serve-web")["spec"]
    service = only(objects, "Service", "genre-serve")
    hosts = set()
    for rule in ingress["rules"]:
        hosts.add(rule["host"])
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert named_port(service["spec"]["ports"], backend["port"]["name"]) is not None
    assert hosts <= {host for tls in ingress["tls"] for host in tls["hosts"]}
    # The pages come from https://<host>; the server must list exactly those origins.
    assert set(config.http_origins) == {f"https://{host}" for host in hosts}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_with_the_page_is_valid_kubernetes(
    with_ingress: dict[str, list[Manifest]], tmp_path: Path, version: str
) -> None:
    for overlay, objects in with_ingress.items():
        result = validate(write_objects(tmp_path / f"{overlay}.yaml", objects), version)
        assert result.returncode == 0, f"{overlay} on {version}:\n{result.stdout}{result.stderr}"


def test_the_image_declares_the_pages_port(with_page: dict[str, list[Manifest]]) -> None:
    exposed = {
        int(port)
        for item in final_stage(instructions(DOCKERFILE.read_text()))
        if item.keyword == "EXPOSE"
        for port in item.arguments.split()
    }
    assert settings(with_page["cpu"]).http_port in exposed


async def test_a_server_with_the_rendered_settings_takes_the_ingress_origin_only(
    with_ingress: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    """The cpu overlay's settings, page and Ingress included, on loopback ports: the page loads,
    and a stream opens from the Ingress's origin but not from another site's."""
    rendered = settings(with_ingress["cpu"])
    local = loopback_config(write_web_repository(tmp_path / "models"))
    app = await create_server(
        rendered.replace(
            **{
                name: getattr(local, name)
                for name in ("grpc_host", "grpc_port", "metrics_host", "metrics_port")
            },
            model_repository=local.model_repository,
            http_host="127.0.0.1",
            http_port=free_port(),
        )
    )
    try:
        assert app.web is not None
        base = f"http://127.0.0.1:{app.web.port}"
        async with aiohttp.ClientSession() as session, session.get(f"{base}/") as page:
            assert page.status == 200
            assert "text/html" in page.headers["Content-Type"]
        frames: list[Frame] = [config_frame("tiny-audio", RATE), *AUDIO, END]
        (origin,) = rendered.http_origins
        result = await stream_frames(f"{base}/ws", frames, origin=origin)
        assert result.outcome["status"] == "OK"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stream_frames(f"{base}/ws", frames, origin="https://elsewhere.example")
        assert refused.value.status == 403
    finally:
        await app.drain(grace=1.0)
