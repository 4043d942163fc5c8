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


def test_workers_flag_reaches_the_plan_and_sets_the_client_connections() -> None:
    _, default = parse_arguments([], "doc")
    _, plan = parse_arguments(["--quick", "--workers", "1,2"], "doc")

    assert default.workers == (1,)
    assert plan.workers == (1, 2)
    assert plan.servers == Plan.quick().servers  # --quick keeps its small plan
    assert plan.connections(1) == 1  # today's client, so one process compares with older runs
    assert plan.connections(2) == 8


@pytest.mark.parametrize("counts", ["2,1", "0,1", "1,1", "1,two", ""])
def test_workers_must_be_positive_and_ascending(
    counts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--workers", counts], "doc")
    assert "--workers takes positive counts in ascending order" in capsys.readouterr().err


def test_a_plan_refuses_workers_out_of_order() -> None:
    with pytest.raises(ValueError, match="workers"):
        Plan(servers=("ours",), scenarios=("features-1",), workers=(2, 1))


def test_the_peers_and_the_client_settings_reach_the_plan() -> None:
    _, plan = parse_arguments(
        ["--servers", "ours,ours-v2,triton,mlserver", "--client-processes", "3",
         "--chunk-seconds", "0.25"],
        "doc",
    )  # fmt: skip
    _, default = parse_arguments([], "doc")

    assert plan.servers == ("ours", "ours-v2", "triton", "mlserver")
    assert (plan.client_processes, plan.stream_chunk_seconds) == (3, 0.25)
    assert {"triton", "mlserver"} <= set(default.servers)
    assert (default.client_processes, default.stream_chunk_seconds) == (2, 0.1)
    assert Plan.quick().client_processes == 1  # --quick keeps its single client


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--servers", "ours,tritonserver"], "--servers: unknown 'tritonserver'; choose from"),
        (["--servers", "ours,ours"], "--servers: a name twice"),
        (["--scenarios", "features-2"], "--scenarios: unknown 'features-2'"),
        (["--client-processes", "0"], "--client-processes takes a positive count"),
        (["--chunk-seconds", "0"], "--chunk-seconds takes seconds in (0, 10]"),
    ],
)
def test_unknown_servers_and_bad_client_settings_are_refused(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(flags, "doc")
    assert message in capsys.readouterr().err


def test_a_plan_refuses_an_unknown_server() -> None:
    with pytest.raises(ValueError, match="unknown servers"):
        Plan(servers=("ours", "kserve"), scenarios=("features-1",))


def test_the_two_serving_designs_are_named_only_on_request() -> None:
    _, plan = parse_arguments(["--servers", "ours-complete,ours-inference,echo"], "doc")
    assert plan.servers == ("ours-complete", "ours-inference", "echo")
    _, default = parse_arguments([], "doc")
    assert not {"ours-complete", "ours-inference"} & set(default.servers)
