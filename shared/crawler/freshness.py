"""The price crawler's freshness gauge: age of the oldest latest price per token set, read at scrape time.

Every function with a database exports it (`watch_price_freshness`, passed to `FunctionApp`
as a probe), so one dead pipeline is visible from any of them.
"""

from __future__ import annotations

import logging
import threading
import time

from shared.crawler import store
from shared.db.connection import Connection, connect
from shared.observability.metrics import observe_at_scrape
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)


class PriceFreshnessProbe:
    """Age of the oldest latest price per token set, read from PostgreSQL at most every `cache_seconds`.

    It keeps one connection of its own (never a pool slot a job waits for), bounds the
    query with a statement timeout, and never blocks a concurrent scrape. When the
    database cannot be read, the last known ages keep growing with the clock: no price
    can have been refreshed through a database this process cannot reach either, and a
    stale-price alert must keep firing rather than go silent.
    """

    def __init__(self, database_url: str, *, cache_seconds: float = 5.0, timeout_seconds: float = 2.0):
        self._url = database_url
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._ages: dict[str, float] = {}
        self._measured_at: float | None = None

    def read(self) -> list[tuple[float, dict[str, str]]]:
        """[(age in seconds, {"token_set": name})] for every set with at least one price."""
        if self._lock.acquire(blocking=False):
            try:
                if self._measured_at is None or time.monotonic() - self._measured_at >= self._cache_seconds:
                    self._refresh()
            finally:
                self._lock.release()
        return self._extrapolated()

    def close(self) -> None:
        """Close the probe's connection."""
        with self._lock:
            self._drop_connection()

    def _refresh(self) -> None:
        try:
            if self._conn is None:
                self._conn = connect(self._url, timeout=self._timeout)
                self._conn.run(f"SET statement_timeout = {int(self._timeout * 1000)}")
            rows = store.oldest_latest_price_age(self._conn)
        except Exception as exc:
            log.debug("price freshness unreadable: %s", exc)
            self._drop_connection()
            return
        self._ages = dict(rows)
        self._measured_at = time.monotonic()

    def _extrapolated(self) -> list[tuple[float, dict[str, str]]]:
        if self._measured_at is None:
            return []
        elapsed = time.monotonic() - self._measured_at
        return [(age + elapsed, {"token_set": token_set}) for token_set, age in sorted(self._ages.items())]

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


class _Watched:
    """The probe /metrics reads: the most recently watched process resources' (tests build several)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._probe: PriceFreshnessProbe | None = None

    def swap(self, probe: PriceFreshnessProbe) -> None:
        with self._lock:
            self._probe = probe

    def read(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            probe = self._probe
        return probe.read() if probe is not None else []


# One per process, like the Prometheus registry the gauge is exported through.
_WATCHED = _Watched()


def watch_price_freshness(resources: Resources) -> PriceFreshnessProbe:
    """Export `crawler_price_oldest_age_seconds{token_set}` read from `resources`' database.

    The probe belongs to `resources` (closed with them); a `FunctionApp` probe.
    """
    probe = resources.once("price_freshness", lambda: PriceFreshnessProbe(resources.settings.database_url))
    _WATCHED.swap(probe)
    observe_at_scrape("crawler_price_oldest_age", _WATCHED.read)
    return probe
