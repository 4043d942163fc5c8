"""A peer's pinned venv under ``bench/``, made on first use and reused while its pins hold.

The pins are a constraints file beside this module (every package, versions from the install
that the committed comparison used) and the few requirements named in it; a marker file holds
both plus the interpreter, so a change to any of them makes the venv again. Nothing of the main
venv is installed twice: the peer's model code borrows torch and our packages from it at run
time (``bench.peers.model``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from bench.peers.process import PeerUnavailable, run_step

BENCH = Path(__file__).resolve().parents[1]
PINS = Path(__file__).resolve().parent / "pins"


def ensure_venv(
    name: str, python: str, requirements: Sequence[str], timeout: float = 600.0
) -> Path:
    """``bench/.<name>-venv`` built from ``python`` with ``requirements`` under
    ``pins/<name>.txt``; reused as it is when the marker says it was built the same way."""
    venv = BENCH / f".{name}-venv"
    constraints = PINS / f"{name}.txt"
    wanted = "\n".join([python, *requirements, constraints.read_text()])
    marker = venv / "pins.txt"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    if not Path(python).exists():
        raise PeerUnavailable(f"{python} not found (the {name} venv must be made from it)")
    started = time.monotonic()
    shutil.rmtree(venv, ignore_errors=True)
    run_step([python, "-m", "venv", str(venv)], timeout)
    remaining = max(1.0, timeout - (time.monotonic() - started))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input"]
    run_step([*pip, "--constraint", str(constraints), *requirements], remaining)
    marker.write_text(wanted)
    return venv


def site_packages(venv: Path) -> Path:
    """The venv's purelib (``lib/python3.X/site-packages``)."""
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise PeerUnavailable(f"no site-packages in {venv}")
    return found[0]
