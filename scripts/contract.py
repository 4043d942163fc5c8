"""Guards the gRPC contract (proto/) with buf: lint, and no change that breaks callers.

    .venv/bin/python -m scripts.contract check       # make contract (part of make test)
    .venv/bin/python -m scripts.contract baseline    # make contract-baseline

``buf breaking`` needs the contract to compare against. A git ref would not do: on a clean CI
clone of main the checkout *is* main (comparing it with itself proves nothing), the commit before
it covers only the last of several landed commits, and shallow clones and worktrees have no
history to read. So main's contract is committed beside it, as a buf image
(``proto/baseline.binpb``), and ``check`` requires both:

- no breaking change against the baseline (``buf breaking``, the FILE rules of buf.yaml); and
- the baseline equal to today's contract. Without this, a field added after the baseline and
  removed again later would break callers unseen. An additive change therefore records itself
  with ``baseline``, which refuses to record a breaking one.

``check`` also runs ``buf lint`` twice: with buf.yaml (clean), and without its per-file
exceptions, where only the findings named in ``GRANDFATHERED`` may remain, so an exception for a
name callers already use never covers a new name.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

BUF = Path(sys.executable).parent / "buf"
ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path("proto/baseline.binpb")
# Every finding that buf.yaml's `ignore_only` may cover, as (rule, the name buf quotes first); the
# reasons are written there.
UNPREFIXED = (
    "ANSWERED",
    "SILENCE",
    "NOT_MUSIC",
    "UNCERTAIN",
    "PCM_S16LE",
    "PCM_F32LE",
    "FEATURES",
    "AUDIO",
)
GRANDFATHERED = frozenset(
    {
        ("SERVICE_SUFFIX", "GenreClassifier"),
        ("ENUM_ZERO_VALUE_SUFFIX", "ANSWERED"),
        *(("ENUM_VALUE_PREFIX", name) for name in UNPREFIXED),
    }
)
QUOTED = re.compile(r'"([^"]+)"')


def buf(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), *arguments],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """buf's JSON lines (``--error-format json``); anything else it wrote is a failure itself."""
    found = []
    for line in result.stdout.splitlines():
        if line.strip():
            found.append(json.loads(line))
    if result.returncode != 0 and not found:
        raise RuntimeError(f"buf failed: {result.stderr.strip() or result.stdout.strip()}")
    return found


def _describe(finding: dict[str, Any]) -> str:
    return (
        f"{finding.get('path', '?')}:{finding.get('start_line', '?')}: "
        f"{finding['type']}: {finding['message']}"
    )


def config(root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((root / "buf.yaml").read_text())
    return loaded


def lint(root: Path) -> list[str]:
    """buf.yaml's lint, plus the same without ``ignore_only`` held to ``GRANDFATHERED``."""
    problems = [_describe(f) for f in _findings(buf(root, "lint", "--error-format", "json"))]
    strict = config(root)
    strict["lint"].pop("ignore_only", None)
    every = _findings(buf(root, "lint", "--error-format", "json", "--config", json.dumps(strict)))
    for finding in every:
        names = QUOTED.findall(finding["message"])
        key = (finding["type"], names[0] if names else "")
        if key not in GRANDFATHERED:
            problems.append(
                _describe(finding) + " (buf.yaml's exceptions are for names callers use already; "
                "a new name follows the rule)"
            )
    return sorted(set(problems))


def breaking(root: Path, against: Path) -> list[str]:
    result = buf(root, "breaking", "--error-format", "json", "--against", str(against))
    return [_describe(finding) for finding in _findings(result)]


def build(root: Path, out: Path) -> bytes:
    """Today's contract as a buf image (descriptors only: comments and lines are not contract)."""
    result = buf(root, "build", "--exclude-source-info", "-o", str(out))
    if result.returncode != 0:
        raise RuntimeError(f"buf build failed: {result.stderr.strip()}")
    return out.read_bytes()


def check(root: Path = ROOT) -> list[str]:
    """Every reason the contract under ``root`` may not land; empty when it may."""
    problems = lint(root)
    baseline = root / BASELINE
    if not baseline.is_file():
        return [*problems, f"{BASELINE}: missing; `make contract-baseline` records the contract"]
    problems += breaking(root, baseline)
    if not problems:
        with tempfile.TemporaryDirectory() as scratch:
            if build(root, Path(scratch) / "now.binpb") != baseline.read_bytes():
                problems.append(
                    f"{BASELINE} is not today's contract: after a change that breaks no caller "
                    "(buf breaking passed), record it with `make contract-baseline` and commit it"
                )
    return problems


def record(root: Path = ROOT, allow_breaking: bool = False) -> list[str]:
    """Writes today's contract as the baseline, unless it breaks the current one."""
    baseline = root / BASELINE
    problems = lint(root)
    if baseline.is_file() and not allow_breaking:
        problems += breaking(root, baseline)
    if problems:
        return problems
    with tempfile.TemporaryDirectory() as scratch:
        baseline.write_bytes(build(root, Path(scratch) / "now.binpb"))
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts.contract", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("check", "baseline"))
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="baseline: record a change that breaks callers (a new major version, announced)",
    )
    arguments = parser.parse_args(argv)
    if arguments.action == "check":
        problems = check()
        done = "contract: buf lint clean, nothing breaks callers, baseline current"
    else:
        problems = record(allow_breaking=arguments.allow_breaking)
        done = f"contract: {BASELINE} records today's contract"
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
