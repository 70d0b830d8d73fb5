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
        trade_enricher_function_url=closed_url(),
        trade_analyser_function_url=closed_url(),
        stats_function_url=closed_url(),
        stocks_function_url=closed_url(),
        trade_sync_function_url=closed_url(),
        deadletter_function_url=closed_url(),
        trade_normalizer_function_url=closed_url(),
    )
    started = time.monotonic()

    status = system_status.collect(settings, eventing_url=closed_url(), market_url=closed_url())

    assert time.monotonic() - started < 15
    assert {p.state for p in status.processes.rows} == {"down"}
    assert "Kafka" in status.kafka.error
    assert "PostgreSQL unreachable" in status.freshness.error and "PostgreSQL unreachable" in status.failures.error
    assert status.eventing.error
    assert status.stocks.error  # the stock jobs' section (job_logs) says it could not be read
    assert status.trades.error  # and the trade ingestion's
    assert not status.healthy
    text = system_status.render(status)
    assert "unavailable: PostgreSQL unreachable" in text
    assert "secret-pw" not in text and "secret-pw" not in json.dumps(status.to_json())

    monkeypatch.setattr(system_status, "collect", lambda: status)
    assert system_status.main(["--json"]) == 1
    assert json.loads(capsys.readouterr().out)["healthy"] is False


def test_status_shows_each_chains_health_and_bridge(clean_db):
    """The chains and bridges sections read the latest stats; a chain that is down needs attention."""
    from decimal import Decimal

    from shared.db.connection import connect
    from shared.stats.agreement import HeadAgreement, UrlStatus, UrlVerdict
    from shared.stats.change import ChangeTolerances
    from shared.stats.collect import ChainReading
    from shared.stats.health import Health, HealthVerdict
    from shared.stats.performance import ChainPerformance
    from shared.stats.store import record_reading

    now_ms = int(time.time() * 1000)
    ok = HeadAgreement(100, (UrlVerdict("http://node/eth", UrlStatus.OK, 100, 0, 0.01),))
    performance = ChainPerformance(100, now_ms - 3000, 10, Decimal("12.5"), Decimal(24), Decimal("0.5"), Decimal(3))
    conn = connect(clean_db)
    record_reading(
        conn,
        ChainReading("ethereum", ok, performance, HealthVerdict(Health.HEALTHY, ()), None, now_ms),
        ChangeTolerances(),
    )
    down = HeadAgreement(None, (UrlVerdict("http://node/bsc", UrlStatus.ERROR, None, None, 5.0, "timeout"),))
    reason = "no RPC URL on the right chain answered"
    record_reading(
        conn, ChainReading("bsc", down, None, HealthVerdict(Health.DOWN, (reason,)), None, now_ms), ChangeTolerances()
    )
    from shared.stats.bridge_store import record_sample
    from shared.stats.bridges import BridgeEstimate, BridgeStatus
    from shared.stats.sampling import RouteSample
    from shared.stats.settings import BridgeTolerances

    estimate = BridgeEstimate(Decimal("999.3"), 999300000, Decimal(420), Decimal("2.09"), "across")
    record_sample(conn, RouteSample("eth-bsc", "lifi", BridgeStatus.OK, 0.43, estimate, "", now_ms), BridgeTolerances())
    chains = system_status.read_chains(conn)
    bridges = system_status.read_bridges(conn)
    conn.close()
    assert [(b.route, b.provider, b.status, b.duration_seconds, b.response_seconds) for b in bridges] == [
        ("eth-bsc", "lifi", "ok", "420", "0.43")
    ]

    assert [(c.chain, c.health, c.block_time_seconds, c.head_age_seconds) for c in chains] == [
        ("bsc", "down", None, None),
        ("ethereum", "healthy", "12.5", "3"),
    ]
    status = system_status.SystemStatus(
        taken_at="now",
        **{s: system_status.Section() for s in ("processes", "kafka", "schedules", "freshness")},
        eventing=system_status.Section(),
        failures=system_status.Section(),
        chains=system_status.Section(rows=chains),
        bridges=system_status.Section(rows=bridges),
    )
    assert not status.healthy  # bsc is down
    text = system_status.render(status)
    assert "Chain health (stats)" in text and reason in text and "12.5 s" in text
    assert "Bridges (stats)" in text and "420 s" in text


def test_status_shows_each_sync_stream_and_the_last_imports(clean_db):
    """The trade ingestion section: every linked account's streams, then the newest CSV imports."""
    import uuid

    from shared.db.connection import connect
    from shared.trades.sync_store import link_account

    conn = connect(clean_db)
    link_account(
        conn, account_id="acc-1", user_id="u-7", exchange="binance", label="main", credential_name="demo",
        symbols=("BTCUSDT",),
    )  # fmt: skip
    conn.run(
        "INSERT INTO trade_sync_cursors (account_id, stream, from_id, fills_synced, last_error)"
        " VALUES ('acc-1', 'BTCUSDT', 42, 41, NULL), ('acc-1', 'ETHUSDT', 1, 0, 'binance: -1022 Signature invalid')"
    )
    conn.run(
        "INSERT INTO trade_imports (import_id, user_id, file_digest, file_bytes, bronze_key, status,"
        " rows_read, rows_accepted, rows_rejected, stopped_at)"
        " VALUES (:id, 'u-7', 'd1', 10, 'k', 'done', 12, 10, 2, NULL)",
        id=str(uuid.uuid4()),
    )
    rows = system_status.read_trade_sources(clean_db)
    conn.close()
    assert [(t.kind, t.name, t.status, t.accepted, t.rejected, t.detail) for t in rows] == [
        ("sync", "binance/main/BTCUSDT", "ok", 41, None, ""),
        ("sync", "binance/main/ETHUSDT", "failed", 0, None, "binance: -1022 Signature invalid"),
        ("import", rows[2].name, "done", 10, 2, ""),
    ]
    status = system_status.SystemStatus(
        taken_at="now",
        **{
            s: system_status.Section() for s in ("processes", "kafka", "schedules", "freshness", "eventing", "failures")
        },
        trades=system_status.Section(rows=rows),
    )
    text = system_status.render(status)
    assert "Trade ingestion" in text and "binance/main/ETHUSDT" in text and "-1022" in text
    assert "u-7" not in text  # an operator's view names accounts, not their owners
