"""The market's notion of "now": the wall clock, or a frozen / shifted one for tests.

Prices are a function of the unix second, so freezing the clock makes every API quote
one fixed, predictable price, and `advance()` moves all of them together.
Rate-limit windows do not use this clock: they run on real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    """Wall-clock time, optionally frozen at an instant or shifted by an offset. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen_at: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        """Current market time as a unix timestamp (seconds, fractional)."""
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def now_datetime(self) -> datetime:
        """Current market time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def second(self) -> int:
        """The unix second prices are quoted for right now."""
        return int(self.now() // 1)

    def freeze(self, at: datetime | float | None = None) -> None:
        """Stop the clock at `at` (default: now). A naive datetime is rejected."""
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError("freeze time must be timezone-aware (UTC)")
            at = at.timestamp()
        moment = self.now() if at is None else float(at)
        with self._lock:
            self._frozen_at = moment

    def advance(self, seconds: float) -> None:
        """Move market time forward (or back, if negative), frozen or not."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def resume(self) -> None:
        """Back to the real wall clock: unfrozen and without offset."""
        with self._lock:
            self._frozen_at = None
            self._offset = 0.0

    def describe(self) -> dict[str, object]:
        """JSON-ready state for GET /_sim/clock."""
        with self._lock:
            frozen, offset = self._frozen_at, self._offset
        now = self.now()
        return {
            "now": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "unix": now,
            "frozen": frozen is not None,
            "offset_seconds": offset,
        }
