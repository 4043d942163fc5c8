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
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from modelcore.manifest import NAME_PATTERN, Manifest, ManifestError, Weights

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(Exception):
    """A version directory that must not be served; the message says why, for the log."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified version: its manifest and its tensors (on the CPU)."""

    directory: Path
    manifest: Manifest
    state_dict: dict[str, torch.Tensor]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version


def is_valid_model_name(name: str) -> bool:
    """Model names become directory names and gRPC health service names: keep them tame."""
    return bool(NAME_PATTERN.match(name))


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


def read_manifest(version_directory: Path) -> Manifest:
    """The version's manifest, checked against its directory: a published version (its name
    and number are the directory's) with weights named."""
    path = version_directory / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: missing manifest") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: manifest is not valid JSON ({error})") from error
    try:
        manifest = Manifest.from_dict(data)
    except (ManifestError, TypeError) as error:
        raise CheckpointError(f"{path}: {error}") from error
    if manifest.version < 1 or manifest.weights is None:
        raise CheckpointError(f"{path}: manifest lacks version or weights")
    if str(manifest.version) != version_directory.name:
        raise CheckpointError(
            f"{path}: manifest version {manifest.version!r} does not match its directory"
        )
    if manifest.name != version_directory.parent.name:
        raise CheckpointError(
            f"{path}: manifest name {manifest.name!r} does not match its directory"
        )
    return manifest


def _weights_path(version_directory: Path, weights: Weights) -> Path:
    """The weights file named by the manifest, which must stay inside the version directory."""
    file_name = weights.file
    if Path(file_name).name != file_name or file_name in ("", ".", ".."):
        raise CheckpointError(
            f"{version_directory}: weights file {file_name!r} escapes its version"
        )
    if not file_name.endswith(".safetensors"):
        raise CheckpointError(f"{version_directory}: weights must be safetensors, not {file_name}")
    return version_directory / file_name


def _verified_tensors(weights_path: Path, expected: str) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file whose sha256 must be ``expected``."""
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing weights")
    actual = sha256_of(weights_path)
    if actual != expected:
        raise CheckpointError(
            f"{weights_path}: sha256 {actual[:12]}… does not match manifest {expected[:12]}…"
        )
    try:
        return load_file(str(weights_path), device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError and OSError
        raise CheckpointError(f"{weights_path}: unreadable safetensors ({error})") from error


def member_tensors(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """One member's tensors out of a merged state dict, keys without the member's prefix."""
    return {
        key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)
    }


def split_members(
    state_dict: Mapping[str, torch.Tensor], prefixes: Mapping[str, str]
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """The reverse of ``load_checkpoint``'s merge, for ``write_checkpoint``: the tensors that stay
    in ``model.safetensors``, and each member's (``prefixes``: member name -> key prefix)."""
    members = {name: member_tensors(state_dict, prefix) for name, prefix in prefixes.items()}
    own = {
        key: value
        for key, value in state_dict.items()
        if not key.startswith(tuple(prefixes.values()))
    }
    return own, members


def load_checkpoint(version_directory: Path) -> Checkpoint:
    """Reads and verifies one version, members' tensors files included (each checked against
    its own sha256, its keys given the member's prefix); CheckpointError says what is wrong."""
    manifest = read_manifest(version_directory)
    assert manifest.weights is not None  # read_manifest refuses a version without weights
    weights_path = _weights_path(version_directory, manifest.weights)
    state_dict = _verified_tensors(weights_path, manifest.weights.sha256)
    for member, (weights, prefix) in manifest.member_weights().items():
        try:
            tensors = _verified_tensors(_weights_path(version_directory, weights), weights.sha256)
        except CheckpointError as error:
            raise CheckpointError(f"member {member}: {error}") from error
        clashes = [key for key in tensors if prefix + key in state_dict]
        if clashes:
            raise CheckpointError(f"member {member}: keys {clashes[:3]} are already present")
        state_dict.update({prefix + key: tensor for key, tensor in tensors.items()})
    return Checkpoint(directory=version_directory, manifest=manifest, state_dict=state_dict)


def utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_checkpoint(
    repository: Path,
    manifest: Manifest | Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra_files: Mapping[str, bytes] | None = None,
    version: int | None = None,
    member_tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> Path:
    """Writes a new version atomically and returns its directory.

    ``manifest`` is a draft (a ``Manifest``, or its JSON form for hand-made versions); this
    fills in the version (one above the highest present unless given), the created time and
    the weights' file and sha256. ``extra_files`` (reports, plots) land beside the manifest.
    ``member_tensors`` (member name -> its tensors, keys without the member's prefix) go to
    ``<member>.safetensors`` each, recorded with their sha256 under the draft's ``members``.
    """
    draft = (
        manifest
        if isinstance(manifest, Manifest)
        else Manifest.from_dict({"format_version": 1, **manifest})
    )
    name = draft.name
    model_directory = repository / name
    model_directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_directory))
    try:
        weights_path = staging / WEIGHTS_FILE
        tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
        save_file(tensors, str(weights_path))
        members = {name: dict(entry) for name, entry in draft.members.items()}
        for member, member_state in (member_tensors or {}).items():
            if member not in members or "prefix" not in members[member]:
                raise ValueError(f"member {member!r} needs an entry with a prefix in the draft")
            member_path = staging / f"{member}.safetensors"
            save_file(
                {key: value.detach().cpu().contiguous() for key, value in member_state.items()},
                str(member_path),
            )
            members[member]["weights"] = {
                "file": member_path.name,
                "sha256": sha256_of(member_path),
            }
        for file_name, content in (extra_files or {}).items():
            if Path(file_name).name != file_name:
                raise ValueError(f"extra file {file_name!r} must be a plain file name")
            (staging / file_name).write_bytes(content)
        chosen = (
            version if version is not None else max(list_versions(model_directory), default=0) + 1
        )
        published = replace(
            draft,
            version=chosen,
            created=draft.created or utc_timestamp(),
            members=members,
            weights=Weights(WEIGHTS_FILE, sha256_of(weights_path)),
        )
        write_manifest(staging, published)
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


def write_manifest(version_directory: Path, manifest: Manifest) -> None:
    """``manifest.json`` in its on-disk form (keys sorted, two-space indents), replaced
    atomically: a server reading the directory sees the old file or the new one, never half."""
    handle, staging = tempfile.mkstemp(prefix=".manifest-", dir=version_directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
        os.chmod(staging, 0o644)
        os.replace(staging, version_directory / MANIFEST_FILE)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
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
