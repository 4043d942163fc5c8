"""``python -m bench.report benchmarks.json``: the Markdown again from a run's JSON."""

import sys

from bench.report import main

sys.exit(main())
