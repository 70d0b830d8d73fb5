"""Readiness never blocks request handling: func-python calls `ready()` on its event loop.

The scenario of the issue, with real parts: a FunctionApp whose PostgreSQL is a TCP
listener that accepts connections and never answers (a hung database), behind the
kn func adapter. A probe arrives, then a request; the request must be answered at once,
not after the connect timeout the ping waits out.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from shared.config import Settings
from shared.runtime.app import FunctionApp
from shared.runtime.asgi import KnFuncFunction
from shared.runtime.readiness import BackgroundReadiness
from shared.runtime.resources import Resources

HUNG_FOR_SECONDS = 3.0  # the ping's connect timeout: how long the old ready() held the loop


@pytest.fixture
def hung_database() -> Iterator[str]:
    """A database URL whose server completes TCP handshakes (the kernel's backlog) and never speaks."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"postgresql://crawler:crawler@127.0.0.1:{server.getsockname()[1]}/price_crawler"
    finally:
        server.close()


def unanswered_handler(event: Any, resources: Resources) -> dict[str, Any]:
    raise AssertionError("the request below is no CloudEvent; the handler is never reached")


async def drive_async(instance: KnFuncFunction, body: bytes) -> int:
    """One ASGI POST through the adapter; its status."""
    sent: list[Mapping[str, Any]] = []
    incoming = [{"type": "http.request", "body": body}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    await instance.handle(scope, receive, send)
    return sent[0]["status"]


def test_a_request_is_answered_while_the_database_hangs_the_readiness_check(hung_database: str) -> None:
    settings = Settings(database_url=hung_database, db_connect_timeout_seconds=HUNG_FOR_SECONDS)
    app = FunctionApp("price", unanswered_handler, resources=Resources(settings))
    instance = KnFuncFunction(app, readiness_max_age_seconds=1.0)

    async def probe_then_request() -> tuple[tuple[bool, str], int, float]:
        started = time.monotonic()
        # func-python's readiness route calls ready() synchronously inside its coroutine.
        readiness = instance.ready()
        status = await drive_async(instance, b"not a cloudevent")
        return readiness, status, time.monotonic() - started

    readiness, status, elapsed = asyncio.run(probe_then_request())
    assert status == 400  # answered by the app, not stuck behind the probe
    assert elapsed < 1.0, f"the request waited {elapsed:.1f} s behind the readiness check"
    assert readiness[0] is False

    # Meanwhile the check went on off the loop; once it gives up, readiness says why.
    deadline = time.monotonic() + HUNG_FOR_SECONDS + 5
    seen = set()
    while time.monotonic() < deadline and (False, "PostgreSQL unreachable") not in seen:
        seen.add(instance.ready())
        time.sleep(0.05)
    assert (False, "PostgreSQL unreachable") in seen, seen
    app.close()


def test_a_probe_is_answered_at_once_and_says_not_ready_while_the_check_hangs() -> None:
    released = threading.Event()
    calls: list[float] = []

    def hanging_check() -> tuple[bool, str]:
        calls.append(time.monotonic())
        released.wait(10)
        return True, "ok"

    readiness = BackgroundReadiness(hanging_check, max_age_seconds=0.2)
    started = time.monotonic()
    assert readiness.current() == (False, "first dependency check still running")
    assert time.monotonic() - started < 0.5  # the check itself hangs for 10 s
    time.sleep(0.4)
    ready, reason = readiness.current()
    assert not ready and reason.startswith("dependency check unanswered for")
    assert len(calls) == 1  # one check in flight, however often the probe asks
    released.set()
    _wait_until(lambda: readiness.current() == (True, "ok"))


def test_a_recent_result_is_reused_and_a_stale_one_refreshed() -> None:
    now = [100.0]
    answers = iter([(True, "ok"), (False, "PostgreSQL unreachable")])
    calls: list[int] = []

    def check() -> tuple[bool, str]:
        calls.append(1)
        return next(answers)

    readiness = BackgroundReadiness(check, max_age_seconds=5.0, clock=lambda: now[0])
    readiness.refresh()
    _wait_until(lambda: readiness.current() == (True, "ok"))
    now[0] += 4.0
    assert readiness.current() == (True, "ok") and len(calls) == 1
    now[0] += 2.0  # 6 s old: this answer still serves, and a refresh starts
    assert readiness.current() == (True, "ok")
    _wait_until(lambda: readiness.current() == (False, "PostgreSQL unreachable"))
    assert len(calls) == 2


def test_a_check_that_raises_is_not_ready_and_says_why() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("no producer")

    readiness = BackgroundReadiness(broken)
    readiness.refresh()
    _wait_until(lambda: readiness.current() == (False, "readiness check failed: no producer"))


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
