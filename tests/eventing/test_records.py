"""Kafka record → CloudEvent mapping, attribute by attribute (knative-eventing.md a.2–a.6, a.8)."""

from __future__ import annotations

import struct

import pytest

from local.eventing.cloudevent import binary_http_headers
from local.eventing.records import (
    KafkaRecord,
    event_from_record,
    java_float_string,
    render_key,
    sanitise_header_name,
)


def record(value=b"{}", *, key=None, headers=(), topic="orders", partition=0, offset=564, timestamp_ms=1767268800123):
    return KafkaRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key=key,
        value=value,
        headers=tuple(headers),
    )


def test_a8_sample_request():
    event = event_from_record(
        record(b'{"raw":"value bytes"}', key=b"k1", headers=[("trace-id", b"abc")]),
        namespace="default",
        source_name="ks",
    )
    assert binary_http_headers(event) == [
        ("ce-specversion", "1.0"),
        ("ce-id", "partition:0/offset:564"),
        ("ce-source", "/apis/v1/namespaces/default/kafkasources/ks#orders"),
        ("ce-type", "dev.knative.kafka.event"),
        ("ce-subject", "partition:0#564"),
        ("ce-time", "2026-01-01T12:00:00.123Z"),
        ("ce-partitionkey", "k1"),
        ("ce-key", "k1"),
        ("ce-kafkaheadertraceid", "abc"),
        ("ce-knativekafkapartition", "0"),
        ("ce-knativekafkaoffset", "564"),
    ]
    assert event.data == b'{"raw":"value bytes"}'


@pytest.mark.parametrize(
    ("millis", "rendered"),
    [
        (1767268800123, "2026-01-01T12:00:00.123Z"),
        (1767268800120, "2026-01-01T12:00:00.12Z"),  # java.time prints only the digits needed
        (1767268800100, "2026-01-01T12:00:00.1Z"),
        (1767268800000, "2026-01-01T12:00:00Z"),
        (-1, "1969-12-31T23:59:59.999Z"),  # no timestamp: Java's Instant.ofEpochMilli(-1)
    ],
)
def test_time_is_the_record_timestamp_in_utc(millis, rendered):
    assert event_from_record(record(timestamp_ms=millis), namespace="n", source_name="s").get("time") == rendered


def test_datacontenttype_only_from_a_content_type_header_lowercased():
    without = event_from_record(record(), namespace="n", source_name="s")
    assert without.get("datacontenttype") is None
    with_header = event_from_record(
        record(headers=[("CONTENT-TYPE", b"Application/JSON; Charset=UTF-8")]), namespace="n", source_name="s"
    )
    assert with_header.get("datacontenttype") == "application/json; charset=utf-8"
    assert not any(name.startswith("kafkaheader") for name in with_header.attributes)


def test_header_extensions_are_sanitised_and_the_last_duplicate_wins():
    event = event_from_record(
        record(headers=[("X-Request-Id", b"1"), ("X-Request-Id", b"2"), ("a.b_c-D9", b"x"), ("bin", b"\xff")]),
        namespace="n",
        source_name="s",
    )
    assert event.get("kafkaheaderxrequestid") == "2"
    assert event.get("kafkaheaderabcd9") == "x"
    assert event.get("kafkaheaderbin") == "\ufffd"  # invalid UTF-8 decoded with replacement, like Java
    assert sanitise_header_name("Ünïcode-Name") == "ncodename"


def test_empty_or_null_key_adds_no_key_extensions():
    for key in (None, b""):
        event = event_from_record(record(key=key), namespace="n", source_name="s")
        assert "key" not in event.attributes and "partitionkey" not in event.attributes


def test_null_value_has_no_data():
    assert event_from_record(record(None), namespace="n", source_name="s").data is None


@pytest.mark.parametrize(
    ("key", "key_type", "rendered"),
    [
        (b"BTC", "string", "BTC"),
        (struct.pack(">i", -7), "int", "-7"),
        (b"12345", "int", "12345"),  # not 4 bytes: falls back to string
        (struct.pack(">f", 1.5), "float", "1.5"),
        (struct.pack(">d", 1e10), "float", "1.0E10"),
        (b"abc", "float", "abc"),
        (b"\x00\xff", "byte-array", "AP8="),  # binary attribute: base64 on the wire
    ],
)
def test_key_types(key, key_type, rendered):
    assert render_key(key, key_type) == rendered


@pytest.mark.parametrize(
    ("value", "single", "text"),
    [
        (0.1, True, "0.1"),
        (100.0, False, "100.0"),
        (1e-4, False, "1.0E-4"),
        (12345678.9, False, "1.23456789E7"),
        (-0.0, False, "-0.0"),
        (float("nan"), False, "NaN"),
    ],
)
def test_java_float_rendering(value, single, text):
    assert java_float_string(value, single=single) == text


# --- records that already are CloudEvents (a.5) --------------------------------------------------

BINARY_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"job-1"),
    ("ce_source", b"/scheduler"),
    ("ce_type", b"price-crawler.job.requested"),
    ("ce_time", b"2025-06-25T21:00:00+02:00"),
    ("CE_TokenSet", b"top100"),
    ("content-type", b"application/json"),
    ("x-trace", b"ignored"),
]


def test_binary_cloudevent_passes_through_without_key_or_header_extensions():
    event = event_from_record(record(b'{"a":1}', key=b"k", headers=BINARY_HEADERS), namespace="n", source_name="s")
    assert dict(event.attributes) == {
        "specversion": "1.0",
        "id": "job-1",
        "source": "/scheduler",
        "type": "price-crawler.job.requested",
        "time": "2025-06-25T21:00:00+02:00",
        "tokenset": "top100",
        "datacontenttype": "application/json",
        "knativekafkapartition": "0",
        "knativekafkaoffset": "564",
    }
    assert event.data == b'{"a":1}'


def test_structured_cloudevent_keeps_numbers_exactly():
    value = (
        b'{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2025-06-25T21:00:00.500000Z",'
        b'"flag":true,"data":{"p":0.000000000012345,"n":1e-7,"s":"\xc3\xa9"}}'
    )
    event = event_from_record(
        record(value, headers=[("content-type", b"application/cloudevents+json")]), namespace="n", source_name="s"
    )
    assert event.data == b'{"p":0.000000000012345,"n":1e-7,"s":"\xc3\xa9"}'
    assert event.get("time") == "2025-06-25T21:00:00.5Z"
    assert event.get("flag") == "true"


def test_structured_text_and_base64_data():
    text = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hello"}'
    assert (
        event_from_record(
            record(text, headers=[("content-type", b"application/cloudevents+json")]), namespace="n", source_name="s"
        ).data
        == b"hello"
    )
    encoded = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE="}'
    assert (
        event_from_record(
            record(encoded, headers=[("content-type", b"application/cloudevents+json")]), namespace="n", source_name="s"
        ).data
        == b"\x00\x01"
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("ce_specversion", b"1.0"), ("ce_source", b"/s"), ("ce_type", b"t")],  # no id
        [("ce_specversion", b"2.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t")],
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"1"),
            ("ce_source", b"/s"),
            ("ce_type", b"t"),
            ("ce_time", b"yesterday"),
        ],
        [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"a b"), ("ce_type", b"t")],
        [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"), ("ce_bad-name", b"x")],
        [("content-type", b"application/cloudevents+json")],  # value is not JSON
    ],
)
def test_invalid_cloudevents_are_wrapped_like_plain_records(headers):
    event = event_from_record(record(b"not json", key=b"k", headers=headers), namespace="n", source_name="s")
    assert event.type == "dev.knative.kafka.event"
    assert event.id == "partition:0/offset:564"
    assert event.get("key") == "k"
    assert event.data == b"not json"


def test_partition_offset_and_overrides_are_added_last():
    event = event_from_record(
        record(key=b"k", partition=3, offset=9),
        namespace="n",
        source_name="s",
        ce_overrides={"partitionkey": "override", "knativekafkaoffset": "x", "pipeline": "p"},
    )
    assert event.get("knativekafkapartition") == "3"
    assert event.get("partitionkey") == "override" and event.get("knativekafkaoffset") == "x"
    assert event.get("pipeline") == "p" and event.get("key") == "k"
