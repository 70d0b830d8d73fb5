"""`Settings` and `Resources` wired to the simulated market, the test database and test topics.

Upstream settings are set on the `Settings` instance itself (not through environment
variables), so a test's wiring is explicit and cannot leak into another test.
"""

from __future__ import annotations

from typing import Any

from local.market.server import SimulatedMarket
from shared.config import (
    BinanceSettings,
    CoinGeckoSettings,
    DexScreenerSettings,
    GeckoTerminalSettings,
    GoPlusSettings,
    Settings,
)
from shared.runtime.resources import Resources

# Retries that take milliseconds, and budgets no test run comes near (the market's own
# Binance weight limit still applies).
FAST_UPSTREAM: dict[str, Any] = {
    "timeout_seconds": 5.0,
    "max_retries": 2,
    "backoff_initial_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "rate_limit_per_minute": 100_000,
    "max_wait_seconds": 1.0,
}

_UPSTREAMS = {
    "binance": BinanceSettings,
    "coingecko": CoinGeckoSettings,
    "dexscreener": DexScreenerSettings,
    "geckoterminal": GeckoTerminalSettings,
    "goplus": GoPlusSettings,
}


def market_settings(
    market: SimulatedMarket, *, upstream: dict[str, dict[str, Any]] | None = None, **overrides: Any
) -> Settings:
    """Settings whose five upstream base URLs point at `market`; `overrides` set top-level fields.

    `upstream={"binance": {"max_retries": 0}}` changes one API's settings.
    """
    apis = {
        api: cls(**{**FAST_UPSTREAM, "base_url": market.base_url(api), **(upstream or {}).get(api, {})})
        for api, cls in _UPSTREAMS.items()
    }
    return Settings(**overrides, **apis)


def market_resources(market: SimulatedMarket, **settings_overrides: Any) -> Resources:
    """Fresh `Resources` (own pool, producer, upstream clients, USDT/USD rate cache) against `market`."""
    return Resources(market_settings(market, **settings_overrides))
