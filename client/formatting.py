"""Renders client results as aligned text tables or as JSON-ready dicts for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from client.results import FeaturesResult, ModelInfo, Scores, StreamUpdate

HEADLINE_METRICS = 3
"""Metrics shown per model in the table; ``--json`` carries them all."""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def scores_text(scores: Scores, limit: int) -> str:
    return ", ".join(f"{genre} {probability:.3f}" for genre, probability in scores[:limit])


def models_table(models: Sequence[ModelInfo]) -> str:
    rows = [
        [
            info.name,
            info.version,
            info.kind,
            "yes" if info.is_default else "",
            " ".join(
                f"{name}={value:.3f}"
                for name, value in list(info.metrics.items())[:HEADLINE_METRICS]
            ),
        ]
        for info in sorted(models, key=lambda info: (info.name, version_order(info.version)))
    ]
    return table(["MODEL", "VERSION", "KIND", "DEFAULT", "METRICS"], rows)


def version_order(version: str) -> tuple[int, int, str]:
    """Numeric versions in numeric order ("2" before "10"), any others after them by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def models_json(models: Sequence[ModelInfo]) -> list[dict[str, object]]:
    return [asdict(info) for info in models]


def abstention_note(abstention: str) -> str:
    """ "" for an answer; else the reason in brackets, to print beside scores kept for reference."""
    return "" if abstention == "answered" else f"[{abstention.replace('_', ' ')}]"


def predictions_table(
    predictions: Sequence[Scores], top: int = 3, abstentions: Sequence[str] = ()
) -> str:
    notes = list(abstentions) or ["answered"] * len(predictions)
    rows = [
        [
            str(number),
            scores[0][0],
            f"{scores[0][1]:.3f}",
            abstention_note(abstention),
            scores_text(scores, top),
        ]
        for number, (scores, abstention) in enumerate(zip(predictions, notes, strict=True), 1)
    ]
    return table(["ROW", "GENRE", "PROBABILITY", "ABSTAINED", f"TOP-{top}"], rows)


def predictions_json(result: FeaturesResult) -> dict[str, object]:
    return {
        "model": result.model,
        "version": result.version,
        "rows": [
            {
                "row": number,
                "genre": scores[0][0],
                "probability": scores[0][1],
                "abstention": abstention,
                "scores": _scores_json(scores),
            }
            for number, (scores, abstention) in enumerate(
                zip(
                    result.predictions,
                    result.abstentions or ["answered"] * len(result.predictions),
                    strict=True,
                ),
                start=1,
            )
        ],
    }


def update_line(update: StreamUpdate, top: int = 3) -> str:
    """One line per rolling answer, or the final track verdict."""
    track_note = _spaced(abstention_note(update.track_abstention))
    if update.final:
        padded = " (shorter than one window: zero-padded)" if update.padded else ""
        return (
            f"final {track_note} {scores_text(update.track, top)}"
            f"  [{update.audio_seconds:.1f}s of audio]{padded}"
        )
    return (
        f"{update.window_start:7.2f}-{update.window_end:7.2f}s"
        f"  window:{_spaced(abstention_note(update.window_abstention))} "
        f"{scores_text(update.window, 1)}"
        f"  track:{track_note} {scores_text(update.track, top)}"
    )


def _spaced(note: str) -> str:
    return f" {note}" if note else ""


def update_json(update: StreamUpdate) -> dict[str, object]:
    fields = asdict(update)
    fields["window"] = _scores_json(update.window)
    fields["track"] = _scores_json(update.track)
    return fields


def _scores_json(scores: Scores) -> list[dict[str, object]]:
    return [{"genre": genre, "probability": probability} for genre, probability in scores]
