"""TLS, mutual TLS and bearer tokens on a real server; tokens and payloads never reach the logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genre.inference import grpc_service_pb2 as v2
from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.logs import configure_logging
from tests.support.checkpoints import example_row, write_tiny_model
from tests.support.harness import loopback_config, sample_value, scrape
from tests.support.tls import Certificates, make_certificates

FULL_TOKEN = "full-access-token-0123456789"
LIST_ONLY_TOKEN = "list-only-token-0123456789ab"


def classify() -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=example_row())],
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_tiny_model(root, "tiny-mlp")
    return root


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


async def started(repository: Path, **overrides: object) -> App:
    return await create_server(loopback_config(repository, **overrides))


def channel_credentials(certs: Certificates, with_client_cert: bool) -> grpc.ChannelCredentials:
    if with_client_cert:
        return grpc.ssl_channel_credentials(
            certs.ca.read_bytes(), certs.client_key.read_bytes(), certs.client_cert.read_bytes()
        )
    return grpc.ssl_channel_credentials(certs.ca.read_bytes())


async def call_status(channel: grpc.aio.Channel, **kwargs: object) -> grpc.StatusCode:
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    try:
        await stub.ClassifyFeatures(classify(), timeout=5, **kwargs)  # type: ignore[arg-type]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def refused(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> str:
    """The x-request-id in the trailing metadata of a call auth refuses."""
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(classify(), timeout=5, metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    trailing = cast(grpc.aio.Metadata, caught.value.trailing_metadata())  # grpc-stubs differ
    [request_id] = trailing.get_all("x-request-id")
    assert isinstance(request_id, str)
    return request_id


async def test_tls_serves_trusting_clients_and_refuses_plaintext(
    repository: Path, certificates: Certificates
) -> None:
    app = await started(
        repository,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
    )
    try:
        target = f"localhost:{app.grpc_port}"
        credentials = channel_credentials(certificates, with_client_cert=False)
        async with grpc.aio.secure_channel(target, credentials) as channel:
            assert await call_status(channel) == grpc.StatusCode.OK
        async with grpc.aio.insecure_channel(target) as channel:
            assert await call_status(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await app.drain(grace=0.5)


async def test_mutual_tls_requires_a_client_certificate(
    repository: Path, certificates: Certificates
) -> None:
    app = await started(
        repository,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
        tls_client_ca_file=str(certificates.ca),
    )
    try:
        target = f"localhost:{app.grpc_port}"
        with_cert = channel_credentials(certificates, with_client_cert=True)
        async with grpc.aio.secure_channel(target, with_cert) as channel:
            assert await call_status(channel) == grpc.StatusCode.OK
        without_cert = channel_credentials(certificates, with_client_cert=False)
        async with grpc.aio.secure_channel(target, without_cert) as channel:
            assert await call_status(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await app.drain(grace=0.5)


@pytest.fixture
async def token_app(repository: Path, tmp_path: Path) -> AsyncIterator[App]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may call what\n{FULL_TOKEN}\n{LIST_ONLY_TOKEN} ListModels\n")
    app = await started(repository, auth_tokens_file=str(tokens))
    try:
        yield app
    finally:
        await app.drain(grace=0.5)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_bearer_tokens_guard_the_service_but_not_health(
    token_app: App, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{token_app.grpc_port}") as channel:
        assert await call_status(channel) == grpc.StatusCode.UNAUTHENTICATED
        assert await call_status(channel, metadata=(("authorization", "Basic x"),)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        wrong = bearer("not-a-valid-token-at-all-000")
        assert await call_status(channel, metadata=wrong) == grpc.StatusCode.UNAUTHENTICATED
        limited = bearer(LIST_ONLY_TOKEN)
        assert await call_status(channel, metadata=limited) == grpc.StatusCode.PERMISSION_DENIED
        assert await call_status(channel, metadata=bearer(FULL_TOKEN)) == grpc.StatusCode.OK
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        listing = await stub.ListModels(genre_pb2.ListModelsRequest(), metadata=limited)
        assert [m.model.name for m in listing.models] == ["tiny-mlp"]
        stream = stub.ClassifyAudioStream(
            iter([genre_pb2.ClassifyAudioStreamRequest()]), metadata=limited
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest())  # exempt: no token
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    text = scrape(token_app.metrics_port)
    assert sample_value(text, "genre_auth_failures_total", {"status": "UNAUTHENTICATED"}) == 3
    assert sample_value(text, "genre_auth_failures_total", {"status": "PERMISSION_DENIED"}) == 2
    logs = capfd.readouterr().err
    assert FULL_TOKEN not in logs
    assert LIST_ONLY_TOKEN not in logs
    assert "not-a-valid-token" not in logs
    refusals = [json.loads(x) for x in logs.splitlines() if '"auth_refused"' in x]
    assert {r["status"] for r in refusals} == {"UNAUTHENTICATED", "PERMISSION_DENIED"}


async def status_of(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def v2_statuses(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()
) -> dict[str, grpc.StatusCode]:
    """The status of each Open Inference Protocol method that needs no model input."""
    stub = v2_grpc.GRPCInferenceServiceStub(channel)
    model = "tiny-mlp"
    return {
        "ServerLive": await status_of(stub.ServerLive(v2.ServerLiveRequest(), metadata=metadata)),
        "ServerReady": await status_of(
            stub.ServerReady(v2.ServerReadyRequest(), metadata=metadata)
        ),
        "ModelReady": await status_of(
            stub.ModelReady(v2.ModelReadyRequest(name=model), metadata=metadata)
        ),
        "ServerMetadata": await status_of(
            stub.ServerMetadata(v2.ServerMetadataRequest(), metadata=metadata)
        ),
        "ModelMetadata": await status_of(
            stub.ModelMetadata(v2.ModelMetadataRequest(name=model), metadata=metadata)
        ),
        "ModelStatistics": await status_of(
            stub.ModelStatistics(v2.ModelStatisticsRequest(), metadata=metadata)
        ),
    }


PROBES = ("ServerLive", "ServerReady", "ModelReady")


async def test_the_v2_probes_need_no_token_as_health_does(token_app: App) -> None:
    """The v2 liveness and readiness tell what grpc.health.v1 tells anyone; the rest of the
    service, metadata and statistics included, keeps its guard."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{token_app.grpc_port}") as channel:
        anonymous = await v2_statuses(channel)
        limited = await v2_statuses(channel, bearer(LIST_ONLY_TOKEN))
        full = await v2_statuses(channel, bearer(FULL_TOKEN))
    for method, status in anonymous.items():
        assert status == (
            grpc.StatusCode.OK if method in PROBES else grpc.StatusCode.UNAUTHENTICATED
        ), method
    for method, status in limited.items():
        assert status == (
            grpc.StatusCode.OK if method in PROBES else grpc.StatusCode.PERMISSION_DENIED
        ), method
    assert set(full.values()) == {grpc.StatusCode.OK}


async def test_an_empty_exempt_list_guards_the_v2_probes_too(
    repository: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{FULL_TOKEN}\n")
    app = await started(repository, auth_tokens_file=str(tokens), auth_exempt_services=())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            assert set((await v2_statuses(channel)).values()) == {grpc.StatusCode.UNAUTHENTICATED}
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await app.drain(grace=0.5)


async def test_a_short_token_file_entry_is_refused_at_start(
    repository: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("short\n")
    with pytest.raises(ValueError, match="at least 16 characters"):
        await started(repository, auth_tokens_file=str(tokens))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {FULL_TOKEN}", grpc.StatusCode.OK),
        (f"bearer {FULL_TOKEN}", grpc.StatusCode.OK),
        (f"BEARER {FULL_TOKEN}", grpc.StatusCode.OK),
        (f"bEaReR   {FULL_TOKEN}", grpc.StatusCode.OK),
        ("Bearer", grpc.StatusCode.UNAUTHENTICATED),
        ("bearer    ", grpc.StatusCode.UNAUTHENTICATED),
        (f"Bearer{FULL_TOKEN}", grpc.StatusCode.UNAUTHENTICATED),
        (f"Basic {FULL_TOKEN}", grpc.StatusCode.UNAUTHENTICATED),
        (f"Bearers {FULL_TOKEN}", grpc.StatusCode.UNAUTHENTICATED),
        (f"Bearer {FULL_TOKEN.upper()}", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_the_bearer_scheme_is_case_insensitive(
    token_app: App, header: str, expected: grpc.StatusCode
) -> None:
    """RFC 7235: the auth scheme is a case-insensitive token; the token itself is not."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{token_app.grpc_port}") as channel:
        assert await call_status(channel, metadata=(("authorization", header),)) == expected


async def test_a_refusal_carries_the_calls_request_id_in_its_log_line_and_trailers(
    token_app: App, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{token_app.grpc_port}") as channel:
        sent = await refused(channel, (("x-request-id", "caller-chosen-id-42"),))
        made = await refused(channel, (("authorization", "Bearer not-a-valid-token-at-all-0"),))
    assert sent == "caller-chosen-id-42"
    assert made not in ("", sent)
    refusals = [json.loads(x) for x in capfd.readouterr().err.splitlines() if "auth_refused" in x]
    assert [(r["request_id"], r["status"], r["method"]) for r in refusals] == [
        (sent, "UNAUTHENTICATED", "ClassifyFeatures"),
        (made, "UNAUTHENTICATED", "ClassifyFeatures"),
    ]
    assert all(r["peer"] for r in refusals)


@pytest.mark.parametrize(
    "line",
    [
        "abcdefghijklmnop#qrstuvwxyz",
        "abcdefghijklmnopqrstuvwxyz#",
        "abcdefghijklmnopqrstuvwxyz ListModels,#ClassifyFeatures",
    ],
)
async def test_a_hash_inside_a_token_line_is_refused_at_start_naming_the_line(
    repository: Path, tmp_path: Path, line: str
) -> None:
    """Cutting the line at ``#`` would serve a shorter token than the one written; refuse."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# tokens\n{FULL_TOKEN}\n{line}\n")
    with pytest.raises(ValueError, match="tokens:3: '#' inside a token") as caught:
        await started(repository, auth_tokens_file=str(tokens))
    assert "abcdefghijklmnop" not in str(caught.value)  # the error never echoes a token


async def test_comments_start_a_line_or_follow_a_space(repository: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"# who may call what\n   # indented comment\n{FULL_TOKEN} # the batch job\n"
        f"{LIST_ONLY_TOKEN} ListModels\t# the dashboard\n"
    )
    app = await started(repository, auth_tokens_file=str(tokens))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            assert await call_status(channel, metadata=bearer(FULL_TOKEN)) == grpc.StatusCode.OK
            limited = bearer(LIST_ONLY_TOKEN)
            denied = grpc.StatusCode.PERMISSION_DENIED
            assert await call_status(channel, metadata=limited) == denied
    finally:
        await app.drain(grace=0.5)
