"""Who may use the web port: Origin, bearer tokens and TLS, as SECURITY.md promises."""

from __future__ import annotations

import io
import json
import ssl
from pathlib import Path

import aiohttp
import pytest

from server.logs import configure_logging
from tests.support.tls import make_certificates
from tests.support.web import (
    AUDIO,
    END,
    RATE,
    Frame,
    api_url,
    config_frame,
    get_json,
    started,
    stream_frames,
    web_repository,
    ws_url,
)

FULL_TOKEN = "web-full-token-0123456789"
LIST_ONLY_TOKEN = "web-list-only-token-0123"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return web_repository(tmp_path / "models")


async def test_pages_from_other_origins_are_refused(repository: Path) -> None:
    app = await started(repository, http_origins=("https://Kiosk.example/",))
    try:
        own = f"http://127.0.0.1:{app.web.port if app.web else 0}"
        frames: list[Frame] = [config_frame("tiny-audio", RATE), *AUDIO, END]
        for allowed in (own, "https://kiosk.example", None):
            result = await stream_frames(ws_url(app), frames, origin=allowed)
            assert result.outcome["status"] == "OK", allowed
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stream_frames(ws_url(app), frames, origin="https://evil.example")
        assert refused.value.status == 403
    finally:
        await app.drain(grace=1.0)


async def test_tokens_guard_the_socket_and_the_model_list_and_stay_out_of_logs(
    repository: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{FULL_TOKEN}\n{LIST_ONLY_TOKEN} ListModels\n")
    log = io.StringIO()
    configure_logging("json", "info", stream=log)
    app = await started(repository, auth_tokens_file=str(tokens))
    try:
        assert (await get_json(api_url(app)))[0] == 401
        assert (await get_json(api_url(app), {"Authorization": "Bearer wrong-token-xxxxxxxx"}))[
            0
        ] == 401
        assert (await get_json(api_url(app), {"Authorization": f"Bearer {LIST_ONLY_TOKEN}"}))[
            0
        ] == 200
        audio: list[Frame] = [*AUDIO, END]
        missing = await stream_frames(ws_url(app), [config_frame("tiny-audio", RATE), *audio])
        assert (missing.outcome["status"], missing.close_code) == ("UNAUTHENTICATED", 4016)
        denied = await stream_frames(
            ws_url(app), [config_frame("tiny-audio", RATE, token=LIST_ONLY_TOKEN), *audio]
        )
        assert (denied.outcome["status"], denied.close_code) == ("PERMISSION_DENIED", 4007)
        in_frame = await stream_frames(
            ws_url(app), [config_frame("tiny-audio", RATE, token=FULL_TOKEN), *audio]
        )
        assert in_frame.outcome["status"] == "OK"
        assert len(in_frame.windows) == 6
        header = {"Authorization": f"Bearer {FULL_TOKEN}"}
        in_header = await stream_frames(
            ws_url(app), [config_frame("tiny-audio", RATE), *audio], header
        )
        assert in_header.outcome["status"] == "OK"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stream_frames(ws_url(app), [], {"Authorization": "Bearer wrong-token-xxxxxxxx"})
        assert refused.value.status == 401
    finally:
        await app.drain(grace=1.0)
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    refusals = [line for line in lines if line["event"] == "auth_refused"]
    assert len(refusals) == 5
    assert FULL_TOKEN not in log.getvalue()
    assert LIST_ONLY_TOKEN not in log.getvalue()


async def test_tls_settings_make_the_page_https(repository: Path, tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path / "tls")
    app = await started(
        repository,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
    )
    try:
        trusting = ssl.create_default_context(cafile=str(certificates.ca))
        assert (await get_json(api_url(app, "https"), ssl_context=trusting))[0] == 200
        frames: list[Frame] = [config_frame("tiny-audio", RATE), *AUDIO, END]
        result = await stream_frames(ws_url(app, "https"), frames, ssl_context=trusting)
        assert result.outcome["status"] == "OK"
        with pytest.raises(aiohttp.ClientError):
            await get_json(api_url(app))  # plain HTTP to a TLS port
    finally:
        await app.drain(grace=1.0)


async def test_mutual_tls_asks_the_browser_for_a_client_certificate(
    repository: Path, tmp_path: Path
) -> None:
    certificates = make_certificates(tmp_path / "tls")
    app = await started(
        repository,
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
        tls_client_ca_file=str(certificates.ca),
    )
    try:
        anonymous = ssl.create_default_context(cafile=str(certificates.ca))
        with pytest.raises(aiohttp.ClientError):
            await get_json(api_url(app, "https"), ssl_context=anonymous)
        known = ssl.create_default_context(cafile=str(certificates.ca))
        known.load_cert_chain(str(certificates.client_cert), str(certificates.client_key))
        assert (await get_json(api_url(app, "https"), ssl_context=known))[0] == 200
    finally:
        await app.drain(grace=1.0)
