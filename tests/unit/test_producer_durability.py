"""Every producer of the system writes with acks=all and idempotence.

With min.insync.replicas=2 (production, tests/resilience/test_broker_cluster.py) that is what
makes a write with one broker left fail loudly instead of landing on a single copy.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import local.eventing.senders as senders
import shared.kafka as kafka


class _RecordingProducer:
    configs: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any], **_: Any):
        self.configs.append(dict(config))

    def poll(self, timeout: float = 0) -> int:
        time.sleep(min(timeout, 0.01))  # the bridge's callback thread polls in a loop
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    _RecordingProducer.configs = []
    monkeypatch.setattr(kafka, "Producer", _RecordingProducer)
    monkeypatch.setattr(senders, "Producer", _RecordingProducer)
    return _RecordingProducer.configs


def test_the_event_producer_waits_for_every_in_sync_replica(recorded: list[dict[str, Any]]) -> None:
    kafka.EventProducer("127.0.0.1:1")
    kafka.EventProducer("127.0.0.1:1", extra={"message.timeout.ms": 5000})  # extras keep the guarantees
    assert [(c["acks"], c["enable.idempotence"]) for c in recorded] == [("all", True), ("all", True)]


def test_the_kafka_sink_bridge_waits_for_every_in_sync_replica(recorded: list[dict[str, Any]]) -> None:
    bridge = senders.KafkaProducerBridge("127.0.0.1:1")
    try:
        assert (recorded[0]["acks"], recorded[0]["enable.idempotence"]) == ("all", True)
    finally:
        bridge.close(0)
