"""Adding measured figures to a published version without touching its weights.

A version's manifest is its promise to callers (``ListModels`` serves its metrics). When a new
measurement of the same weights exists (a re-run of the shipped command that reproduced the
weights bit for bit and scored more rows, or a nested estimate), its figures are added to the
manifest beside the old ones, and ``split_protocol`` gains the sentence that says which rows they
cover. The weights file and its checksum are verified first and never rewritten, and the
manifest is replaced atomically, so a server reading the repository sees the old or the new
file, never half of one.

    python -m training.studies.restate_cli /tmp/rerun/spotify11-mlp/1 models/spotify11-mlp/3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelcore.checkpoint import read_manifest, sha256_of, write_manifest
from modelcore.manifest import Manifest


def weights_checksum(version_directory: Path) -> str:
    """The recorded sha256 of the version's weights, after checking the file still has it."""
    weights = read_manifest(version_directory).weights
    assert weights is not None  # read_manifest refuses a version without weights
    if sha256_of(version_directory / weights.file) != weights.sha256:
        raise ValueError(f"{version_directory}: weights do not match their recorded sha256")
    return weights.sha256


def add_metrics(
    version_directory: Path, metrics: Mapping[str, Any], protocol_addition: str
) -> Manifest:
    """Adds (or replaces) ``metrics`` in the version's manifest and appends
    ``protocol_addition`` to its ``split_protocol`` unless it is there already."""
    weights_checksum(version_directory)
    if "split_protocol" in metrics:
        raise ValueError("give the protocol as protocol_addition, not as a metric")
    manifest = read_manifest(version_directory)
    updated = {**manifest.metrics, **metrics}
    protocol = manifest.split_protocol
    if protocol_addition.strip() and protocol_addition.strip() not in protocol:
        updated["split_protocol"] = protocol.rstrip() + " " + protocol_addition.strip()
    manifest = replace(manifest, metrics=updated)
    write_manifest(version_directory, manifest)
    return manifest


def copy_new_metrics(source: Path, target: Path) -> dict[str, Any]:
    """The figures ``source`` has and ``target`` lacks, added to ``target``: only when both
    versions hold the same weights (the same sha256), so the figures describe the served model.
    The protocol sentence added is what ``source``'s protocol says beyond ``target``'s."""
    if weights_checksum(source) != weights_checksum(target):
        raise ValueError(f"{source} and {target} hold different weights: not the same model")
    new, old = read_manifest(source), read_manifest(target)
    added = {key: value for key, value in new.metrics.items() if key not in old.metrics}
    if not new.split_protocol.startswith(old.split_protocol):
        raise ValueError("the source's protocol does not extend the target's")
    add_metrics(target, added, new.split_protocol[len(old.split_protocol) :])
    return added
