"""``python -m server.healthcheck``: exit 0 when the gRPC health service says SERVING, else 1.

The container's HEALTHCHECK runs it, so it imports only grpcio and grpcio-health-checking (no
torch: a probe every few seconds must start fast) and never raises: an unreachable server, a
timeout or an unknown service name all print one line to stderr and exit 1.

``--service ''`` (the default) asks readiness: every configured model loaded and warm.
``--service liveness`` asks whether the process answers at all (``server/app.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TARGET = "localhost:50051"


def check(target: str, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """Asks ``target`` for the health of ``service``; returns (serving, what was seen)."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        return False, f"{target} service {service!r}: {code.name}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, (
        f"{target} service {service!r}: {status}"
    )


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m server.healthcheck",
        description="Exit 0 when the server's grpc.health.v1 service reports SERVING, else 1.",
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help="host:port of the gRPC server")
    parser.add_argument(
        "--service",
        default="",
        help="health service name: '' = readiness (every model loaded), 'liveness' = answering",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a reply")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(sys.argv[1:] if argv is None else argv)
    serving, seen = check(options.target, options.service, options.timeout)
    print(seen, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
