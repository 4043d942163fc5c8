"""Checks that each peer, set up and started as a benchmark run would, answers every request of
a concurrent burst with our runner's probabilities for that request's own rows.

The unit tests check the peers' model code without the peers (``tests/bench/test_peer_models.py``);
this runs the real servers, so their batchers merge and split requests of 1-3 rows under load:

    .venv/bin/python -m bench.peers.check                   # triton and mlserver, 2 workers
    .venv/bin/python -m bench.peers.check --peers mlserver --workers 1

Exits 1 when a peer is unavailable or any probability strays more than ``--tolerance``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import grpc
import numpy as np

from bench.endpoints import MODEL_INFER
from bench.peers.base import Peer, PeerSettings
from bench.peers.mlserver import MLServer
from bench.peers.model import FloatArray, load_runner
from bench.peers.process import PeerUnavailable
from bench.peers.triton import Triton
from bench.plan import REPOSITORY_ROOT
from bench.request_bodies import v2_request, write_requests
from genre.inference import grpc_service_pb2 as v2

PEERS: dict[str, type[Peer]] = {"triton": Triton, "mlserver": MLServer}


def burst(version: Path, count: int, seed: int = 0) -> list[FloatArray]:
    """``count`` requests of 1-3 rows around the manifest's raw-scale means."""
    manifest = json.loads((version / "manifest.json").read_text())
    mean = np.asarray(manifest["preprocessing"]["mean"], dtype=np.float32)
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(1, 4)), mean.size) for _ in range(count)]
    return [(mean * rng.normal(1.0, 0.1, size=shape)).astype(np.float32) for shape in shapes]


async def answers(
    target: str, model: str, requests: list[FloatArray], concurrency: int
) -> list[FloatArray]:
    async with grpc.aio.insecure_channel(target) as channel:
        infer = channel.unary_unary(
            MODEL_INFER, request_serializer=None, response_deserializer=None
        )
        slots = asyncio.Semaphore(concurrency)

        async def one(rows: FloatArray) -> FloatArray:
            async with slots:
                raw = await infer(v2_request(model, rows), timeout=30)
            response = v2.ModelInferResponse.FromString(raw)
            return np.frombuffer(response.raw_output_contents[0], "<f4").reshape(rows.shape[0], -1)

        return list(await asyncio.gather(*(one(rows) for rows in requests)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="gtzan-features-mlp")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    models = REPOSITORY_ROOT / "models" / args.model
    version = max((p for p in models.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    requests = burst(version, args.requests)
    runner = load_runner(version, threads=1)
    expected = [runner.run(rows) for rows in requests]
    failed = False
    with tempfile.TemporaryDirectory(prefix="genre-peers-") as scratch:
        bodies = write_requests(Path(scratch), version, args.model)
        settings = PeerSettings(
            Path(scratch), version, args.model,
            {"features-1": bodies["v2-1"], "features-256": bodies["v2-256"]},
            max_batch_size=256, max_queue_delay_ms=5.0,
        )  # fmt: skip
        for name in args.peers.split(","):
            try:
                with PEERS[name](settings).serving(args.workers) as endpoint:
                    got = asyncio.run(
                        answers(endpoint.target, args.model, requests, args.concurrency)
                    )
            except PeerUnavailable as error:
                print(f"{name}: unavailable: {error}")
                failed = True
                continue
            worst = max(float(np.abs(a - b).max()) for a, b in zip(got, expected, strict=True))
            failed |= worst > args.tolerance
            print(
                f"{name}, {args.workers} workers: {len(requests)} requests at concurrency "
                f"{args.concurrency}, largest difference from our runner {worst:.2e}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
