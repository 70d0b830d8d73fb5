"""pytest fixtures for tests that talk to the simulated market over real HTTP.

Enable with `pytest_plugins = ["local.market.pytest_plugin"]` in the root conftest.py, or
import the fixtures into a test module. One market serves the whole session; each test gets
it back clean (no faults, zeroed stats, live clock, no latency (the quote providers' own
latency off too), fresh Binance weight and provider budgets).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from local.market.apis.bridges import QuoteApi
from local.market.apis.defillama import DefiLlamaApi
from local.market.apis.finnhub import FinnhubApi
from local.market.server import SimulatedMarket


def reset_market(market: SimulatedMarket) -> None:
    """Back to a clean state between tests."""
    market.faults.clear()
    market.stats.reset()
    market.clock.resume()
    market.configure(
        latency_ms=0,
        binance_weight_limit=6000,
        binance_ban_after_429s=5,
        binance_ban_seconds=120,
        binance_reset_weight=True,
    )
    finnhub = market.apis["finnhub"]
    if isinstance(finnhub, FinnhubApi):
        finnhub.configure(per_minute=60, per_second=30, reset=True)
    for name in ("lifi", "relay", "oneinch"):
        provider = market.apis[name]
        if isinstance(provider, QuoteApi):
            provider.configure(latency_scale=0.0, reset=True, slow_factor=Decimal(1))
    defillama = market.apis["defillama"]
    if isinstance(defillama, DefiLlamaApi):
        defillama.configure(latency_scale=0.0)


@pytest.fixture(scope="session")
def simulated_market_session() -> Iterator[SimulatedMarket]:
    """The session's market on a free port of 127.0.0.1 (default seed and 150-token universe)."""
    with SimulatedMarket() as market:
        yield market


@pytest.fixture
def simulated_market(simulated_market_session: SimulatedMarket) -> Iterator[SimulatedMarket]:
    """The session's market, reset before and after the test."""
    reset_market(simulated_market_session)
    yield simulated_market_session
    reset_market(simulated_market_session)


@pytest.fixture
def simulated_market_env(simulated_market: SimulatedMarket, monkeypatch: pytest.MonkeyPatch) -> SimulatedMarket:
    """The market, with BINANCE_BASE_URL, COINGECKO_BASE_URL, ... pointing at it for this test."""
    for name, value in simulated_market.env().items():
        monkeypatch.setenv(name, value)
    return simulated_market
