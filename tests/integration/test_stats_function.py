"""The stats handler on real Kafka and PostgreSQL, against the simulated JSON-RPC nodes:
change-only `stats.chain_performance_updated` events keyed by chain, and the tick-to-event time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from local.market.server import SimulatedMarket
from shared.config import Settings
from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.runtime.resources import Resources
from shared.stats.collect import ChainConfig
from shared.stats.pipeline import run_stats_tick
from shared.stats.settings import StatsSettings
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
