"""The long-lived clients a function uses, created lazily once per process.

Functions are stateless between events; these are connections, not state. Creating
them lazily keeps import cheap (gunicorn forks after import) and lets a function
start while PostgreSQL or Kafka is still down: readiness reports it meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from shared.archive.bronze import BronzeArchive
from shared.config import Settings, get_settings
from shared.db.connection import ConnectionPool
from shared.kafka import ConsumerLagReader, EventProducer
from shared.observability.traces import Tracing
from shared.upstream import UpstreamClients

T = TypeVar("T")


class Resources:
    """Settings, tracing, database pool, Kafka producer, upstream clients, bronze archive and what systems add (`once`)."""

    def __init__(self, settings: Settings | None = None, *, upstream: UpstreamClients | None = None):
        self.settings = settings or get_settings()
        # Re-entrant: building the upstream clients builds the archive first.
        self._lock = threading.RLock()
        self._made: dict[str, Any] = {}
        if upstream is not None:
            from shared.observability.metrics import watch_upstream

            self._made["upstream"] = upstream
            watch_upstream(upstream)

    def once(self, name: str, factory: Callable[[], T]) -> T:
        """The resource `name`, created by `factory` exactly once, even when threads ask at the same time.

        A system package keeps its own long-lived objects here (the price crawler's candle fold),
        so that they live and close with the process's other resources. One with a `close()`
        method is closed by `close()`, after anything created later (which may use it).
        """
        made = self._made.get(name, _MISSING)
        if made is _MISSING:
            with self._lock:
                made = self._made.get(name, _MISSING)
                if made is _MISSING:
                    made = self._made[name] = factory()
        return made

    @property
    def tracing(self) -> Tracing:
        """The process's tracer provider: spans exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
        return self.once("tracing", lambda: Tracing.from_settings(self.settings, self.settings.function_name))

    @property
    def db(self) -> ConnectionPool:
        return self.once(
            "db",
            lambda: ConnectionPool(
                self.settings.database_url,
                size=self.settings.db_pool_size,
                timeout=self.settings.db_connect_timeout_seconds,
                tracer=self.tracing.tracer,
            ),
        )

    @property
    def producer(self) -> EventProducer:
        return self.once(
            "producer",
            lambda: EventProducer(
                self.settings.kafka_bootstrap_servers,
                client_id=self.settings.function_name or "price-crawler",
                tracer=self.tracing.tracer,
            ),
        )

    @property
    def lag_reader(self) -> ConsumerLagReader:
        """Consumer-group lag, read through one admin client per process (the scheduler's backlog check)."""
        return self.once("lag_reader", lambda: ConsumerLagReader(self.settings.kafka_bootstrap_servers))

    @property
    def archive(self) -> BronzeArchive | None:
        """The bronze archive of raw upstream responses, or None when ARCHIVE_ENABLED is off."""
        return self.once(
            "archive", lambda: BronzeArchive.from_settings(self.settings) if self.settings.archive_enabled else None
        )

    @property
    def upstream(self) -> UpstreamClients:
        return self.once("upstream", self._make_upstream)

    def _make_upstream(self) -> UpstreamClients:
        from shared.observability.metrics import record_upstream_event, watch_upstream

        archive = self.archive
        clients = UpstreamClients.from_settings(
            self.settings,
            on_event=record_upstream_event,
            on_response=archive.record_response if archive else None,
            tracer=self.tracing.tracer,
        )
        watch_upstream(clients)  # breaker state and Binance used weight, read at scrape time
        return clients

    def close(self) -> None:
        """Release connections (best effort, at shutdown)."""
        with self._lock:
            made, self._made = self._made, {}
        # Newest first: a resource built on another (the candle fold on the pool) flushes through it,
        # and tracing, made before all that use it, exports their spans last.
        for resource in reversed(list(made.values())):
            close = getattr(resource, "close", None) or getattr(resource, "shutdown", None)
            if callable(close):
                close()


_MISSING = object()
