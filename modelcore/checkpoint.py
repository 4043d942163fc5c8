"""The model-repository format, shared by the trainer (writes) and the server (reads).

Layout, like Triton's: ``<repository>/<name>/<version>/`` holding ``model.safetensors`` and
``manifest.json`` (plus optional report files). Versions are positive integers; the highest one is
the default. Weights never go through pickle: safetensors only, and the manifest carries their
sha256 so a truncated or tampered file is refused before any tensor is read.

A version becomes visible atomically: it is written into a hidden temporary directory beside the
versions and renamed into place, so a crash mid-write leaves nothing a server would load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
MODEL_KINDS = ("features", "audio")
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_REQUIRED_KEYS = ("format_version", "name", "version", "kind", "architecture", "labels", "weights")


class CheckpointError(Exception):
    """A version directory that must not be served; the message says why, for the log."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified version: its manifest and its tensors (on the CPU)."""

    directory: Path
    manifest: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> int:
        return int(self.manifest["version"])


def is_valid_model_name(name: str) -> bool:
    """Model names become directory names and gRPC health service names: keep them tame."""
    return bool(_NAME_PATTERN.match(name))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_versions(model_directory: Path) -> list[int]:
    """Integer-named subdirectories, ascending; hidden temporaries and stray files are ignored."""
    if not model_directory.is_dir():
        return []
    versions = [
        int(entry.name)
        for entry in model_directory.iterdir()
        if entry.is_dir() and entry.name.isdigit() and int(entry.name) > 0
    ]
    return sorted(versions)


def read_manifest(version_directory: Path) -> dict[str, Any]:
    path = version_directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: missing manifest") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: manifest is not valid JSON ({error})") from error
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: manifest must be a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in manifest]
    if missing:
        raise CheckpointError(f"{path}: manifest lacks {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported format_version {manifest['format_version']!r}")
    if manifest["kind"] not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown kind {manifest['kind']!r}")
    if str(manifest["version"]) != version_directory.name:
        raise CheckpointError(
            f"{path}: manifest version {manifest['version']!r} does not match its directory"
        )
    if manifest["name"] != version_directory.parent.name:
        raise CheckpointError(
            f"{path}: manifest name {manifest['name']!r} does not match its directory"
        )
    return manifest


def _weights_path(version_directory: Path, manifest: Mapping[str, Any]) -> Path:
    """The weights file named by the manifest, which must stay inside the version directory."""
    weights = manifest["weights"]
    if not isinstance(weights, dict) or "file" not in weights or "sha256" not in weights:
        raise CheckpointError(f"{version_directory}: manifest weights needs file and sha256")
    file_name = str(weights["file"])
    if Path(file_name).name != file_name or file_name in ("", ".", ".."):
        raise CheckpointError(
            f"{version_directory}: weights file {file_name!r} escapes its version"
        )
    if not file_name.endswith(".safetensors"):
        raise CheckpointError(f"{version_directory}: weights must be safetensors, not {file_name}")
    return version_directory / file_name


def load_checkpoint(version_directory: Path) -> Checkpoint:
    """Reads and verifies one version; raises CheckpointError with the reason on any fault."""
    manifest = read_manifest(version_directory)
    weights_path = _weights_path(version_directory, manifest)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing weights")
    actual = sha256_of(weights_path)
    expected = str(manifest["weights"]["sha256"])
    if actual != expected:
        raise CheckpointError(
            f"{weights_path}: sha256 {actual[:12]}… does not match manifest {expected[:12]}…"
        )
    try:
        state_dict = load_file(str(weights_path), device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError and OSError
        raise CheckpointError(f"{weights_path}: unreadable safetensors ({error})") from error
    return Checkpoint(directory=version_directory, manifest=manifest, state_dict=state_dict)


def utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_checkpoint(
    repository: Path,
    manifest: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra_files: Mapping[str, bytes] | None = None,
    version: int | None = None,
) -> Path:
    """Writes a new version atomically and returns its directory.

    ``manifest`` needs at least name, kind, architecture and labels; this fills in
    format_version, version (one above the highest present unless given), created and the
    weights' file and sha256. ``extra_files`` (reports, plots) land beside the manifest.
    """
    name = str(manifest["name"])
    if not is_valid_model_name(name):
        raise ValueError(f"model name {name!r} must match {_NAME_PATTERN.pattern}")
    model_directory = repository / name
    model_directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_directory))
    try:
        weights_path = staging / WEIGHTS_FILE
        tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
        save_file(tensors, str(weights_path))
        for file_name, content in (extra_files or {}).items():
            if Path(file_name).name != file_name:
                raise ValueError(f"extra file {file_name!r} must be a plain file name")
            (staging / file_name).write_bytes(content)
        chosen = (
            version if version is not None else max(list_versions(model_directory), default=0) + 1
        )
        full_manifest = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "version": chosen,
            "created": manifest.get("created") or utc_timestamp(),
            "weights": {"file": WEIGHTS_FILE, "sha256": sha256_of(weights_path)},
        }
        manifest_path = staging / MANIFEST_FILE
        manifest_path.write_text(json.dumps(full_manifest, indent=2, sort_keys=True) + "\n")
        for path in staging.iterdir():
            _fsync_file(path)
        os.chmod(staging, 0o755)
        final = model_directory / str(chosen)
        # rename() refuses an existing non-empty directory, so two writers never share a version.
        os.rename(staging, final)
        _fsync_directory(model_directory)
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
