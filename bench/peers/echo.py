"""The ceiling: a bare ``grpc.aio`` GenreClassifier that answers at once, with no model.

Same gRPC stack, same registration (``server.handlers.add_servicer``, so requests are parsed
exactly as ours parses them), same channel options; no validation, no model, no metrics, no log
line. It answers each call with a pre-built response of the size ours would send: one
``Classification`` per request row with every label of the model. What our server achieves
relative to this is the share of a Python gRPC service's best that it keeps. An audio stream
gets one pre-built update per hop of audio it was sent (``bench.studies.message_cost --server
echo``: the CPU a message costs the gRPC stack alone).

    python -m bench.peers.echo --manifest models/gtzan-features-mlp/1/manifest.json

It logs the same JSON ``starting``/``ready`` lines as ``python -m server`` (ports from
``GENRE_GRPC_HOST``/``GENRE_GRPC_PORT``), so ``bench.server_process`` starts it like ours.

``--reuseport`` lets N echo processes share one port as ours's workers do (SO_REUSEPORT: the
kernel hands each new connection to one of them), the ceiling for N serving processes. The
``stopped`` line says how many calls this process answered, so a test can tell that every one
of them took a share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from genre.v1 import genre_pb2
from server.handlers import add_servicer, parsed


def prebuilt_response(
    labels: Sequence[str], rows: int, model: str = "echo"
) -> genre_pb2.ClassifyFeaturesResponse:
    share = 1.0 / len(labels)
    row = genre_pb2.Classification(
        scores=[genre_pb2.GenreScore(genre=label, probability=share) for label in labels]
    )
    return genre_pb2.ClassifyFeaturesResponse(
        model=genre_pb2.ModelRef(name=model, version="1"), results=[row] * rows
    )


def request_rows(request: genre_pb2.ClassifyFeaturesRequest) -> int:
    if request.rows:
        return len(request.rows)
    width = len(request.dense.feature_names)
    return len(request.dense.values) // width if width else 0


class EchoServicer:
    """Pre-built answers, cached per row count."""

    def __init__(self, labels: Sequence[str], model: str) -> None:
        self._labels = tuple(labels)
        self._model = model
        self._responses: dict[int, genre_pb2.ClassifyFeaturesResponse] = {}
        self._window = genre_pb2.ClassifyAudioStreamResponse(
            model=genre_pb2.ModelRef(name=model, version="1"),
            window=prebuilt_response(labels, 1, model).results[0],
        )
        self.calls = 0

    async def ClassifyFeatures(  # noqa: N802
        self,
        request: genre_pb2.ClassifyFeaturesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> genre_pb2.ClassifyFeaturesResponse:
        self.calls += 1
        rows = request_rows(parsed(request))
        response = self._responses.get(rows)
        if response is None:
            response = prebuilt_response(self._labels, rows, self._model)
            self._responses[rows] = response
        return response

    async def ClassifyAudioStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[genre_pb2.ClassifyAudioStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Reads every message and writes one pre-built update per hop of audio, then a final
        one: what a stream costs a Python gRPC server before any decoding, window or model.
        Reads and writes as ours does (an await on the iterator, ``context.write``)."""
        bytes_per_hop, pending = 0, 0
        async for message in request_iterator:
            request = parsed(message)
            if request.HasField("config"):
                config = request.config
                bytes_per_hop = (
                    2
                    * max(1, config.channels)
                    * int(config.sample_rate * (config.hop_seconds or 1.5))
                )
                continue
            pending += len(request.audio.data)
            while bytes_per_hop and pending >= bytes_per_hop:
                pending -= bytes_per_hop
                await context.write(self._window)
        await context.write(
            genre_pb2.ClassifyAudioStreamResponse(final=True, track=self._window.window)
        )

    async def ListModels(  # noqa: N802
        self, request: genre_pb2.ListModelsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> genre_pb2.ListModelsResponse:
        return genre_pb2.ListModelsResponse()


def _log(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), file=sys.stderr, flush=True)


async def serve(
    labels: Sequence[str], model: str, host: str, port: int, *, reuseport: bool = False
) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 1 if reuseport else 0),
        ]
    )
    servicer = EchoServicer(labels, model)
    add_servicer(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    _log("starting", grpc_port=bound, metrics_port=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _log("ready")
    await stop.wait()
    await server.stop(1.0)
    _log("stopped", pid=os.getpid(), calls=servicer.calls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--manifest", type=Path, required=True, help="labels come from here")
    parser.add_argument(
        "--reuseport", action="store_true", help="share the port with other processes"
    )
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    host = os.environ.get("GENRE_GRPC_HOST", "127.0.0.1")
    port = int(os.environ.get("GENRE_GRPC_PORT", "0"))
    labels = [str(label) for label in manifest["labels"]]
    asyncio.run(serve(labels, manifest["name"], host, port, reuseport=args.reuseport))
    return 0


if __name__ == "__main__":
    sys.exit(main())
