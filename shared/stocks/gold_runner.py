"""One gold build at a time per process, and a build soon after new quotes.

The stock-gold PingSource ticks every minute, as the original's Airflow DAG did; waiting for it
would put gold up to a minute behind a quote. So a quote tick that stored new quotes also asks
for a build (`request`): it starts in the background unless one is running, in which case
exactly one more runs after it; builds start at least `min_interval_seconds` apart, so a quote
is in gold within about that interval plus one build. The scheduled tick (`run_now`) is skipped
while a build runs (that build, or the one requested after it, covers it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class GoldRunner:
    """Serialises the process's gold builds and coalesces the requests made while one runs."""

    def __init__(self, min_interval_seconds: float, *, clock: Callable[[], float] = time.monotonic):
        self._min_interval = min_interval_seconds
        self._clock = clock
        self._building = threading.Lock()
        self._pending = threading.Event()
        self._last_start = float("-inf")

    @property
    def busy(self) -> bool:
        return self._building.locked()

    def run_now(self, build: Callable[[], T]) -> T | None:
        """Run `build` in this thread, or return None at once when a build is running."""
        if not self._building.acquire(blocking=False):
            return None
        try:
            self._pending.clear()  # this build covers what was asked before it
            self._last_start = self._clock()
            return build()
        finally:
            self._building.release()
            self._follow_up(build)

    def request(self, build: Callable[[], object]) -> None:
        """Ask for a build soon, in the background (coalesced with any already asked for)."""
        self._pending.set()
        self._follow_up(build)

    def _follow_up(self, build: Callable[[], object]) -> None:
        if self._pending.is_set() and not self._building.locked():
            threading.Thread(target=self._background, args=(build,), name="stock-gold", daemon=True).start()

    def _background(self, build: Callable[[], object]) -> None:
        wait = self._last_start + self._min_interval - self._clock()
        if wait > 0:
            time.sleep(wait)
        if not self._pending.is_set() or not self._building.acquire(blocking=False):
            return  # done meanwhile, or the running build will follow up
        try:
            self._pending.clear()
            self._last_start = self._clock()
            build()
        except Exception:  # a background build that fails is logged; the next one tries again
            log.exception("requested gold build failed")
        finally:
            self._building.release()
        self._follow_up(build)
