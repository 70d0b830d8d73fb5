"""GoldRunner: one build at a time, requests made during a build coalesce into one more, and the
scheduled tick is skipped while a build runs."""

from __future__ import annotations

import threading
import time

from shared.stocks.gold_runner import GoldRunner


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_requests_during_a_build_make_exactly_one_more() -> None:
    runner = GoldRunner(min_interval_seconds=0)
    release = threading.Event()
    builds: list[int] = []

    def build() -> None:
        builds.append(len(builds))
        if len(builds) == 1:
            release.wait(5)

    runner.request(build)
    wait_for(lambda: builds == [0])
    for _ in range(5):  # new quotes on five ticks while the first build runs
        runner.request(build)
    assert runner.run_now(build) is None  # the scheduled tick is skipped meanwhile
    release.set()
    wait_for(lambda: len(builds) == 2 and not runner.busy)
    time.sleep(0.1)
    assert builds == [0, 1]


def test_builds_start_at_least_the_interval_apart() -> None:
    runner = GoldRunner(min_interval_seconds=0.3)
    starts: list[float] = []

    def first() -> str:
        starts.append(time.monotonic())
        return "built"

    assert runner.run_now(first) == "built"
    runner.request(lambda: starts.append(time.monotonic()))
    wait_for(lambda: len(starts) == 2)
    assert starts[1] - starts[0] >= 0.29


def test_a_failing_background_build_does_not_stop_the_next() -> None:
    runner = GoldRunner(min_interval_seconds=0)
    calls: list[str] = []

    def failing() -> None:
        calls.append("failed")
        raise RuntimeError("dbt exploded")

    runner.request(failing)
    wait_for(lambda: calls == ["failed"] and not runner.busy)
    runner.request(lambda: calls.append("ok"))
    wait_for(lambda: calls == ["failed", "ok"])
