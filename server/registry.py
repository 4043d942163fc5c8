"""The served model table: what the repository holds, verified, loaded, warmed and batched.

Each loaded version gets its own runner and batcher, so a request resolved to a version is
answered wholly by it, and a new version can be switched in with a single reference swap while
calls already queued on the old one finish there. A corrupt or incomplete version is refused with
a log line and a metric, and everything else keeps serving.

Each snapshot also says which of the models this server is configured to serve has no default
version loaded, and why (``ModelTable.missing``): health readiness is built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from modelcore.checkpoint import CheckpointError, list_versions, load_checkpoint
from modelcore.manifest import Manifest
from server.batcher import BatcherSettings, BatchResult, DynamicBatcher, FloatArray
from server.config import ServerConfig
from server.errors import InvalidArgument, ModelNotFound
from server.logs import get_logger
from server.metrics import ServerMetrics
from server.runner import AudioRunner, FeaturesRunner, Runner, RunnerOptions, build_runner
from server.signatures import Signature

log = get_logger("server.registry")


class Batcher(Protocol):
    """Where a call's rows go: this process's ``DynamicBatcher``, or a front-end's link to the
    inference process that runs it (``server.inference.link.RemoteBatcher``)."""

    async def submit(self, inputs: FloatArray, deadline: float | None = None) -> BatchResult: ...


class Registry(Protocol):
    """What the servicers resolve calls against: this process's ``ModelRegistry``, or a
    front-end's mirror of the inference process's (``server.inference.catalog``)."""

    @property
    def table(self) -> ModelTable: ...

    def resolve(
        self, name: str, version: str, fields: tuple[str, str] = ("model.name", "model.version")
    ) -> ServedVersion: ...

    async def reload(self) -> ModelTable: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ServedVersion:
    """One loaded version. ``runner`` (the weights) is None in a front-end process, which holds
    the signature only and sends its rows to the inference process."""

    name: str
    version: int
    kind: str
    manifest: Manifest
    signature: Signature
    batcher: Batcher
    fingerprint: str
    runner: Runner | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.signature.labels


@dataclass(frozen=True)
class ModelTable:
    """An immutable snapshot: name -> version -> ServedVersion, plus each name's default.

    ``missing`` maps each model this server is configured to serve (``GENRE_MODELS``, or every
    model in the repository with a version directory) but cannot answer with its configured
    default to the reason: no version directory, every version refused, or the pinned version
    not loaded.
    """

    versions: Mapping[str, Mapping[int, ServedVersion]]
    defaults: Mapping[str, int]
    missing: Mapping[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Triton's strict readiness: there is a model to serve and every configured model has
        its default version loaded and warm. A refused newer version does not count against it
        while an older one is loaded, since the older one is then the default."""
        return bool(self.versions) and not self.missing

    def all(self) -> list[ServedVersion]:
        return [
            served
            for name in sorted(self.versions)
            for _, served in sorted(self.versions[name].items())
        ]

    def resolve(
        self, name: str, version: str, fields: tuple[str, str] = ("model.name", "model.version")
    ) -> ServedVersion:
        """The version a request names, or the default; NOT_FOUND names what exists.

        ``fields``: what the caller's protocol calls the name and the version, for messages."""
        name_field, version_field = fields
        if not name:
            raise InvalidArgument(f"{name_field}: required (ListModels shows what is served)")
        versions = self.versions.get(name)
        if not versions:
            known = ", ".join(sorted(self.versions)) or "none"
            raise ModelNotFound(f"{name_field}: no model {name!r} is served (served: {known})")
        if not version:
            return versions[self.defaults[name]]
        if not (version.isascii() and version.isdigit()) or int(version) not in versions:
            have = ", ".join(str(v) for v in sorted(versions))
            raise ModelNotFound(
                f"{version_field}: {name!r} has no version {version!r} (have {have})"
            )
        return versions[int(version)]


class ModelRegistry:
    """Loads the repository and swaps in new snapshots on ``reload()``."""

    def __init__(
        self,
        repository: Path,
        *,
        names: tuple[str, ...],
        pins: Mapping[str, int],
        device: torch.device,
        settings: Mapping[str, BatcherSettings],
        metrics: ServerMetrics,
        options: RunnerOptions | None = None,
        retire: Callable[[list[ServedVersion]], Awaitable[None]] | None = None,
    ) -> None:
        """``settings`` gives the batcher settings per model kind (features, audio).

        ``retire``: what becomes of versions a reload replaced or removed; by default their
        batchers close at once (finishing what is queued). The inference process waits until
        every front-end resolves against the new table first (``server.inference.service``)."""
        self._retire = retire or close_batchers
        self._options = options or RunnerOptions()
        self._repository = repository
        self._names = names
        self._pins = dict(pins)
        self._device = device
        self._settings = settings
        self._metrics = metrics
        self._table = ModelTable(versions={}, defaults={})
        self._reload_lock = asyncio.Lock()
        self._refused: dict[Path, str] = {}

    @classmethod
    def from_config(
        cls,
        config: ServerConfig,
        device: torch.device,
        metrics: ServerMetrics,
        retire: Callable[[list[ServedVersion]], Awaitable[None]] | None = None,
    ) -> ModelRegistry:
        """The registry a serving process builds from its settings: a complete worker for
        itself, the inference process for every front-end (with its own ``retire``)."""
        return cls(
            config.model_repository,
            names=config.models,
            pins=config.pins,
            device=device,
            settings=BatcherSettings.per_kind(config),
            metrics=metrics,
            options=RunnerOptions(
                config.features_precision, config.audio_precision, config.cuda_graphs
            ),
            retire=retire,
        )

    @property
    def table(self) -> ModelTable:
        return self._table

    def resolve(
        self, name: str, version: str, fields: tuple[str, str] = ("model.name", "model.version")
    ) -> ServedVersion:
        return self._table.resolve(name, version, fields)

    async def reload(self) -> ModelTable:
        """Rescans the repository; unchanged versions are kept, new ones loaded off the loop."""
        async with self._reload_lock:
            previous = self._table
            loop = asyncio.get_running_loop()
            candidates = await loop.run_in_executor(None, self._discover)
            versions: dict[str, dict[int, ServedVersion]] = {}
            for name, version, directory, fingerprint in candidates:
                kept = previous.versions.get(name, {}).get(version)
                if kept is not None and kept.fingerprint == fingerprint:
                    versions.setdefault(name, {})[version] = kept
                    continue
                if self._refused.get(directory) == fingerprint:
                    continue  # already refused in this exact state; do not log it every poll
                served = await loop.run_in_executor(
                    None, self._load, name, version, directory, fingerprint
                )
                if served is None:
                    self._refused[directory] = fingerprint
                    continue
                local_batcher(served).start()
                versions.setdefault(name, {})[version] = served
            table = ModelTable(
                versions=versions,
                defaults=self._defaults(versions),
                missing=self._missing({c[0] for c in candidates}, versions),
            )
            self._table = table
            self._publish(previous, table)
            retired = [
                served
                for served in previous.all()
                if versions.get(served.name, {}).get(served.version) is not served
            ]
            for served in retired:
                log.info("model_retired", model=served.name, version=served.version)
            if retired:
                await self._retire(retired)
            return table

    async def close(self) -> None:
        await close_batchers(self._table.all())

    def _discover(self) -> list[tuple[str, int, Path, str]]:
        """(name, version, directory, fingerprint) for every version directory to consider."""
        if not self._repository.is_dir():
            log.error("model_repository_missing", path=str(self._repository))
            return []
        found: list[tuple[str, int, Path, str]] = []
        for model_directory in sorted(self._repository.iterdir()):
            name = model_directory.name
            if not model_directory.is_dir() or name.startswith("."):
                continue
            if self._names and name not in self._names:
                continue
            for version in list_versions(model_directory):
                directory = model_directory / str(version)
                found.append((name, version, directory, _fingerprint(directory)))
        return found

    def _load(
        self, name: str, version: int, directory: Path, fingerprint: str
    ) -> ServedVersion | None:
        """``fingerprint`` is the one seen before loading: files replaced mid-load then differ
        from it, so the next reload picks them up instead of taking them as already loaded."""
        try:
            checkpoint = load_checkpoint(directory)
            runner = build_runner(checkpoint, self._device, self._options)
            settings = self._settings[checkpoint.manifest.kind]
            runner.warm_up(settings.max_batch_size)
        except CheckpointError as error:
            log.error("model_refused", model=name, version=version, reason=str(error))
            self._metrics.model_load_failures.labels(name).inc()
            return None
        except Exception:  # a bug in one model must not stop the others from serving
            log.exception("model_refused", model=name, version=version, reason="load failed")
            self._metrics.model_load_failures.labels(name).inc()
            return None
        log.info(
            "model_loaded",
            model=name,
            version=version,
            kind=checkpoint.manifest.kind,
            device=str(self._device),
            sha256=checkpoint.manifest.weights_sha256[:12],
            **_precision_fields(runner, self._options),
        )
        batcher = DynamicBatcher(runner.run, settings, self._metrics, (name, str(version)))
        return ServedVersion(
            name=name,
            version=version,
            kind=checkpoint.manifest.kind,
            manifest=checkpoint.manifest,
            signature=runner.signature,
            batcher=batcher,
            fingerprint=fingerprint,
            runner=runner,
        )

    def _defaults(self, versions: Mapping[str, Mapping[int, ServedVersion]]) -> dict[str, int]:
        defaults: dict[str, int] = {}
        for name, available in versions.items():
            pinned = self._pins.get(name)
            if pinned is not None and pinned in available:
                defaults[name] = pinned
            else:
                if pinned is not None:
                    log.warning("pinned_version_unavailable", model=name, version=pinned)
                defaults[name] = max(available)
        return defaults

    def _missing(
        self, found: set[str], versions: Mapping[str, Mapping[int, ServedVersion]]
    ) -> dict[str, str]:
        """Why each configured model lacks its default; ``found``: names with a version directory.

        Without ``GENRE_MODELS`` the configured models are those found, so a stray directory
        without versions (``lost+found`` on a volume) never holds readiness back."""
        missing: dict[str, str] = {}
        for name in sorted(self._names or found):
            available = versions.get(name, {})
            pinned = self._pins.get(name)
            if name not in found:
                missing[name] = f"no version directory under {self._repository / name}"
            elif not available:
                missing[name] = "every version was refused (see its model_refused log lines)"
            elif pinned is not None and pinned not in available:
                missing[name] = f"pinned version {pinned} is not loaded"
        return missing

    def _publish(self, previous: ModelTable, table: ModelTable) -> None:
        info = self._metrics.model_info
        for served in previous.all():
            is_default = previous.defaults.get(served.name) == served.version
            labels = (served.name, str(served.version), served.kind, str(is_default).lower())
            info.labels(*labels).set(0)  # multiprocess files keep removed series: zero it first
            info.remove(*labels)
        for served in table.all():
            is_default = table.defaults.get(served.name) == served.version
            labels = (served.name, str(served.version), served.kind, str(is_default).lower())
            info.labels(*labels).set(1)


def local_batcher(served: ServedVersion) -> DynamicBatcher:
    """The batcher of a version this process loaded (never a front-end's remote one)."""
    if not isinstance(served.batcher, DynamicBatcher):
        raise TypeError(f"{served.name}/{served.version} is not batched in this process")
    return served.batcher


async def close_batchers(retired: list[ServedVersion]) -> None:
    for served in retired:
        await local_batcher(served).close()


def _fingerprint(directory: Path) -> str:
    """Changes whenever the manifest or any tensors file (an ensemble's members included)
    changes, so a replaced or damaged version is reloaded, and refused if it no longer verifies."""
    parts = []
    tensors = sorted(path.name for path in directory.glob("*.safetensors"))
    for file_name in ("manifest.json", *(tensors or ["model.safetensors"])):
        path = directory / file_name
        try:
            stat = path.stat()
        except FileNotFoundError:
            parts.append(f"{file_name}:absent")
            continue
        parts.append(f"{file_name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def _precision_fields(runner: Runner, options: RunnerOptions) -> dict[str, object]:
    """What a runner computes in and by how much it strays from float32; for an audio runner
    also its CUDA graphs and what it measured it can score (stream admission's capacity)."""
    if isinstance(runner, AudioRunner):
        return {
            "windows_per_second": round(runner.windows_per_second, 1),
            "precision": runner.precision,
            "precision_asked": options.audio_precision,
            "max_probability_error": round(runner.precision_error, 6),
            "cuda_graphs": runner.graphs,
        }
    if not isinstance(runner, FeaturesRunner):
        return {}
    return {
        "precision": runner.precision,
        "precision_asked": options.features_precision,
        "max_probability_error": round(runner.precision_error, 5),
    }
