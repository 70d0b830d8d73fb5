"""DexScreener: token boosts and profiles (trending discovery) and token pairs (prices, pools).

Shapes follow the dexscreener.*.json samples: bare arrays for boosts, profiles and
/tokens/v1; {schemaVersion, pairs} with `pairs: null` when nothing matched on the legacy
/latest/dex/tokens. priceNative/priceUsd are decimal strings; volume, liquidity, fdv and
marketCap are JSON numbers. EVM addresses come back EIP-55 checksummed while `url` paths are
lower-cased; profiles write EVM token addresses lower-case (as in the recorded sample).
Optional keys are really optional: `labels`, `info`, `fdv`/`marketCap` and `priceChange.m5`
are missing for some pairs, `priceUsd` for pairs against an obscure quote token.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from local.market import wire
from local.market.apis.base import Api, ApiError, Request, Response, html_error_page, json_response, retry_after_header
from local.market.apis.common import change_percent
from local.market.chains import CHAINS
from local.market.pools import Pool, pools_of
from local.market.prices import EXACT
from local.market.universe import Token

MAX_ADDRESSES = 30
SCHEMA_VERSION = "1.0.0"
# A boost on a chain the crawler does not follow: clients must skip what they cannot map.
_FOREIGN_BOOST = {
    "url": "https://dexscreener.com/ton/eqbq3w7yo2ml5p2yjbvbwnhhr1frx5r4f5jnzkffnjw5svgm",
    "chainId": "ton",
    "tokenAddress": "EQBq3w7yO2mL5P2YjbvBwNHhr1FrX5R4F5JnZkFFnjw5SVgm",
    "icon": "5c1b1f0a0c3f6b8e4d2a9f7e6c5b4a3928171615141312111009080706050403",
    "links": [{"type": "telegram", "url": "https://t.me/simulated_ton_token"}],
    "totalAmount": 50,
    "amount": 50,
}


def _reason(status: int) -> str:
    return {
        400: "Bad Request",
        404: "Not Found",
        418: "I'm a teapot",
        429: "Too Many Requests",
        451: "Unavailable For Legal Reasons",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "Error")


def _error(status: int, message: str) -> ApiError:
    return ApiError(json_response({"statusCode": status, "error": _reason(status), "message": message}, status))


class DexScreenerApi(Api):
    """Boosts, profiles, /tokens/v1, /token-pairs/v1 and the legacy /latest/dex/tokens."""

    name = "dexscreener"

    def __init__(self, universe, clock) -> None:
        super().__init__(universe, clock)
        self.route("GET", "/token-boosts/top/v1", self.boosts_top)
        self.route("GET", "/token-boosts/latest/v1", self.boosts_latest)
        self.route("GET", "/token-profiles/latest/v1", self.profiles_latest)
        self.route("GET", "/tokens/v1/{chainId}/{tokenAddresses}", self.tokens_v1)
        self.route("GET", "/token-pairs/v1/{chainId}/{tokenAddress}", self.token_pairs_v1)
        self.route("GET", "/latest/dex/tokens/{tokenAddresses}", self.latest_dex_tokens)

    # --- endpoints -------------------------------------------------------------------------------

    def boosts_top(self, request: Request) -> Response:
        trending = self.universe.trending()
        return json_response(
            [
                self._boost(t, total=1000 - 40 * t.rank_in_trending, amount=500 - 20 * t.rank_in_trending)
                for t in trending
            ]
        )

    def boosts_latest(self, request: Request) -> Response:
        trending = self.universe.trending()
        items = [
            self._boost(t, total=1000 - 40 * t.rank_in_trending, amount=10 * (1 + t.rank_in_trending % 5))
            for t in reversed(trending)
        ]
        # A token boosted twice appears twice, and a chain nobody maps appears too.
        items.insert(3, self._boost(trending[0], total=1000 - 40 * trending[0].rank_in_trending, amount=100))
        items.insert(5, _FOREIGN_BOOST)
        return json_response(items)

    def profiles_latest(self, request: Request) -> Response:
        return json_response([self._profile(t) for t in self.universe.trending()])

    def tokens_v1(self, request: Request, chainId: str, tokenAddresses: str) -> Response:
        pairs = []
        for address in _addresses(tokenAddresses):
            token = self.universe.by_contract(chainId, address)
            if token is not None:
                pairs.extend(self._pairs(token, chainId))
        return json_response(pairs)

    def token_pairs_v1(self, request: Request, chainId: str, tokenAddress: str) -> Response:
        token = self.universe.by_contract(chainId, tokenAddress)
        return json_response(self._pairs(token, chainId) if token else [])

    def latest_dex_tokens(self, request: Request, tokenAddresses: str) -> Response:
        pairs = []
        for address in _addresses(tokenAddresses):
            for token, contract in self.universe.by_address(address):
                pairs.extend(self._pairs(token, contract.chain))
        return json_response({"schemaVersion": SCHEMA_VERSION, "pairs": pairs or None})

    # --- bodies ------------------------------------------------------------------------------------

    def _pairs(self, token: Token, chain: str) -> list[dict]:
        second = self.clock.second()
        return [self._pair(pool, second) for pool in pools_of(self.universe, token, chain)]

    def _pair(self, pool: Pool, second: int) -> dict:
        universe, token, chain = self.universe, pool.token, pool.chain
        price_usd = pool.price_usd(universe, second)
        zero = pool.quirk == "zero_liquidity"
        volume = Decimal(0) if zero else pool.volume_24h_usd
        pair: dict = {
            "chainId": chain.slug,
            "dexId": pool.dex.dex_id,
            "url": f"https://dexscreener.com/{chain.slug}/{pool.address.lower()}",
            "pairAddress": pool.display_address,
        }
        if pool.dex.label:
            pair["labels"] = [pool.dex.label]
        pair["baseToken"] = {"address": pool.contract.address, "name": token.name, "symbol": token.symbol}
        pair["quoteToken"] = {"address": pool.quote_address, "name": pool.quote.name, "symbol": pool.quote.symbol}
        pair["priceNative"] = wire.plain(pool.price_native(universe, second))
        if pool.has_price_usd:
            pair["priceUsd"] = wire.plain(price_usd)
        trades = int(volume / 350) if volume else 0
        pair["txns"] = {
            window: {"buys": trades * share // 200, "sells": trades * share // 190}
            for window, share in (("m5", 1), ("h1", 9), ("h6", 50), ("h24", 200))
        }
        pair["volume"] = {
            window: _js((volume * Decimal(share)).quantize(Decimal("0.01")))
            for window, share in (("h24", 1), ("h6", "0.27"), ("h1", "0.045"), ("m5", "0.004"))
        }
        changes = {
            window: _js(change_percent(universe, token, second, seconds, 2))
            for window, seconds in (("m5", 300), ("h1", 3600), ("h6", 21600), ("h24", 86400))
        }
        if token.index % 4 == 1:  # as in the recorded WETH pair, m5 is sometimes missing
            del changes["m5"]
        pair["priceChange"] = changes
        if zero:
            pair["liquidity"] = {"usd": 0, "base": 0, "quote": 0}
        else:
            half = pool.liquidity_usd / 2
            pair["liquidity"] = {
                "usd": _js(pool.liquidity_usd),
                "base": _js(_amount(EXACT.divide(half, price_usd))),
                "quote": _js(_amount(EXACT.divide(half, pool.quote_price_usd(universe, second)))),
            }
        if token.coingecko_id is not None or token.index % 2 == 0:  # like the WSOL sample, some pairs lack both
            pair["fdv"] = (price_usd * token.total_supply).quantize(Decimal(1))
            pair["marketCap"] = (price_usd * token.circulating_supply).quantize(Decimal(1))
        pair["pairCreatedAt"] = pool.created_at_ms
        if token.trending_rank is not None or token.index % 3 != 0:
            pair["info"] = self._info(token, pool)
        if token.trending_rank is not None:
            pair["boosts"] = {"active": max(1, 30 - token.trending_rank)}
        return pair

    def _info(self, token: Token, pool: Pool) -> dict:
        slug = token.symbol.lower()
        info: dict[str, Any] = {
            "imageUrl": f"https://dd.dexscreener.com/ds-data/tokens/{pool.chain.slug}/{pool.contract.address}.png"
        }
        if token.trending_rank is not None:
            info["header"] = (
                f"https://dd.dexscreener.com/ds-data/tokens/{pool.chain.slug}/{pool.contract.address}/header.png"
            )
        info["openGraph"] = (
            f"https://cdn.dexscreener.com/token-images/og/{pool.chain.slug}/{pool.contract.address}"
            "?timestamp=1791138900000"
        )
        info["websites"] = [{"label": "Website", "url": f"https://{slug}.example.org"}] if token.index % 5 else []
        info["socials"] = [
            {"type": "twitter", "url": f"https://x.com/{slug}"},
            {"type": "telegram", "url": f"https://t.me/{slug}"},
        ][: 1 + token.index % 2]
        return info

    def _boost(self, token: Token, total: int, amount: int) -> dict:
        contract = token.contracts[0]
        item: dict[str, Any] = {
            "url": f"https://dexscreener.com/{contract.chain}/{contract.canonical_address.lower()}",
            "chainId": contract.chain,
            "tokenAddress": contract.address,
        }
        if token.rank_in_trending % 4:
            item["description"] = f"{token.name} is trending on the simulated market."
        item["icon"] = hashlib.sha256(token.key.encode()).hexdigest()  # a bare image id, not a URL
        if token.rank_in_trending % 3:
            item["header"] = f"https://cdn.dexscreener.com/cms/images/{item['icon'][:40]}?width=900&height=300&fit=crop"
        item["openGraph"] = (
            f"https://cdn.dexscreener.com/token-images/og/{contract.chain}/{contract.address}?timestamp=1768671900000"
        )
        item["links"] = [
            {"url": f"https://{token.symbol.lower()}.example.org/"},
            {"type": "twitter", "url": f"https://x.com/{token.symbol.lower()}"},
        ]
        item["totalAmount"] = total
        item["amount"] = amount
        return item

    def _profile(self, token: Token) -> dict:
        contract = token.contracts[0]
        address = contract.canonical_address  # EVM lower-case here, as recorded
        item: dict[str, Any] = {
            "url": f"https://dexscreener.com/{contract.chain}/{address.lower()}",
            "chainId": contract.chain,
            "tokenAddress": address,
            "icon": f"https://dd.dexscreener.com/ds-data/tokens/{contract.chain}/{address}.png",
        }
        if token.rank_in_trending % 2:
            item["header"] = f"https://dd.dexscreener.com/ds-data/tokens/{contract.chain}/{address}/header.png"
        item["openGraph"] = (
            f"https://cdn.dexscreener.com/token-images/og/{contract.chain}/{address}?timestamp=1742991900000"
        )
        item["description"] = f"{token.name}: community token on {CHAINS[contract.chain].name}."
        item["links"] = [
            {"label": "Website", "url": f"https://{token.symbol.lower()}.example.org"},
            {"type": "twitter", "url": f"https://x.com/{token.symbol.lower()}"},
        ]
        return item

    # --- Api hooks ---------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return json_response(
            {"statusCode": 404, "error": "Not Found", "message": f"Route GET:{request.path} not found"}, 404
        )

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 502:
            return html_error_page(502, "Bad Gateway")
        message = "Rate limit exceeded, retry in 1 minute" if status == 429 else _reason(status)
        return json_response(
            {"statusCode": status, "error": _reason(status), "message": message},
            status,
            retry_after_header(retry_after),
        )


def _addresses(path_value: str) -> list[str]:
    """Comma-separated addresses from the path, de-duplicated in order; over 30 is a 400."""
    seen, result = set(), []
    for address in (a.strip() for a in path_value.split(",")):
        if address and address not in seen:
            seen.add(address)
            result.append(address)
    if len(result) > MAX_ADDRESSES:
        raise _error(400, f"at most {MAX_ADDRESSES} token addresses per request, got {len(result)}")
    return result


def _js(value: Decimal) -> Decimal:
    """Numbers as JavaScript prints them: no trailing zeros (98107272.35, 0.58, 70907)."""
    return value.normalize() if value else Decimal(0)


def _amount(value: Decimal) -> Decimal:
    """Token amounts as DexScreener prints them: whole units when large, 4 decimals otherwise."""
    return value.quantize(Decimal(1)) if value >= 1000 else value.quantize(Decimal("0.0001"))
