"""Replaying dead letters on the real broker: key and headers survive, the dead-letter-only ones go,
the filters select, a dry run writes nothing, and no consumer offset is left behind."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from shared.config import Settings
from shared.dead_letter_replay import DEAD_LETTER_ONLY_HEADERS, ReplaySelection, main, replay_dead_letters
from tests.helpers.kafka import header_pairs, json_value, read_all

pytestmark = pytest.mark.infra


def _dead_letter(job_id: str, offset: int) -> list[tuple[str, bytes]]:
    """The headers a binary KafkaSink writes for a failed job event (docs/operations.md)."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", job_id.encode()),
        ("ce_source", b"/price-crawler/scheduler/top100-price"),
        ("ce_type", b"price-crawler.job.requested"),
        ("ce_time", b"2026-06-25T21:00:00Z"),
        ("content-type", b"application/json"),
        ("ce_partitionkey", b"top100-batch-1"),
        ("ce_traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("ce_knativekafkapartition", b"0"),
        ("ce_knativekafkaoffset", str(offset).encode()),
        ("ce_knativeerrordest", b"http://price.price-crawler.svc.cluster.local"),
        ("ce_knativeerrorcode", b"503"),
        ("ce_knativeerrordata", base64.b64encode(b'{"error": "PostgreSQL unreachable"}')),
    ]


def _write(bootstrap: str, topic: str, records: list[tuple[str | None, bytes, list]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(15) == 0


def _job(job_id: str) -> bytes:
    return json.dumps(
        {
            "job_type": "price",
            "token_type": "top100",
            "symbols": ["BTC"],
            "job_id": job_id,
            "timestamp": "2026-06-25T21:00:00Z",
        }
    ).encode()


def test_replay_keeps_key_and_headers_and_filters_by_job_and_time(kafka_bootstrap: str, unique_topic) -> None:
    dead_letters, requests = unique_topic("dlq", partitions=2), unique_topic("request", partitions=4)
    _write(
        kafka_bootstrap,
        dead_letters,
        [
            ("top100-batch-1", _job("tick-1:batch-1"), _dead_letter("tick-1:batch-1", 41)),
            (None, _job("tick-1:batch-2"), _dead_letter("tick-1:batch-2", 42)),
        ],
    )
    time.sleep(0.05)  # record timestamps are milliseconds: `since` falls strictly between the two writes
    since = datetime.now(UTC)
    time.sleep(0.05)
    _write(
        kafka_bootstrap, dead_letters, [("top100-batch-1", _job("tick-2:batch-1"), _dead_letter("tick-2:batch-1", 43))]
    )
    originals = {json_value(m)["job_id"]: m for m in read_all(kafka_bootstrap, dead_letters)}

    dry = replay_dead_letters(kafka_bootstrap, ReplaySelection(topics=(dead_letters,), to=requests), dry_run=True)
    assert (dry.read, len(dry.records)) == (3, 3)
    assert {r.job_id: r.error_code for r in dry.records} == dict.fromkeys(originals, "503")
    assert read_all(kafka_bootstrap, requests) == []  # a dry run writes nothing

    one = replay_dead_letters(
        kafka_bootstrap,
        ReplaySelection(topics=(dead_letters,), job_ids=frozenset({"tick-1:batch-1", "tick-1:batch-2"}), to=requests),
        dry_run=False,
    )
    assert sorted(str(r.job_id) for r in one.records) == ["tick-1:batch-1", "tick-1:batch-2"]
    replayed = {json_value(m)["job_id"]: m for m in read_all(kafka_bootstrap, requests)}
    assert set(replayed) == {"tick-1:batch-1", "tick-1:batch-2"}
    for job_id, message in replayed.items():
        original = originals[job_id]
        assert message.key() == original.key() and message.value() == original.value()
        # Every header of the event, in order and byte for byte; none of the dead-letter path's.
        assert header_pairs(message) == [h for h in header_pairs(original) if h[0] not in DEAD_LETTER_ONLY_HEADERS]
        assert {"ce_id", "ce_source", "ce_type", "ce_traceparent", "ce_partitionkey"} <= {
            n for n, _ in header_pairs(message)
        }
    assert replayed["tick-1:batch-2"].key() is None

    # --since through the command line: only the record written after it.
    assert (
        main(
            ["--topic", dead_letters, "--to", requests, "--since", since.isoformat()],
            Settings(kafka_bootstrap_servers=kafka_bootstrap),
        )
        == 0
    )
    after = [json_value(m)["job_id"] for m in read_all(kafka_bootstrap, requests)]
    assert sorted(after) == ["tick-1:batch-1", "tick-1:batch-2", "tick-2:batch-1"]

    # Reading the dead letters left no consumer group behind.
    groups = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_consumer_groups(request_timeout=10).result()
    assert not [
        g.group_id
        for g in groups.valid
        if g.group_id.startswith("price-crawler-replay-") and _has_offsets(kafka_bootstrap, g.group_id, dead_letters)
    ]


def _has_offsets(bootstrap: str, group: str, topic: str) -> bool:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]
    )[group]
    return any(tp.offset >= 0 for tp in future.result().topic_partitions)


def test_the_command_line_refuses_a_request_topic_it_cannot_derive(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--topic", "some.topic", "--dry-run"])
    assert exit_info.value.code == 2
    assert "is no <name>.dead-letter topic" in capsys.readouterr().err
