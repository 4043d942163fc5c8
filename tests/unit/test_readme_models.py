"""The README's table of bundled models says what their manifests say.

A user picks a model by that table, and ``ListModels`` serves the manifests: a figure that is in
one and not the other is a promise nobody measured. Every percentage (with its ± standard error)
and every three-decimal log-loss in a row must be a metric of the version the row names, as
printed (rounded to the digits shown).
"""

from __future__ import annotations

import re

from modelcore.checkpoint import read_manifest
from tests.conftest import REPOSITORY_ROOT

README = REPOSITORY_ROOT / "README.md"
SECTION = "## Bundled models and how good they are"
ROW = re.compile(r"^\| `(?P<name>[a-z0-9-]+)/(?P<version>\d+)` \|(?P<rest>.*)\|$")
PERCENT = re.compile(r"(?<![\d.])(\d+\.\d)%(?: ± (\d+\.\d))?")
LOG_LOSS = re.compile(r"(?<![\d.,])(\d\.\d{3})(?![\d%])")


def table_rows() -> list[re.Match[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :].split("\n## ", 1)[0]
    return [match for line in section.splitlines() if (match := ROW.match(line))]


def numeric_metrics(name: str, version: str) -> dict[str, float]:
    metrics = read_manifest(REPOSITORY_ROOT / "models" / name / version).metrics
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def test_the_table_names_every_default_version() -> None:
    named = {(row["name"], row["version"]) for row in table_rows()}
    for model in sorted(path for path in (REPOSITORY_ROOT / "models").iterdir() if path.is_dir()):
        newest = max(int(version.name) for version in model.iterdir() if version.name.isdigit())
        assert (model.name, str(newest)) in named, f"README table lacks {model.name}/{newest}"


def test_every_figure_in_the_table_is_in_the_manifest() -> None:
    rows = table_rows()
    assert rows, f"no model rows under {SECTION!r}"
    for row in rows:
        metrics = numeric_metrics(row["name"], row["version"])
        where = f"{row['name']}/{row['version']}"
        percents = {f"{100 * value:.1f}" for value in metrics.values()}
        for figure, error in PERCENT.findall(row["rest"]):
            assert figure in percents, f"{where}: {figure}% is in no manifest metric"
            if error:
                errors = {f"{100 * v:.1f}" for k, v in metrics.items() if k.endswith("_se")}
                assert error in errors, f"{where}: ± {error} is in no manifest standard error"
        losses = {f"{value:.3f}" for key, value in metrics.items() if "log_loss" in key}
        for figure in LOG_LOSS.findall(row["rest"]):
            assert figure in losses, f"{where}: log-loss {figure} is in no manifest metric"
