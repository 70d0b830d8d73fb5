"""Counters and structured logs of the local eventing plane — the one place for both.

`EventingMetrics` holds every counter (per source) behind one lock; `snapshot()` returns a
JSON-ready dict that the plane serves on GET /metrics and that a Prometheus exporter can walk.
`log_outcome` writes one log record per delivery attempt outcome, rendered as one JSON line
by `shared.observability.logging`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.observability.metrics import observe_at_scrape

OUTCOME_LOGGER = logging.getLogger("local.eventing.delivery")

# Outcome of one attempt, as logged and counted.
DELIVERED = "delivered"  # sink (or DLS) acknowledged
RETRYING = "retrying"  # failed, another attempt follows
FAILED = "failed"  # failed, no attempt left (or not retryable)
DEAD_LETTERED = "dead_lettered"  # the event reached the dead-letter sink
DROPPED = "dropped"  # sink and DLS (if any) failed: the event is lost, offset moves on


def source_key(kind: str, namespace: str, name: str) -> str:
    """`kafkasources/default/price-request-source`, the key counters are filed under."""
    return f"{kind.lower()}s/{namespace}/{name}"


@dataclass
class SourceCounters:
    """Counters of one source. Attempts count every HTTP/Kafka send, retries those after the first."""

    kind: str
    events: int = 0  # records consumed / ticks fired
    attempts: int = 0
    retries: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    dead_letter_attempts: int = 0
    dropped: int = 0
    ticks_skipped: int = 0
    responses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lag: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    committed: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))


class EventingMetrics:
    """Thread-safe counters per source; read them with `snapshot()` or `counter()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, SourceCounters] = {}
        self.started_at = time.time()

    def register(self, key: str, kind: str) -> None:
        """Declare a source so that it appears in snapshots before its first event."""
        with self._lock:
            self._sources.setdefault(key, SourceCounters(kind=kind))

    def _source(self, key: str) -> SourceCounters:
        return self._sources.setdefault(key, SourceCounters(kind="unknown"))

    def event_received(self, key: str) -> None:
        with self._lock:
            self._source(key).events += 1

    def attempt(self, key: str, *, attempt: int, status: int | None, dead_letter: bool) -> None:
        """One send finished with `status` (None = network error or timeout)."""
        with self._lock:
            counters = self._source(key)
            if dead_letter:
                counters.dead_letter_attempts += 1
            else:
                counters.attempts += 1
                if attempt > 1:
                    counters.retries += 1
            counters.responses[str(status) if status is not None else "network_error"] += 1

    def delivered(self, key: str) -> None:
        with self._lock:
            self._source(key).delivered += 1

    def dead_lettered(self, key: str) -> None:
        with self._lock:
            self._source(key).dead_lettered += 1

    def dropped(self, key: str) -> None:
        with self._lock:
            self._source(key).dropped += 1

    def tick_skipped(self, key: str) -> None:
        with self._lock:
            self._source(key).ticks_skipped += 1

    def partition_progress(
        self, key: str, topic: str, partition: int, *, committed: int | None, lag: int | None
    ) -> None:
        """Latest committed offset and consumer lag (log end − committed) of one partition."""
        with self._lock:
            counters = self._source(key)
            if committed is not None:
                counters.committed[topic][str(partition)] = committed
            if lag is not None:
                counters.lag[topic][str(partition)] = lag

    def forget_partition(self, key: str, topic: str, partition: int) -> None:
        """Drop lag/committed gauges of a partition this plane no longer owns."""
        with self._lock:
            counters = self._source(key)
            counters.lag.get(topic, {}).pop(str(partition), None)
            counters.committed.get(topic, {}).pop(str(partition), None)

    def counter(self, key: str, name: str) -> int:
        """One plain counter (`delivered`, `retries`, …) of a source; 0 if unknown."""
        with self._lock:
            counters = self._sources.get(key)
            return int(getattr(counters, name)) if counters is not None else 0

    def snapshot(self) -> dict[str, Any]:
        """Every counter as plain JSON-ready data: {"uptime_seconds", "sources": {key: {...}}}."""
        with self._lock:
            sources = {}
            for key, c in self._sources.items():
                sources[key] = {
                    "kind": c.kind,
                    "events": c.events,
                    "attempts": c.attempts,
                    "retries": c.retries,
                    "delivered": c.delivered,
                    "dead_lettered": c.dead_lettered,
                    "dead_letter_attempts": c.dead_letter_attempts,
                    "dropped": c.dropped,
                    "ticks_skipped": c.ticks_skipped,
                    "responses": dict(c.responses),
                    "lag": {topic: dict(parts) for topic, parts in c.lag.items()},
                    "committed": {topic: dict(parts) for topic, parts in c.committed.items()},
                }
            return {"uptime_seconds": round(time.time() - self.started_at, 3), "sources": sources}


def log_outcome(level: int, message: str, **fields: Any) -> None:
    """One structured line about a delivery; `fields` become top-level JSON keys (shared.observability.logging)."""
    OUTCOME_LOGGER.log(level, message, extra=fields)


# --- exported on the plane's Prometheus /metrics, read at scrape time -------------------------------

# The plane whose counters /metrics reads: one per process, like the Prometheus registry.
_WATCHED_SNAPSHOT: list[Callable[[], Mapping[str, Any]]] = []
_EVENTING_COUNTERS = {
    "crawler_eventing_events_received": "events",
    "crawler_eventing_delivery_attempts": "attempts",
    "crawler_eventing_delivery_retries": "retries",
    "crawler_eventing_events_delivered": "delivered",
    "crawler_eventing_dead_letters": "dead_lettered",
    "crawler_eventing_events_dropped": "dropped",
    "crawler_eventing_ticks_skipped": "ticks_skipped",
}


def watch_eventing(snapshot: Callable[[], Mapping[str, Any]]) -> None:
    """Export the local eventing plane's counters and consumer lag.

    `snapshot()` returns `EventingMetrics.snapshot()`'s shape:
    {"sources": {key: {"events", "attempts", "retries", "delivered", "dead_lettered",
    "dropped", "ticks_skipped", "responses": {status: n}, "lag": {topic: {partition: n}}}}}.
    """
    _WATCHED_SNAPSHOT[:] = [snapshot]
    for name, field_name in _EVENTING_COUNTERS.items():
        observe_at_scrape(name, _counter_reader(field_name))
    observe_at_scrape(
        "crawler_eventing_delivery_responses",
        lambda: [
            (float(n), {"source": key, "status": str(status)})
            for key, c in _sources()
            for status, n in sorted((c.get("responses") or {}).items())
        ],
    )
    observe_at_scrape(
        "crawler_eventing_consumer_lag",
        lambda: [
            (float(lag), {"source": key, "topic": topic, "partition": str(partition)})
            for key, c in _sources()
            for topic, parts in sorted((c.get("lag") or {}).items())
            for partition, lag in sorted(parts.items())
        ],
    )


def _counter_reader(field_name: str) -> Callable[[], list[tuple[float, Mapping[str, str]]]]:
    """Each source's counter `field_name`, read at each scrape."""
    return lambda: [(float(c.get(field_name, 0)), {"source": key}) for key, c in _sources()]


def _sources() -> list[tuple[str, Mapping[str, Any]]]:
    snapshot = _WATCHED_SNAPSHOT[0]() if _WATCHED_SNAPSHOT else {}
    return sorted((snapshot.get("sources") or {}).items())
