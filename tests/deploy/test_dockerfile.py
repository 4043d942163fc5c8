"""The Dockerfile: hadolint-clean, installed like the Makefile, and wired to the server's ports.

The file is linted and parsed here; test_image.py builds and runs it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from server.config import ServerConfig
from tests.deploy.conftest import REPOSITORY_ROOT

DOCKERFILE = REPOSITORY_ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
MODEL_PATH = "/opt/genre-serve/models"
PUBLIC_BASE = "python:3.11-slim-trixie"
REQUIREMENTS = "server-requirements.txt"  # what the dependencies' layer writes from pyproject
TRAINING_ONLY = ("pandas", "matplotlib", "scikit-learn", "tqdm")


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; stage counts FROMs."""
    parsed: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending = f"{pending} {line}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        parsed.append(Instruction(stage, keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    last = max(item.stage for item in parsed)
    return [item for item in parsed if item.stage == last]


def pip_pin(text: str) -> str:
    """The one pip version every ``pip install --upgrade pip==X`` of ``text`` pins."""
    found = set(re.findall(r"pip install [^\n]*--upgrade \"?pip==([0-9.]+)", text))
    assert len(found) == 1, found
    return str(found.pop())


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def test_every_hadolint_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            justification = lines[number - 1].strip() if number else ""
            assert justification.startswith("#"), line
            assert "hadolint" not in justification, line


def pip_installs(dockerfile: str) -> list[list[str]]:
    """Every ``pip install`` of the Dockerfile but pip's own upgrade, as argument lists."""
    return [
        shlex.split(command.strip())
        for run in (i.arguments for i in instructions(dockerfile) if i.keyword == "RUN")
        for command in run.split("&&")
        if "pip install" in command and "pip==" not in command
    ]


def test_installs_with_the_makefiles_pip_and_constraints_and_only_the_server_extra() -> None:
    dockerfile = DOCKERFILE.read_text()
    makefile = (REPOSITORY_ROOT / "Makefile").read_text()
    assert pip_pin(dockerfile) == pip_pin(makefile)
    # The dependencies first, in a layer a code change leaves alone; then the project itself.
    dependencies, project = pip_installs(dockerfile)
    for install in (dependencies, project):
        assert install[install.index("--constraint") + 1] == "constraints.txt"
        assert "--editable" not in install
        assert "-e" not in install
    assert dependencies[dependencies.index("--requirement") + 1] == REQUIREMENTS
    assert project[-1] == ".[server]"
    assert "--constraint constraints.txt" in makefile
    copied = " ".join(i.arguments for i in instructions(dockerfile) if i.keyword == "COPY")
    assert "constraints.txt" in copied


def test_the_dependency_layer_installs_exactly_the_base_and_server_requirements() -> None:
    """The program that writes the requirements file, run here on pyproject.toml."""
    commands = [
        shlex.split(command.strip())
        for i in instructions(DOCKERFILE.read_text())
        if i.keyword == "RUN"
        for command in i.arguments.split("&&")
    ]
    (program,) = [c[c.index("-c") + 1] for c in commands if "-c" in c and REQUIREMENTS in c]
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    project = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]
    expected = [*project["dependencies"], *project["optional-dependencies"]["server"]]
    assert result.stdout.splitlines() == expected
    assert not any(r.startswith("genre-serve") for r in expected), "no self-reference"


def test_the_default_build_is_the_public_one() -> None:
    """Without build arguments: the public base, and pip on PyPI (the wheelhouse is unread)."""
    parsed = instructions(DOCKERFILE.read_text())
    assert parsed[0].keyword == "ARG"
    assert parsed[0].arguments == f"BASE_IMAGE={PUBLIC_BASE}"
    froms = [i.arguments for i in parsed if i.keyword == "FROM"]
    assert froms[0] == "${BASE_IMAGE} AS base"
    assert "base AS wheelhouse" in froms
    assert all(f.split()[0] in ("${BASE_IMAGE}", "base", "dependencies") for f in froms)
    arguments = {i.arguments for i in parsed if i.keyword == "ARG"}
    assert {"PIP_FIND_LINKS", "PIP_NO_INDEX"} <= arguments  # no defaults: unset unless given


def test_the_server_extra_leaves_training_libraries_out() -> None:
    extras = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for requirement in extras["server"]:
        assert not requirement.startswith(TRAINING_ONLY), requirement


def test_final_stage_is_non_root_without_build_tools() -> None:
    parsed = instructions(DOCKERFILE.read_text())
    assert sum(1 for i in parsed if i.keyword == "FROM") >= 2, "multi-stage"
    final = final_stage(parsed)
    users = [i.arguments for i in final if i.keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    for item in final:
        if item.keyword == "RUN":
            assert "apt-get install" not in item.arguments
            assert "pip install" not in item.arguments


def test_ports_model_repository_and_healthcheck_match_the_server() -> None:
    final = final_stage(instructions(DOCKERFILE.read_text()))
    defaults = ServerConfig()
    exposed = {int(p) for i in final if i.keyword == "EXPOSE" for p in i.arguments.split()}
    # and the web page's, off by default: `make serve`'s port (deploy's: test_web_page.py)
    make_serve = re.search(r"GENRE_HTTP_PORT \?= (\d+)", (REPOSITORY_ROOT / "Makefile").read_text())
    assert make_serve is not None
    assert exposed - {defaults.grpc_port, defaults.metrics_port} == {int(make_serve.group(1))}
    environment = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert f"GENRE_MODEL_REPOSITORY={MODEL_PATH}" in environment
    assert f"GENRE_GRPC_PORT={defaults.grpc_port}" in environment
    assert f"GENRE_METRICS_PORT={defaults.metrics_port}" in environment
    assert any(i.keyword == "COPY" and i.arguments == f"models {MODEL_PATH}" for i in final)
    (check,) = [i.arguments for i in final if i.keyword == "HEALTHCHECK"]
    assert '"server.healthcheck"' in check
    assert f"localhost:{defaults.grpc_port}" in check


def test_dockerignore_keeps_local_state_out_and_sources_in() -> None:
    ignored = {
        line.strip()
        for line in (REPOSITORY_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".pytest_cache", ".mypy_cache", "tests", "bench"} <= ignored
    sources = [
        part
        for i in instructions(DOCKERFILE.read_text())
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for part in i.arguments.split()[:-1]
    ]
    for source in sources:
        assert source.rstrip("/").split("/")[0] not in ignored, source
        # models/ is tracked in git but may be absent from a work tree while it is retrained.
        assert (REPOSITORY_ROOT / source).exists() or source == "models", source
