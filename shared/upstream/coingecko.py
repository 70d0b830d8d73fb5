"""CoinGecko aggregated market data: the top-100 list, metadata, stablecoins, USD prices.

Budget: keyless 5-30 calls/min per IP (plan for the lower); every call counts, errors
too, so slow-changing lists are cached. Prices are JSON numbers: decoded as Decimal they
stay exactly as printed (7.82e-11 stays 7.82E-11).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.config import CoinGeckoSettings

from .batching import address_list_segment, chunks, path_segment, unique
from .cache import TtlCache
from .http import UpstreamHttp

API = "coingecko"
MARKETS_PATH = "/api/v3/coins/markets"
COINS_LIST_PATH = "/api/v3/coins/list"
SIMPLE_PRICE_PATH = "/api/v3/simple/price"
TRENDING_PATH = "/api/v3/search/trending"
MAX_PER_PAGE = 250
TOKEN_PRICE_BATCH = 100  # the API takes more (515); 100 keeps URLs short
STABLECOINS_TTL_SECONDS = 24 * 3600.0
COINS_LIST_TTL_SECONDS = 3600.0


class CoinGeckoClient:
    """CoinGecko REST client over one `UpstreamHttp`."""

    def __init__(
        self,
        http: UpstreamHttp,
        *,
        stablecoins_ttl_seconds: float = STABLECOINS_TTL_SECONDS,
        coins_list_ttl_seconds: float = COINS_LIST_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.http = http
        self._stablecoins = TtlCache(stablecoins_ttl_seconds, self._load_stablecoin_ids, clock)
        self._coins_list = TtlCache(coins_list_ttl_seconds, self._load_coins_list, clock)

    @classmethod
    def from_settings(cls, settings: CoinGeckoSettings, **http_options: Any) -> CoinGeckoClient:
        """Build the client and its HTTP layer; the API key (if any) goes in a header."""
        http = UpstreamHttp(API, settings, headers=api_key_header(settings), **http_options)
        return cls(http, clock=http_options.get("clock", time.monotonic))

    def top_markets(self, limit: int, page: int = 1) -> list[dict[str, Any]]:
        """Coins by market cap, descending: `limit` (1-250) per page, 1-based `page`."""
        if not 1 <= limit <= MAX_PER_PAGE or page < 1:
            raise ValueError(f"limit must be 1-{MAX_PER_PAGE} and page >= 1, got limit={limit} page={page}")
        params = {"vs_currency": "usd", "order": "market_cap_desc", "per_page": limit, "page": page}
        return self.http.get_json(MARKETS_PATH, params, expect=list)

    def stablecoin_ids(self) -> frozenset[str]:
        """CoinGecko ids of the 250 largest coins in the "stablecoins" category (cached 24 h)."""
        return self._stablecoins.get()

    def coins_list_with_platforms(self) -> list[dict[str, Any]]:
        """Every coin with its contract per platform: `[{id, symbol, name, platforms}]` (cached 1 h)."""
        return self._coins_list.get()

    def coin_detail(self, coin_id: str) -> dict[str, Any]:
        """Metadata of one coin (links, platforms, categories, image), without tickers or market data."""
        path = f"/api/v3/coins/{path_segment(coin_id, 'coin id')}"
        params = {
            "localization": "false",
            "tickers": "false",
            "market_data": "false",
            "community_data": "false",
            "developer_data": "false",
            "sparkline": "false",
        }
        return self.http.get_json(path, params, expect=dict)

    def simple_price(self, ids: Sequence[str], vs: str = "usd") -> dict[str, Any]:
        """`{coin id: {vs: price}}` for the given ids, in one request."""
        wanted = unique(ids)
        if not wanted:
            return {}
        params = {"ids": ",".join(wanted), "vs_currencies": vs}
        return self.http.get_json(SIMPLE_PRICE_PATH, params, expect=dict)

    def token_prices(self, platform_id: str, addresses: Sequence[str], vs: str = "usd") -> dict[str, Any]:
        """`{contract address: {vs: price}}` on one asset platform; 100 addresses per request.

        Keys come back in the API's case (lower-case hex for EVM): normalise before lookup.
        """
        path = f"/api/v3/simple/token_price/{path_segment(platform_id, 'platform id')}"
        merged: dict[str, Any] = {}
        for batch in chunks(unique(addresses), TOKEN_PRICE_BATCH):
            address_list_segment(batch)  # validates: no commas inside one address
            params = {"contract_addresses": ",".join(batch), "vs_currencies": vs}
            merged.update(self.http.get_json(path, params, expect=dict))
        return merged

    def trending(self) -> dict[str, Any]:
        """GET /api/v3/search/trending: `{coins: [{item: {...}}], nfts, categories}`."""
        return self.http.get_json(TRENDING_PATH, expect=dict)

    def _load_stablecoin_ids(self) -> frozenset[str]:
        params = {"vs_currency": "usd", "category": "stablecoins", "per_page": MAX_PER_PAGE, "page": 1}
        coins = self.http.get_json(MARKETS_PATH, params, expect=list)
        return frozenset(c["id"] for c in coins if isinstance(c, dict) and isinstance(c.get("id"), str))

    def _load_coins_list(self) -> list[dict[str, Any]]:
        return self.http.get_json(COINS_LIST_PATH, {"include_platform": "true"}, expect=list)


def api_key_header(settings: CoinGeckoSettings) -> dict[str, str]:
    """The key header: `x-cg-pro-api-key` on the paid host, `x-cg-demo-api-key` otherwise."""
    if not settings.api_key:
        return {}
    name = "x-cg-pro-api-key" if "pro-api." in settings.base_url else "x-cg-demo-api-key"
    return {name: settings.api_key}
