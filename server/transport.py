"""How the gRPC server meets the network: message limits, a shared port, keepalive, connection
age (so clients rebalance over replicas) and TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from server.config import ServerConfig


def grpc_options(config: ServerConfig, share_port: bool = False) -> list[tuple[str, Any]]:
    """``share_port``: workers bind one port together (SO_REUSEPORT); a single process refuses
    to, so a second server started by mistake fails instead of taking half the connections."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 1 if share_port else 0),
        # Accept client keepalive pings every 30 s (the default 5 min strikes out 60 s clients).
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
    ]
    if config.max_connection_age_seconds > 0:
        age_ms = int(config.max_connection_age_seconds * 1000)
        options += [
            ("grpc.max_connection_age_ms", age_ms),
            ("grpc.max_connection_age_grace_ms", int(config.drain_grace_seconds * 1000)),
        ]
    return options


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS when a certificate is configured; mutual TLS when a client CA is configured too."""
    if not config.tls_cert_file:
        return None
    client_ca = Path(config.tls_client_ca_file).read_bytes() if config.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(Path(config.tls_key_file).read_bytes(), Path(config.tls_cert_file).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
