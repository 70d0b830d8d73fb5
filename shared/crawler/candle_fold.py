"""Folding a price process's queued ticks into the gold candles, shortly after its jobs commit.

`insert_prices` only queues the ticks it inserted (`token_candle_ticks`); the candle upsert
used to run inside the price statement and cost a 1,000-token batch 31 of its 42 ms. Here
a job that stored prices asks for a fold, and one background thread runs it `delay`
seconds after the first request: a tick's jobs commit first, then their ticks are folded
together, outside the tick's burst of work. Requests made while a fold is pending join it;
requests made while one runs start the next.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from shared.crawler import store
from shared.db.connection import ConnectionPool
from shared.observability import metrics
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)


class DeferredCandleFold:
    """Runs `store.fold_candle_ticks` in the background, `delay` seconds after it was asked for."""

    def __init__(self, db: ConnectionPool, delay: float):
        self._db = db
        self._delay = delay
        self._wake = threading.Condition()
        self._due: float | None = None  # monotonic time of the pending fold
        self._folding = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="candle-fold", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Ask for a fold of the ticks queued so far (cheap; call after each price commit)."""
        with self._wake:
            if self._due is None and not self._closed:
                self._due = time.monotonic() + self._delay
                self._wake.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Run a pending fold now and wait until no fold is pending or running; False on timeout."""
        with self._wake:
            if self._due is not None:
                self._due = time.monotonic()
                self._wake.notify_all()
            return self._wake.wait_for(lambda: self._due is None and not self._folding, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop (at shutdown: a scaled-down pod leaves no tick queued)."""
        self.flush(timeout)
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due is None or time.monotonic() < self._due:
                    if self._closed:
                        return
                    self._wake.wait(None if self._due is None else self._due - time.monotonic())
                self._due = None
                self._folding = True
            try:
                self._fold()
            finally:
                with self._wake:
                    self._folding = False
                    self._wake.notify_all()

    def _fold(self) -> None:
        started = time.monotonic()
        try:
            with self._db.connection() as conn:
                folded = store.fold_candle_ticks(conn)
        except Exception:
            log.exception("folding queued ticks into candles failed; they stay queued for the next fold")
            metrics.count("crawler_candle_fold_failures")
            return
        metrics.count("crawler_candle_ticks_folded", folded)
        metrics.observe("crawler_candle_fold_duration", time.monotonic() - started)


def candle_fold(resources: Resources) -> DeferredCandleFold:
    """The process's candle fold: started on first use, closed (folding what is pending) with `resources`."""
    return resources.once("candle_fold", lambda: _start_fold(resources))


def _start_fold(resources: Resources) -> DeferredCandleFold:
    fold = DeferredCandleFold(resources.db, resources.settings.candle_fold_delay_seconds)
    # A worker stopped by SIGTERM (scale to zero, rollout) exits normally: fold what is pending.
    atexit.register(fold.close)
    return fold
