"""One bridge sample per provider against the simulated LI.FI, Relay and 1inch over real HTTP:
their real formats, latencies and budgets, and every fault as a status with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from local.market.apis.bridges import QuoteApi
from local.market.server import SimulatedMarket
from shared.config import UpstreamSettings
from shared.stats.bridges import BridgeRoute, BridgeStatus, Provider, TokenSide
from shared.stats.sampling import sample_route
from shared.stats.settings import USDC_BASE, USDC_ETHEREUM, USDT_BSC, USDT_ETHEREUM, WETH_ETHEREUM
from shared.upstream.http import UpstreamHttp

BSC = BridgeRoute(
    name="ethereum-bsc-usdt",
    source=USDT_ETHEREUM,
    destination=USDT_BSC,
    amount=Decimal(1000),
    providers=("lifi", "relay"),
)
BASE = BridgeRoute(
    name="ethereum-base-usdc",
    source=USDC_ETHEREUM,
    destination=USDC_BASE,
    amount=Decimal(1000),
    providers=("lifi", "relay"),
)
SWAP = BridgeRoute(
    name="ethereum-usdc-weth",
    source=USDC_ETHEREUM,
    destination=WETH_ETHEREUM,
    amount=Decimal(1000),
    providers=("oneinch",),
)
NOWHERE = TokenSide(chain_id=8453, token="0x" + "ab" * 20, symbol="NOPE", decimals=18)


@pytest.fixture
def market() -> Iterator[SimulatedMarket]:
    with SimulatedMarket(port=0) as running:
        yield running


def client(market: SimulatedMarket, provider: Provider, key: str | None = None) -> UpstreamHttp:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    settings = UpstreamSettings(base_url=market.base_url(provider), max_retries=0, max_wait_seconds=2)
    return UpstreamHttp(provider, settings, headers=headers)


def test_each_provider_quotes_in_its_format_with_its_own_latency(market: SimulatedMarket) -> None:
    lifi = sample_route(BSC, "lifi", client(market, "lifi"))
    relay = sample_route(BSC, "relay", client(market, "relay"))
    oneinch = sample_route(SWAP, "oneinch", client(market, "oneinch", key="k"))
    assert [s.status for s in (lifi, relay, oneinch)] == [BridgeStatus.OK] * 3
    assert lifi.estimate and relay.estimate and oneinch.estimate
    # 1000 USDT (6 decimals) in; out in BSC USDT's 18 decimals, less the simulated fees.
    assert Decimal(997) < lifi.estimate.output_amount < Decimal(1000)
    assert lifi.estimate.output_base_units == int(lifi.estimate.output_amount.scaleb(18))
    assert (lifi.estimate.duration_seconds, lifi.estimate.fees_usd) == (Decimal(420), Decimal("2.09"))
    assert (relay.estimate.duration_seconds, relay.estimate.fees_usd) == (Decimal(20), Decimal("1.63"))
    assert oneinch.estimate.duration_seconds is None and Decimal("0.47") < oneinch.estimate.output_amount < Decimal(
        "0.48"
    )
    assert lifi.response_seconds > 0.05 and relay.response_seconds > 0.02  # each its own simulated latency


def test_faults_are_statuses_with_their_reason_never_statistics(market: SimulatedMarket) -> None:
    unknown = BASE.model_copy(update={"destination": NOWHERE})
    no_route = sample_route(unknown, "lifi", client(market, "lifi"))
    assert (no_route.status, no_route.estimate) == (BridgeStatus.NO_ROUTE, None)
    assert "1002" in no_route.detail
    invalid = sample_route(unknown, "relay", client(market, "relay"))
    assert invalid.status is BridgeStatus.ERROR and "INVALID_INPUT_CURRENCY" in invalid.detail  # our configuration
    assert sample_route(SWAP, "oneinch", client(market, "oneinch")).status is BridgeStatus.ERROR  # no key: 401

    lifi_sim = market.apis["lifi"]
    assert isinstance(lifi_sim, QuoteApi)
    lifi_sim.configure(budget=1, reset=True, latency_scale=0)
    http = client(market, "lifi")
    assert sample_route(BASE, "lifi", http).status is BridgeStatus.OK
    spent = sample_route(BASE, "lifi", http)
    assert spent.status is BridgeStatus.RATE_LIMITED and "1005" in spent.detail

    relay = client(market, "relay")
    market.faults.add("malformed", api="relay")
    assert sample_route(BASE, "relay", relay).status is BridgeStatus.ANOMALY
    market.faults.add("hostile", api="relay")
    hostile = sample_route(BASE, "relay", relay)
    assert hostile.status is BridgeStatus.ANOMALY and hostile.estimate is None
    market.faults.add("503", api="relay")
    assert sample_route(BASE, "relay", relay).status is BridgeStatus.ERROR
    assert sample_route(BASE, "relay", relay).status is BridgeStatus.OK  # one fault, then well again
