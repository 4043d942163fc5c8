"""An audio version's forward pass replayed as CUDA graphs, one per batch size bucket.

On a GPU a window of the ensemble is a few hundred small kernels (the tagger's filters, the
CNN's blocks, the LSTM's steps), and at the batch sizes streams make, launching them costs about
as much as running them. A CUDA graph records the launches once and replays them in one call. A
graph has fixed shapes, so batches are padded to the next power of two up to the batcher's
maximum (the padding rows are zeros whose outputs are dropped). Each graph is captured after a
warm-up on a side stream (cuFFT and cuDNN choose their plans then, outside the capture), and is
kept only if its outputs equal the eager pass's on the same windows; anything that fails to
capture or to match leaves the version eager, with the reason in the ``model_loaded`` line.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]
MATCH_TOLERANCE = 1e-5  # replay against eager, same precision: only reordering may differ


def buckets(max_batch_size: int) -> list[int]:
    """1, 2, 4, ... up to the first power of two at or above ``max_batch_size``."""
    sizes = [1]
    while sizes[-1] < max_batch_size:
        sizes.append(sizes[-1] * 2)
    return sizes


class GraphedForward:
    """``forward`` ((N, S) waveforms on the GPU -> (N, C + 1)) captured per bucket."""

    def __init__(self, forward: Forward, window_samples: int, max_batch_size: int) -> None:
        self._forward = forward
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.sizes = buckets(max_batch_size)
        self._capture_all(window_samples)

    def _capture_all(self, window_samples: int) -> None:
        device = torch.device("cuda")
        pool = None
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for size in self.sizes:  # warm-up: plans and workspaces, outside any capture
                self._forward(torch.zeros(size, window_samples, device=device))
        torch.cuda.current_stream().wait_stream(side)
        for size in reversed(self.sizes):  # largest first, so smaller graphs share its pool
            static = torch.zeros(size, window_samples, device=device)
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph, pool=pool):
                output = self._forward(static)
            pool = graph.pool()
            self._inputs[size], self._outputs[size], self._graphs[size] = static, output, graph
        torch.cuda.synchronize()

    def __call__(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(N, S) on the GPU -> (N, C + 1): the replayed graph of the smallest bucket >= N; a
        batch past the largest bucket runs eager."""
        rows = int(waveforms.shape[0])
        size = next((s for s in self.sizes if s >= rows), None)
        if size is None:
            return self._forward(waveforms)
        static = self._inputs[size]
        static[:rows].copy_(waveforms)
        if rows < size:
            static[rows:].zero_()
        self._graphs[size].replay()
        return self._outputs[size][:rows].clone()

    def mismatch(self, waveforms: torch.Tensor) -> float:
        """Largest difference between the replay and the eager pass on ``waveforms``, at every
        bucket that ``waveforms``' rows can fill."""
        worst = 0.0
        with torch.inference_mode():
            for size in self.sizes:
                if size > waveforms.shape[0]:
                    break
                batch = waveforms[:size]
                eager = self._forward(batch)
                worst = max(worst, float((self(batch) - eager).abs().max()))
        return worst
