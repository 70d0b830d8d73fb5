"""Upstream efficiency: requests per tick per API against the least the APIs allow.

The minimum for a token set (`bench.system.SeededSet`), per 5-s tick:

- Binance: 1 — `GET /api/v3/ticker/price` without parameters returns every pair for
  weight 4 (INDEX.md), whatever the token count; plus `exchangeInfo` (weight 20) once an
  hour to see halted pairs, i.e. 5/3600 per tick.
- DexScreener: one `tokens/v1/<chain>/<up to 30 addresses>` per 30 tokens per chain, for
  the tokens Binance does not quote.
- CoinGecko: one `simple/price` for every token left (it takes many ids), plus the
  USDT/USD rate, reused for 120 s: 5/120 per tick when any price is quoted in USD.
"""

from __future__ import annotations

import math
from typing import Any

from bench.system import SeededSet

DEXSCREENER_BATCH = 30
TICK_SECONDS = 5.0
USDT_RATE_REUSE_SECONDS = 120.0
LISTING_REUSE_SECONDS = 3600.0
APIS = ("binance", "dexscreener", "coingecko")

# Documented per-minute limits (tests/fixtures/upstream/INDEX.md) the per-tick rate is held against.
LIMITS_PER_MINUTE = {
    "binance": ("weight", 6000),
    "dexscreener": ("requests", 300),
    "coingecko": ("requests", 30),  # keyless/demo, the lower documented figure
}
BINANCE_WEIGHT = {"/api/v3/ticker/price": 4, "/api/v3/exchangeInfo": 20}


def minimum_per_tick(seeded: SeededSet) -> dict[str, float]:
    """The fewest requests per tick each API allows for this set (module docstring)."""
    quoted_in_usd = sum(seeded.dex_by_chain.values()) + seeded.coingecko_only
    return {
        "binance": (1 + TICK_SECONDS / LISTING_REUSE_SECONDS) if seeded.on_binance else 0.0,
        "dexscreener": float(sum(math.ceil(n / DEXSCREENER_BATCH) for n in seeded.dex_by_chain.values())),
        "coingecko": (1.0 if seeded.coingecko_only else 0.0)
        + (TICK_SECONDS / USDT_RATE_REUSE_SECONDS if quoted_in_usd else 0.0),
    }


def observed_per_tick(stats: dict[str, Any], ticks: float) -> dict[str, float]:
    """Requests per tick per API from the market's counters over a window of `ticks` ticks."""
    apis = stats.get("apis", {})
    return {api: (apis.get(api, {}).get("total", 0) / ticks if ticks else 0.0) for api in APIS}


def per_minute_against_limit(stats: dict[str, Any], window_seconds: float) -> dict[str, tuple[float, int, str]]:
    """Per API: (used per minute, documented limit, unit) — Binance in request weight."""
    apis = stats.get("apis", {})
    scale = 60.0 / window_seconds
    used: dict[str, tuple[float, int, str]] = {}
    for api, (unit, limit) in LIMITS_PER_MINUTE.items():
        routes = apis.get(api, {}).get("routes", {})
        if api == "binance":
            amount = sum(n * BINANCE_WEIGHT.get(route, 1) for route, n in routes.items())
        else:
            amount = sum(routes.values())
        used[api] = (amount * scale, limit, unit)
    return used
