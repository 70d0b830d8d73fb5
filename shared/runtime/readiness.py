"""Readiness answered at once from a recent dependency check, never by waiting for one.

func-python calls an instance's `ready()` on its event loop. The check behind it pings
PostgreSQL and Kafka with timeouts of several seconds (the connect timeout, the producer's
metadata wait), so calling it there stalls every request of the pod while a dependency is
slow. `BackgroundReadiness` runs the check on a worker thread and answers from its latest
result; a check that has not finished within `max_age_seconds` means "not ready" by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], tuple[bool, str]]

# Knative's queue-proxy probes about every second; a result this old is still a fair answer.
DEFAULT_MAX_AGE_SECONDS = 5.0


class BackgroundReadiness:
    """The latest readiness of a check, refreshed on a worker thread when older than `max_age_seconds`."""

    def __init__(
        self,
        check: ReadinessCheck,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._result: tuple[bool, str] | None = None
        self._checked_at = float("-inf")
        self._running_since: float | None = None

    def current(self) -> tuple[bool, str]:
        """(ready, reason) without blocking: the latest result, and a refresh started if it is stale."""
        now = self._clock()
        with self._lock:
            if self._running_since is None and now - self._checked_at >= self._max_age:
                self._start(now)
            result, running_since = self._result, self._running_since
        if running_since is not None and now - running_since > self._max_age:
            # The check hangs on a dependency: that dependency is as good as down.
            return False, f"dependency check unanswered for {now - running_since:.0f} s"
        if result is None:
            return False, "first dependency check still running"
        return result

    def refresh(self) -> None:
        """Start a check now unless one is running (at startup, so the first probe has an answer)."""
        with self._lock:
            if self._running_since is None:
                self._start(self._clock())

    def _start(self, now: float) -> None:
        # Called with the lock held; one check at a time, however often the probe asks.
        self._running_since = now
        threading.Thread(target=self._run, name="readiness-check", daemon=True).start()

    def _run(self) -> None:
        try:
            ready, reason = self._check()
            result = (bool(ready), reason)
        except Exception as exc:  # a failing check is an unready pod, not a dead probe thread
            log.warning("readiness check failed: %s", exc)
            result = (False, f"readiness check failed: {exc}")
        with self._lock:
            self._result, self._checked_at, self._running_since = result, self._clock(), None
