"""Reading and writing test topics with a plain confluent-kafka client (what kcat would do).

The functions only answer after the broker confirmed what they wrote, so `read_all` reads a
topic up to its high watermarks right after the call: exact, and no waiting for "nothing
arrived". `consume` subscribes and waits, for records another process is still writing.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition


def produce_plain(
    bootstrap: str,
    topic: str,
    value: bytes | str,
    *,
    key: str | None = None,
    partition: int | None = None,
    timestamp_ms: int | None = None,
) -> Message:
    """Write one record with no headers and return it as the broker confirmed it (partition, offset).

    `timestamp_ms` sets the record's create time (default: now).
    """
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    delivered: list[Any] = []
    kwargs: dict[str, Any] = {"value": value, "key": key, "on_delivery": lambda err, msg: delivered.append((err, msg))}
    if partition is not None:
        kwargs["partition"] = partition
    if timestamp_ms is not None:
        kwargs["timestamp"] = timestamp_ms
    producer.produce(topic, **kwargs)
    if producer.flush(15) != 0 or not delivered:
        raise TimeoutError(f"record to {topic} not confirmed")
    err, msg = delivered[0]
    if err is not None:
        raise RuntimeError(f"record to {topic} refused: {err}")
    return msg


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )


def _watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"topic {topic}: {metadata.error}")
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in metadata.partitions}


def read_all(
    bootstrap: str, topic: str, *, group: str | None = None, commit: bool = False, timeout: float = 15.0
) -> list[Message]:
    """Every record the topic holds now (up to each partition's high watermark), by partition and offset.

    With `group`, reading starts at the group's committed offsets, and `commit=True` commits
    what was read: a KafkaSource consumer that delivered everything up to now.
    """
    consumer = _consumer(bootstrap, group)
    try:
        marks = _watermarks(consumer, topic)
        starts = {p: OFFSET_BEGINNING for p in marks}
        if group:
            for tp in consumer.committed([TopicPartition(topic, p) for p in marks], timeout=10):
                if tp.offset >= 0:
                    starts[tp.partition] = tp.offset
        wanted = {p: high for p, (low, high) in marks.items() if high > max(low, starts[p])}
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in wanted])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(f"consumer error on {topic}: {msg.error()}")
            messages.append(msg)
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # set on every consumed record
            if offset + 1 >= wanted.get(partition, 0):
                wanted.pop(partition, None)
        if wanted:
            raise TimeoutError(f"{topic}: partitions {sorted(wanted)} not read to their end in {timeout} s")
        if group and commit:
            consumer.commit(
                offsets=[TopicPartition(topic, p, high) for p, (_, high) in marks.items()], asynchronous=False
            )
        return sorted(messages, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()


def consume(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    timeout: float = 15.0,
    group: str | None = None,
    commit: bool = False,
    settle: float = 0.0,
) -> list[Message]:
    """Subscribe and read `expected` records of `topic` from the beginning (fewer if the timeout passes).

    For records still being written by someone else (an eventing plane, a running system);
    `settle` keeps reading that many seconds after `expected` arrived, to catch extras.
    With `commit=True` the group commits what it read.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is None and len(messages) >= expected:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(f"consumer error on {topic}: {msg.error()}")
            messages.append(msg)
        if commit and messages:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return messages


def header_pairs(message: Message) -> list[tuple[str, bytes | None]]:
    """A consumed record's headers, in order."""
    # The stub types headers() as anything produce() accepts; a consumed record's are (name, bytes) pairs.
    return cast(list[tuple[str, bytes | None]], message.headers() or [])


def headers_of(message: Message) -> dict[str, str]:
    """A record's headers as text (last value wins)."""
    return {name: (value or b"").decode() for name, value in header_pairs(message)}


def json_value(message: Message) -> Any:
    """A record's value decoded as JSON; a record without a value fails the test."""
    value = message.value()
    assert value is not None, f"record {message.topic()}[{message.partition()}]@{message.offset()} has no value"
    return json.loads(value)
