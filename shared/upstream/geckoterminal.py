"""GeckoTerminal public API: trending pools and on-chain token data (fallback source).

Budget: 30 calls/min, one limit for everything. Batch endpoints take up to 30 addresses
and silently drop unknown ones. JSON:API documents; every price is a decimal string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.config import GeckoTerminalSettings

from .batching import address_list_segment, chunks, path_segment, unique
from .http import UpstreamHttp

API = "geckoterminal"
BATCH = 30
# GeckoTerminal asks clients to pin the API version in Accept.
ACCEPT = "application/json;version=20230302"


class GeckoTerminalClient:
    """GeckoTerminal REST client over one `UpstreamHttp`."""

    def __init__(self, http: UpstreamHttp):
        self.http = http

    @classmethod
    def from_settings(cls, settings: GeckoTerminalSettings, **http_options: Any) -> GeckoTerminalClient:
        """Build the client and its HTTP layer."""
        return cls(UpstreamHttp(API, settings, headers={"accept": ACCEPT}, **http_options))

    def trending_pools(self, network: str | None = None, page: int = 1) -> dict[str, Any]:
        """Trending pools across all networks, or on one (`eth`, `solana`, ...), with tokens and dex included.

        Returns the JSON:API document: `data` (pools) and `included` (tokens, dexes, networks).
        """
        if network is None:
            path, include = "/api/v2/networks/trending_pools", "base_token,quote_token,dex,network"
        else:
            path = f"/api/v2/networks/{path_segment(network, 'network')}/trending_pools"
            include = "base_token,quote_token,dex"
        return self.http.get_json(path, {"include": include, "page": page}, expect=dict)

    def tokens_multi(self, network: str, addresses: Sequence[str]) -> dict[str, Any]:
        """Token data with the top pool for each address (30 per request), merged into one document."""
        net = path_segment(network, "network")
        merged: dict[str, Any] = {"data": [], "included": []}
        seen_included: set[Any] = set()
        for batch in chunks(unique(addresses), BATCH):
            path = f"/api/v2/networks/{net}/tokens/multi/{address_list_segment(batch)}"
            doc = self.http.get_json(path, {"include": "top_pools"}, expect=dict)
            merged["data"].extend(_items(doc.get("data")))
            for item in _items(doc.get("included")):
                key = item.get("id") if isinstance(item, dict) else None
                if key is None or key not in seen_included:
                    seen_included.add(key)
                    merged["included"].append(item)
        return merged

    def token_prices(self, network: str, addresses: Sequence[str]) -> dict[str, Any]:
        """USD prices by address (30 per request), merged into one `{data: {attributes: {token_prices}}}`.

        Every attribute map (`token_prices`, and any others the API adds) is merged across requests.
        """
        net = path_segment(network, "network")
        attributes: dict[str, Any] = {}
        merged: dict[str, Any] = {"data": {"type": "simple_token_price", "attributes": attributes}}
        for batch in chunks(unique(addresses), BATCH):
            path = f"/api/v2/simple/networks/{net}/token_price/{address_list_segment(batch)}"
            doc = self.http.get_json(path, expect=dict)
            data = doc.get("data")
            if isinstance(data, dict):
                merged["data"].setdefault("id", data.get("id"))
                for name, values in (data.get("attributes") or {}).items():
                    if isinstance(values, dict):
                        attributes.setdefault(name, {}).update(values)
        return merged


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
