"""The gRPC channel settings every load client uses, so each server is driven the same way."""

from __future__ import annotations

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
