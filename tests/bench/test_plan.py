"""``bench.run``'s flags become the plan it measures; a malformed stream list is refused."""

from __future__ import annotations

import pytest

from bench.plan import SCENARIOS, SERVERS, Plan, parse_arguments


def test_defaults_measure_every_server_and_scenario() -> None:
    _, plan = parse_arguments([], "doc")
    assert (plan.servers, plan.scenarios) == (SERVERS, SCENARIOS)
    assert plan.stream_counts == Plan.stream_counts
    assert plan.stream_phases == "even"


def test_audio_stream_flags_reach_the_plan() -> None:
    _, plan = parse_arguments(
        ["--servers", "ours", "--scenarios", "audio", "--stream-counts", "1,8,16",
         "--stream-seconds", "30", "--stream-phases", "random"],
        "doc",
    )  # fmt: skip
    assert (plan.servers, plan.scenarios) == (("ours",), ("audio",))
    assert plan.stream_counts == (1, 8, 16)
    assert (plan.stream_audio_seconds, plan.stream_phases) == (30.0, "random")


@pytest.mark.parametrize("counts", ["16,8", "0,4"])
def test_stream_counts_must_be_positive_and_ascending(
    counts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--stream-counts", counts], "doc")
    assert "--stream-counts takes positive counts in ascending order" in capsys.readouterr().err
