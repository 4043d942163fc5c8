"""Which playlist an answer goes to, and the summary both ``organize`` commands end with.

One rule for audio files and Spotify rows alike. A track goes to ``unsorted`` when the server
abstained because the audio is silence or not music, and when its top probability is under
``--min-probability``; without that flag, when the server marked it "uncertain" (under the
model's own default threshold, ``ListModels``' ``min_probability``). Otherwise it is filed under
its top genre. A track that failed goes nowhere and is counted as failed.

``--min-probability`` is applied here, on the client, to the probability the report records,
and is not sent to the server: "uncertain" only ever means "top probability under a threshold",
so with the flag the client's threshold replaces the server's, and a re-run with another
threshold re-sorts from the report without classifying anything again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from client.organize.playlists import UNSORTED

ANSWERED = "answered"
UNCERTAIN = "uncertain"
Reason = Literal["placed", "abstained", "below_min_probability", "failed"]


class Answer(Protocol):
    """What placement reads of a report row (audio or Spotify)."""

    @property
    def genre(self) -> str: ...
    @property
    def probability(self) -> float | None: ...
    @property
    def abstention(self) -> str: ...
    @property
    def error(self) -> str: ...


def check_min_probability(value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"--min-probability must be between 0 and 1, got {value:g}")


def place(answer: Answer, min_probability: float | None) -> tuple[str | None, Reason]:
    """``(playlist, why)``: the genre, ``unsorted``, or ``None`` for a failed track."""
    if answer.error:
        return None, "failed"
    if answer.abstention not in (ANSWERED, UNCERTAIN):
        return UNSORTED, "abstained"
    if answer.probability is None:
        return UNSORTED, "below_min_probability"
    if min_probability is None:
        return (
            (UNSORTED, "abstained") if answer.abstention == UNCERTAIN else (answer.genre, "placed")
        )
    if answer.probability < min_probability:
        return UNSORTED, "below_min_probability"
    return answer.genre, "placed"


@dataclass(frozen=True)
class Summary:
    """What a run did, printed at its end (text, or one JSON object with ``--json``).

    ``tracks`` counts the tracks per genre playlist; ``classified`` the tracks answered (or
    failed) in this run and ``skipped`` those whose report row was current.
    """

    model: str
    version: str
    tracks: dict[str, int]
    abstained: int
    below_min_probability: int
    failed: int
    classified: int
    skipped: int
    seconds: float
    interrupted: bool = False
    dry_run: bool = False
    outputs: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        answers: Iterable[Answer],
        min_probability: float | None,
        *,
        model: str,
        version: str,
        classified: int,
        skipped: int,
        seconds: float,
        interrupted: bool = False,
        dry_run: bool = False,
        outputs: Iterable[str] = (),
    ) -> Summary:
        reasons: Counter[Reason] = Counter()
        tracks: Counter[str] = Counter()
        for answer in answers:
            playlist, reason = place(answer, min_probability)
            reasons[reason] += 1
            if reason == "placed" and playlist is not None:
                tracks[playlist] += 1
        return cls(
            model=model,
            version=version,
            tracks=dict(sorted(tracks.items())),
            abstained=reasons["abstained"],
            below_min_probability=reasons["below_min_probability"],
            failed=reasons["failed"],
            classified=classified,
            skipped=skipped,
            seconds=seconds,
            interrupted=interrupted,
            dry_run=dry_run,
            outputs=list(outputs),
        )

    @property
    def unsorted(self) -> int:
        return self.abstained + self.below_min_probability

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.model,
                "version": self.version,
                "tracks": self.tracks,
                "unsorted": self.unsorted,
                "abstained": self.abstained,
                "below_min_probability": self.below_min_probability,
                "failed": self.failed,
                "classified": self.classified,
                "skipped": self.skipped,
                "seconds": round(self.seconds, 3),
                "interrupted": self.interrupted,
                "dry_run": self.dry_run,
                "outputs": self.outputs,
            },
            indent=2,
        )

    def text(self) -> str:
        width = max((len(genre) for genre in self.tracks), default=0)
        width = max(width, len("below --min-probability"))
        lines = [f"{genre.ljust(width)}  {count}" for genre, count in self.tracks.items()]
        lines += [
            f"{'abstained'.ljust(width)}  {self.abstained}",
            f"{'below --min-probability'.ljust(width)}  {self.below_min_probability}",
            f"{'failed'.ljust(width)}  {self.failed}",
        ]
        reports = [path for path in self.outputs if path.endswith("report.csv")]
        if self.failed and reports:
            lines.append(f"why each failed: {reports[0]}")
        model = f"{self.model}:{self.version}" if self.version else self.model
        done = "interrupted after" if self.interrupted else "took"
        unchanged = f", {self.skipped} unchanged since the last run" if self.skipped else ""
        lines.append(
            f"{model}: {self.classified} classified{unchanged}; {done} {self.seconds:.1f} s"
        )
        return "\n".join(lines)
