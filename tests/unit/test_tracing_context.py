"""W3C trace context on the call path: which ``traceparent`` values count, the one metadata pass
that finds them beside the request id, and the ids a request record carries across processes."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.trace import SpanContext, TraceFlags

from server.inference.messages import SUBMIT_RECORD
from server.logs import call_metadata, request_id
from server.tracing.context import (
    CallTrace,
    FinishedBatch,
    ParentContext,
    parse_traceparent,
    trace_id_of,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_the_w3c_example_is_read_whole() -> None:
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == ParentContext(
        int(TRACE, 16), int(SPAN, 16), 1
    )
    assert trace_id_of(f" 00-{TRACE}-{SPAN}-00\t") == TRACE  # optional whitespace, unsampled


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex
        f"ff-{TRACE}-{SPAN}-01",  # the forbidden version
        f"00-{'0' * 32}-{SPAN}-01",  # no trace id
        f"00-{TRACE}-{'0' * 16}-01",  # no parent id
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 ends at its flags
        f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
        f"00_{TRACE}_{SPAN}_01",
        "",
    ],
)
def test_values_the_recommendation_says_to_ignore(value: str) -> None:
    assert parse_traceparent(value) is None
    assert trace_id_of(value) == ""


def test_a_later_version_may_carry_more_fields() -> None:
    parent = parse_traceparent(f"cc-{TRACE}-{SPAN}-01-what-comes-next")
    assert parent is not None
    assert parent.trace_id == int(TRACE, 16)


def test_one_pass_finds_the_request_id_and_the_trace_headers() -> None:
    metadata = [
        ("user-agent", "grpc-python"),
        ("x-request-id", ""),  # too short: the next valid one counts
        ("traceparent", f"00-{TRACE}-{SPAN}-01"),
        ("tracestate", "a=1"),
        ("x-request-id", "req-7"),
        ("traceparent", f"00-{'1' * 32}-{SPAN}-01"),  # only the first counts
        ("tracestate", "b=2"),  # several headers are one list
    ]
    assert call_metadata(metadata) == ("req-7", f"00-{TRACE}-{SPAN}-01", "a=1,b=2")
    fresh, traceparent, tracestate = call_metadata(None)
    assert len(fresh) == 32
    assert (traceparent, tracestate) == ("", "")
    assert request_id(metadata) == "req-7"


class NoBatches:
    def record_batch(self, batch: FinishedBatch) -> None:
        raise AssertionError("no batch here")


def test_a_traced_request_record_carries_the_128_bit_trace_id_whole() -> None:
    context = SpanContext(int("f" + TRACE[1:], 16), int(SPAN, 16), False, TraceFlags(1))
    ids = CallTrace(context, NoBatches()).record_fields()
    record = np.array([(1, 2, 0, 1, 3, 64, 0.0, *ids)], dtype=SUBMIT_RECORD).tolist()[0]
    high, low, span, flags = record[7:]
    assert f"{(high << 64) | low:032x}" == "f" + TRACE[1:]
    assert (f"{span:016x}", flags) == (SPAN, 1)
