"""Fixtures of the eventing tests: real HTTP sinks that record requests, and a running plane.

Kafka comes from the root fixtures (`kafka_bootstrap`, `unique_topic`); sinks are real
threaded HTTP servers on ephemeral ports answering scripted statuses.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from eventing_helpers import RecordingSink

from local.eventing import (
    EventingPlane,
    EventingSettings,
    load_manifests,
    resolve_topology,
)

MANIFESTS_DIR = Path(__file__).parent / "manifests"


@pytest.fixture
def recording_sink() -> Iterator[Callable[..., RecordingSink]]:
    """Factory: `recording_sink([Reply(503), Reply(200)])` starts a sink; closed after the test."""
    sinks: list[RecordingSink] = []

    def make(script=None) -> RecordingSink:
        sink = RecordingSink(script=script) if script is not None else RecordingSink()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def fast_settings() -> EventingSettings:
    """Settings for in-process planes: quick commits, no tick jitter, any free status port."""
    return EventingSettings(
        commit_interval_seconds=0.2,
        session_timeout_ms=6000,
        shutdown_grace_seconds=5,
        ping_jitter_ms=0,
        port=0,
        namespace="default",
    )


@pytest.fixture
def run_plane(
    request: pytest.FixtureRequest, tmp_path: Path, fast_settings: EventingSettings
) -> Iterator[Callable[..., EventingPlane]]:
    """Factory: `run_plane(yaml_text, env={...}, serve_status=False, **settings)` starts a plane.

    The Kafka broker is only brought up when the manifests involve Kafka.
    """
    planes: list[EventingPlane] = []

    def start(
        manifests: str, env: dict[str, str] | None = None, serve_status: bool = False, **settings: object
    ) -> EventingPlane:
        directory = tmp_path / f"manifests-{len(planes)}"
        directory.mkdir()
        (directory / "eventing.yaml").write_text(manifests)
        if "kind: Kafka" in manifests and "kafka_bootstrap_servers" not in settings:
            settings["kafka_bootstrap_servers"] = request.getfixturevalue("kafka_bootstrap")
        config = fast_settings.model_copy(update=settings)
        topology = resolve_topology(
            load_manifests(directory, default_namespace=config.namespace), env or {}, defaults={}
        )
        plane = EventingPlane(topology, config, serve_status=serve_status)
        planes.append(plane)
        plane.start()
        return plane

    yield start
    for plane in planes:
        plane.stop()


@pytest.fixture
def produce(kafka_bootstrap: str) -> Iterator[Callable[..., None]]:
    """`produce(topic, value, key=None, headers=None, partition=None, timestamp=None)`, flushed."""
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})

    def send(
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers=None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        kwargs: dict = {"value": value, "key": key, "headers": headers}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        producer.produce(topic, **kwargs)
        assert producer.flush(10) == 0, "record not acknowledged"

    yield send
    producer.flush(5)


@pytest.fixture
def committed_offsets(kafka_bootstrap: str) -> Callable[..., list[int]]:
    """`committed_offsets(group, topic, partitions=1)`: the group's committed offsets (-1001 = none)."""

    def read(group: str, topic: str, partitions: int = 1) -> list[int]:
        consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
            return [tp.offset for tp in found]
        finally:
            consumer.close()

    return read


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """`wait_until(condition, timeout=20, message=...)`: poll until true, else fail the test."""

    def wait(condition: Callable[[], bool], timeout: float = 20.0, message: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        pytest.fail(f"timed out after {timeout}s waiting for {message}")

    return wait
