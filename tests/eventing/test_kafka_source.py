"""KafkaSource emulation against a real broker and real HTTP sinks (knative-eventing.md a, b)."""

from __future__ import annotations

import base64
import json
import time
from itertools import pairwise

import pytest
from confluent_kafka import Consumer, Message
from eventing_helpers import Reply


def kafka_source(
    topic: str,
    sink_url: str,
    *,
    name: str = "ks",
    delivery: str | None = None,
    extra_spec: str = "",
    labels: str = "",
    group: str | None = None,
) -> str:
    """A KafkaSource manifest as the cluster would take it."""
    text = f"""
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: {name}
{labels}
spec:
  consumerGroup: {group or "g-" + topic}
  bootstrapServers: [my-cluster-kafka-bootstrap.kafka:9092]
  topics: [{topic}]
  initialOffset: earliest
{extra_spec}
  sink:
    uri: {sink_url}
"""
    if delivery is not None:
        text += "  delivery:\n" + "\n".join("    " + line for line in delivery.strip().splitlines()) + "\n"
    return text


def test_plain_record_is_wrapped_as_in_a8(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("plain", partitions=1)
    sink = recording_sink()
    produce(topic, b'{"raw":"value bytes"}', key=b"k1", headers=[("trace-id", b"abc")], timestamp=1767268800123)
    run_plane(kafka_source(topic, sink.url))

    [request] = sink.wait_for(1)
    assert request.ce == {
        "specversion": "1.0",
        "id": "partition:0/offset:0",
        "source": f"/apis/v1/namespaces/default/kafkasources/ks#{topic}",
        "subject": "partition:0#0",
        "type": "dev.knative.kafka.event",
        "time": "2026-01-01T12:00:00.123Z",
        "key": "k1",
        "partitionkey": "k1",
        "kafkaheadertraceid": "abc",
        "knativekafkapartition": "0",
        "knativekafkaoffset": "0",
    }
    assert request.header("Prefer") == "reply"
    assert request.header("Kn-Namespace") == "default"
    assert request.header("Content-Type") is None  # no content-type header on the record (a.3, a.7)
    assert request.body == b'{"raw":"value bytes"}'


def test_content_type_header_and_header_names(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("headers", partitions=1)
    sink = recording_sink()
    headers = [
        ("Content-Type", b"Application/JSON"),
        ("X-Request-Id", b"first"),
        ("X-Request-Id", b"second"),  # duplicates: the last one wins
        ("weird.Name_1", b"v\xc3\xa9"),
    ]
    produce(topic, b"{}", headers=headers)
    run_plane(kafka_source(topic, sink.url))

    [request] = sink.wait_for(1)
    assert request.header("Content-Type") == "application/json"  # lower-cased, as datacontenttype
    assert request.ce["kafkaheaderxrequestid"] == "second"
    assert request.ce["kafkaheaderweirdname1"] == "v%C3%A9"  # UTF-8 value, percent-encoded for HTTP
    assert not any(name.startswith("kafkaheadercontent") for name in request.ce)
    assert "key" not in request.ce and "partitionkey" not in request.ce  # null key


def test_binary_cloudevent_record_passes_through(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("binary", partitions=1)
    sink = recording_sink()
    body = b'{"job_type":"price","token_type":"top100","symbols":["PEPE"],"price":0.000000000012345}'
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    produce(
        topic,
        body,
        key=b"top100",
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", b"job-1"),
            ("ce_source", b"/price-crawler/scheduler"),
            ("ce_type", b"price-crawler.job.requested"),
            ("ce_time", b"2025-06-25T21:00:00.000Z"),
            ("ce_partitionkey", b"top100"),
            ("ce_traceparent", traceparent.encode()),
            ("content-type", b"application/json"),
            ("x-other", b"ignored"),
        ],
    )
    run_plane(kafka_source(topic, sink.url))

    [request] = sink.wait_for(1)
    assert request.ce == {
        "specversion": "1.0",
        "id": "job-1",
        "source": "/price-crawler/scheduler",
        "type": "price-crawler.job.requested",
        "time": "2025-06-25T21:00:00Z",  # re-rendered like sdk-java
        "partitionkey": "top100",  # the event's own extension, not the record key
        "traceparent": traceparent,
        "knativekafkapartition": "0",
        "knativekafkaoffset": "0",
    }
    assert request.header("traceparent") == traceparent  # W3C trace context continues
    assert request.header("Content-Type") == "application/json"
    assert request.body == body  # byte for byte: no float ever touched the price


def test_structured_cloudevent_record_passes_through(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("structured", partitions=1)
    sink = recording_sink()
    event = (
        b'{"specversion":"1.0","id":"s-1","source":"/scheduler","type":"price-crawler.job.requested",'
        b'"datacontenttype":"application/json","tokenset":"trending","count":3,'
        b'"data":{"symbols":["BTC"],"price":0.000000000012345,"big":123456789012345678901234567890}}'
    )
    produce(topic, event, key=b"k", headers=[("content-type", b"application/cloudevents+json; charset=utf-8")])
    run_plane(kafka_source(topic, sink.url))

    [request] = sink.wait_for(1)
    assert request.ce == {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/scheduler",
        "type": "price-crawler.job.requested",
        "tokenset": "trending",
        "count": "3",
        "knativekafkapartition": "0",
        "knativekafkaoffset": "0",
    }
    assert request.header("Content-Type") == "application/json"
    assert request.body == b'{"symbols":["BTC"],"price":0.000000000012345,"big":123456789012345678901234567890}'


def test_null_values(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("null", partitions=1)
    sink = recording_sink()
    produce(topic, None, key=b"tombstone")
    produce(
        topic, None, headers=[("ce_specversion", b"1.0"), ("ce_id", b"n-1"), ("ce_source", b"/s"), ("ce_type", b"t")]
    )
    run_plane(kafka_source(topic, sink.url))

    plain, binary = sink.wait_for(2)
    assert plain.ce["type"] == "dev.knative.kafka.event" and plain.ce["key"] == "tombstone"
    assert plain.body == b"" and plain.header("Content-Type") is None
    assert binary.ce["id"] == "n-1" and binary.ce["type"] == "t"  # still a binary CloudEvent (a.2)
    assert binary.body == b"" and binary.header("Content-Type") is None


def test_records_claiming_to_be_cloudevents_but_invalid_are_wrapped(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("invalid", partitions=1)
    sink = recording_sink()
    produce(topic, b"{not json", headers=[("content-type", b"application/cloudevents+json")])
    produce(topic, b"x", headers=[("ce_specversion", b"1.0"), ("ce_source", b"/s")])  # no id, no type
    run_plane(kafka_source(topic, sink.url))

    broken_structured, broken_binary = sink.wait_for(2)
    assert broken_structured.ce["type"] == "dev.knative.kafka.event"
    assert broken_structured.header("Content-Type") == "application/cloudevents+json"
    assert broken_structured.body == b"{not json"
    assert broken_binary.ce["id"] == "partition:0/offset:1"
    assert broken_binary.ce["kafkaheadercespecversion"] == "1.0"  # its headers became kafkaheader* extensions


@pytest.mark.parametrize(
    "body",
    [
        b'{"specversion": "1.0", "id": "deep", "source": "/s", "type": "t", "data": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        b'{"specversion": "1.0", "id": "deep", "source": "/s", "type": "t", "data": '
        + b'{"a": ' * 50_000
        + b"1"
        + b"}" * 50_001,
    ],
    ids=["nested-arrays", "nested-objects"],
)
def test_a_record_too_deep_to_parse_is_delivered_raw_then_dead_lettered(
    unique_topic, recording_sink, run_plane, produce, body
):
    """Deep nesting raises RecursionError, not ValueError: the record still reaches the function
    (as a plain record) and, refused there, the dead-letter sink with the reason: never dropped."""
    topic = unique_topic("deep", partitions=1)
    sink = recording_sink([Reply(400, body=b"not a job", headers=[("kne-reason", "bad-message")])])
    dead_letters = recording_sink()
    produce(topic, body, headers=[("content-type", b"application/cloudevents+json")])
    delivery = f"deadLetterSink:\n  uri: {dead_letters.url}"
    plane = run_plane(kafka_source(topic, sink.url, delivery=delivery))

    [delivered] = sink.wait_for(1)
    assert delivered.ce["type"] == "dev.knative.kafka.event" and delivered.body == body
    [dead] = dead_letters.wait_for(1)
    assert dead.ce["knativeerrorcode"] == "400" and dead.ce["reason"] == "bad-message"
    assert dead.body == body
    assert plane.metrics.counter("kafkasources/default/ks", "dropped") == 0


def test_ce_overrides_are_added_last_and_win(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("overrides", partitions=1)
    sink = recording_sink()
    produce(topic, b"{}", key=b"original")
    overrides = "  ceOverrides:\n    extensions:\n      partitionkey: fixed\n      pipeline: prices"
    run_plane(kafka_source(topic, sink.url, extra_spec=overrides))

    [request] = sink.wait_for(1)
    assert request.ce["partitionkey"] == "fixed"
    assert request.ce["key"] == "original"
    assert request.ce["pipeline"] == "prices"


def test_int_key_type_label(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("intkey", partitions=1)
    sink = recording_sink()
    produce(topic, b"{}", key=(42).to_bytes(4, "big"))
    labels = "  labels:\n    kafkasources.sources.knative.dev/key-type: int"
    run_plane(kafka_source(topic, sink.url, labels=labels))

    [request] = sink.wait_for(1)
    assert request.ce["key"] == "42" and request.ce["partitionkey"] == "42"


# --- retries, backoff, timeouts (b.1–b.4) --------------------------------------------------------


def gaps(requests) -> list[float]:
    return [later.at - earlier.at for earlier, later in pairwise(requests)]


def assert_waits(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected):
        assert want - 0.02 <= got <= want + 0.25, (actual, expected)


def test_exponential_backoff_doubles_from_twice_the_delay(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("exp", partitions=1)
    busy = Reply(503, headers=[("Retry-After", "30")])  # not consulted by the Kafka dispatcher (b.3)
    sink = recording_sink([busy, busy, Reply(200)])
    produce(topic, b"{}")
    plane = run_plane(
        kafka_source(topic, sink.url, delivery="retry: 2\nbackoffPolicy: exponential\nbackoffDelay: PT0.1S")
    )

    requests = sink.wait_for(3)
    assert_waits(gaps(requests), [0.2, 0.4])  # delay × 2ⁿ
    assert all(r.ce["id"] == "partition:0/offset:0" for r in requests)
    key = "kafkasources/default/ks"
    time.sleep(0.1)
    assert plane.metrics.counter(key, "delivered") == 1
    assert plane.metrics.counter(key, "retries") == 2


def test_linear_backoff_and_every_retryable_status(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("linear", partitions=1)
    sink = recording_sink([Reply(500), Reply(429), Reply(404), Reply(408), Reply(409), Reply(204)])
    produce(topic, b"{}")
    run_plane(kafka_source(topic, sink.url, delivery="retry: 5\nbackoffPolicy: linear\nbackoffDelay: PT0.05S"))

    requests = sink.wait_for(6)
    assert_waits(gaps(requests), [0.05, 0.1, 0.15, 0.2, 0.25])  # delay × n


def test_absent_delivery_means_ten_exponential_retries_from_300ms(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("nodelivery", partitions=1)
    sink = recording_sink([Reply(503), Reply(200)])
    produce(topic, b"{}")
    run_plane(kafka_source(topic, sink.url))  # no spec.delivery at all

    requests = sink.wait_for(2)
    assert_waits(gaps(requests), [0.6])  # first retry already waits 2 × 300 ms


def test_present_delivery_without_retry_means_no_retry(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("noretry", partitions=1)
    sink = recording_sink([Reply(503)])
    dead_letters = recording_sink()
    produce(topic, b"{}")
    run_plane(kafka_source(topic, sink.url, delivery=f"deadLetterSink:\n  uri: {dead_letters.url}"))

    [dead] = dead_letters.wait_for(1)
    assert len(sink.requests) == 1
    assert dead.ce["knativeerrorcode"] == "503"


def test_retry_without_backoff_delay_waits_from_200ms(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("default-delay", partitions=1)
    sink = recording_sink([Reply(503), Reply(200)])
    produce(topic, b"{}")
    run_plane(kafka_source(topic, sink.url, delivery="retry: 1"))

    assert_waits(gaps(sink.wait_for(2)), [0.4])  # 200 ms × 2¹


def test_non_retryable_status_goes_to_dead_letter_sink_at_once(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("bad", partitions=1)
    reason = b"x" * 1500
    sink = recording_sink([Reply(400, body=reason, headers=[("kne-reason", "bad-symbol"), ("Kne-Detail", "BTC")])])
    dead_letters = recording_sink()
    produce(topic, b'{"job_type":"nope"}', key=b"k1")
    delivery = f"retry: 5\nbackoffDelay: PT0.1S\ndeadLetterSink:\n  uri: {dead_letters.url}"
    plane = run_plane(kafka_source(topic, sink.url, delivery=delivery))

    [dead] = dead_letters.wait_for(1)
    time.sleep(0.3)
    assert len(sink.requests) == 1  # 400 is not retried
    assert dead.ce["knativeerrordest"] == sink.url
    assert dead.ce["knativeerrorcode"] == "400"
    assert base64.b64decode(dead.ce["knativeerrordata"]) == reason[:1024]
    assert dead.ce["reason"] == "bad-symbol" and dead.ce["detail"] == "BTC"
    assert dead.ce["id"] == "partition:0/offset:0" and dead.ce["key"] == "k1"
    assert dead.body == b'{"job_type":"nope"}'
    assert dead.header("Kn-Namespace") == "default"
    assert plane.metrics.counter("kafkasources/default/ks", "dead_lettered") == 1


def test_network_error_adds_only_the_destination(unique_topic, recording_sink, run_plane, produce, closed_port_url):
    topic = unique_topic("down", partitions=1)
    dead_letters = recording_sink()
    produce(topic, b"{}")
    delivery = f"retry: 1\nbackoffDelay: PT0.05S\ndeadLetterSink:\n  uri: {dead_letters.url}"
    run_plane(kafka_source(topic, closed_port_url, delivery=delivery))

    [dead] = dead_letters.wait_for(1)
    assert dead.ce["knativeerrordest"] == closed_port_url
    assert "knativeerrorcode" not in dead.ce and "knativeerrordata" not in dead.ce
    assert dead.ce["knativeerrorreason"].startswith("ConnectError")  # never dead-lettered without a reason


def test_a_retry_whose_keep_alive_connection_is_closed_under_it_is_resent_on_a_fresh_one(
    unique_topic, recording_sink, run_plane, produce
):
    topic = unique_topic("hangup", partitions=1)
    # 503 on a kept-alive connection; the retry reuses it and the server closes it under the
    # request (gunicorn ending the keep-alive just then); the resend goes on a new connection.
    sink = recording_sink([Reply(503), Reply(hang_up=True), Reply(200)])
    dead_letters = recording_sink()
    produce(topic, b"{}")
    delivery = f"retry: 1\nbackoffDelay: PT0.05S\ndeadLetterSink:\n  uri: {dead_letters.url}"
    plane = run_plane(kafka_source(topic, sink.url, delivery=delivery))

    first, reused, fresh = sink.wait_for(3)
    assert first.peer == reused.peer and fresh.peer != reused.peer
    assert fresh.status == 200 and fresh.ce["id"] == first.ce["id"]
    time.sleep(0.3)
    assert dead_letters.requests == []
    assert plane.metrics.counter("kafkasources/default/ks", "delivered") == 1


def test_a_sink_that_keeps_hanging_up_is_dead_lettered_with_the_reason(
    unique_topic, recording_sink, run_plane, produce
):
    topic = unique_topic("hangups", partitions=1)
    sink = recording_sink([Reply(hang_up=True)])
    dead_letters = recording_sink()
    produce(topic, b"{}")
    run_plane(kafka_source(topic, sink.url, delivery=f"retry: 0\ndeadLetterSink:\n  uri: {dead_letters.url}"))

    [dead] = dead_letters.wait_for(1)
    assert len(sink.requests) == 2  # the attempt and its resend on a fresh connection
    assert "knativeerrorcode" not in dead.ce
    assert dead.ce["knativeerrorreason"].startswith("RemoteProtocolError")


def test_timeout_is_per_attempt(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("timeout", partitions=1)
    sink = recording_sink([Reply(200, delay=2.0)])
    dead_letters = recording_sink()
    produce(topic, b"{}")
    delivery = f"retry: 1\nbackoffDelay: PT0.05S\ntimeout: PT0.3S\ndeadLetterSink:\n  uri: {dead_letters.url}"
    run_plane(kafka_source(topic, sink.url, delivery=delivery))

    [dead] = dead_letters.wait_for(1, timeout=3)
    requests = sink.wait_for(2)
    assert dead.at - requests[0].at < 1.5  # two 0.3 s attempts, not two 2 s waits
    assert dead.ce["knativeerrordest"] == sink.url and "knativeerrorcode" not in dead.ce
    assert dead.ce["knativeerrorreason"].startswith("TimeoutError") or "Timeout" in dead.ce["knativeerrorreason"]


def test_dead_letter_sink_down_drops_and_commits(
    unique_topic, recording_sink, run_plane, produce, closed_port_url, committed_offsets, wait_until
):
    topic = unique_topic("drop", partitions=1)
    sink = recording_sink([Reply(500), Reply(500), Reply(200)])
    produce(topic, b'{"n":1}')
    produce(topic, b'{"n":2}')
    produce(topic, b'{"n":3}')
    delivery = f"deadLetterSink:\n  uri: {closed_port_url}"
    plane = run_plane(kafka_source(topic, sink.url, delivery=delivery, group=f"drop-{topic}"))

    sink.wait_for(3)
    key = "kafkasources/default/ks"
    wait_until(lambda: committed_offsets(f"drop-{topic}", topic) == [3], message="offsets committed past the drops")
    assert plane.metrics.counter(key, "dropped") == 2
    assert plane.metrics.counter(key, "delivered") == 1
    assert plane.health()["status"] == "ok"


def test_failure_without_dead_letter_sink_drops_and_moves_on(
    unique_topic, recording_sink, run_plane, produce, committed_offsets, wait_until
):
    topic = unique_topic("nodls", partitions=1)
    sink = recording_sink([Reply(400), Reply(200)])
    produce(topic, b'{"n":1}')
    produce(topic, b'{"n":2}')
    plane = run_plane(kafka_source(topic, sink.url, delivery="retry: 3", group=f"nodls-{topic}"))

    first, second = sink.wait_for(2)
    assert (first.body, second.body) == (b'{"n":1}', b'{"n":2}')
    wait_until(lambda: committed_offsets(f"nodls-{topic}", topic) == [2], message="offsets committed")
    assert plane.metrics.counter("kafkasources/default/ks", "dropped") == 1


# --- ordering (b.7) ------------------------------------------------------------------------------


def test_ordered_delivers_one_at_a_time_per_partition(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("ordered", partitions=2)
    sink = recording_sink([Reply(200, delay=0.2)])
    for n in range(4):
        produce(topic, f'{{"p":0,"n":{n}}}'.encode(), partition=0)
        produce(topic, f'{{"p":1,"n":{n}}}'.encode(), partition=1)
    run_plane(kafka_source(topic, sink.url))

    requests = sink.wait_for(8)
    time.sleep(0.3)
    assert sink.max_concurrency == 2  # partitions in parallel, one in flight each
    for partition in ("0", "1"):
        offsets = [int(r.ce["knativekafkaoffset"]) for r in requests if r.ce["knativekafkapartition"] == partition]
        assert offsets == [0, 1, 2, 3]


def test_unordered_delivers_concurrently(unique_topic, recording_sink, run_plane, produce):
    topic = unique_topic("unordered", partitions=1)
    sink = recording_sink([Reply(200, delay=0.3)])
    for n in range(8):
        produce(topic, f'{{"n":{n}}}'.encode())
    run_plane(kafka_source(topic, sink.url, extra_spec="  ordering: unordered"))

    requests = sink.wait_for(8)
    assert sink.max_concurrency >= 4
    assert sorted(int(r.ce["knativekafkaoffset"]) for r in requests) == list(range(8))


def test_unordered_keeps_at_most_50_in_flight(unique_topic, recording_sink, run_plane, kafka_bootstrap):
    topic = unique_topic("limit", partitions=3)
    sink = recording_sink([Reply(200, delay=0.3)])
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(150):
        producer.produce(topic, value=str(n).encode(), partition=n % 3)
    assert producer.flush(10) == 0
    run_plane(kafka_source(topic, sink.url, extra_spec="  ordering: unordered"))

    requests = sink.wait_for(150, timeout=30)
    assert sink.max_concurrency == 50  # max.poll.records in flight per consumer
    assert sorted(int(r.body) for r in requests) == list(range(150))


def test_several_consumers_share_the_partitions(unique_topic, recording_sink, run_plane, produce, wait_until):
    topic = unique_topic("consumers", partitions=2)
    sink = recording_sink()
    plane = run_plane(kafka_source(topic, sink.url, extra_spec="  consumers: 2"))
    runner = plane.kafka_sources[0]
    wait_until(lambda: len(runner.assignment()) == 2, message="both partitions assigned")
    wait_until(lambda: all(len(worker.partitions) == 1 for worker in runner._workers), message="one partition each")
    produce(topic, b'"a"', partition=0)
    produce(topic, b'"b"', partition=1)

    assert sorted(r.body for r in sink.wait_for(2)) == [b'"a"', b'"b"']


def test_ordered_backlog_is_delivered_completely_in_order(
    unique_topic, recording_sink, run_plane, produce, kafka_bootstrap, committed_offsets, wait_until
):
    # More records than the fetch buffer holds: exercises pause/resume of the partition.
    topic = unique_topic("backlog", partitions=1)
    sink = recording_sink()
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(400):
        producer.produce(topic, value=str(n).encode())
    assert producer.flush(10) == 0
    run_plane(kafka_source(topic, sink.url, group=f"backlog-{topic}"))

    requests = sink.wait_for(400, timeout=30)
    assert [int(r.body) for r in requests] == list(range(400))
    wait_until(lambda: committed_offsets(f"backlog-{topic}", topic) == [400], message="all committed")


# --- KafkaSink as dead-letter sink (c) ------------------------------------------------------------


def kafka_sink(name: str, topic: str, content_mode: str = "binary") -> str:
    return f"""
---
apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata:
  name: {name}
spec:
  topic: {topic}
  bootstrapServers: [my-cluster-kafka-bootstrap.kafka:9092]
  contentMode: {content_mode}
"""


def read_records(bootstrap: str, topic: str, count: int, timeout: float = 15.0):
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    records: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(message)
    finally:
        consumer.close()
    assert len(records) == count, f"read {len(records)} of {count} records from {topic}"
    return records


@pytest.mark.parametrize("content_mode", ["binary", "structured"])
def test_dead_letters_to_a_kafka_sink(content_mode, unique_topic, recording_sink, run_plane, produce, kafka_bootstrap):
    topic = unique_topic("src", partitions=1)
    dead_letter_topic = unique_topic("dead-letter", partitions=1)
    sink = recording_sink([Reply(400, body=b"unknown job_type")])
    produce(
        topic,
        b'{"job_type":"nope","price":0.000000000012345}',
        key=b"BTC",
        headers=[("content-type", b"application/json")],
    )
    delivery = (
        "deadLetterSink:\n  ref:\n    apiVersion: eventing.knative.dev/v1alpha1\n    kind: KafkaSink\n    name: dl"
    )
    run_plane(kafka_source(topic, sink.url, delivery=delivery) + kafka_sink("dl", dead_letter_topic, content_mode))

    [record] = read_records(kafka_bootstrap, dead_letter_topic, 1)
    assert record.key() == b"BTC"  # partitionkey → record key
    headers = {name: value.decode() for name, value in record.headers()}
    if content_mode == "binary":
        assert headers["ce_id"] == "partition:0/offset:0"
        assert headers["ce_type"] == "dev.knative.kafka.event"
        assert headers["ce_knativeerrorcode"] == "400"
        assert headers["ce_knativeerrordest"] == sink.url
        assert base64.b64decode(headers["ce_knativeerrordata"]) == b"unknown job_type"
        assert headers["ce_partitionkey"] == "BTC"
        assert headers["content-type"] == "application/json"
        assert record.value() == b'{"job_type":"nope","price":0.000000000012345}'
    else:
        assert headers["content-type"] == "application/cloudevents+json"
        assert b'"data":{"job_type":"nope","price":0.000000000012345}' in record.value()
        event = json.loads(record.value())
        assert event["knativeerrorcode"] == "400" and event["id"] == "partition:0/offset:0"


# --- initial offset (b.8) ------------------------------------------------------------------------


def test_initial_offset_latest_skips_history(unique_topic, recording_sink, run_plane, produce, wait_until):
    topic = unique_topic("latest", partitions=1)
    sink = recording_sink()
    produce(topic, b'"before"')
    manifest = kafka_source(topic, sink.url).replace("initialOffset: earliest", "initialOffset: latest")
    plane = run_plane(manifest)
    wait_until(lambda: plane.kafka_sources[0].assignment(), message="partition assignment")
    produce(topic, b'"after"')

    [request] = sink.wait_for(1)
    assert request.body == b'"after"' and request.ce["knativekafkaoffset"] == "1"


# --- status endpoint -------------------------------------------------------------------------------


def test_status_endpoint_reports_health_and_counters(unique_topic, recording_sink, run_plane, produce, wait_until):
    import httpx

    topic = unique_topic("status", partitions=1)
    sink = recording_sink([Reply(503), Reply(200)])
    produce(topic, b"{}")
    plane = run_plane(kafka_source(topic, sink.url, delivery="retry: 1\nbackoffDelay: PT0.01S"), serve_status=True)
    sink.wait_for(2)
    base = f"http://127.0.0.1:{plane.status_port}"
    key = "kafkasources/default/ks"

    wait_until(
        lambda: httpx.get(f"{base}/status").json()["sources"][key]["lag"].get(topic) == {"0": 0},
        message="lag 0 reported",
    )
    health = httpx.get(f"{base}/health")
    assert health.status_code == 200 and health.json()["sources"][key]["assigned"] == [f"{topic}[0]"]
    counters = httpx.get(f"{base}/status").json()["sources"][key]
    assert counters["delivered"] == 1 and counters["retries"] == 1
    assert counters["responses"] == {"503": 1, "200": 1}
    assert counters["committed"][topic] == {"0": 1}
    assert httpx.get(f"{base}/nope").status_code == 404


def test_health_reports_a_consumer_that_loops_on_restarts(unique_topic, recording_sink, run_plane, wait_until):
    """A consumer whose client cannot even be created restarts forever: health says so, with why."""
    topic = unique_topic("looping", partitions=1)
    sink = recording_sink()
    # librdkafka refuses session.timeout.ms outside 1..3600000 when the consumer is created
    # (model_copy skips the settings' own bound, as a bad config file would not).
    plane = run_plane(kafka_source(topic, sink.url), session_timeout_ms=0)
    key = "kafkasources/default/ks"
    wait_until(lambda: plane.health()["status"] == "degraded", timeout=20, message="restart loop reported")
    problems = plane.health()["sources"][key]["problems"]
    assert any("restarted" in p and "KafkaException" in p for p in problems), problems
