"""The server stays light: importing it must not pull in the training-only libraries."""

from __future__ import annotations

import subprocess
import sys


def test_server_imports_no_pandas_or_matplotlib() -> None:
    probe = (
        "import sys, server.app, server.__main__; "
        "heavy = sorted(m for m in ('pandas', 'matplotlib', 'sklearn') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
