"""A tiny thread-safe time-to-live cache for slow-changing upstream lists."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from shared.errors import RetryableUpstreamError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TtlCache(Generic[T]):
    """One value from `load()`, reloaded when older than `ttl` seconds; one loader at a time.

    If a reload fails with a retryable upstream error, the previous value is served
    (stale beats nothing for lists that change daily) and the next call tries again.
    """

    def __init__(self, ttl: float, load: Callable[[], T], clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._load = load
        self._clock = clock
        self._value: T | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def get(self, *, refresh: bool = False) -> T:
        """The cached value, loading it first if absent or expired; `refresh` forces a load (errors raise)."""
        with self._lock:  # concurrent callers wait for the one load instead of each calling the API
            if not refresh and self._value is not None and self._clock() - self._loaded_at < self.ttl:
                return self._value
            try:
                value = self._load()
            except RetryableUpstreamError as exc:
                if refresh or self._value is None:
                    raise
                log.warning("serving a stale cached list (%.0fs old): %s", self._clock() - self._loaded_at, exc)
                return self._value
            self._value, self._loaded_at = value, self._clock()
            return value
