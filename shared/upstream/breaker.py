"""A thread-safe circuit breaker per upstream API.

Hand-written rather than pybreaker: pybreaker holds one lock for the whole duration of
every guarded call, which would serialise all requests to an API under gunicorn threads,
and it reads the wall clock directly, so the reset time cannot be tested without waiting.

closed --N consecutive failures--> open --reset_seconds--> half_open (one probe)
half_open --probe succeeds--> closed;  half_open --probe fails--> open
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failed calls and refuses calls while the upstream looks down."""

    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ):
        self.failure_threshold = failure_threshold  # < 1 disables the breaker
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset time passed reports half_open."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._reset_elapsed():
                return BreakerState.HALF_OPEN
            return self._state

    def admit(self) -> bool:
        """Whether a call may go out now. In half_open only one probe is admitted at a time."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                if not self._reset_elapsed():
                    return False
                self._set(BreakerState.HALF_OPEN)
            if self._state is BreakerState.HALF_OPEN:
                if self._probe_in_flight:
                    return False
                self._probe_in_flight = True
            return True

    def record_success(self) -> None:
        """The call got a proper answer from the upstream."""
        with self._lock:
            self._failures = 0
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False
                self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """The call failed in a way that says the upstream is unhealthy (after retries)."""
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False
                self._open()
            elif self._state is BreakerState.CLOSED and 0 < self.failure_threshold <= self._failures:
                self._open()

    def release(self) -> None:
        """The call ended without telling anything about the upstream's health (e.g. no request sent)."""
        with self._lock:
            self._probe_in_flight = False

    def _reset_elapsed(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_seconds

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state)  # called under the lock: keep it cheap (events.emit is)
