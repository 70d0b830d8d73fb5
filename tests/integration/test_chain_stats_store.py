"""Change-only recording of chain readings on real PostgreSQL (migration 0010), fed by the simulated nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from local.market.server import SimulatedMarket
from shared.config import UpstreamSettings
from shared.db.connection import Connection, connect
from shared.stats.change import ChangeTolerances
from shared.stats.collect import ChainConfig, read_chain
from shared.stats.health import HealthThresholds
from shared.stats.store import record_reading
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonrpc import JsonRpcClient

pytestmark = pytest.mark.infra
TOLERANCES = ChangeTolerances()


@pytest.fixture
def conn(clean_db: str) -> Iterator[Connection]:
    connection = connect(clean_db)
    yield connection
    connection.close()


@pytest.fixture
def market() -> Iterator[SimulatedMarket]:
    with SimulatedMarket(port=0) as running:
        running.clock.freeze(1_760_000_000.2)
        yield running


def bsc(market: SimulatedMarket, nodes: list[str], **extra: object) -> tuple[ChainConfig, dict[str, JsonRpcClient]]:
    urls = tuple(f"{market.base_url('rpc')}/{node}" for node in nodes)
    config = ChainConfig(name="bsc", chain_id=56, rpc_urls=urls, millis_in_mixhash=True, **extra)  # type: ignore[arg-type]
    clients = {
        url: JsonRpcClient(UpstreamHttp(f"rpc.bsc.{i}", UpstreamSettings(base_url=url, max_retries=0)))
        for i, url in enumerate(urls)
    }
    return config, clients


def cycle(
    conn: Connection, market: SimulatedMarket, config: ChainConfig, clients: dict[str, JsonRpcClient]
) -> list[str]:
    market.clock.advance(60)  # one chain-performance tick later
    reading = read_chain(config, clients, lambda: int(market.clock.now() * 1000))
    return record_reading(conn, reading, TOLERANCES)


def test_steady_chain_publishes_once_then_only_on_a_health_flip(conn: Connection, market: SimulatedMarket) -> None:
    strict = HealthThresholds(head_age_degraded_seconds=Decimal(5), head_age_down_seconds=Decimal(600))
    config, clients = bsc(market, ["bsc", "bsc-2", "bsc-wrongchain"], thresholds=strict)
    assert cycle(conn, market, config, clients) == ["first reading"]
    assert [cycle(conn, market, config, clients) for _ in range(5)] == [[]] * 5  # new blocks are no news
    stale = config.model_copy(update={"rpc_urls": (config.rpc_urls[0].replace("/bsc", "/bsc-lagging"),)})
    stale_clients = {
        stale.rpc_urls[0]: JsonRpcClient(UpstreamHttp("rpc.bsc.l", UpstreamSettings(base_url=stale.rpc_urls[0])))
    }
    flipped = cycle(conn, market, stale, stale_clients)  # 300 blocks x 0.45 s = 135 s behind: degraded
    assert "health healthy -> degraded" in flipped
    rows = conn.run("SELECT count(*), count(*) FILTER (WHERE published) FROM chain_stats WHERE chain = 'bsc'")
    assert rows == [[7, 2]]
    latest = conn.run("SELECT health, block_time_seconds, urls FROM chain_stats_latest WHERE chain = 'bsc'")
    assert latest[0][0] == "degraded" and latest[0][1] == Decimal("0.45")


def test_one_lying_url_is_recorded_and_ignored(conn: Connection, market: SimulatedMarket) -> None:
    config, clients = bsc(market, ["bsc", "bsc-wrongchain"])
    cycle(conn, market, config, clients)
    health, head, urls = conn.run("SELECT health, head_number, urls FROM chain_stats_latest WHERE chain = 'bsc'")[0]
    assert health == "healthy"
    statuses = {u["url"].rsplit("/", 1)[1]: u["status"] for u in urls}
    assert statuses == {"bsc": "ok", "bsc-wrongchain": "wrong_chain"}
    assert head == urls[0]["head"] and head < 100_000_000  # BSC's height, not Ethereum's


def test_each_url_error_rate_and_mean_latency_cover_the_window_only(conn: Connection) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.stats.reads import url_health

    now = datetime.now(UTC)

    def reading(minutes_ago: int, a: tuple[str, float], b: tuple[str, float]) -> None:
        urls = [
            {"url": "https://a", "status": a[0], "latency_seconds": a[1]},
            {"url": "https://b", "status": b[0], "latency_seconds": b[1]},
        ]
        conn.run(
            "INSERT INTO chain_stats (chain, observed_at, health, urls) VALUES ('bsc', :at, 'healthy', CAST(:urls AS jsonb))",
            at=now - timedelta(minutes=minutes_ago),
            urls=json.dumps(urls),
        )

    reading(50, ("ok", 0.1), ("error", 0.5))
    reading(30, ("ok", 0.3), ("error", 0.5))
    reading(10, ("error", 1.0), ("ok", 0.2))
    reading(120, ("error", 9.0), ("error", 9.0))  # outside the hour: not counted

    a, b = url_health(conn, now - timedelta(hours=1))["bsc"]
    assert (a.url, a.readings, a.errors, a.error_rate, a.mean_latency_seconds) == (
        "https://a", 3, 1, Decimal("0.3333"), Decimal("0.4667"),  # (0.1 + 0.3 + 1.0) / 3
    )  # fmt: skip
    assert (b.url, b.readings, b.errors, b.error_rate, b.mean_latency_seconds) == (
        "https://b", 3, 2, Decimal("0.6667"), Decimal("0.4000"),  # (0.5 + 0.5 + 0.2) / 3
    )  # fmt: skip


def test_history_partitions_are_made_ahead_and_dropped_after_the_retention(conn: Connection) -> None:
    from datetime import UTC, datetime, timedelta

    def partitions(parent: str) -> set[str]:
        rows = conn.run(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent AND c.relname ~ '_[0-9]{8}$'",
            parent=parent,
        )
        return {r[0] for r in rows}

    today = datetime.now(UTC).date()
    conn.run(
        "CREATE TABLE chain_stats_20000101 PARTITION OF chain_stats"
        " FOR VALUES FROM ('2000-01-01 00:00Z') TO ('2000-01-02 00:00Z')"
    )
    insert = "INSERT INTO chain_stats (chain, observed_at, health) VALUES ('bsc', :at, 'healthy')"
    conn.run(insert, at=datetime(2000, 1, 1, 12, tzinfo=UTC))  # an old day's partition
    conn.run(insert, at=datetime.now(UTC) - timedelta(days=40))  # an old row in the default partition
    conn.run(insert, at=datetime.now(UTC))

    dropped = conn.run("SELECT maintain_chain_stats(30)")[0][0]

    ahead = {f"chain_stats_{(today + timedelta(days=i)).strftime('%Y%m%d')}" for i in range(4)}
    assert dropped == 1 and "chain_stats_20000101" not in partitions("chain_stats")
    assert ahead <= partitions("chain_stats")
    assert conn.run("SELECT count(*) FROM chain_stats")[0][0] == 1  # only the recent reading is kept
    # The bridge history shares the definition.
    assert conn.run("SELECT maintain_bridge_stats(30)")[0][0] == 0
    assert {p.replace("chain", "bridge") for p in ahead} <= partitions("bridge_stats")
