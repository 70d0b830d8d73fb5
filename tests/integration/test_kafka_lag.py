"""`consumer_group_lag` on the real broker: what the scheduler's backlog check reads every tick."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from confluent_kafka import Consumer, TopicPartition

from shared.kafka import consumer_group_lag
from tests.helpers.kafka import produce_plain


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_lag_counts_from_the_log_start_then_from_the_committed_offsets(kafka_bootstrap, unique_topic):
    topic = unique_topic("lag", partitions=3)
    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    for partition, records in ((0, 3), (1, 1), (2, 0)):
        for _ in range(records):
            produce_plain(kafka_bootstrap, topic, b"{}", partition=partition)

    assert consumer_group_lag(kafka_bootstrap, group, topic) == 4  # no commit yet: every record

    commit(kafka_bootstrap, group, topic, {0: 2})  # partition 1 still uncommitted
    assert consumer_group_lag(kafka_bootstrap, group, topic) == 1 + 1

    commit(kafka_bootstrap, group, topic, {0: 3, 1: 1})
    assert consumer_group_lag(kafka_bootstrap, group, topic) == 0


def test_lag_of_a_missing_topic_is_unknown(kafka_bootstrap):
    assert consumer_group_lag(kafka_bootstrap, "test-lag", f"test.missing.{uuid.uuid4().hex[:8]}", timeout=2) is None


def test_records_written_before_since_do_not_count(kafka_bootstrap, unique_topic):
    topic = unique_topic("lag-since", partitions=2)
    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    old = int((now - timedelta(minutes=5)).timestamp() * 1000)
    for _ in range(3):  # stuck behind an uncommitted head on partition 0 for minutes
        produce_plain(kafka_bootstrap, topic, b"{}", partition=0, timestamp_ms=old)
    produce_plain(kafka_bootstrap, topic, b"{}", partition=0)
    produce_plain(kafka_bootstrap, topic, b"{}", partition=1, timestamp_ms=old)  # nothing recent at all

    assert consumer_group_lag(kafka_bootstrap, group, topic) == 5
    assert consumer_group_lag(kafka_bootstrap, group, topic, since=now - timedelta(seconds=10)) == 1
    commit(kafka_bootstrap, group, topic, {0: 4})
    assert consumer_group_lag(kafka_bootstrap, group, topic, since=now - timedelta(seconds=10)) == 0
