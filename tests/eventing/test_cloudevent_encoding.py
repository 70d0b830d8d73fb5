"""Wire encodings of an event: binary HTTP (a.1), Kafka binary/structured (c), times, exact JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from local.eventing.cloudevent import (
    CloudEvent,
    binary_http_headers,
    dumps_exact,
    encode_header_value,
    format_send_time,
    kafka_binary_headers,
    loads_exact,
    normalise_time,
    structured_json,
)

EVENT = CloudEvent(
    attributes={
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "datacontenttype": "application/json",
        "partitionkey": "BTC",
    },
    data=b'{"price":0.000000000012345}',
)


def test_binary_http_headers():
    assert binary_http_headers(EVENT) == [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
        ("Content-Type", "application/json"),
        ("ce-partitionkey", "BTC"),
    ]


def test_trace_context_is_also_sent_as_w3c_headers():
    traced = EVENT.with_extensions({"traceparent": "00-abc-def-01", "tracestate": "k=v"})
    headers = binary_http_headers(traced)
    assert ("ce-traceparent", "00-abc-def-01") in headers
    assert ("traceparent", "00-abc-def-01") in headers and ("tracestate", "k=v") in headers


def test_header_values_that_http_cannot_carry_are_percent_encoded():
    assert encode_header_value("plain value/with:chars") == "plain value/with:chars"
    assert encode_header_value("é\n") == "%C3%A9%0A"


def test_kafka_binary_headers():
    assert kafka_binary_headers(EVENT) == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("content-type", b"application/json"),
        ("ce_partitionkey", b"BTC"),
    ]


def test_structured_json_embeds_json_data_verbatim():
    encoded = structured_json(EVENT)
    assert encoded.endswith(b'"data":{"price":0.000000000012345}}')
    assert json.loads(encoded)["id"] == "1"


def test_structured_json_text_binary_and_no_data():
    text = CloudEvent(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "datacontenttype": "text/plain"}, b"hi"
    )
    assert json.loads(structured_json(text))["data"] == "hi"
    binary = CloudEvent(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "datacontenttype": "application/octet-stream"},
        b"\xff\x00",
    )
    assert json.loads(structured_json(binary))["data_base64"] == "/wA="
    empty = CloudEvent({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}, None)
    assert json.loads(structured_json(empty)) == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("2025-06-25T21:00:00Z", "2025-06-25T21:00:00Z"),
        ("2025-06-25T21:00:00.000Z", "2025-06-25T21:00:00Z"),
        ("2025-06-25T21:00:00.123456789Z", "2025-06-25T21:00:00.123456789Z"),
        ("2025-06-25t21:00:00.10+00:00", "2025-06-25T21:00:00.1Z"),
        ("2025-06-25T21:00:00-05:30", "2025-06-25T21:00:00-05:30"),
    ],
)
def test_times_are_rendered_like_sdk_java(text, rendered):
    assert normalise_time(text) == rendered


@pytest.mark.parametrize("text", ["2025-06-25", "2025-13-01T00:00:00Z", "2025-06-25T21:00Z", "yesterday"])
def test_invalid_times(text):
    with pytest.raises(ValueError):
        normalise_time(text)


def test_send_time_is_utc_with_trailing_zeros_trimmed():
    moment = datetime(2026, 1, 1, 13, 0, 0, 120000, tzinfo=timezone(timedelta(hours=1)))
    assert format_send_time(moment) == "2026-01-01T12:00:00.12Z"


def test_exact_json_round_trip():
    text = '{"a":[1,2.50,-0.000000000012345,1E+400],"b":{"c":null,"d":true,"e":"\u00e9"}}'
    assert dumps_exact(loads_exact(text)) == text
