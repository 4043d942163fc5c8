"""The layout the house style promises: one home per concern, no import cycles, small modules.

Imports are read from the source (every ``import``, inside functions too), so a cycle hidden
behind a lazy import counts as one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY_ROOT

PACKAGES = ("modelcore", "server", "training", "client", "bench")
MAX_LINES = 400


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((REPOSITORY_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPOSITORY_ROOT).with_suffix("").parts
            if any(part.startswith(".") for part in parts):  # bench/.torchserve-venv and the like
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imported(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, absolute names, relative imports resolved."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_graph() -> dict[str, set[str]]:
    names = dict(modules())
    return {name: imported(path, name) & set(names) - {name} for name, path in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_project() -> None:
    assert cycles(project_graph()) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_model_core_imports_neither_training_nor_server_nor_heavy_libraries() -> None:
    for name, path in modules():
        if name.split(".")[0] != "modelcore":
            continue
        roots = {module.split(".")[0] for module in imported(path, name)}
        assert not roots & {"training", "server", "pandas", "matplotlib", "sklearn"}, name


def test_the_server_reaches_outside_itself_only_for_the_model_core() -> None:
    for name, path in modules():
        if name.split(".")[0] != "server":
            continue
        roots = {module.split(".")[0] for module in imported(path, name)}
        assert not roots & {"training", "client", "bench"}, name


def test_training_is_grouped_by_track() -> None:
    training = REPOSITORY_ROOT / "training"
    for track in ("features", "audio", "studies"):
        assert (training / track / "__init__.py").is_file()
    assert len(list(training.glob("*.py"))) <= 12


def test_no_module_over_the_size_limit() -> None:
    long = {
        name: count
        for name, path in modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


ROOMED = ("server", "client", "bench", "training")
MAX_TOP_LEVEL = 20


def top_level_modules(folder: Path) -> list[str]:
    """The modules directly in ``folder`` (``__init__`` and ``__main__`` are the folder's own)."""
    return sorted(
        path.stem for path in folder.glob("*.py") if path.stem not in ("__init__", "__main__")
    )


def package_folders() -> list[Path]:
    """Every package of the project, its rooms included (not venvs or caches)."""
    return sorted(
        path.parent
        for package in PACKAGES
        for path in (REPOSITORY_ROOT / package).rglob("__init__.py")
        if not any(part.startswith(".") for part in path.relative_to(REPOSITORY_ROOT).parts)
    )


@pytest.mark.parametrize("package", ROOMED)
def test_a_folder_past_twenty_modules_has_rooms(package: str) -> None:
    found = top_level_modules(REPOSITORY_ROOT / package)
    assert len(found) <= MAX_TOP_LEVEL, f"{package}/ has {len(found)} top-level modules: {found}"


def name_families(names: list[str]) -> dict[str, list[str]]:
    """Modules whose names share the part before the first underscore, three or more of them."""
    families: dict[str, list[str]] = {}
    for name in names:
        if "_" in name:
            families.setdefault(name.split("_")[0], []).append(name)
    return {prefix: found for prefix, found in families.items() if len(found) >= 3}


def test_no_three_modules_of_a_folder_share_a_name_prefix() -> None:
    """A family of three or more modules named by a prefix wants a package of its own."""
    crowded = {
        f"{folder.relative_to(REPOSITORY_ROOT)}/{prefix}_*": names
        for folder in package_folders()
        for prefix, names in name_families(top_level_modules(folder)).items()
    }
    assert crowded == {}


def test_the_prefix_rule_sees_a_family() -> None:
    """The server's v2 modules before they moved into server/oip/ were such a family."""
    names = [
        "oip_audio",
        "oip_servicer",
        "oip_streams",
        "oip_tensors",
        "servicer",
        "spotify_export",
    ]
    assert name_families(names) == {
        "oip": ["oip_audio", "oip_servicer", "oip_streams", "oip_tensors"]
    }
    assert name_families(["organize", "organize_spotify", "spotify_export"]) == {}
