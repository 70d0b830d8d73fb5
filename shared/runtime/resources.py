"""The long-lived clients a function uses, created lazily once per process.

Functions are stateless between events; these are connections, not state. Creating
them lazily keeps import cheap (gunicorn forks after import) and lets a function
start while PostgreSQL or Kafka is still down: readiness reports it meanwhile.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Callable, TypeVar

from shared.archive.bronze import BronzeArchive
from shared.config import Settings, get_settings
from shared.db.connection import ConnectionPool
from shared.kafka import EventProducer
from shared.runtime.candle_fold import DeferredCandleFold
from shared.traces import Tracing
from shared.upstream import UpstreamClients

T = TypeVar("T")


class Resources:
    """Settings, tracing, database pool, Kafka producer, upstream clients and bronze archive of one process."""

    def __init__(self, settings: Settings | None = None, *, upstream: UpstreamClients | None = None):
        self.settings = settings or get_settings()
        # Re-entrant: building the upstream clients builds the archive first.
        self._lock = threading.RLock()
        self._made: dict[str, Any] = {}
        if upstream is not None:
            from shared.metrics import watch_upstream

            self._made["upstream"] = upstream
            watch_upstream(upstream)

    def _once(self, name: str, factory: Callable[[], T]) -> T:
        """Create a resource exactly once, even when request threads ask for it at the same time."""
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
        return self._once("tracing", lambda: Tracing.from_settings(self.settings, self.settings.function_name))

    @property
    def db(self) -> ConnectionPool:
        return self._once("db", lambda: ConnectionPool(self.settings.database_url, size=self.settings.db_pool_size,
                                                       timeout=self.settings.db_connect_timeout_seconds,
                                                       tracer=self.tracing.tracer))

    @property
    def candle_fold(self) -> DeferredCandleFold:
        """Folds queued ticks into the gold candles shortly after price jobs commit."""
        return self._once("candle_fold", self._make_candle_fold)

    def _make_candle_fold(self) -> DeferredCandleFold:
        fold = DeferredCandleFold(self.db, self.settings.candle_fold_delay_seconds)
        # A worker stopped by SIGTERM (scale to zero, rollout) exits normally: fold what is pending.
        atexit.register(fold.close)
        return fold

    @property
    def producer(self) -> EventProducer:
        return self._once("producer", lambda: EventProducer(self.settings.kafka_bootstrap_servers,
                                                            client_id=self.settings.function_name or "price-crawler",
                                                            tracer=self.tracing.tracer))

    @property
    def archive(self) -> BronzeArchive | None:
        """The bronze archive of raw upstream responses, or None when ARCHIVE_ENABLED is off."""
        return self._once("archive", lambda: BronzeArchive.from_settings(self.settings)
                          if self.settings.archive_enabled else None)

    @property
    def upstream(self) -> UpstreamClients:
        return self._once("upstream", self._make_upstream)

    def _make_upstream(self) -> UpstreamClients:
        from shared.metrics import record_upstream_event, watch_upstream

        archive = self.archive
        clients = UpstreamClients.from_settings(self.settings, on_event=record_upstream_event,
                                                on_response=archive.record_response if archive else None,
                                                tracer=self.tracing.tracer)
        watch_upstream(clients)  # breaker state and Binance used weight, read at scrape time
        return clients

    def close(self) -> None:
        """Release connections (best effort, at shutdown)."""
        with self._lock:
            made, self._made = self._made, {}
        # The fold first: it flushes queued ticks through the pool that closes next; tracing last,
        # so the spans of that work are exported too.
        for name, closer in (("candle_fold", "close"), ("producer", "close"), ("db", "close"), ("upstream", "close"),
                             ("tracing", "shutdown")):
            resource = made.get(name)
            if resource is not None:
                getattr(resource, closer)()


_MISSING = object()
