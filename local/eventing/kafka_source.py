"""KafkaSource emulation: consume, turn records into CloudEvents, deliver, commit (a, b).

Threads and the event loop: librdkafka's Consumer is a blocking API, so each consumer of a
source runs in its own thread and is the only code that touches that Consumer object
(poll, pause/resume, commit, rebalance callbacks). Records are handed to the plane's single
asyncio loop, where all HTTP and Kafka sends, backoff sleeps and PingSource timers live:
hundreds of in-flight deliveries and waits cost no threads, and an idle plane sleeps in
`consume(timeout)` and the loop's selector (near-zero CPU on a 2-core machine).

Semantics kept from Knative (knative-eventing.md b.6–b.8):
- ordered: one event in flight per partition, partitions in parallel; unordered: up to 50 in
  flight per consumer;
- offsets committed contiguously (longest completed prefix + 1), periodically and on
  revocation and shutdown; never before the sink, the DLS or a drop finished (at-least-once);
- `initialOffset: latest` initialises the group's offsets to the log end before dispatching;
  new partitions then start at earliest (auto.offset.reset=earliest).
Fetching is bounded: a partition (ordered) or the whole consumer (unordered) is paused when
100 records wait, so the consumer keeps polling — and keeps its group membership — while a
slow sink works through its backlog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from local.eventing.config import EventingSettings
from local.eventing.delivery import DeliveryContext, deliver
from local.eventing.destinations import ResolvedKafkaSource
from local.eventing.offsets import PartitionOffsets
from local.eventing.records import KafkaRecord, event_from_record, wrap_plain_record
from local.eventing.retry_policy import is_retryable_status
from local.eventing.senders import EventSender
from local.eventing.telemetry import DROPPED, EventingMetrics, log_outcome, source_key

log = logging.getLogger(__name__)

MAX_POLL_RECORDS = 50  # max.poll.records of the Knative source data plane; also the unordered in-flight limit
PAUSE_AT = 2 * MAX_POLL_RECORDS
RESUME_AT = MAX_POLL_RECORDS
_IDLE_POLL_SECONDS = 0.5
_BUSY_POLL_SECONDS = 0.1
_WARN_EVERY_SECONDS = 30.0
# librdkafka reports each broker connection's state this often (stats_cb), which is how a
# source knows its broker is gone while the client quietly keeps reconnecting.
_STATS_INTERVAL_MS = 2000
# A consumer that restarted this recently is reported as looping, not healthy.
_RECENT_RESTART_SECONDS = 60.0


def record_from_message(message: Message, topic: str, partition: int, offset: int) -> KafkaRecord:
    """Copy what the dispatcher needs out of a consumed confluent-kafka message (of that topic, partition, offset)."""
    timestamp_type, timestamp = message.timestamp()
    # The stub types headers() as anything produce() accepts (a dict, str values); a consumed
    # message's are always (name, bytes or None) pairs.
    headers = cast(list[tuple[str, bytes | None]], message.headers() or [])
    return KafkaRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp if timestamp_type != TIMESTAMP_NOT_AVAILABLE else -1,
        key=message.key(),
        value=message.value(),
        headers=tuple(headers),
    )


@dataclass(eq=False)
class AssignedPartition:
    """One partition owned by one consumer, from assignment to revocation."""

    topic: str
    partition: int
    offsets: PartitionOffsets = field(default_factory=PartitionOffsets)
    paused: bool = False
    last_fetched: int | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class RecordDispatcher:
    """Loop-side scheduling of one consumer's records: per-partition lanes or a bounded pool.

    Lives entirely on the event loop; the consumer thread only reads `in_flight`.
    """

    def __init__(
        self, handle: Callable[[KafkaRecord], Awaitable[None]], *, ordered: bool, max_in_flight: int = MAX_POLL_RECORDS
    ):
        self._handle = handle
        self._ordered = ordered
        self._max_in_flight = max_in_flight
        self._lanes: dict[AssignedPartition, deque[KafkaRecord]] = {}
        self._lane_running: set[AssignedPartition] = set()
        self._queue: deque[tuple[AssignedPartition, KafkaRecord]] = deque()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.in_flight = 0

    def submit(self, batch: list[tuple[AssignedPartition, KafkaRecord]]) -> None:
        """Queue fetched records (called on the loop via call_soon_threadsafe)."""
        if self._closed:
            return
        for partition, record in batch:
            if self._ordered:
                self._lanes.setdefault(partition, deque()).append(record)
                if partition not in self._lane_running:
                    self._lane_running.add(partition)
                    self._spawn(self._drain_lane(partition))
            else:
                self._queue.append((partition, record))
        if not self._ordered:
            self._fill()

    def forget(self, partitions: list[AssignedPartition]) -> None:
        """Drop queued (not started) records of revoked partitions; running ones finish."""
        gone = set(partitions)
        for partition in gone:
            lane = self._lanes.pop(partition, None)
            if lane is not None:
                lane.clear()
        if not self._ordered:
            self._queue = deque(item for item in self._queue if item[0] not in gone)

    def close(self) -> None:
        """Start nothing new; records already in flight finish."""
        self._closed = True
        for lane in self._lanes.values():
            lane.clear()
        self._queue.clear()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_lane(self, partition: AssignedPartition) -> None:
        try:
            lane = self._lanes.get(partition)
            while lane and not self._closed:
                await self._run(partition, lane.popleft())
                lane = self._lanes.get(partition)
        finally:
            self._lane_running.discard(partition)
            if not self._lanes.get(partition):
                self._lanes.pop(partition, None)

    def _fill(self) -> None:
        while self._queue and self.in_flight < self._max_in_flight and not self._closed:
            partition, record = self._queue.popleft()
            self.in_flight += 1  # counted now so _fill never overshoots the limit
            self._spawn(self._run(partition, record, counted=True))

    async def _run(self, partition: AssignedPartition, record: KafkaRecord, *, counted: bool = False) -> None:
        if not counted:
            self.in_flight += 1
        cancelled = False
        try:
            await self._handle(record)
        except asyncio.CancelledError:
            cancelled = True  # abandoned at shutdown: not completed, so never committed
            raise
        except Exception:  # the handler logs its own failures; this is a last resort
            log.exception("unexpected error while dispatching %s/%s@%s", record.topic, record.partition, record.offset)
        finally:
            self.in_flight -= 1
            if not cancelled:
                partition.offsets.complete(record.offset)
                if not self._ordered:
                    self._fill()


class KafkaSourceRunner:
    """Runs one KafkaSource: `spec.consumers` consumer threads feeding the plane's loop."""

    def __init__(
        self,
        resolved: ResolvedKafkaSource,
        *,
        sink: EventSender,
        dead_letter_sink: EventSender | None,
        loop: asyncio.AbstractEventLoop,
        settings: EventingSettings,
        metrics: EventingMetrics,
    ):
        self.manifest = resolved.manifest
        self.key = source_key("KafkaSource", self.manifest.namespace, self.manifest.name)
        self._sink = sink
        self._dead_letter_sink = dead_letter_sink
        self._loop = loop
        self._settings = settings
        self._metrics = metrics
        self._stop = threading.Event()
        self._offsets_initialised = threading.Event()
        self._workers: list[_ConsumerWorker] = []
        metrics.register(self.key, "KafkaSource")

    def start(self) -> None:
        """Start the consumer threads (non-blocking; a down broker is retried in the background)."""
        if self.manifest.initial_offset != "latest":
            self._offsets_initialised.set()
        self._workers = [_ConsumerWorker(self, index) for index in range(self.manifest.consumers)]
        for worker in self._workers:
            worker.start()

    def stop(self, grace_seconds: float) -> None:
        """Stop fetching, let in-flight events finish (≤ grace), commit, leave the group."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=grace_seconds + 30)
            if worker.is_alive():
                log.error("consumer thread %s did not stop in time", worker.name)

    def is_running(self) -> bool:
        """True while every consumer thread is alive."""
        return bool(self._workers) and all(worker.is_alive() for worker in self._workers)

    def problems(self) -> list[str]:
        """Why this source is not healthy now (empty when it is): broker gone, consumers looping."""
        found: list[str] = []
        for worker in self._workers:
            found.extend(worker.problems())
        return found

    def assignment(self) -> set[tuple[str, int]]:
        """(topic, partition) pairs currently assigned to this source's consumers."""
        return {key for worker in self._workers for key in list(worker.partitions)}

    # --- called by workers -----------------------------------------------------------------

    def consumer_config(self, index: int) -> dict:
        """librdkafka settings of consumer `index` (b.6: manual commits, read_committed)."""
        session_ms = self._settings.session_timeout_ms
        return {
            "bootstrap.servers": self._settings.kafka_bootstrap_servers,
            "group.id": self.manifest.consumer_group,
            "client.id": f"local-eventing-{self.manifest.namespace}-{self.manifest.name}-{index}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(500, session_ms // 3),
            "topic.metadata.refresh.interval.ms": 10_000,
            # a local broker restarts in seconds: retry connecting at least every 2 s (default 10 s)
            "reconnect.backoff.max.ms": 2000,
            "enable.partition.eof": False,
            "logger": logging.getLogger("local.eventing.librdkafka"),
        }

    async def handle(self, record: KafkaRecord) -> None:
        """Turn one record into an event and deliver it; never raises."""
        fields = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        try:
            event = event_from_record(
                record,
                namespace=self.manifest.namespace,
                source_name=self.manifest.name,
                key_type=self.manifest.key_type,
                ce_overrides=self.manifest.ce_overrides,
            )
        except Exception as exc:
            # Knative's dispatcher discards such a record; we deliver its raw bytes as a plain
            # record instead, so the function answers 400 and it is dead-lettered with a reason.
            log_outcome(
                logging.WARNING,
                "record cannot be turned into a CloudEvent: delivered as a plain record",
                source=self.key,
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
                **fields,
            )
            try:
                event = wrap_plain_record(
                    record, namespace=self.manifest.namespace, source_name=self.manifest.name
                ).with_extensions(
                    {"knativekafkapartition": str(record.partition), "knativekafkaoffset": str(record.offset)}
                )
            except Exception as wrap_exc:  # nothing left to deliver: say so loudly
                self._metrics.dropped(self.key)
                log_outcome(
                    logging.ERROR,
                    "EVENT DROPPED: record cannot be delivered even as a plain record",
                    source=self.key,
                    error=f"{type(wrap_exc).__name__}: {wrap_exc}",
                    outcome=DROPPED,
                    **fields,
                )
                return
        try:
            await deliver(
                event,
                self._sink,
                self.manifest.retry_policy,
                is_retryable=is_retryable_status,
                context=DeliveryContext(self.key, self._metrics, fields),
                dead_letter_sink=self._dead_letter_sink,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.dropped(self.key)
            log_outcome(
                logging.ERROR,
                "EVENT DROPPED: unexpected error while delivering",
                source=self.key,
                event_id=event.id,
                error=f"{type(exc).__name__}: {exc}",
                outcome=DROPPED,
                **fields,
            )

    def initialise_latest_offsets(self) -> None:
        """b.8 `latest`: commit the log end for partitions the group has no offset for yet.

        Runs once before the consumers subscribe, from a consumer that is not a group member
        (the group is empty then, so the broker accepts the commit).
        """
        consumer = Consumer({**self.consumer_config(0), "client.id": f"local-eventing-{self.manifest.name}-init"})
        try:
            metadata = consumer.list_topics(timeout=10)
            partitions = [
                TopicPartition(topic, partition)
                for topic in self.manifest.topics
                if topic in metadata.topics and metadata.topics[topic].error is None
                for partition in metadata.topics[topic].partitions
            ]
            if not partitions:
                return
            uncommitted = [tp for tp in consumer.committed(partitions, timeout=10) if tp.offset < 0]
            log_end = []
            for tp in uncommitted:
                _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                log_end.append(TopicPartition(tp.topic, tp.partition, high))
            if log_end:
                consumer.commit(offsets=log_end, asynchronous=False)
                log.info(
                    "initialOffset latest: group %s starts at the log end of %d partition(s)",
                    self.manifest.consumer_group,
                    len(log_end),
                )
        finally:
            consumer.close()


class _ConsumerWorker(threading.Thread):
    """One Consumer of a source's group, in its own thread; recreated after a crash."""

    def __init__(self, runner: KafkaSourceRunner, index: int):
        super().__init__(name=f"kafkasource-{runner.manifest.name}-{index}", daemon=True)
        self._runner = runner
        self._index = index
        self._settings = runner._settings
        self._metrics = runner._metrics
        self.partitions: dict[tuple[str, int], AssignedPartition] = {}
        self._dispatcher: RecordDispatcher | None = None
        self._last_warning: dict[str, float] = {}
        # Written by this thread, read by health(): single assignments of immutable values.
        self._brokers_up: bool | None = None  # None until the first statistics arrive
        self._restarts = 0
        self._last_restart: tuple[float, str] | None = None

    def problems(self) -> list[str]:
        """What health() reports of this consumer: an unreachable broker, a restart loop."""
        found = []
        if self._brokers_up is False:
            found.append(f"consumer {self._index}: no broker reachable (the client keeps reconnecting)")
        if self._last_restart is not None and time.monotonic() - self._last_restart[0] < _RECENT_RESTART_SECONDS:
            found.append(
                f"consumer {self._index}: restarted {self._restarts} time(s), last because {self._last_restart[1]}"
            )
        return found

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        stop = self._runner._stop
        while not stop.is_set():
            try:
                if not self._wait_for_initial_offsets():
                    return
                self._consume_until_stopped()
                return
            except Exception as exc:
                log.exception(
                    "KafkaSource %s consumer %d failed; restarting in %.0fs", self._runner.key, self._index, backoff
                )
                self._restarts += 1
                self._last_restart = (time.monotonic(), f"{type(exc).__name__}: {str(exc)[:200]}")
            if stop.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def _wait_for_initial_offsets(self) -> bool:
        runner = self._runner
        while not runner._offsets_initialised.is_set():
            if self._index == 0:
                try:
                    runner.initialise_latest_offsets()
                    runner._offsets_initialised.set()
                    break
                except KafkaException as exc:
                    self._warn("init", f"cannot initialise offsets of {runner.key} yet ({exc}); retrying")
                    if runner._stop.wait(2.0):
                        return False
            elif runner._stop.wait(0.5):
                return False
        return True

    def _consume_until_stopped(self) -> None:
        runner = self._runner
        config = runner.consumer_config(self._index)
        config["on_commit"] = self._on_commit
        config["error_cb"] = self._on_error
        config["statistics.interval.ms"] = _STATS_INTERVAL_MS
        config["stats_cb"] = self._on_stats
        consumer = Consumer(config)
        self.partitions = {}
        dispatcher = RecordDispatcher(runner.handle, ordered=runner.manifest.ordering == "ordered")
        self._dispatcher = dispatcher
        consumer.subscribe(
            list(runner.manifest.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        next_commit = time.monotonic() + self._settings.commit_interval_seconds
        try:
            while not runner._stop.is_set():
                paused = any(p.paused for p in self.partitions.values())
                # Wait for the first record only; then take what is already fetched without waiting.
                # (consume(50, timeout) would hold a lone record until 50 arrive or the timeout ends.)
                messages = consumer.consume(
                    num_messages=1, timeout=_BUSY_POLL_SECONDS if paused else _IDLE_POLL_SECONDS
                )
                if messages:
                    messages += consumer.consume(num_messages=MAX_POLL_RECORDS - 1, timeout=0)
                self._dispatch(messages, dispatcher)
                self._flow_control(consumer)
                if time.monotonic() >= next_commit:
                    self._commit(consumer, list(self.partitions.values()), synchronous=False)
                    self._report_progress(consumer)
                    next_commit = time.monotonic() + self._settings.commit_interval_seconds
        finally:
            self._shutdown(consumer, dispatcher)

    def _dispatch(self, messages: list[Message], dispatcher: RecordDispatcher) -> None:
        batch: list[tuple[AssignedPartition, KafkaRecord]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                self._warn(str(error.code()), f"KafkaSource {self._runner.key}: {error}")
                continue
            topic, partition_id, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition_id is None or offset is None:
                continue  # only error events lack them, and those are handled above
            partition = self.partitions.get((topic, partition_id))
            if partition is None:
                continue  # revoked in the meantime; the new owner fetches it again
            partition.last_fetched = offset
            if not partition.offsets.track(offset):
                continue
            self._metrics.event_received(self._runner.key)
            batch.append((partition, record_from_message(message, topic, partition_id, offset)))
        if batch:
            self._runner._loop.call_soon_threadsafe(dispatcher.submit, batch)

    def _flow_control(self, consumer: Consumer) -> None:
        if self._runner.manifest.ordering == "ordered":
            groups = [[p] for p in self.partitions.values()]
        else:
            groups = [list(self.partitions.values())] if self.partitions else []
        for group in groups:
            waiting = sum(p.offsets.pending_count for p in group)
            if waiting >= PAUSE_AT and not all(p.paused for p in group):
                consumer.pause([p.topic_partition for p in group])
                for p in group:
                    p.paused = True
            elif waiting <= RESUME_AT and any(p.paused for p in group):
                for p in group:
                    if p.last_fetched is not None:
                        # resume exactly after the last record we took, whatever librdkafka prefetched
                        consumer.seek(TopicPartition(p.topic, p.partition, p.last_fetched + 1))
                    p.paused = False
                consumer.resume([p.topic_partition for p in group])

    def _shutdown(self, consumer: Consumer, dispatcher: RecordDispatcher) -> None:
        loop = self._runner._loop
        try:
            loop.call_soon_threadsafe(dispatcher.close)
        except RuntimeError:
            pass
        try:
            if self.partitions:
                consumer.pause([p.topic_partition for p in self.partitions.values()])
            deadline = time.monotonic() + self._settings.shutdown_grace_seconds
            while dispatcher.in_flight > 0 and time.monotonic() < deadline:
                consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=_BUSY_POLL_SECONDS)  # keep membership
            if dispatcher.in_flight:
                log.warning(
                    "KafkaSource %s: %d event(s) still in flight at shutdown will be redelivered",
                    self._runner.key,
                    dispatcher.in_flight,
                )
            self._commit(consumer, list(self.partitions.values()), synchronous=True)
        except Exception:
            log.exception("KafkaSource %s: error while stopping consumer %d", self._runner.key, self._index)
        finally:
            try:
                consumer.close()
            except Exception:
                log.exception("KafkaSource %s: error while closing consumer %d", self._runner.key, self._index)
            self.partitions = {}

    # --- rebalance callbacks (run inside consume(), on this thread) -------------------------

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            self.partitions[(tp.topic, tp.partition)] = AssignedPartition(tp.topic, tp.partition)
        try:
            for tp in consumer.committed(assigned, timeout=5):
                partition = self.partitions.get((tp.topic, tp.partition))
                if partition is not None and tp.offset >= 0:
                    partition.offsets.committed = tp.offset
        except KafkaException as exc:
            self._warn("committed", f"KafkaSource {self._runner.key}: cannot read committed offsets ({exc})")
        log.info(
            "KafkaSource %s consumer %d assigned %s",
            self._runner.key,
            self._index,
            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned) or "nothing",
        )

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        gone = self._release(revoked)
        self._commit(consumer, gone, synchronous=True)
        log.info("KafkaSource %s consumer %d revoked %d partition(s)", self._runner.key, self._index, len(gone))

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        gone = self._release(lost)
        log.warning(
            "KafkaSource %s consumer %d lost %d partition(s); their in-flight events will be redelivered",
            self._runner.key,
            self._index,
            len(gone),
        )

    def _release(self, partitions: list[TopicPartition]) -> list[AssignedPartition]:
        gone = [
            self.partitions.pop((tp.topic, tp.partition))
            for tp in partitions
            if (tp.topic, tp.partition) in self.partitions
        ]
        if gone and self._dispatcher is not None:
            self._runner._loop.call_soon_threadsafe(self._dispatcher.forget, gone)
        for partition in gone:
            self._metrics.forget_partition(self._runner.key, partition.topic, partition.partition)
        return gone

    # --- commits -----------------------------------------------------------------------------

    def _commit(self, consumer: Consumer, partitions: list[AssignedPartition], *, synchronous: bool) -> None:
        offsets = []
        for partition in partitions:
            position = partition.offsets.needs_commit()
            if position is not None:
                offsets.append(TopicPartition(partition.topic, partition.partition, position))
        if not offsets:
            return
        try:
            if synchronous:
                self._record_commits(consumer.commit(offsets=offsets, asynchronous=False) or [], partitions)
            else:
                consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self._warn("commit", f"KafkaSource {self._runner.key}: commit failed, will retry ({exc})")

    def _on_commit(self, error: KafkaError | None, committed: list[TopicPartition]) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            self._warn("commit", f"KafkaSource {self._runner.key}: commit failed, will retry ({error})")
            return
        self._record_commits(committed, list(self.partitions.values()))

    def _record_commits(self, committed: list[TopicPartition], partitions: list[AssignedPartition]) -> None:
        by_key = {(p.topic, p.partition): p for p in partitions}
        for tp in committed:
            partition = by_key.get((tp.topic, tp.partition))
            if partition is None or tp.error is not None or tp.offset < 0:
                continue
            if partition.offsets.committed is None or tp.offset > partition.offsets.committed:
                partition.offsets.committed = tp.offset
            self._metrics.partition_progress(
                self._runner.key, tp.topic, tp.partition, committed=partition.offsets.committed, lag=None
            )

    def _report_progress(self, consumer: Consumer) -> None:
        for partition in list(self.partitions.values()):
            try:
                _low, high = consumer.get_watermark_offsets(partition.topic_partition, cached=True)
            except KafkaException:
                continue
            committed = partition.offsets.committed
            lag = max(high - committed, 0) if high is not None and high >= 0 and committed is not None else None
            self._metrics.partition_progress(
                self._runner.key, partition.topic, partition.partition, committed=committed, lag=lag
            )

    # --- errors ------------------------------------------------------------------------------

    def _on_stats(self, stats_json: str) -> None:
        # Real brokers have a node id >= 0; the bootstrap placeholders and the coordinator alias
        # are listed too, so a broker counts as up if any of its connections is.
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        states = [b.get("state") for b in brokers.values() if isinstance(b, dict) and b.get("nodeid", -1) >= 0]
        if states:
            self._brokers_up = "UP" in states
        elif brokers:
            self._brokers_up = any(isinstance(b, dict) and b.get("state") == "UP" for b in brokers.values())

    def _on_error(self, error: KafkaError) -> None:
        # librdkafka reconnects by itself; say so once in a while instead of on every retry.
        self._warn(str(error.code()), f"KafkaSource {self._runner.key}: {error} (the client keeps reconnecting)")

    def _warn(self, kind: str, message: str) -> None:
        """Log a warning of this kind at most every 30 s (a down broker would otherwise flood)."""
        now = time.monotonic()
        if now - self._last_warning.get(kind, -_WARN_EVERY_SECONDS) >= _WARN_EVERY_SECONDS:
            self._last_warning[kind] = now
            log.warning(message)
