"""`make status` with everything down: every part says so, nothing crashes, exit status 1."""

from __future__ import annotations

import json
import time

from local import services
from local import status as system_status
from shared.config import Settings


def closed_url() -> str:
    return f"http://127.0.0.1:{services.free_port()}"


def test_status_shows_what_is_down_without_crashing(monkeypatch, capsys):
    dead = services.free_port()
    settings = Settings(
        database_url=f"postgresql://crawler:secret-pw@127.0.0.1:{dead}/price_crawler",
        kafka_bootstrap_servers=f"127.0.0.1:{services.free_port()}",
        price_function_url=closed_url(),
        metadata_function_url=closed_url(),
        audit_function_url=closed_url(),
        scheduler_function_url=closed_url(),
    )
    started = time.monotonic()

    status = system_status.collect(settings, eventing_url=closed_url(), market_url=closed_url())

    assert time.monotonic() - started < 15
    assert {p.state for p in status.processes.rows} == {"down"}
    assert "Kafka" in status.kafka.error
    assert "PostgreSQL unreachable" in status.freshness.error and "PostgreSQL unreachable" in status.failures.error
    assert status.eventing.error
    assert status.stocks.error  # the stock jobs' section (job_logs) says it could not be read
    assert not status.healthy
    text = system_status.render(status)
    assert "unavailable: PostgreSQL unreachable" in text
    assert "secret-pw" not in text and "secret-pw" not in json.dumps(status.to_json())

    monkeypatch.setattr(system_status, "collect", lambda: status)
    assert system_status.main(["--json"]) == 1
    assert json.loads(capsys.readouterr().out)["healthy"] is False
