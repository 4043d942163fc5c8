"""Per-window CPU latency of a published audio model, front-end included, as the server runs it.

    python -m training.audio.latency models/gtzan-cnn-lstm/1 [--threads 2] [--repeats 30]

Prints the parameter count and the median milliseconds per window at batch 1 and batch 32
(log-mel front-end plus CNN-LSTM, inference mode, after warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from modelcore.checkpoint import load_checkpoint
from modelcore.frontend import FrontEndConfig, LogMelFrontEnd
from modelcore.models import build_model


def measure(directory: Path, batch_sizes: Sequence[int], repeats: int) -> dict[int, float]:
    """``{batch size: median ms per window}``."""
    checkpoint = load_checkpoint(directory)
    config = FrontEndConfig.from_dict(checkpoint.manifest.frontend or {})
    front_end = LogMelFrontEnd(config)
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    result = {}
    for size in batch_sizes:
        windows = torch.randn(size, config.window_samples) * 0.1
        timings = []
        with torch.inference_mode():
            for index in range(repeats + 3):
                start = time.perf_counter()
                model(front_end(windows))
                if index >= 3:
                    timings.append((time.perf_counter() - start) * 1000 / size)
        result[size] = statistics.median(timings)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audio_latency", description=__doc__.split("\n")[0])
    parser.add_argument("version_directory", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    checkpoint = load_checkpoint(arguments.version_directory)
    parameters = sum(
        tensor.numel()
        for key, tensor in checkpoint.state_dict.items()
        if "num_batches" not in key and "running_" not in key
    )
    print(f"parameters: {parameters:,}")
    for size, milliseconds in measure(
        arguments.version_directory, (1, 32), arguments.repeats
    ).items():
        print(f"batch {size}: {milliseconds:.2f} ms per window ({arguments.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
