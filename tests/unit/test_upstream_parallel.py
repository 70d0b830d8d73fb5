"""Independent requests of one job sent side by side (shared/upstream/parallel.py)."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import RateLimited
from shared.observability.logging import current_context, log_context
from shared.upstream.parallel import in_parallel


def test_results_keep_the_order_of_the_calls_and_the_calls_overlap():
    started = threading.Barrier(3, timeout=5)  # only passes if three calls run at once

    def call(n: int):
        def run() -> int:
            started.wait()
            time.sleep(0.01 * (3 - n))  # finish in reverse order
            return n

        return run

    assert in_parallel([call(0), call(1), call(2)]) == [0, 1, 2]


def test_each_call_sees_the_job_context_for_its_log_lines_and_archived_responses():
    with log_context(job_id="job-7", observed_at="2026-11-21T10:00:00Z"):
        seen = in_parallel([lambda: current_context()["job_id"], lambda: current_context()["observed_at"]])
    assert seen == ["job-7", "2026-11-21T10:00:00Z"]


def test_a_failure_is_raised_after_every_call_finished():
    finished = []

    def slow() -> str:
        time.sleep(0.05)
        finished.append("slow")
        return "ok"

    def limited() -> str:
        raise RateLimited("dexscreener", "429 on /tokens/v1", retry_after=1.0)

    with pytest.raises(RateLimited):
        in_parallel([limited, slow])
    assert finished == ["slow"]


def test_a_single_call_runs_in_the_caller_thread():
    assert in_parallel([threading.get_ident]) == [threading.get_ident()]
    assert in_parallel([]) == []
