"""Kafka producer for the events the system writes: binary-mode CloudEvents.

acks=all and idempotence, so a confirmed event is on every in-sync replica exactly
once; `publish` returns only after the broker confirmed every event (or raises
`DependencyUnavailable`), so a function never answers 200 for events not written.
The `ce_*` headers let KafkaSource pass the event's id and type through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, Producer
from opentelemetry.trace import Tracer

from shared.errors import DependencyUnavailable
from shared.events import OutboundEvent
from shared.observability.traces import send_span, with_trace_headers

log = logging.getLogger(__name__)


def binary_headers(event: OutboundEvent) -> list[tuple[str, bytes]]:
    """The Kafka headers of a binary-mode CloudEvent (Kafka protocol binding §3.2)."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().replace("+00:00", "Z").encode()),
        ("content-type", b"application/json"),
    ]
    if event.subject:
        headers.append(("ce_subject", event.subject.encode()))
    if event.dataschema:
        headers.append(("ce_dataschema", event.dataschema.encode()))
    if event.key:
        headers.append(("ce_partitionkey", event.key.encode()))
    for name, value in event.extensions.items():
        headers.append((f"ce_{name}", str(value).encode()))
    return headers


# A record written as is: key, value, headers (name, bytes).
RawRecord = tuple[str | None, bytes | None, Sequence[tuple[str, bytes]]]

# Wake-up interval of a publisher waiting for its confirmations (see EventProducer.publish).
DELIVERY_POLL_SECONDS = 0.002


class EventProducer:
    """A process-wide producer; thread-safe (librdkafka is)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "price-crawler",
        extra: dict | None = None,
        tracer: Tracer | None = None,
    ):
        """A producer for `bootstrap_servers`; with `tracer`, each `publish` is a messaging send span."""
        self._tracer = tracer
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": client_id,
                "acks": "all",
                "enable.idempotence": True,
                # A tick's jobs are produced in one call, so they batch without waiting; lingering
                # would only add its delay to every tick.
                "linger.ms": 0,
                "compression.type": "lz4",
                "message.timeout.ms": 30000,
                # librdkafka's own lines (a broker down, reconnects) as our JSON log records, not raw stderr.
                "logger": logging.getLogger("shared.kafka.librdkafka"),
                **(extra or {}),
            }
        )
        self._lock = threading.Lock()

    def publish(self, topic: str, events: Sequence[OutboundEvent], timeout: float = 30.0) -> None:
        """Write events and wait until the broker confirmed all of them.

        Traced, each record's `ce_traceparent` is the send span's context, so its consumer's span is a child.
        """
        if not events:
            return
        with send_span(self._tracer, topic, events) as trace_headers:
            self._publish(topic, events, timeout, trace_headers)

    def publish_records(self, topic: str, records: Sequence[RawRecord], timeout: float = 30.0) -> None:
        """Write records as they are (key, value, headers) and wait until the broker confirmed all of them.

        For records whose headers already are a CloudEvent's (a dead letter forwarded to its topic).
        """

        def produce_all(on_delivery: Callable[..., None]) -> None:
            for record in records:
                self._produce_raw(topic, record, on_delivery)

        if records:
            self._await_confirmations(topic, len(records), timeout, produce_all)

    def _publish(
        self, topic: str, events: Sequence[OutboundEvent], timeout: float, trace_headers: dict[str, str]
    ) -> None:
        def produce_all(on_delivery: Callable[..., None]) -> None:
            for event in events:
                self._produce(topic, event, on_delivery, trace_headers)

        self._await_confirmations(topic, len(events), timeout, produce_all)

    def _await_confirmations(
        self, topic: str, count: int, timeout: float, produce_all: Callable[[Callable[..., None]], None]
    ) -> None:
        errors: list[str] = []
        pending = threading.Semaphore(0)

        def on_delivery(err: KafkaError | None, _msg) -> None:
            if err is not None:
                errors.append(str(err))
            pending.release()

        produce_all(on_delivery)
        remaining = count
        # A wall-clock deadline: poll() returns early whenever it serves any callback (other
        # threads' deliveries included), so counting polls would give up too soon under load.
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            # Short polls: poll() only returns early for a callback it serves itself, and with
            # several request threads another thread's poll may serve ours — a 100-ms poll made
            # a price job wait 100 ms for a confirmation that had long arrived.
            self._producer.poll(DELIVERY_POLL_SECONDS)
            while remaining and pending.acquire(blocking=False):
                remaining -= 1
        if remaining:
            raise DependencyUnavailable(
                f"Kafka did not confirm {remaining} of {count} events to {topic} in {timeout:.0f} s"
            )
        if errors:
            raise DependencyUnavailable(f"Kafka refused {len(errors)} events to {topic}: {errors[0]}")

    def _produce(self, topic: str, event: OutboundEvent, on_delivery, trace_headers: dict[str, str]) -> None:
        headers: list[tuple[str, str | bytes | None]] = [*with_trace_headers(binary_headers(event), trace_headers)]
        while True:
            try:
                self._producer.produce(
                    topic, value=event.body(), key=event.key, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.5)

    def _produce_raw(self, topic: str, record: RawRecord, on_delivery) -> None:
        key, value, headers = record
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=list(headers), on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.5)

    def ping(self, timeout: float = 3.0) -> bool:
        """True when the cluster metadata can be read (readiness)."""
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except Exception:
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued."""
        self._producer.flush(timeout)


class ConsumerLagReader:
    """Reads consumer-group lag through one admin client of its own.

    The scheduler reads one group's lag every tick: the process keeps one reader (in its
    `Resources`), which caches each topic's partition list for a minute (partitions are
    added rarely, by an operator).
    """

    PARTITIONS_TTL_SECONDS = 60.0

    def __init__(self, bootstrap_servers: str, timeout: float = 3.0):
        self._bootstrap = bootstrap_servers
        self._timeout = timeout
        self._lock = threading.Lock()
        self._admin: Any = None
        self._partitions: dict[str, tuple[float, list[int]]] = {}

    def lag(self, group: str, topic: str, *, since: datetime | None = None) -> int | None:
        """Messages of `topic` not yet committed by `group` (None when it cannot be read).

        A group with no committed offset counts from the log start. With `since`, records
        written before it do not count: KafkaSource commits only up to its first unfinished
        record, so one slow record at a partition's head leaves every record behind it
        uncommitted, delivered or not, for as long as it takes. The requests are sent side by
        side: the group's committed offsets, the partitions' end offsets (and the offsets at
        `since`). Read with a
        consumer, it took a metadata request and one watermark request per partition in turn
        (8 round trips, 7.9 ms median on an idle local broker), on the tick's path.
        """
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        timeout = self._timeout
        try:
            admin = self._admin_client()
            partitions = [TopicPartition(topic, p) for p in self._partitions_of(admin, topic)]
            if not partitions:
                return None
            ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=timeout)
            recent = (
                None
                if since is None
                else admin.list_offsets(
                    {tp: OffsetSpec.for_timestamp(int(since.timestamp() * 1000)) for tp in partitions},
                    request_timeout=timeout,
                )
            )
            committed_future = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=timeout
            )[group]
            end = {tp.partition: future.result().offset for tp, future in ends.items()}
            committed = {tp.partition: tp.offset for tp in committed_future.result().topic_partitions}
            uncommitted = [tp for tp in partitions if committed.get(tp.partition, -1) < 0]
            if uncommitted:  # no offset yet: count from the log start
                starts = admin.list_offsets({tp: OffsetSpec.earliest() for tp in uncommitted}, request_timeout=timeout)
                committed.update({tp.partition: future.result().offset for tp, future in starts.items()})
            if recent is not None:
                for tp, future in recent.items():
                    first_recent = future.result().offset  # -1: no record since then
                    start = end[tp.partition] if first_recent < 0 else first_recent
                    committed[tp.partition] = max(committed[tp.partition], start)
            return sum(end[p] - committed[p] for p in end)
        except Exception as exc:
            log.debug("cannot read lag of %s on %s: %s", group, topic, exc)
            return None

    def _admin_client(self) -> Any:
        from confluent_kafka.admin import AdminClient

        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(
                    {"bootstrap.servers": self._bootstrap, "socket.timeout.ms": int(self._timeout * 1000)}
                )
            return self._admin

    def _partitions_of(self, admin: Any, topic: str) -> list[int]:
        known = self._partitions.get(topic)
        if known is not None and time.monotonic() - known[0] < self.PARTITIONS_TTL_SECONDS:
            return known[1]
        metadata = admin.list_topics(topic, timeout=self._timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        ids = sorted(metadata.partitions)
        self._partitions[topic] = (time.monotonic(), ids)
        return ids


def consumer_group_lag(
    bootstrap_servers: str, group: str, topic: str, timeout: float = 3.0, since: datetime | None = None
) -> int | None:
    """A one-off lag read with a reader of its own (`make status`, tests); see `ConsumerLagReader.lag`."""
    return ConsumerLagReader(bootstrap_servers, timeout).lag(group, topic, since=since)
