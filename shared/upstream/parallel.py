"""Independent requests of one job, sent side by side.

A job's DexScreener batches (30 addresses each) do not depend on one another; sent one
after the other they made a job as slow as the sum of its round trips. The calls still
pass through the same `UpstreamHttp`, so its rate limiter, breaker and weight budget see
every one of them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# One small pool per process: enough for a few jobs' batches at once; a job never waits
# on its own pool slot, since only the calling thread submits.
MAX_PARALLEL_REQUESTS = 8
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:  # created on first use, i.e. after a pre-forking server forked
        _pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL_REQUESTS, thread_name_prefix="upstream")
    return _pool


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls concurrently and return their results in order.

    Each runs in a copy of the caller's context, so log lines and archived responses keep
    the job's id, trace and observation time. When calls fail, every call still finishes
    (no request is left running unobserved) and the first failure in order is raised.
    """
    if len(calls) <= 1:
        return [call() for call in calls]
    futures = [_executor().submit(contextvars.copy_context().run, call) for call in calls]
    errors = [f.exception() for f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return [f.result() for f in futures]
