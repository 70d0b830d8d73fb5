"""Decoding CloudEvents from HTTP: KafkaSource's binary mode, PingSource, structured mode, and junk."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from shared.errors import BadMessage
from shared.runtime.cloudevent_http import event_from_http
from tests.helpers.cloudevents import kafka_source_request, ping_request, structured_request

ORIGINAL_JOB = b'{"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": "2025-06-25T21:00:00Z"}'


def test_plain_kafka_record_as_kafkasource_delivers_it():
    request = kafka_source_request(
        ORIGINAL_JOB,
        topic="price-crawler.price.request",
        partition=2,
        offset=564,
        key="k1",
        kafka_headers=[("X-Request-Id", "abc")],
    )
    assert "Content-Type" not in request.headers  # a.3: no content-type header on the record
    event = event_from_http(request.headers, request.body)
    assert event.id == "partition:2/offset:564"
    assert event.type == "dev.knative.kafka.event"
    assert (
        event.source
        == "/apis/v1/namespaces/price-crawler/kafkasources/price-request-source#price-crawler.price.request"
    )
    assert event.subject == "partition:2#564"
    assert event.datacontenttype is None
    assert event.data == ORIGINAL_JOB  # the value bytes, unmodified
    assert event.extensions["key"] == "k1"
    assert event.extensions["partitionkey"] == "k1"
    assert event.extensions["kafkaheaderxrequestid"] == "abc"
    assert event.extensions["knativekafkapartition"] == "2"
    assert event.extensions["knativekafkaoffset"] == "564"


def test_binary_cloudevent_record_keeps_its_own_attributes():
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request = kafka_source_request(
        b'{"job_type":"price"}',
        topic="t",
        offset=7,
        kafka_headers=[
            ("ce_specversion", "1.0"),
            ("ce_id", "top100-price:20250625T210000.000000Z:0"),
            ("ce_source", "/price-crawler/scheduler/top100-price"),
            ("ce_type", "price-crawler.job.requested"),
            ("ce_time", "2025-06-25T21:00:00Z"),
            ("ce_traceparent", traceparent),
            ("content-type", "application/json"),
        ],
    )
    event = event_from_http(request.headers, request.body)
    assert event.id == "top100-price:20250625T210000.000000Z:0"
    assert event.type == "price-crawler.job.requested"
    assert event.datacontenttype == "application/json"
    assert event.traceparent == traceparent
    assert event.extensions["knativekafkaoffset"] == "7"
    assert "key" not in event.extensions  # a.5: no key/partitionkey added for a CloudEvent record
    assert event.data == b'{"job_type":"price"}'


def test_ping_event():
    event = event_from_http(*_parts(ping_request("top100-price", name="top100-price-tick")))
    assert event.type == "dev.knative.sources.ping"
    assert event.source.endswith("/pingsources/top100-price-tick")
    assert json.loads(event.data) == {"schedule": "top100-price"}
    assert event.time is not None


def test_header_names_are_case_insensitive():
    event = event_from_http({"CE-SpecVersion": "1.0", "Ce-Id": "1", "CE-SOURCE": "s", "ce-type": "t"}, b"x")
    assert (event.id, event.source, event.type, event.data) == ("1", "s", "t", b"x")


def test_structured_mode_keeps_attributes_extensions_and_exact_numbers():
    data = '{"job_type":"price","symbols":["BTC"],"price_usdt":0.000000000012345678901234567890,"n":[1,2.50,null,true]}'
    body = (
        '{"specversion":"1.0","id":"e1","source":"/s","type":"t","subject":"sub",'
        '"datacontenttype":"application/json","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",'
        f'"data":{data}}}'
    ).encode()
    event = event_from_http({"Content-Type": "application/cloudevents+json; charset=utf-8"}, body)
    assert (event.id, event.source, event.type, event.subject) == ("e1", "/s", "t", "sub")
    assert event.traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c")
    decoded = json.loads(event.data, parse_float=Decimal)
    assert decoded["price_usdt"] == Decimal("0.000000000012345678901234567890")  # no float in between
    assert decoded["n"] == [1, Decimal("2.50"), None, True]
    assert decoded["symbols"] == ["BTC"]


def test_structured_mode_with_base64_data():
    request = structured_request({"id": "e2", "source": "/s", "type": "t"}, None)
    envelope = json.loads(request.body)
    del envelope["data"]
    envelope["data_base64"] = base64.b64encode(ORIGINAL_JOB).decode()
    event = event_from_http(request.headers, json.dumps(envelope).encode())
    assert event.data == ORIGINAL_JOB


@pytest.mark.parametrize(
    "headers, body, reason",
    [
        ({}, b'{"job_type": "price"}', "specversion"),
        ({"Content-Type": "application/json"}, b"not json at all", "specversion"),
        ({"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t"}, b"{}", "without ce-id"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s"}, b"{}", "without ce-type"),
        ({"ce-specversion": "0.1", "ce-id": "1", "ce-source": "s", "ce-type": "t"}, b"{}", "specversion"),
        ({"Content-Type": "application/cloudevents+json"}, b"[1, 2]", "specversion"),
        ({"Content-Type": "application/cloudevents+json"}, b'{"specversion":"1.0","source":"s","type":"t"}', "id"),
    ],
)
def test_not_a_cloudevent_is_a_bad_message_with_the_reason(headers, body, reason):
    with pytest.raises(BadMessage) as caught:
        event_from_http(headers, body)
    assert caught.value.reason.startswith("request is not a CloudEvent")
    assert reason in caught.value.reason


def _parts(request):
    return request.headers, request.body


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_an_over_long_id_source_or_type_is_a_bad_message_naming_it(attribute):
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", f"ce-{attribute}": "é" * 1500}
    with pytest.raises(BadMessage) as caught:
        event_from_http(headers, b"{}")
    assert caught.value.reason.startswith(f"CloudEvent {attribute} is 3000 bytes, over the")


def test_ids_as_long_as_the_limits_are_accepted():
    headers = {"ce-specversion": "1.0", "ce-id": "i" * 256, "ce-source": "s" * 512, "ce-type": "t" * 256}
    assert event_from_http(headers, b"{}").id == "i" * 256
