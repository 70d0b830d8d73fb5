"""Readiness follows the database: false while PostgreSQL is stopped, true again once it is back.

The shared session PostgreSQL is never stopped: this test starts a throwaway cluster of its
own (local.services, in a temporary state directory on a free port), points a running
function at it, then stops and restarts that cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from local import services
from local.stack import functions_framework_argv
from shared.observability import metrics

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]


def readiness(url: str) -> tuple[int, dict]:
    reply = httpx.get(f"{url}/health/readiness", timeout=10)
    return reply.status_code, reply.json()


def wait_for_status(url: str, expected: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = readiness(url)
        if status == expected:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"readiness stayed {status} ({body}), expected {expected}")
        time.sleep(0.2)


def dependency_up(url: str) -> float | None:
    return metrics.sample_value(
        httpx.get(f"{url}/metrics", timeout=10).text, "crawler_dependency_up", function="audit", dependency="postgresql"
    )


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test only: (database URL, start(), stop())."""
    # Not under pytest's tmp_path (mode 0700): the server runs as the `postgres` OS user when we are root.
    state_dir = Path(tempfile.mkdtemp(prefix="price-crawler-readiness-"))
    state_dir.chmod(0o755)
    port = services.free_port()
    url = f"postgresql://crawler:readiness-{os.getpid()}@127.0.0.1:{port}/readiness"
    handles = []

    def start():
        handles.append(services.ensure_postgres(url, state_dir=state_dir))

    def stop():
        handles.pop().stop()

    try:
        start()
        yield url, start, stop
    finally:
        while handles:
            stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def test_readiness_turns_false_when_postgresql_stops_and_true_when_it_is_back(own_postgres, tmp_path):
    url, start_postgres, stop_postgres = own_postgres
    port = services.free_port()
    function_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_"))}
    env.update(DATABASE_URL=url, K_SERVICE="audit", PYTHONPATH=str(ROOT), DB_CONNECT_TIMEOUT_SECONDS="2")
    # The audit function needs only PostgreSQL: its readiness is the database's.
    log = open(tmp_path / "audit.log", "wb")
    function = subprocess.Popen(
        list(functions_framework_argv("audit", port)),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        services.wait_for_port("127.0.0.1", port, timeout=60, alive=lambda: function.poll() is None)
        assert wait_for_status(function_url, 200) == {"status": "ready", "detail": "ok"}
        assert dependency_up(function_url) == 1

        stop_postgres()

        body = wait_for_status(function_url, 503)
        assert body["status"] == "not ready" and "PostgreSQL unreachable" in body["detail"]
        assert dependency_up(function_url) == 0
        assert httpx.get(f"{function_url}/health/liveness", timeout=5).status_code == 200  # alive, just not ready

        start_postgres()

        assert wait_for_status(function_url, 200, timeout=30) == {"status": "ready", "detail": "ok"}
        assert dependency_up(function_url) == 1
    finally:
        function.terminate()
        try:
            function.wait(10)
        except subprocess.TimeoutExpired:
            function.kill()
            function.wait(5)
        log.close()
