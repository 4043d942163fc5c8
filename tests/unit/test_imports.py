"""The server stays light: importing it pulls in no training code and none of its libraries,
and no OpenTelemetry, which only a server exporting traces (GENRE_OTLP_ENDPOINT) loads."""

from __future__ import annotations

import subprocess
import sys


def test_server_imports_no_training_code_pandas_matplotlib_or_opentelemetry() -> None:
    probe = (
        "import sys, server.app, server.__main__, server.inference.service; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'matplotlib', 'sklearn', 'training', 'opentelemetry')); "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
