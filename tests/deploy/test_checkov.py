"""Static security scan: checkov over deploy/ (every kustomize overlay) and the Dockerfile.

No check may fail; a skipped one must carry its reason where it is skipped (a
``checkov.io/skipN: CKV_...=reason`` annotation, or ``# checkov:skip=CKV_...: reason`` in the
Dockerfile). checkov pins an older ``packaging`` than the dev environment, so `make test` installs
it into its own venv (.venv-checkov, pinned by constraints-checkov.txt); run as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, REPOSITORY_ROOT, kubectl

CHECKOV_VENV = REPOSITORY_ROOT / ".venv-checkov" / "bin" / "checkov"


def checkov() -> str:
    if CHECKOV_VENV.exists():
        return str(CHECKOV_VENV)
    found = shutil.which("checkov")
    if found is None:
        pytest.skip(f"checkov not installed: `make {CHECKOV_VENV.parents[1].name}/.installed`")
    return found


def scan(*arguments: str) -> list[dict[str, Any]]:
    kubectl_dir = str(Path(kubectl()).parent)
    environ = {**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [checkov(), *arguments, "--skip-download", "--output", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPOSITORY_ROOT,
        env=environ,
    )
    assert result.stdout.strip().startswith(("{", "[")), result.stdout + result.stderr
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.mark.parametrize(
    "arguments",
    [
        ("--directory", str(DEPLOY), "--framework", "kustomize"),
        ("--file", "Dockerfile", "--framework", "dockerfile"),
    ],
    ids=["deploy-kustomize", "dockerfile"],
)
def test_checkov_finds_nothing_unjustified(arguments: tuple[str, ...]) -> None:
    reports = scan(*arguments)
    assert reports
    for report in reports:
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, summary
        assert summary["resource_count"] > 0, summary
        assert summary["passed"] > 0, summary
        failed = [
            f"{item['check_id']} {item['check_name']} at {item['file_path']}: {item['resource']}"
            for item in report["results"]["failed_checks"]
        ]
        assert not failed, "\n".join(failed)
        for item in report["results"]["skipped_checks"]:
            reason = (item.get("check_result") or {}).get("suppress_comment") or ""
            assert len(reason.strip()) > 10, f"{item['check_id']} skipped without a reason"
