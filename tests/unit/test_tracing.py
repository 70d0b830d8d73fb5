"""shared.observability.tracing: W3C traceparent parsing and child spans, as carried in CloudEvents."""

from __future__ import annotations

import re

import pytest

from shared.observability.tracing import (
    child_traceparent,
    new_traceparent,
    parse_traceparent,
    span_id_of,
    trace_id_of,
)

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
FORMAT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_a_valid_traceparent_is_parsed():
    context = parse_traceparent(VALID)
    assert context.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert context.span_id == "b7ad6b7169203331"
    assert context.sampled
    assert context.traceparent == VALID


def test_a_child_keeps_trace_and_flags_with_a_new_span():
    child = child_traceparent(VALID)
    assert FORMAT.match(child)
    assert trace_id_of(child) == trace_id_of(VALID)
    assert span_id_of(child) != span_id_of(VALID)
    assert child.endswith("-01")
    unsampled = child_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
    assert unsampled.endswith("-00")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff is forbidden
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper-case hex
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # flags missing
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(value):
    assert parse_traceparent(value) is None
    assert trace_id_of(value) is None
    fresh = child_traceparent(value)
    assert FORMAT.match(fresh) and parse_traceparent(fresh) is not None


def test_a_future_version_is_read_as_version_00():
    assert trace_id_of("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") == (
        "0af7651916cd43dd8448eb211c80319c"
    )


def test_new_traces_are_distinct_and_sampled():
    first, second = new_traceparent(), new_traceparent()
    assert trace_id_of(first) != trace_id_of(second)
    assert parse_traceparent(first).sampled
