"""Runners turn a batch of raw inputs into class probabilities; the batcher calls them off the loop.

A runner owns one model version on one device. It is built from a verified checkpoint, checked
for consistency (state dict, labels, input width) and warmed up before it serves, so the first
caller pays no lazy-initialisation cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from modelcore.checkpoint import Checkpoint, CheckpointError
from modelcore.frontend import FrontEndConfig, build_frontend
from modelcore.models import build_model
from modelcore.preprocessing import TEXT_PADDING, FeaturePreprocessor
from server.compute.cuda_graphs import MATCH_TOLERANCE, GraphedForward
from server.compute.fused import FusedMLPEnsemble, fuse, fuse_children, matches
from server.config import PRECISIONS
from server.signatures import AudioSignature, FeaturesSignature, Signature

FloatArray = npt.NDArray[np.float32]
# Fused MLP ensembles (server.compute.fused) win by launching fewer kernels; past this many rows the
# member-by-member GEMMs are as fast or faster (measured on 2 CPU cores), so the original runs.
FUSED_MAX_ROWS = 128
CAPACITY_BATCH = 8  # audio windows per timed pass when a version measures its capacity


class Runner(Protocol):
    """What a batcher needs: a pure batched function from inputs ``(N, ...)`` to ``(N, C)``."""

    labels: tuple[str, ...]

    @property
    def signature(self) -> Signature: ...

    def run(self, inputs: FloatArray) -> FloatArray: ...

    def warm_up(self, max_batch_size: int) -> None: ...


def select_device(preference: str) -> torch.device:
    """``auto`` takes CUDA when present; asking for ``cuda`` without it is a configuration error."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for but CUDA is not available")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


_MANIFEST_FAULTS = (KeyError, TypeError, ValueError, RuntimeError)


def load_calibrated_model(
    checkpoint: Checkpoint, device: torch.device
) -> tuple[tuple[str, ...], float, nn.Module]:
    """Labels, temperature and the evaluated model on ``device``, or CheckpointError saying why."""
    manifest = checkpoint.manifest
    try:
        labels = manifest.labels
        temperature = manifest.temperature
        model = build_model(manifest.architecture)
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except _MANIFEST_FAULTS as error:
        raise CheckpointError(
            f"{checkpoint.directory}: inconsistent checkpoint ({error})"
        ) from error
    if not np.isfinite(temperature) or temperature <= 0:
        raise CheckpointError(f"{checkpoint.directory}: temperature must be positive")
    return labels, temperature, model.eval().to(device)


def check_output_width(checkpoint: Checkpoint, width: int, labels: tuple[str, ...]) -> None:
    if width != len(labels):
        raise CheckpointError(
            f"{checkpoint.directory}: model has {width} outputs but {len(labels)} labels"
        )


# bfloat16 keeps 8 bits of mantissa, so probabilities move a little (the ``model_loaded`` log line
# gives each version's figure). One that moves more than this on the load-time probe serves in
# float32.
BFLOAT16_TOLERANCE = 0.02


class FeaturesRunner:
    """Preprocessing from the manifest, then the MLP, then temperature-scaled softmax.

    Inputs are ``(N, width)``: the numeric features, then, for a version with text features
    (a title), their code-point columns (``modelcore.preprocessing.TextFeature``), which the
    model reads itself (``modelcore.models.title_blend``).

    ``precision="bfloat16"`` (opt-in) runs the fused ensemble in bfloat16 at every batch size:
    1.1x-1.9x float32's rows/s for 256-row calls on a CPU with native bfloat16 or on a GPU
    (``bench/results/benchmarks.md``, ``bench/results/gpu-h100/benchmarks.md``).
    It is checked against float32 when the version loads; ``precision`` and
    ``precision_error`` say what the runner actually does and how far it strays.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: torch.device,
        precision: str = "float32",
        tolerance: float = BFLOAT16_TOLERANCE,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.device = device
        self.labels, self.temperature, self.model = load_calibrated_model(checkpoint, device)
        try:
            self.preprocessor = FeaturePreprocessor.from_dict(
                checkpoint.manifest.preprocessing or {}
            )
        except _MANIFEST_FAULTS as error:
            raise CheckpointError(
                f"{checkpoint.directory}: unusable preprocessing ({error})"
            ) from error
        self._check_shapes(checkpoint)
        width = len(self.preprocessor.feature_names)
        fused = fuse(self.model)
        if fused is None:  # a blend: its MLP parts fuse like plain ensembles
            fuse_children(self.model, width, device)
        usable = fused is not None and matches(self.model, fused, width, device)
        self._fused = fused if usable else None
        self._low: FusedMLPEnsemble | None = None
        self.precision, self.precision_error = "float32", 0.0
        if precision == "bfloat16" and self._fused is not None:
            low = self._fused.cast(torch.bfloat16)
            strays = self._probability_error(low, width)
            if strays <= tolerance:
                self._low, self.precision, self.precision_error = low, "bfloat16", strays
            else:
                self.precision_error = strays  # refused: float32 it is, and the log says why

    def _probability_error(self, low: FusedMLPEnsemble, width: int) -> float:
        """Largest probability difference between float32 and ``low`` on seeded random rows."""
        generator = torch.Generator().manual_seed(0)
        worst = 0.0
        with torch.inference_mode():
            for batch in (1, 7, 64, 256):
                inputs = torch.randn(batch, width, generator=generator).to(self.device)
                exact = torch.softmax(self.model(inputs).float() / self.temperature, dim=1)
                rough = low(inputs.to(torch.bfloat16)).float()
                rough = torch.softmax(rough / self.temperature, dim=1)
                worst = max(worst, float((exact - rough).abs().max()))
        return worst

    def _check_shapes(self, checkpoint: Checkpoint) -> None:
        width = self.preprocessor.width
        try:
            with torch.inference_mode():
                rows = torch.from_numpy(self.preprocessor.transform(self.typical_rows(2)))
                logits = self.model(rows.to(self.device))
        except (RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"{checkpoint.directory}: model does not take {width} columns ({error})"
            ) from error
        check_output_width(checkpoint, int(logits.shape[1]), self.labels)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.preprocessor.feature_names

    @property
    def signature(self) -> FeaturesSignature:
        return FeaturesSignature(labels=self.labels, preprocessor=self.preprocessor)

    def typical_rows(self, count: int, text: str = "") -> FloatArray:
        """``count`` rows of the training means with ``text`` in every text feature (none by
        default): for warm-up and probes."""
        row = np.full(self.preprocessor.width, TEXT_PADDING, dtype=np.float32)
        row[: len(self.feature_names)] = self.preprocessor.mean
        for feature in self.preprocessor.text_features:
            row[self.preprocessor.text_columns(feature.name)] = feature.encode(text)
        return np.tile(row, (count, 1))

    def run(self, inputs: FloatArray) -> FloatArray:
        """(N, W) raw rows (features, NaN where omitted; then any text columns) -> (N, C)
        calibrated probabilities."""
        standardised = torch.from_numpy(self.preprocessor.transform(inputs))
        with torch.inference_mode():
            if self._low is not None:
                logits = self._low(standardised.to(self.device, torch.bfloat16, non_blocking=True))
            else:
                model = self.model
                if self._fused is not None and inputs.shape[0] < FUSED_MAX_ROWS:
                    model = self._fused
                logits = model(standardised.to(self.device, non_blocking=True))
            probabilities = torch.softmax(logits.float() / self.temperature, dim=1)
        return probabilities.cpu().numpy()

    def warm_up(self, max_batch_size: int) -> None:
        texts = ("", "warm up") if self.preprocessor.text_features else ("",)
        for size in sorted({1, min(8, max_batch_size), max_batch_size}):
            for text in texts:
                self.run(self.typical_rows(size, text))


# Reduced precision for audio models is kept only where its answers stay this close to float32's
# (probabilities, on the load-time probe; tests/integration/test_audio_precision.py checks real
# audio on a GPU).
AUDIO_TOLERANCE = 1e-3


class AudioRunner:
    """The model's front-ends from the manifest, then the model, then softmax.

    Inputs are windows ``(N, window_samples)`` at the rate of the manifest's ``frontend`` (the
    stream contract). A model with several inputs (the audio ensemble) lists one front-end per
    input in ``architecture.inputs``; each is computed once per batch, on the serving device.

    ``precision``: ``auto`` runs the model (not the front-ends: a log-mel in bfloat16 loses the
    quiet bands) under bfloat16 autocast on a GPU when its probabilities stay within
    ``tolerance`` of float32's on a probe of made music, else float32; ``bfloat16`` asks for it
    anywhere, under the same check; ``float32`` never. ``cuda_graphs``: ``auto`` replays the
    pass as CUDA graphs on a GPU (``server.compute.cuda_graphs``), kept only if they match the eager
    pass; ``off`` never. ``precision``, ``precision_error`` and ``graphs`` say what was chosen.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: torch.device,
        precision: str = "auto",
        cuda_graphs: str = "auto",
        tolerance: float = AUDIO_TOLERANCE,
    ) -> None:
        self.device = device
        self.precision, self.precision_error = "float32", 0.0
        self.graphs = "off"  # or "on", or why they were refused
        self._autocast = False
        self._graphed: GraphedForward | None = None
        self._want_graphs = cuda_graphs == "auto" and device.type == "cuda"
        self.windows_per_second = math.inf  # until warm_up measures it
        self.labels, self.temperature, self.model = load_calibrated_model(checkpoint, device)
        manifest = checkpoint.manifest
        try:
            self.frontend_config = FrontEndConfig.from_dict(manifest.frontend or {})
            inputs = manifest.architecture.get("inputs") or [manifest.frontend]
            rate = self.frontend_config.sample_rate
            frontends = [build_frontend(spec, rate) for spec in inputs]
        except _MANIFEST_FAULTS as error:
            raise CheckpointError(
                f"{checkpoint.directory}: a front-end this server cannot reproduce ({error})"
            ) from error
        self.frontends = [frontend.to(device).eval() for frontend in frontends]
        self.detects_music = getattr(self.model, "detector", None) is not None
        # the ensemble's classify() gives the music logit beside the genres; other models: forward
        self._classify: Callable[..., tuple[torch.Tensor, torch.Tensor | None]] | None = getattr(
            self.model, "classify", None
        )
        outputs = self.run(np.zeros((1, self.frontend_config.window_samples), dtype=np.float32))
        check_output_width(checkpoint, int(outputs.shape[1]) - 1, self.labels)
        if precision == "bfloat16" or (precision == "auto" and device.type == "cuda"):
            self._try_bfloat16(tolerance)

    def _try_bfloat16(self, tolerance: float) -> None:
        probe = made_music(self.frontend_config.sample_rate, self.frontend_config.window_samples)
        exact = self.run(probe)
        self._autocast = True
        error = float(np.nanmax(np.abs(self.run(probe) - exact)))
        if error <= tolerance:
            self.precision, self.precision_error = "bfloat16", error
        else:  # refused: float32 it is, and the log line says by how much it strayed
            self._autocast, self.precision_error = False, error

    @property
    def signature(self) -> AudioSignature:
        """Read after ``warm_up``, which measures ``windows_per_second``."""
        return AudioSignature(
            labels=self.labels,
            frontend_config=self.frontend_config,
            windows_per_second=self.windows_per_second,
            detects_music=self.detects_music,
        )

    def run(self, inputs: FloatArray) -> FloatArray:
        """(N, window_samples) mono windows -> (N, C + 1): calibrated probabilities, then the
        probability that the window is music (NaN where the version has no detector). One
        array, so the batcher passes both through unchanged; ``split_outputs`` parts them."""
        with torch.inference_mode():
            waveforms = torch.from_numpy(inputs).to(self.device, non_blocking=True)
            outputs = (self._graphed or self._forward)(waveforms)
        return outputs.cpu().numpy()

    def _forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(N, window_samples) on the device -> (N, C + 1) on the device."""
        spectra = [frontend(waveforms) for frontend in self.frontends]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            classify = self._classify
            logits, music = classify(*spectra) if classify else (self.model(*spectra), None)
        probabilities = torch.softmax(logits.float() / self.temperature, dim=1)
        if music is None:
            music_probability = torch.full_like(probabilities[:, :1], math.nan)
        else:
            music_probability = torch.sigmoid(music.float())[:, None]
        return torch.cat([probabilities, music_probability], dim=1)

    def _capture_graphs(self, max_batch_size: int) -> None:
        window = self.frontend_config.window_samples
        try:
            graphed = GraphedForward(self._forward, window, max_batch_size)
            probe = made_music(self.frontend_config.sample_rate, window, windows=max_batch_size)
            mismatch = graphed.mismatch(torch.from_numpy(probe).to(self.device))
        except (RuntimeError, torch.cuda.CudaError) as error:  # capture is not for every op
            self.graphs = f"refused: {type(error).__name__}: {error}"[:200]
            return
        if not mismatch <= MATCH_TOLERANCE:
            self.graphs = f"refused: replay differs from eager by {mismatch:.2e}"
            return
        self._graphed, self.graphs = graphed, "on"

    def warm_up(self, max_batch_size: int) -> None:
        """Runs each shape once, then measures ``windows_per_second`` (stream admission's
        capacity) at batch min(8, max_batch_size): the best of three passes, since other work
        on the machine only ever slows a pass down. Conservative on a GPU, whose windows/s keeps
        rising with the batch."""
        if self._want_graphs:
            self._capture_graphs(max_batch_size)
        batch = min(CAPACITY_BATCH, max_batch_size)
        for size in sorted({1, batch}):
            self.run(np.zeros((size, self.frontend_config.window_samples), dtype=np.float32))
        windows = np.zeros((batch, self.frontend_config.window_samples), dtype=np.float32)
        fastest = math.inf
        for _ in range(3):
            started = time.perf_counter()
            self.run(windows)
            fastest = min(fastest, time.perf_counter() - started)
        self.windows_per_second = batch / max(fastest, 1e-9)


def made_music(sample_rate: int, window_samples: int, windows: int = 8) -> FloatArray:
    """Seeded windows of chords over a beat and a little noise: music-like input for the
    load-time checks of reduced precision and graphs, with no data file at run time."""
    generator = np.random.default_rng(0)
    seconds = np.arange(window_samples) / sample_rate
    rows = []
    for _ in range(windows):
        chord = sum(
            np.sin(2 * np.pi * frequency * seconds) for frequency in generator.uniform(110, 880, 3)
        )
        beat = (np.sin(2 * np.pi * generator.uniform(1.5, 3.0) * seconds) > 0.9).astype(float)
        noise = generator.standard_normal(window_samples)
        rows.append(0.2 * chord / 3 + 0.2 * beat * noise + 0.01 * noise)
    return np.asarray(rows, dtype=np.float32)


def split_outputs(outputs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """An audio runner's (N, C + 1) outputs -> (N, C) probabilities and (N,) music
    probabilities (NaN without a detector)."""
    return outputs[:, :-1], outputs[:, -1]


@dataclass(frozen=True)
class RunnerOptions:
    """How runners compute: feature models' and audio models' precision, and CUDA graphs."""

    features_precision: str = "float32"
    audio_precision: str = "auto"
    cuda_graphs: str = "auto"


# The one place a model kind meets the code that serves it (kinds: ``modelcore.manifest``).
RUNNERS: Mapping[str, Callable[[Checkpoint, torch.device, RunnerOptions], Runner]] = {
    "features": lambda checkpoint, device, options: FeaturesRunner(
        checkpoint, device, options.features_precision
    ),
    "audio": lambda checkpoint, device, options: AudioRunner(
        checkpoint, device, options.audio_precision, options.cuda_graphs
    ),
}


def build_runner(
    checkpoint: Checkpoint, device: torch.device, options: RunnerOptions | None = None
) -> Runner:
    kind = checkpoint.manifest.kind
    if kind not in RUNNERS:
        raise CheckpointError(f"{checkpoint.directory}: this server cannot serve {kind!r} models")
    return RUNNERS[kind](checkpoint, device, options or RunnerOptions())
