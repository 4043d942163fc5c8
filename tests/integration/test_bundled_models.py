"""What `make serve` promises: the installed `genre-serve` serves the bundled, trained models.

The repository's own ``models/`` is loaded by the real console script, checked for health,
reflection and /metrics, and every bundled features model answers with exactly the
probabilities the training code computes for the same rows (the manifest round trip).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bench.server_process import ServerProcess, start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import Checkpoint, list_versions, load_checkpoint
from modelcore.frontend import FrontEndConfig, build_frontend
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from server.runner import BFLOAT16_TOLERANCE, FeaturesRunner
from tests.conftest import REPOSITORY_ROOT
from tests.support.harness import sample_value, scrape
from tests.support.predictions import predict_probabilities
from training.audio.data import cut_windows, decode_file
from training.features.datasets import load_dataset

MODELS = REPOSITORY_ROOT / "models"
BUNDLED = sorted(path.name for path in MODELS.iterdir() if path.is_dir()) if MODELS.is_dir() else []
DATASET_OF = {"gtzan-features-mlp": "gtzan30", "spotify11-mlp": "spotify11"}


@pytest.fixture(scope="module")
def served() -> Iterator[ServerProcess]:
    console_script = Path(sys.executable).parent / "genre-serve"
    process = start_server_process(None, command=(str(console_script),))
    yield process
    assert process.stop() == 0


def test_the_repository_bundles_the_trained_models() -> None:
    assert set(DATASET_OF) <= set(BUNDLED)
    for name in BUNDLED:
        manifest = load_checkpoint(MODELS / name / str(max(list_versions(MODELS / name)))).manifest
        assert manifest.metrics["split_protocol"]
        assert manifest.training["data_fingerprint"]


def test_serving_health_reflection_and_metrics(served: ServerProcess) -> None:
    with grpc.insecure_channel(served.target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        services = {s.name for r in replies for s in r.list_services_response.service}
        assert "genre.v1.GenreClassifier" in services
        listed = genre_pb2_grpc.GenreClassifierStub(channel).ListModels(
            genre_pb2.ListModelsRequest()
        )
    assert {m.model.name for m in listed.models} == set(BUNDLED)
    assert sample_value(scrape(served.metrics_port), "genre_model_info") == len(listed.models)


def test_list_models_gives_figures_for_every_row_a_user_sends(served: ServerProcess) -> None:
    """The default versions' figures say what unseen data will show: the Spotify model's over
    every labelled row (tracks filed under two genres included) beside the unambiguous ones,
    and GTZAN figures from tracks that chose nothing beside the valid-list ones."""
    with grpc.insecure_channel(served.target) as channel:
        listed = genre_pb2_grpc.GenreClassifierStub(channel).ListModels(
            genre_pb2.ListModelsRequest()
        )
    defaults = {info.model.name: info for info in listed.models if info.is_default}
    spotify = defaults["spotify11-mlp"]
    figures = {metric.name: metric.value for metric in spotify.metrics}
    assert {"accuracy_all_rows", "log_loss_all_rows", "accuracy_any_label"} <= set(figures)
    assert figures["accuracy_all_rows"] < figures["accuracy"]
    assert figures["log_loss_all_rows"] > figures["log_loss"]
    assert figures["accuracy_all_rows"] <= figures["accuracy_any_label"]
    assert "accuracy_any_label counts a prediction right" in spotify.split_protocol
    for name, figure, chose, nothing in (
        (
            "gtzan-features-mlp",
            "nested_accuracy",
            "valid also chose the epoch and temperature",
            "figures from tracks that chose nothing",
        ),
        (
            "gtzan-cnn-lstm",
            "nested_track_accuracy",
            "on the valid tracks that chose it (optimistic)",
            "nested_*: from tracks that chose nothing",
        ),
    ):
        info = defaults[name]
        assert figure in {metric.name for metric in info.metrics}
        assert chose in info.split_protocol
        assert nothing in info.split_protocol


def reference_rows(name: str, data_dir: Path, count: int = 64) -> tuple[np.ndarray, list[str]]:
    """Real rows of the model's dataset (with its real gaps) and the dataset's genre names."""
    dataset = load_dataset(DATASET_OF[name], data_dir)
    chosen = np.random.default_rng(0).choice(len(dataset), size=count, replace=False)
    return dataset.features[chosen], list(dataset.label_names)


def reference_titles(name: str, data_dir: Path, count: int = 64) -> list[str]:
    """The titles of ``reference_rows``' rows, every other one left out (a caller without)."""
    dataset = load_dataset(DATASET_OF[name], data_dir)
    chosen = np.random.default_rng(0).choice(len(dataset), size=count, replace=False)
    titles = dataset.titles[chosen].tolist() if dataset.titles is not None else [""] * count
    return [title if index % 2 else "" for index, title in enumerate(titles)]


def with_text(preprocessor: FeaturePreprocessor, rows: np.ndarray, titles: list[str]) -> np.ndarray:
    """``rows`` widened to the model's input: each title's code points where it takes one."""
    if not preprocessor.text_features:
        return rows
    feature = preprocessor.text_features[0]
    codes = np.stack([feature.encode(title) for title in titles])
    return np.concatenate([rows, codes], axis=1)


def training_code_probabilities(
    checkpoint: Checkpoint, rows: np.ndarray
) -> tuple[np.ndarray, FeaturePreprocessor]:
    """What ``training`` computes for ``rows`` from the checkpoint alone."""
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    temperature = checkpoint.manifest.temperature
    return predict_probabilities(model, preprocessor, rows, temperature), preprocessor


@pytest.mark.parametrize("name", sorted(DATASET_OF))
def test_grpc_answers_equal_the_training_code(
    served: ServerProcess, name: str, data_dir: Path
) -> None:
    directory = MODELS / name / str(max(list_versions(MODELS / name)))
    checkpoint = load_checkpoint(directory)
    rows, genre_names = reference_rows(name, data_dir)
    titles = reference_titles(name, data_dir)
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    expected, _ = training_code_probabilities(checkpoint, with_text(preprocessor, rows, titles))
    request = genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name=name))
    for row, title in zip(rows, titles, strict=True):  # NaN cells omitted, as a caller would
        features = {
            feature: float(value)
            for feature, value in zip(preprocessor.feature_names, row, strict=True)
            if not np.isnan(value)
        }
        added = request.rows.add()
        added.features.update(features)
        if preprocessor.text_features and title:
            added.text["title"] = title
    with grpc.insecure_channel(served.target) as channel:
        reply = genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(request)
    labels = checkpoint.manifest.labels
    assert list(labels) == genre_names  # served labels are the dataset's own genre names
    assert reply.model.version == directory.name
    got = np.array(
        [
            [{s.genre: s.probability for s in r.scores}[label] for label in labels]
            for r in reply.results
        ]
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(DATASET_OF))
def test_bfloat16_stays_close_to_the_training_code_on_real_rows(name: str, data_dir: Path) -> None:
    """The opt-in bfloat16 precision, on the shipped weights and real rows of their dataset. A
    blend with boosted trees (or a title member over one) stays float32 (thresholds compare in
    float64), exactly."""
    checkpoint = load_checkpoint(MODELS / name / str(max(list_versions(MODELS / name))))
    rows, _ = reference_rows(name, data_dir, count=512)
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    rows = with_text(preprocessor, rows, reference_titles(name, data_dir, count=512))
    expected, _ = training_code_probabilities(checkpoint, rows)
    runner = FeaturesRunner(checkpoint, torch.device("cpu"), precision="bfloat16")
    if checkpoint.manifest.architecture["type"] in ("mlp_tree_blend", "title_blend"):
        assert runner.precision == "float32"
        assert np.abs(runner.run(rows) - expected).max() < 1e-5
        return
    assert runner.precision == "bfloat16"
    got = runner.run(rows)
    assert np.abs(got - expected).max() <= BFLOAT16_TOLERANCE
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.98


def test_streamed_real_audio_scores_as_the_training_code_does(
    served: ServerProcess, data_dir: Path
) -> None:
    """A GTZAN excerpt streamed over gRPC gets, window by window, the probabilities the training
    code computes offline: same decode, same front-end, same model, same calibration."""
    directory = MODELS / "gtzan-cnn-lstm" / str(max(list_versions(MODELS / "gtzan-cnn-lstm")))
    checkpoint = load_checkpoint(directory)
    frontend = FrontEndConfig.from_dict(checkpoint.manifest.frontend)
    samples, rate = decode_file(data_dir / "gtzan" / "audio" / "jazz" / "jazz.00002.ogg")
    samples = samples[: 10 * rate]
    assert rate == frontend.sample_rate
    windows = cut_windows(samples, frontend.window_samples, frontend.window_samples)
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    # the ensemble takes one front-end per input; a single model, the manifest's one
    inputs = checkpoint.manifest.architecture.get("inputs") or [checkpoint.manifest.frontend]
    with torch.inference_mode():
        waveforms = torch.from_numpy(windows)
        logits = model(*(build_frontend(spec, rate)(waveforms) for spec in inputs))
    temperature = checkpoint.manifest.temperature
    expected = torch.softmax(logits / temperature, dim=1).numpy()

    pcm = samples.astype("<f4").tobytes()
    config = genre_pb2.StreamConfig(
        model=genre_pb2.ModelRef(name="gtzan-cnn-lstm"),
        sample_rate=rate,
        encoding=genre_pb2.PCM_F32LE,
        channels=1,
        hop_seconds=frontend.window_seconds,
    )
    requests = [genre_pb2.ClassifyAudioStreamRequest(config=config)] + [
        genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=pcm[i : i + 30011]))
        for i in range(0, len(pcm), 30011)
    ]
    with grpc.insecure_channel(served.target) as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        *responses, final = list(stub.ClassifyAudioStream(iter(requests)))
    labels = checkpoint.manifest.labels
    got = np.array(
        [[{s.genre: s.probability for s in r.window.scores}[g] for g in labels] for r in responses]
    )
    # 10 s in 3 s windows: three on the hop grid, and the final one flush with the end
    assert len(responses) == 3
    assert len(windows) == 4
    np.testing.assert_allclose(got, expected[:3], atol=1e-4)
    assert final.window_start_seconds == pytest.approx(7.0)
    last = [{s.genre: s.probability for s in final.window.scores}[g] for g in labels]
    np.testing.assert_allclose(last, expected[3], atol=1e-4)
    track = [{s.genre: s.probability for s in final.track.scores}[g] for g in labels]
    np.testing.assert_allclose(track, expected.mean(axis=0), atol=1e-4)
