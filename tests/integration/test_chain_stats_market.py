"""A chain-performance cycle against the simulated market's JSON-RPC nodes (local/market/apis/evm_rpc.py)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from local.market.server import SimulatedMarket
from shared.config import UpstreamSettings
from shared.errors import RateLimited
from shared.stats.agreement import UrlStatus
from shared.stats.collect import ChainConfig, read_chain
from shared.stats.health import Health, HealthThresholds
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonrpc import JsonRpcClient


@pytest.fixture(scope="module")
def market() -> Iterator[SimulatedMarket]:
    with SimulatedMarket(port=0) as running:
        running.clock.freeze(1_760_000_000.2)
        yield running


def clients(market: SimulatedMarket, chain: ChainConfig) -> dict[str, JsonRpcClient]:
    def settings(url: str) -> UpstreamSettings:
        return UpstreamSettings(base_url=url, max_retries=0, rate_limit_per_minute=600, max_wait_seconds=1.0)

    return {
        url: JsonRpcClient(UpstreamHttp(f"rpc.{chain.name}.{i}", settings(url))) for i, url in enumerate(chain.rpc_urls)
    }


def chain(market: SimulatedMarket, name: str, chain_id: int, nodes: list[str], **extra: object) -> ChainConfig:
    urls = tuple(f"{market.base_url('rpc')}/{node}" for node in nodes)
    return ChainConfig(name=name, chain_id=chain_id, rpc_urls=urls, **extra)  # type: ignore[arg-type]


def now_of(market: SimulatedMarket) -> int:
    return int(market.clock.now() * 1000)


def test_bsc_block_time_is_measured_in_milliseconds(market: SimulatedMarket) -> None:
    bsc = chain(market, "bsc", 56, ["bsc", "bsc-2"], millis_in_mixhash=True, window_blocks=20)
    reading = read_chain(bsc, clients(market, bsc), lambda: now_of(market))
    assert reading.performance is not None
    assert reading.performance.block_time_seconds == Decimal("0.45")
    assert reading.performance.blocks == 20
    assert reading.verdict.health is Health.HEALTHY, reading.verdict.reasons


def test_ethereum_missed_slot_shows_in_the_longest_interval(market: SimulatedMarket) -> None:
    eth = chain(market, "ethereum", 1, ["ethereum"], window_blocks=17)
    reading = read_chain(eth, clients(market, eth), lambda: now_of(market))
    assert reading.performance is not None
    # 16 intervals of one period: 15 x 12 s + 24 s = 204 s -> 12.75 s
    assert reading.performance.block_time_seconds == Decimal("12.75")
    assert reading.performance.max_block_interval_seconds == Decimal(24)


def test_a_wrong_chain_node_a_lagging_replica_and_a_limited_node_are_reported_and_ignored(
    market: SimulatedMarket,
) -> None:
    base = chain(market, "base", 8453, ["base", "base-2", "base-wrongchain", "base-lagging", "base-limited"])
    reading = read_chain(base, clients(market, base), lambda: now_of(market))
    statuses = [v.status for v in reading.agreement.verdicts]
    assert statuses == [UrlStatus.OK, UrlStatus.OK, UrlStatus.WRONG_CHAIN, UrlStatus.LAGGING, UrlStatus.ERROR]
    assert "-32005" in reading.agreement.verdicts[4].detail
    assert reading.performance is not None and reading.performance.block_time_seconds == Decimal(2)
    assert reading.verdict.health is Health.HEALTHY


def test_only_lying_nodes_is_down_and_a_stale_head_degrades(market: SimulatedMarket) -> None:
    liars = chain(market, "bsc", 56, ["bsc-wrongchain", "bsc-limited"], millis_in_mixhash=True)
    assert read_chain(liars, clients(market, liars), lambda: now_of(market)).verdict.health is Health.DOWN
    strict = HealthThresholds(head_age_degraded_seconds=Decimal(1), head_age_down_seconds=Decimal(600))
    eth = chain(market, "ethereum", 1, ["ethereum"], thresholds=strict)
    later = read_chain(eth, clients(market, eth), lambda: now_of(market) + 30_000)
    assert later.verdict.health is Health.DEGRADED


def test_the_429_fault_is_rate_limited(market: SimulatedMarket) -> None:
    eth = chain(market, "ethereum", 1, ["ethereum-limited"])
    with pytest.raises(RateLimited):
        clients(market, eth)[eth.rpc_urls[0]].batch([("eth_chainId", [])])
