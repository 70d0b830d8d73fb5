"""GeckoTerminal public API v2: trending pools, tokens/multi, token, simple token_price.

JSON:API shapes of the geckoterminal.*.json samples: resources with `id` = `<network>_<address>`
(EVM lower-case, Solana as written), `attributes`, `relationships`, and `included` when asked
with `include=`. Every price and amount is a decimal STRING; transaction counts are integers;
`market_cap_usd` is null for tokens CoinGecko does not list. Unknown addresses are silently
dropped; more than 30 addresses is a 400.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from local.market import wire
from local.market.apis.base import (
    Api,
    ApiError,
    Request,
    Response,
    html_error_page,
    json_response,
    retry_after_header,
    split_list,
)
from local.market.apis.common import change_percent, iso_seconds, significant
from local.market.chains import BY_GECKOTERMINAL_NETWORK, Chain, QuoteAsset, canonical_address
from local.market.pools import Pool, liquidity_usd, main_pool
from local.market.prices import EXACT
from local.market.universe import Token

MAX_ADDRESSES = 30
PAGE_SIZE = 20
_WINDOWS = (("m5", 300), ("m15", 900), ("m30", 1800), ("h1", 3600), ("h6", 21600), ("h24", 86400))
_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    418: "I'm a teapot",
    429: "Too Many Requests",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _error(status: int, title: str | None = None) -> ApiError:
    return ApiError(
        json_response({"errors": [{"status": str(status), "title": title or _REASONS.get(status, "Error")}]}, status)
    )


class GeckoTerminalApi(Api):
    """The on-chain endpoints the trending pipeline falls back to."""

    name = "geckoterminal"

    def __init__(self, universe, clock) -> None:
        super().__init__(universe, clock)
        self.route("GET", "/api/v2/networks/trending_pools", self.trending_pools)
        self.route("GET", "/api/v2/networks/{network}/trending_pools", self.network_trending_pools)
        self.route("GET", "/api/v2/networks/{network}/tokens/multi/{addresses}", self.tokens_multi)
        self.route("GET", "/api/v2/networks/{network}/tokens/{address}", self.token)
        self.route("GET", "/api/v2/simple/networks/{network}/token_price/{addresses}", self.simple_token_price)

    # --- endpoints -------------------------------------------------------------------------------

    def trending_pools(self, request: Request) -> Response:
        return self._trending(request, None)

    def network_trending_pools(self, request: Request, network: str) -> Response:
        return self._trending(request, _network(network))

    def tokens_multi(self, request: Request, network: str, addresses: str) -> Response:
        chain = _network(network)
        wanted = _addresses(addresses)
        if len(wanted) > MAX_ADDRESSES:
            raise _error(400, f"at most {MAX_ADDRESSES} addresses per request")
        second = self.clock.second()
        tokens = []
        for address in wanted:
            token = self.universe.by_contract(chain.slug, address)
            if token is not None and token not in tokens:
                tokens.append(token)
        include_pools = "top_pools" in split_list(request.param("include"))
        body: dict = {"data": [self._token(t, chain, second) for t in tokens]}
        if include_pools:
            pools = [p for t in tokens if (p := main_pool(self.universe, t, chain.slug)) is not None]
            body["included"] = [self._pool(p, second, with_network=False) for p in pools]
        return json_response(body)

    def token(self, request: Request, network: str, address: str) -> Response:
        chain = _network(network)
        token = self.universe.by_contract(chain.slug, address)
        if token is None:
            raise _error(404)
        second = self.clock.second()
        body: dict = {"data": self._token(token, chain, second)}
        if "top_pools" in split_list(request.param("include")):
            pool = main_pool(self.universe, token, chain.slug)
            body["included"] = [self._pool(pool, second, with_network=False)] if pool else []
        return json_response(body)

    def simple_token_price(self, request: Request, network: str, addresses: str) -> Response:
        chain = _network(network)
        wanted = _addresses(addresses)
        if len(wanted) > MAX_ADDRESSES:
            raise _error(400, f"at most {MAX_ADDRESSES} addresses per request")
        second = self.clock.second()
        prices, caps, volumes, changes, reserves, trades = {}, {}, {}, {}, {}, {}
        for address in wanted:
            token = self.universe.by_contract(chain.slug, address)
            if token is None:
                continue
            key = canonical_address(chain, address)
            price = self.universe.prices.usd(token, second)
            prices[key] = wire.plain(price)
            caps[key] = wire.plain(self.universe.market_cap_usd(token, second)) if token.coingecko_id else None
            pool = main_pool(self.universe, token, chain.slug)
            volumes[key] = wire.plain(pool.volume_24h_usd) if pool else "0.0"
            changes[key] = wire.plain(change_percent(self.universe, token, second, 86400, 12))
            reserves[key] = wire.plain(liquidity_usd(token))
            trades[key] = str(second - 7)
        attributes: dict = {"token_prices": prices}
        if request.flag("include_market_cap", False):
            attributes["market_cap_usd"] = caps
        if request.flag("include_24hr_vol", False):
            attributes["h24_volume_usd"] = volumes
        if request.flag("include_24hr_price_change", False):
            attributes["h24_price_change_percentage"] = changes
        if request.flag("include_total_reserve_in_usd", False):
            attributes["total_reserve_in_usd"] = reserves
        if request.flag("include_inactive_source", False) or attributes.keys() - {"token_prices"}:
            attributes["last_trade_timestamp"] = trades
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{network}/{addresses}/{second}"))
        return json_response({"data": {"id": request_id, "type": "simple_token_price", "attributes": attributes}})

    # --- bodies ------------------------------------------------------------------------------------

    def _trending(self, request: Request, chain: Chain | None) -> Response:
        includes = set(split_list(request.param("include")))
        page = request.param("page") or "1"
        if not page.isdigit() or int(page) < 1:
            raise _error(400, "page must be a positive integer")
        second = self.clock.second()
        pools = [
            p
            for t in self.universe.trending()
            if (chain is None or t.chain == chain.slug) and (p := main_pool(self.universe, t)) is not None
        ]
        start = (int(page) - 1) * PAGE_SIZE
        pools = pools[start : start + PAGE_SIZE]
        body: dict = {"data": [self._pool(p, second, with_network=chain is None, trending=True) for p in pools]}
        if includes:
            included, seen = [], set()
            for pool in pools:
                resources = []
                if "base_token" in includes:
                    resources.append(self._token_stub(pool.token, pool))
                if "quote_token" in includes:
                    resources.append(_quote_stub(pool.chain, pool.quote, pool.quote_address))
                if "dex" in includes:
                    resources.append({"id": pool.dex.gt_id, "type": "dex", "attributes": {"name": pool.dex.gt_name}})
                if "network" in includes and chain is None:
                    resources.append(
                        {
                            "id": pool.chain.geckoterminal_network,
                            "type": "network",
                            "attributes": {
                                "name": pool.chain.name,
                                "coingecko_asset_platform_id": pool.chain.coingecko_platform,
                            },
                        }
                    )
                for resource in resources:
                    if resource["id"] not in seen:
                        seen.add(resource["id"])
                        included.append(resource)
            body["included"] = included
        return json_response(body)

    def _pool(self, pool: Pool, second: int, with_network: bool, trending: bool = False) -> dict:
        universe, token, chain = self.universe, pool.token, pool.chain
        network = chain.geckoterminal_network
        price = pool.price_usd(universe, second)
        quote_usd = pool.quote_price_usd(universe, second)
        native_usd = universe.prices.usd(universe.by_key[chain.native_quote.pegged_to], second)
        volume = pool.volume_24h_usd
        attributes: dict = {
            "base_token_price_usd": wire.plain(price),
            "base_token_price_native_currency": wire.plain(significant(EXACT.divide(price, native_usd), 18)),
            "quote_token_price_usd": wire.plain(quote_usd),
            "quote_token_price_native_currency": wire.plain(significant(EXACT.divide(quote_usd, native_usd), 18)),
            "base_token_price_quote_token": wire.plain(significant(EXACT.divide(price, quote_usd), 10)),
            "quote_token_price_base_token": wire.plain(significant(EXACT.divide(quote_usd, price), 10)),
            "address": pool.address,
            "name": f"{token.symbol} / {pool.quote.symbol}",
            "pool_created_at": iso_seconds(pool.created_at_ms // 1000),
            "fdv_usd": wire.plain((price * token.total_supply).quantize(Decimal("0.000001"))),
            "market_cap_usd": wire.plain(universe.market_cap_usd(token, second)) if token.coingecko_id else None,
            "price_change_percentage": {
                w: wire.plain(change_percent(universe, token, second, s, 3)) for w, s in _WINDOWS
            },
            "transactions": {w: _trades(volume, s) for w, s in _WINDOWS},
            "volume_usd": {w: wire.plain((volume * s / 86400).quantize(Decimal("0.0000001"))) for w, s in _WINDOWS},
            "reserve_in_usd": wire.plain(pool.liquidity_usd),
        }
        if trending:
            rank = token.rank_in_trending
            attributes["sentiment_vote_positive_percentage"] = Decimal(80 + rank % 20)
            attributes["sentiment_vote_negative_percentage"] = Decimal(20 - rank % 20)
            attributes["community_sus_report"] = rank % 7
        relationships: dict = {
            "base_token": {"data": {"id": f"{network}_{pool.contract.canonical_address}", "type": "token"}},
            "quote_token": {
                "data": {"id": f"{network}_{canonical_address(chain, pool.quote_address)}", "type": "token"}
            },
        }
        if with_network:
            relationships["network"] = {"data": {"id": network, "type": "network"}}
        relationships["dex"] = {"data": {"id": pool.dex.gt_id, "type": "dex"}}
        return {
            "id": f"{network}_{pool.address}",
            "type": "pool",
            "attributes": attributes,
            "relationships": relationships,
        }

    def _token(self, token: Token, chain: Chain, second: int) -> dict:
        contract = token.contract_on(chain.slug)
        if contract is None:
            raise ValueError(f"{token.key} has no contract on {chain.slug}")
        pool = main_pool(self.universe, token, chain.slug)
        price = self.universe.prices.usd(token, second)
        raw_supply = token.total_supply * (Decimal(10) ** contract.decimals)
        attributes = self._token_stub(token, pool)["attributes"] | {
            "total_supply": f"{raw_supply:f}.0",
            "normalized_total_supply": wire.plain(token.total_supply),
            "price_usd": wire.plain(price),
            "fdv_usd": wire.plain((price * token.total_supply).quantize(Decimal("0.001"))),
            "total_reserve_in_usd": wire.plain(liquidity_usd(token)),
            "volume_usd": {"h24": wire.plain(pool.volume_24h_usd) if pool else "0.0"},
            "market_cap_usd": wire.plain(self.universe.market_cap_usd(token, second)) if token.coingecko_id else None,
        }
        network = chain.geckoterminal_network
        top = [{"id": f"{network}_{pool.address}", "type": "pool"}] if pool else []
        return {
            "id": f"{network}_{contract.canonical_address}",
            "type": "token",
            "attributes": attributes,
            "relationships": {"top_pools": {"data": top}},
        }

    def _token_stub(self, token: Token, pool: Pool | None) -> dict:
        chain = pool.chain if pool else None
        contract = pool.contract if pool else token.contracts[0]
        network = chain.geckoterminal_network if chain else ""
        image = (
            f"https://coin-images.coingecko.com/coins/images/{token.image_id}/large/{token.coingecko_id}.png"
            if token.coingecko_id
            else f"https://assets.geckoterminal.com/{token.image_id:x}"
        )
        return {
            "id": f"{network}_{contract.canonical_address}",
            "type": "token",
            "attributes": {
                "address": contract.canonical_address,
                "name": token.name,
                "symbol": token.symbol,
                "decimals": contract.decimals,
                "image_url": image,
                "coingecko_coin_id": token.coingecko_id,
            },
        }

    # --- Api hooks ---------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return _error(404).response

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 502:
            return html_error_page(502, "Bad Gateway")
        response = _error(status).response
        response.headers.extend(retry_after_header(retry_after))
        return response


def _network(network: str) -> Chain:
    chain = BY_GECKOTERMINAL_NETWORK.get(network)
    if chain is None:
        raise _error(404)
    return chain


def _addresses(value: str) -> list[str]:
    return [a.strip() for a in value.split(",") if a.strip()]


def _quote_stub(chain: Chain, quote: QuoteAsset, address: str) -> dict:
    canonical = canonical_address(chain, address)
    return {
        "id": f"{chain.geckoterminal_network}_{canonical}",
        "type": "token",
        "attributes": {
            "address": canonical,
            "name": quote.name,
            "symbol": quote.symbol,
            "decimals": quote.decimals,
            "image_url": f"https://coin-images.coingecko.com/coins/images/1/large/{quote.coingecko_id}.png",
            "coingecko_coin_id": quote.coingecko_id or None,
        },
    }


def _trades(volume: Decimal, window: int) -> dict:
    count = int(volume * window / 86400 / 420)
    return {
        "buys": count // 2 + count % 3,
        "sells": count // 2,
        "buyers": count // 3 + 1 if count else 0,
        "sellers": count // 3,
    }
