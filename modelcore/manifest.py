"""The manifest: the contract between training, which writes a model version, and serving,
which loads it. One frozen type, validated when built, so a field is added or a kind is named in
one place; ``from_dict``/``to_dict`` are the JSON file's form (keys sorted on disk).

Open-ended parts stay mappings on purpose: ``architecture`` is read by ``modelcore.models``,
``preprocessing`` by ``modelcore.preprocessing``, ``frontend`` by ``modelcore.frontend``, and
``metrics`` and ``training`` are records for people and ``ListModels``. Each kind names the
parts it needs (``KIND_PARTS``). Keys a newer trainer adds and this code does not know are kept
(``extras``), so reading and writing a manifest never loses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

FORMAT_VERSION = 1
# The parts each kind of model needs beside the common ones; the one list of kinds.
KIND_PARTS: Mapping[str, tuple[str, ...]] = {
    "features": ("preprocessing", "input_schema"),
    "audio": ("frontend",),
}
MODEL_KINDS = tuple(KIND_PARTS)
OPTIONAL_PARTS = frozenset({*(part for parts in KIND_PARTS.values() for part in parts), "members"})
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ManifestError(ValueError):
    """A manifest that does not describe a servable version; the message names the field."""


@dataclass(frozen=True)
class Weights:
    """The tensors' file (beside the manifest) and the sha256 it must have."""

    file: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.file or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ManifestError("weights: needs a file and a 64-digit hex sha256")


@dataclass(frozen=True)
class Manifest:
    """One version's description. ``version`` 0 and ``weights`` None mark a draft that
    ``modelcore.checkpoint.write_checkpoint`` completes when it publishes the version."""

    name: str
    kind: str
    architecture: Mapping[str, Any]
    labels: tuple[str, ...]
    version: int = 0
    weights: Weights | None = None
    format_version: int = FORMAT_VERSION
    created: str = ""
    calibration: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    # Kind-specific parts: empty where the kind has none (and then absent from the file).
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    frontend: Mapping[str, Any] = field(default_factory=dict)
    # An ensemble's members by name: what each is, where it came from, and, for a member whose
    # tensors live in their own file, ``weights`` ({file, sha256}) and the ``prefix`` its keys
    # take in the model's state dict (``modelcore.checkpoint.load_checkpoint`` verifies each).
    members: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ManifestError(f"format_version: unsupported {self.format_version!r}")
        if not NAME_PATTERN.match(self.name):
            raise ManifestError(f"name: {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.kind not in KIND_PARTS:
            raise ManifestError(f"kind: unknown {self.kind!r} (known: {', '.join(MODEL_KINDS)})")
        if not isinstance(self.version, int) or self.version < 0:
            raise ManifestError(f"version: {self.version!r} is not a version number")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ManifestError("labels: needs distinct labels")
        if not isinstance(self.architecture, Mapping) or "type" not in self.architecture:
            raise ManifestError("architecture: needs a type")
        for part in KIND_PARTS[self.kind]:
            if not getattr(self, part):
                raise ManifestError(f"{part}: a {self.kind} model needs it")
        for part in ("preprocessing", "input_schema", "frontend"):
            if not isinstance(getattr(self, part), Mapping):
                raise ManifestError(f"{part}: must be an object")
        self._check_members()
        temperature = self.calibration.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ManifestError(f"calibration.temperature: {temperature!r} is not positive")
        if self.version and self.weights is None:
            raise ManifestError("weights: a published version needs its weights")
        abstention = self.calibration.get("abstention", {})
        if not isinstance(abstention, Mapping):
            raise ManifestError("calibration.abstention: must be an object")
        for key in ("min_probability", "music_threshold"):
            value = abstention.get(key, 0.0)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ManifestError(f"calibration.abstention.{key}: {value!r} is not in [0, 1]")

    def _check_members(self) -> None:
        if not isinstance(self.members, Mapping):
            raise ManifestError("members: must be an object")
        for name, member in self.members.items():
            if not isinstance(member, Mapping):
                raise ManifestError(f"members.{name}: must be an object")
            weights = member.get("weights")
            if weights is None:
                continue
            if not isinstance(weights, Mapping) or not isinstance(member.get("prefix"), str):
                raise ManifestError(f"members.{name}: weights need file, sha256 and a prefix")
            try:
                Weights(str(weights.get("file", "")), str(weights.get("sha256", "")))
            except ManifestError as error:
                raise ManifestError(f"members.{name}.{error}") from error

    def member_weights(self) -> dict[str, tuple[Weights, str]]:
        """Members with their own tensors file: name -> (weights, state-dict key prefix)."""
        return {
            name: (
                Weights(str(member["weights"]["file"]), str(member["weights"]["sha256"])),
                str(member["prefix"]),
            )
            for name, member in self.members.items()
            if member.get("weights") is not None
        }

    @property
    def temperature(self) -> float:
        """The calibration temperature the logits are divided by (1 when none was fitted)."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def min_probability(self) -> float:
        """Answers whose top probability is under this are UNCERTAIN (0: never), chosen on
        validation data by the trainer (``calibration.abstention``)."""
        return float(self.calibration.get("abstention", {}).get("min_probability", 0.0))

    @property
    def music_threshold(self) -> float:
        """An audio window whose music probability is under this is NOT_MUSIC (versions with a
        music detector)."""
        return float(self.calibration.get("abstention", {}).get("music_threshold", 0.5))

    @property
    def weights_sha256(self) -> str:
        """The weights' recorded sha256 ("" in a draft)."""
        return self.weights.sha256 if self.weights is not None else ""

    @property
    def split_protocol(self) -> str:
        return str(self.metrics.get("split_protocol", ""))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """The manifest of a JSON object; ``ManifestError`` names what is missing or wrong."""
        if not isinstance(data, Mapping):
            raise ManifestError("manifest: must be a JSON object")
        known = {item.name for item in fields(cls)} - {"extras"}
        required = ("format_version", "name", "kind", "architecture", "labels")
        missing = [key for key in required if key not in data]
        if missing:
            raise ManifestError(f"manifest lacks {', '.join(missing)}")
        values = {key: data[key] for key in known if key in data}
        weights = values.get("weights")
        if weights is not None:
            if not isinstance(weights, Mapping) or "file" not in weights or "sha256" not in weights:
                raise ManifestError("weights: needs file and sha256")
            values["weights"] = Weights(str(weights["file"]), str(weights["sha256"]))
        labels = values["labels"]
        if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
            raise ManifestError("labels: must be a list of strings")
        values["labels"] = tuple(labels)
        for key in ("version", "format_version"):
            if key in values and (
                isinstance(values[key], bool) or not isinstance(values[key], int)
            ):
                raise ManifestError(f"{key}: {values[key]!r} is not an integer")
        for key in ("calibration", "metrics", "training", "members"):
            if not isinstance(values.get(key, {}), Mapping):
                raise ManifestError(f"{key}: must be an object")
        extras = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extras=extras)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, as written on disk (parts a kind lacks left out)."""
        result: dict[str, Any] = dict(self.extras)
        for item in fields(self):
            value = getattr(self, item.name)
            if (
                item.name == "extras"
                or value is None
                or (item.name in OPTIONAL_PARTS and not value)
            ):
                continue
            if isinstance(value, Weights):
                value = {"file": value.file, "sha256": value.sha256}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            result[item.name] = value
        return result
