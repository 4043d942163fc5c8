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

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcore.checkpoint import MANIFEST_FILE, read_manifest, sha256_of


def weights_checksum(version_directory: Path) -> str:
    """The recorded sha256 of the version's weights, after checking the file still has it."""
    manifest = read_manifest(version_directory)
    recorded = str(manifest["weights"]["sha256"])
    actual = sha256_of(version_directory / str(manifest["weights"]["file"]))
    if actual != recorded:
        raise ValueError(f"{version_directory}: weights do not match their recorded sha256")
    return recorded


def add_metrics(
    version_directory: Path, metrics: Mapping[str, Any], protocol_addition: str
) -> dict[str, Any]:
    """Adds (or replaces) ``metrics`` in the version's manifest and appends
    ``protocol_addition`` to its ``split_protocol`` unless it is there already."""
    weights_checksum(version_directory)
    path = version_directory / MANIFEST_FILE
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "split_protocol" in metrics:
        raise ValueError("give the protocol as protocol_addition, not as a metric")
    updated = {**manifest["metrics"], **metrics}
    protocol = str(updated.get("split_protocol", ""))
    if protocol_addition.strip() and protocol_addition.strip() not in protocol:
        updated["split_protocol"] = protocol.rstrip() + " " + protocol_addition.strip()
    manifest["metrics"] = updated
    handle, staging = tempfile.mkstemp(prefix=".manifest-", dir=version_directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return manifest


def copy_new_metrics(source: Path, target: Path) -> dict[str, Any]:
    """The figures ``source`` has and ``target`` lacks, added to ``target``: only when both
    versions hold the same weights (the same sha256), so the figures describe the served model.
    The protocol sentence added is what ``source``'s protocol says beyond ``target``'s."""
    if weights_checksum(source) != weights_checksum(target):
        raise ValueError(f"{source} and {target} hold different weights: not the same model")
    new, old = read_manifest(source)["metrics"], read_manifest(target)["metrics"]
    added = {key: value for key, value in new.items() if key not in old}
    old_protocol, new_protocol = str(old["split_protocol"]), str(new["split_protocol"])
    if not new_protocol.startswith(old_protocol):
        raise ValueError("the source's protocol does not extend the target's")
    add_metrics(target, added, new_protocol[len(old_protocol) :])
    return added
