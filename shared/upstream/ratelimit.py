"""A per-process request rate limiter: at most `limit` requests in any `period` seconds.

Hand-written (a sliding-window log, ~40 lines) rather than pyrate-limiter because the
HTTP layer needs three things that library makes awkward in synchronous threaded code:
an injectable clock for fast deterministic tests, knowing the wait *before* sleeping
(to raise `RateLimited` instead of sleeping too long), and sleeping outside the lock so
other threads are not serialised. A sliding window never exceeds the API's own
per-minute count in any window, while still allowing the burst the API allows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Reserves request slots so that no `period`-second window holds more than `limit`."""

    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic):
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per period, got {limit}")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._slots: deque[float] = deque()  # start times of reserved requests, ascending
        self._lock = threading.Lock()

    def reserve(self, max_wait: float) -> float:
        """Seconds to wait for the earliest free slot; the slot is reserved only if that is <= `max_wait`."""
        with self._lock:
            now = self._clock()
            while self._slots and self._slots[0] <= now - self.period:
                self._slots.popleft()
            start = now
            if len(self._slots) >= self.limit:
                # The slot frees up when the request `limit` places back leaves the window.
                start = max(start, self._slots[-self.limit] + self.period)
            if self._slots:
                start = max(start, self._slots[-1])
            wait = start - now
            if wait <= max_wait:
                self._slots.append(start)
            return wait
