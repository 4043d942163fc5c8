"""The client is what other services install: importing it must not pull in heavy stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

CHECK = (
    "import sys, client, client.cli\n"
    "heavy = sorted({'torch', 'torchaudio', 'pandas', 'matplotlib', 'soundfile', 'av', 'server',"
    " 'training'} & {name.split('.')[0] for name in sys.modules})\n"
    "assert not heavy, heavy\n"
)


def test_importing_client_and_cli_pulls_no_torch_pandas_or_decoders() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
