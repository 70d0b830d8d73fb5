"""The stats handler on real Kafka and PostgreSQL, against the simulated JSON-RPC nodes:
change-only `stats.chain_performance_updated` events keyed by chain, and the tick-to-event time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from local.market.apis.bridges import QuoteApi
from local.market.server import SimulatedMarket
from shared.config import Settings
from shared.db.connection import connect
from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.runtime.resources import Resources
from shared.stats.collect import ChainConfig
from shared.stats.contracts import BRIDGE_LATENCY_UPDATED_SCHEMA
from shared.stats.pipeline import run_stats_tick
from shared.stats.settings import DefiLlamaSettings, LifiSettings, OneInchSettings, RelaySettings, StatsSettings
from tests.helpers.kafka import consume

pytestmark = pytest.mark.infra

TICK = InboundEvent(id="t", source="/ping", type="dev.knative.sources.ping", data=b'{"schedule": "chain-performance"}')


@pytest.fixture
def market() -> Iterator[SimulatedMarket]:
    with SimulatedMarket(port=0) as running:
        yield running


def resources_for(clean_db: str, kafka_bootstrap: str, market: SimulatedMarket, topic: str) -> Resources:
    rpc = market.base_url("rpc")
    chains = (
        ChainConfig(name="ethereum", chain_id=1, rpc_urls=(f"{rpc}/ethereum", f"{rpc}/ethereum-wrongchain")),
        ChainConfig(name="bsc", chain_id=56, rpc_urls=(f"{rpc}/bsc", f"{rpc}/bsc-lagging"), millis_in_mixhash=True),
    )
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers=kafka_bootstrap))
    resources.once("stats.settings", lambda: StatsSettings(chains=chains, updates_topic=topic))
    return resources


def test_events_only_when_a_chain_changes(
    clean_db: str, kafka_bootstrap: str, unique_topic: Callable[..., str], market: SimulatedMarket
) -> None:
    topic = unique_topic("stats")
    resources = resources_for(clean_db, kafka_bootstrap, market, topic)
    try:
        started = time.monotonic()
        first = run_stats_tick(TICK, resources)
        tick_to_event = time.monotonic() - started
        assert first["chains"] == {
            "ethereum": {"health": "healthy", "published": True},
            "bsc": {"health": "healthy", "published": True},
        }
        steady_started = time.monotonic()
        for _ in range(4):  # steady chains: nothing to say
            summary = run_stats_tick(TICK, resources)
            assert not any(c["published"] for c in summary["chains"].values())
        steady_tick = (time.monotonic() - steady_started) / 4
        records = consume(kafka_bootstrap, topic, 2, timeout=15, settle=1.0)
        assert sorted(r.key() or b"" for r in records) == [b"bsc", b"ethereum"]
        bsc = json.loads(next(r.value() or b"" for r in records if r.key() == b"bsc"))
        assert bsc["block_time_seconds"] == "0.45"
        assert {u["status"] for u in bsc["urls"]} == {"ok", "lagging"}
        headers = dict(next(iter(records)).headers() or [])
        assert headers["ce_type"] == b"stats.chain_performance_updated"
        print(f"tick -> events published (2 chains, 2 URLs each): {tick_to_event * 1000:.0f} ms (first tick)")
        print(f"steady tick (nothing published): {steady_tick * 1000:.0f} ms")
    finally:
        resources.close()


def test_an_unknown_schedule_is_refused(
    clean_db: str, kafka_bootstrap: str, unique_topic: Callable[..., str], market: SimulatedMarket
) -> None:
    resources = resources_for(clean_db, kafka_bootstrap, market, unique_topic("stats"))
    try:
        with pytest.raises(BadMessage):
            run_stats_tick(InboundEvent(id="t", source="/p", type="x", data=b'{"schedule": "nope"}'), resources)
    finally:
        resources.close()


# --- bridge latency ---------------------------------------------------------------------------------

CYCLE_START = 1_760_000_040  # a multiple of 120 s: cycle 14_666_667


def bridge_tick(cycle_offset: int) -> InboundEvent:
    at = datetime.fromtimestamp(CYCLE_START + 120 * cycle_offset, UTC).isoformat().replace("+00:00", "Z")
    return InboundEvent(
        id=f"b{cycle_offset}",
        source="/ping",
        type="dev.knative.sources.ping",
        data=b'{"schedule":"bridge-latency"}',
        time=at,
    )


def bridge_resources(clean_db: str, kafka_bootstrap: str, market: SimulatedMarket, topic: str) -> Resources:
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers=kafka_bootstrap))
    settings = StatsSettings(
        updates_topic=topic,
        lifi=LifiSettings(base_url=market.base_url("lifi")),
        relay=RelaySettings(base_url=market.base_url("relay")),
        oneinch=OneInchSettings(base_url=market.base_url("oneinch"), api_key="simulated-key"),
    )
    resources.once("stats.settings", lambda: settings)
    return resources


def test_bridge_samples_rotate_inside_the_budgets_and_publish_only_changes(
    clean_db: str, kafka_bootstrap: str, unique_topic: Callable[..., str], market: SimulatedMarket
) -> None:
    topic = unique_topic("bridges")
    resources = bridge_resources(clean_db, kafka_bootstrap, market, topic)
    oneinch_sim = market.apis["oneinch"]
    assert isinstance(oneinch_sim, QuoteApi)
    # The ticks here come back to back, not 2 minutes apart: 1inch's 1/s would refuse some of them.
    oneinch_sim.configure(budget=100)
    try:
        started = time.monotonic()
        first = run_stats_tick(bridge_tick(0), resources)
        tick_to_event = time.monotonic() - started
        # LI.FI's keyless budget allows one quote per cycle: the two bridge routes take turns.
        assert first["samples"] == {
            "ethereum-bsc-usdt/lifi": {"status": "ok", "published": True},
            "ethereum-base-usdc/relay": {"status": "ok", "published": True},
            "ethereum-bsc-usdt/relay": {"status": "ok", "published": True},
            "ethereum-usdc-weth/oneinch": {"status": "ok", "published": True},
        }
        second = run_stats_tick(bridge_tick(1), resources)
        assert {k: v["published"] for k, v in second["samples"].items()} == {
            "ethereum-base-usdc/lifi": True,  # its first sample
            "ethereum-base-usdc/relay": False,
            "ethereum-bsc-usdt/relay": False,
            "ethereum-usdc-weth/oneinch": False,
        }
        steady_started = time.monotonic()
        for offset in (2, 3):  # steady bridges: nothing to say
            assert not any(s["published"] for s in run_stats_tick(bridge_tick(offset), resources)["samples"].values())
        steady_tick = (time.monotonic() - steady_started) / 2

        lifi_sim = market.apis["lifi"]
        assert isinstance(lifi_sim, QuoteApi)
        lifi_sim.configure(slow_factor=Decimal(5))  # BSC bridging estimate 420 s -> 2100 s, above 600 s
        assert run_stats_tick(bridge_tick(4), resources)["samples"]["ethereum-bsc-usdt/lifi"] == {
            "status": "slow",
            "published": True,
        }
        market.faults.add("429", api="lifi", retry_after=60)
        limited = run_stats_tick(bridge_tick(5), resources)["samples"]["ethereum-base-usdc/lifi"]
        assert limited == {"status": "rate_limited", "published": False}  # our budget, not the bridge: no event

        records = consume(kafka_bootstrap, topic, 6, timeout=15, settle=1.0)
        assert len(records) == 6
        assert {r.key() for r in records} == {b"ethereum-bsc-usdt", b"ethereum-base-usdc", b"ethereum-usdc-weth"}
        events = [json.loads(r.value() or b"") for r in records]
        bsc = next(e for e in events if e["route"] == "ethereum-bsc-usdt" and e["provider"] == "relay")
        # 1000 USDT (6 decimals) in, ~999 USDT out on BSC where USDT has 18 decimals: exact text, in
        # token units (not base units), less fees and the simulator's slow drift of a few bps.
        assert bsc["amount_in"] == "1000" and Decimal("990") < Decimal(bsc["output_amount"]) < Decimal("1001")
        assert len(bsc["output_amount"].split(".")[1]) == 18
        # Relay's own estimate: 20 s; fees = gas 0.92 + relayer (0.31 + 0.40) + app 0 USD.
        assert (bsc["duration_seconds"], bsc["fees_usd"]) == ("20", "1.63")
        slow = next(e for e in events if e["status"] == "slow")
        assert slow["duration_seconds"] == "2100" and "status ok -> slow" in slow["changes"]
        headers = dict(records[0].headers() or [])
        assert headers["ce_type"] == b"stats.bridge_latency_updated"
        assert headers["ce_dataschema"] == BRIDGE_LATENCY_UPDATED_SCHEMA.encode()

        conn = connect(clean_db)
        try:
            rows = conn.run("SELECT status, count(*) FROM bridge_stats GROUP BY status ORDER BY status")
            latest = conn.run("SELECT count(*) FROM bridge_stats_latest")
        finally:
            conn.close()
        assert dict(rows) == {"ok": 22, "rate_limited": 1, "slow": 1}  # 4 samples x 6 ticks: one 429, one slow
        assert latest == [[5]]
        print(f"bridge tick -> events published (4 samples, simulated latencies): {tick_to_event * 1000:.0f} ms")
        print(f"steady bridge tick (nothing published): {steady_tick * 1000:.0f} ms")
    finally:
        resources.close()


def test_the_overview_combines_chains_bridges_and_dex_volume_and_publishes_on_change(
    clean_db: str, kafka_bootstrap: str, unique_topic: Callable[..., str], market: SimulatedMarket
) -> None:
    topic = unique_topic("overview")
    rpc = market.base_url("rpc")
    chains = (
        ChainConfig(name="ethereum", chain_id=1, rpc_urls=(f"{rpc}/ethereum",), defillama_name="Ethereum"),
        ChainConfig(
            name="bsc", chain_id=56, rpc_urls=(f"{rpc}/bsc",), millis_in_mixhash=True, defillama_name="Nowhere"
        ),
    )
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers=kafka_bootstrap))
    settings = StatsSettings(
        chains=chains,
        updates_topic=topic,
        defillama=DefiLlamaSettings(base_url=market.base_url("defillama")),
        relay=RelaySettings(base_url=market.base_url("relay")),
        lifi=LifiSettings(base_url=market.base_url("lifi")),
        oneinch=OneInchSettings(base_url=market.base_url("oneinch"), api_key="simulated-key"),
    )
    resources.once("stats.settings", lambda: settings)
    overview_tick = InboundEvent(
        id="o", source="/ping", type="dev.knative.sources.ping", data=b'{"schedule":"overview"}'
    )
    try:
        run_stats_tick(TICK, resources)
        run_stats_tick(bridge_tick(0), resources)
        started = time.monotonic()
        first = run_stats_tick(overview_tick, resources)
        tick_to_event = time.monotonic() - started
        assert first == {
            "schedule": "overview",
            "published": True,
            "health_counts": {"healthy": 2, "degraded": 0, "down": 0},
        }
        assert run_stats_tick(overview_tick, resources)["published"] is False  # nothing moved
        # 2 chain events and 4 bridge events came first; the overview once.
        (record,) = [r for r in consume(kafka_bootstrap, topic, 7, timeout=15, settle=1.0) if r.key() == b"overview"]
        overview = json.loads(record.value() or b"")
        by_chain = {c["chain"]: c for c in overview["chains"]}
        assert Decimal(by_chain["ethereum"]["dex_volume_24h_usd"]) > 0
        # DefiLlama has no chain of that name: said per chain, never a volume of zero.
        assert by_chain["bsc"]["dex_volume_24h_usd"] is None and "400" in by_chain["bsc"]["volume_error"]
        assert {b["route"]: b["status"] for b in overview["bridges"]} == {
            "ethereum-base-usdc": "ok",
            "ethereum-bsc-usdt": "ok",
            "ethereum-usdc-weth": "ok",
        }
        assert dict(record.headers() or [])["ce_type"] == b"stats.overview_updated"
        print(f"overview tick -> event published: {tick_to_event * 1000:.0f} ms")
    finally:
        resources.close()
