"""``bench.load`` client processes: started with their spec, finished into their JSON result.

Each cell's client is a process of its own, so its CPU never competes with the harness's; several
can run at once (``bench.workers_streams`` starts one per load process before finishing any).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from bench.plan import REPOSITORY_ROOT


def start_client(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """A ``bench.load`` process reading ``spec`` from a file as its stdin, so a process started
    now never waits for its spec behind another's (as a pipe written later would make it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec_file:
        json.dump(spec, spec_file)
    try:
        with open(spec_file.name, encoding="utf-8") as stdin:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.load"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPOSITORY_ROOT,
            )
    finally:
        os.unlink(spec_file.name)  # the child holds its own descriptor


def finish_client(process: subprocess.Popen[str], limit_s: float) -> dict[str, Any]:
    """Its JSON result, or why it failed."""
    try:
        out, err = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"failed": f"client ran past {limit_s:.0f} s"}
    if process.returncode != 0:
        return {"failed": " | ".join(err.strip().splitlines()[-3:])}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_client(spec: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """One client, start to finish."""
    return finish_client(start_client(spec), limit_s)
