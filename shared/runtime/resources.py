"""The long-lived clients a function uses, created lazily once per process.

Functions are stateless between events; these are connections, not state. Creating
them lazily keeps import cheap (gunicorn forks after import) and lets a function
start while PostgreSQL or Kafka is still down: readiness reports it meanwhile.
"""

from __future__ import annotations

import threading
from functools import cached_property

from shared.config import Settings, get_settings
from shared.db.connection import ConnectionPool
from shared.kafka import EventProducer
from shared.upstream import UpstreamClients


class Resources:
    """Settings, database pool, Kafka producer and upstream clients of one process."""

    def __init__(self, settings: Settings | None = None, *, upstream: UpstreamClients | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.Lock()
        if upstream is not None:
            self.__dict__["upstream"] = upstream
            from shared.metrics import watch_upstream

            watch_upstream(upstream)

    @cached_property
    def db(self) -> ConnectionPool:
        with self._lock:
            return ConnectionPool(self.settings.database_url, size=self.settings.db_pool_size,
                                  timeout=self.settings.db_connect_timeout_seconds)

    @cached_property
    def producer(self) -> EventProducer:
        with self._lock:
            return EventProducer(self.settings.kafka_bootstrap_servers, client_id=self.settings.function_name or "price-crawler")

    @cached_property
    def upstream(self) -> UpstreamClients:
        from shared.metrics import record_upstream_event, watch_upstream

        with self._lock:
            clients = UpstreamClients.from_settings(self.settings, on_event=record_upstream_event)
        watch_upstream(clients)  # breaker state and Binance used weight, read at scrape time
        return clients

    def close(self) -> None:
        """Release connections (best effort, at shutdown)."""
        if "producer" in self.__dict__:
            self.producer.close()
        if "db" in self.__dict__:
            self.db.close()
        if "upstream" in self.__dict__:
            self.upstream.close()
