"""The model registry (``server.registry``) on a real repository of tiny checkpoints: defaults,
pins, NOT_FOUND naming what exists, a refused version left out, and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.errors import InvalidArgument, ModelNotFound
from server.registry import ModelRegistry
from tests.support.checkpoints import write_tiny_model
from tests.support.harness import cpu_registry

OPENED: list[ModelRegistry] = []


def registry_for(
    repository: Path, names: tuple[str, ...] = (), pins: dict[str, int] | None = None
) -> ModelRegistry:
    registry = cpu_registry(repository, names, pins)
    OPENED.append(registry)
    return registry


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[Path]:
    write_tiny_model(tmp_path, version=1)
    write_tiny_model(tmp_path, version=2, seed=1)
    yield tmp_path
    while OPENED:  # stop every batcher the test started
        await OPENED.pop().close()


async def test_the_highest_version_is_the_default_unless_pinned(repository: Path) -> None:
    registry = registry_for(repository)
    table = await registry.reload()
    assert table.ready
    assert registry.resolve("tiny-mlp", "").version == 2
    assert registry.resolve("tiny-mlp", "1").version == 1
    pinned = registry_for(repository, pins={"tiny-mlp": 1})
    await pinned.reload()
    assert pinned.resolve("tiny-mlp", "").version == 1


async def test_unknown_names_and_versions_list_what_is_served(repository: Path) -> None:
    registry = registry_for(repository)
    await registry.reload()
    with pytest.raises(InvalidArgument, match=r"model\.name: required"):
        registry.resolve("", "")
    with pytest.raises(ModelNotFound, match=r"no model 'other' is served \(served: tiny-mlp\)"):
        registry.resolve("other", "")
    for version in ("3", "x", "²"):
        with pytest.raises(ModelNotFound, match=r"has no version .* \(have 1, 2\)"):
            registry.resolve("tiny-mlp", version)


async def test_a_corrupt_version_is_left_out_and_an_older_one_serves(repository: Path) -> None:
    (repository / "tiny-mlp" / "2" / "model.safetensors").write_bytes(b"not the weights")
    registry = registry_for(repository)
    table = await registry.reload()
    assert sorted(table.versions["tiny-mlp"]) == [1]
    assert table.ready
    assert registry.resolve("tiny-mlp", "").version == 1


async def test_a_configured_model_without_a_version_keeps_readiness_off(repository: Path) -> None:
    registry = registry_for(repository, names=("tiny-mlp", "absent"))
    table = await registry.reload()
    assert not table.ready
    assert "absent" in table.missing
    assert registry.resolve("tiny-mlp", "").version == 2
