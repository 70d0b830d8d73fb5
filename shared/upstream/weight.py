"""Binance request-weight budget, kept from the server's own `X-MBX-USED-WEIGHT-1M` header.

Binance counts weight per IP in fixed one-minute windows, shared by every replica behind
that IP. Each response tells the weight already used in the current window; that count
is the truth, so before each request we check `used + weight` against our budget
(`weight_limit_per_minute * weight_safety_fraction`) and otherwise wait for the window
to roll over. Between answers, weight we send is added locally so that concurrent
threads do not all pass the check at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

USED_WEIGHT_HEADER = "x-mbx-used-weight-1m"
WINDOW_SECONDS = 60.0


class UsedWeightBudget:
    """Tracks used weight per wall-clock minute and says how long to wait before a request."""

    def __init__(self, budget_per_minute: int, wall_clock: Callable[[], float] = time.time):
        if budget_per_minute < 1:
            raise ValueError(f"weight budget must be positive, got {budget_per_minute}")
        self.budget = budget_per_minute
        self._wall_clock = wall_clock
        self._window = -1  # index of the minute `_used` belongs to
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Weight known to be used in the current minute (0 once the minute rolled over)."""
        with self._lock:
            self._roll(self._wall_clock())
            return self._used

    def reserve(self, weight: int) -> float:
        """Count `weight` and return 0 if it fits the budget; else return seconds to the next window.

        A request heavier than the whole budget is allowed into an empty window.
        """
        with self._lock:
            now = self._wall_clock()
            self._roll(now)
            if self._used == 0 or self._used + weight <= self.budget:
                self._used += weight
                return 0.0
            return (self._window + 1) * WINDOW_SECONDS - now

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's used weight from a response's headers (any status)."""
        raw = headers.get(USED_WEIGHT_HEADER)
        if raw is None:
            return
        try:
            value = int(raw)
        except ValueError:
            return  # a garbled header must not fail an otherwise good answer
        with self._lock:
            self._roll(self._wall_clock())
            # Answers of concurrent requests arrive out of order: the larger count is the safer one.
            self._used = max(self._used, value)

    def _roll(self, now: float) -> None:
        window = math.floor(now / WINDOW_SECONDS)
        if window != self._window:
            self._window = window
            self._used = 0
