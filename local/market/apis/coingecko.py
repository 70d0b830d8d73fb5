"""CoinGecko v3: coins/markets, coins/list, coins/{id}, simple/price, simple/token_price, search/trending.

Shapes follow the coingecko.*.json samples. Every amount is a JSON *number* written exactly
from a Decimal (tiny values in exponent form, `7.8e-11`, as CoinGecko prints them); display
strings ("$521,967,819") and decimal strings appear only where the real API has them
(search/trending). Quirks kept: a native coin has `platforms: {}` in coins/list but
`{"": ""}` in coins/{id}; EVM contract addresses are lower-case; token-price keys are the
lower-cased EVM address (Solana mints as written). Only `usd` is served as a vs currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
from local.market.apis.common import DAY, change_percent, high_low_24h, iso_ms, iso_seconds, significant, volume_24h_usd
from local.market.chains import BY_COINGECKO_PLATFORM, CHAINS, canonical_address
from local.market.prices import EXACT
from local.market.universe import CATEGORIES, Token

_ORDERS = {
    "market_cap_desc": (lambda t: t.market_cap_rank, False),
    "market_cap_asc": (lambda t: t.market_cap_rank, True),
    "volume_desc": (lambda t: volume_24h_usd(t), True),
    "volume_asc": (lambda t: volume_24h_usd(t), False),
    "id_asc": (lambda t: t.coingecko_id, False),
    "id_desc": (lambda t: t.coingecko_id, True),
}
_WINDOWS = {"1h": 3600, "24h": DAY, "7d": 7 * DAY, "14d": 14 * DAY, "30d": 30 * DAY, "200d": 200 * DAY, "1y": 365 * DAY}
_RATE_LIMIT_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)


def _error(status: int, message: str) -> ApiError:
    return ApiError(json_response({"error": message}, status))


class CoinGeckoApi(Api):
    """The aggregated-data endpoints the metadata and price functions use."""

    name = "coingecko"

    def __init__(self, universe, clock) -> None:
        super().__init__(universe, clock)
        self.route("GET", "/api/v3/ping", lambda request: json_response({"gecko_says": "(V3) To the Moon!"}))
        self.route("GET", "/api/v3/coins/markets", self.coins_markets)
        self.route("GET", "/api/v3/coins/list", self.coins_list)
        self.route("GET", "/api/v3/coins/{id}", self.coin)
        self.route("GET", "/api/v3/simple/price", self.simple_price)
        self.route("GET", "/api/v3/simple/token_price/{platform}", self.simple_token_price)
        self.route("GET", "/api/v3/search/trending", self.search_trending)

    # --- endpoints -------------------------------------------------------------------------------

    def coins_markets(self, request: Request) -> Response:
        _require_usd(request.param("vs_currency"), "vs_currency")
        order = request.param("order") or "market_cap_desc"
        if order not in _ORDERS:
            raise _error(400, "invalid order")
        per_page = min(250, max(1, _int_param(request, "per_page", 100)))
        page = max(1, _int_param(request, "page", 1))
        tokens = [t for t in self.universe.tokens if t.coingecko_id]
        ids = split_list(request.param("ids"))
        if ids:
            wanted = set(ids)
            tokens = [t for t in tokens if t.coingecko_id in wanted]
        category = request.param("category")
        if category:
            tokens = [t for t in tokens if category in t.categories]
        sort_key, reverse = _ORDERS[order]
        tokens.sort(key=sort_key, reverse=reverse)
        tokens = tokens[(page - 1) * per_page : page * per_page]
        windows = [w for w in split_list(request.param("price_change_percentage")) if w in _WINDOWS]
        sparkline = request.flag("sparkline", False)
        second = self.clock.second()
        return json_response([self._market(t, second, windows, sparkline) for t in tokens])

    def coins_list(self, request: Request) -> Response:
        with_platforms = request.flag("include_platform", False)
        if request.param("status") == "inactive":
            return json_response([])
        listed = [(t.coingecko_id, t) for t in self.universe.tokens if t.coingecko_id]
        items = []
        for coingecko_id, token in sorted(listed, key=lambda pair: pair[0]):
            item: dict[str, Any] = {"id": coingecko_id, "symbol": token.symbol.lower(), "name": token.name}
            if with_platforms:
                item["platforms"] = {CHAINS[c.chain].coingecko_platform: c.canonical_address for c in token.contracts}
            items.append(item)
        return json_response(items)

    def coin(self, request: Request, id: str) -> Response:
        token = self.universe.by_coingecko_id.get(id)
        if token is None:
            raise _error(404, "coin not found")
        second = self.clock.second()
        body = self._coin(token, second)
        if request.flag("market_data", True):
            body["market_data"] = self._coin_market_data(token, second, request.flag("sparkline", False))
        if request.flag("community_data", True):
            body["community_data"] = {
                "facebook_likes": None,
                "reddit_average_posts_48h": Decimal("0.0"),
                "reddit_average_comments_48h": Decimal("0.0"),
                "reddit_subscribers": 0,
                "reddit_accounts_active_48h": 0,
                "telegram_channel_user_count": None,
            }
        if request.flag("developer_data", True):
            body["developer_data"] = {
                "forks": 0,
                "stars": 0,
                "subscribers": 0,
                "total_issues": 0,
                "closed_issues": 0,
                "pull_requests_merged": 0,
                "pull_request_contributors": 0,
                "code_additions_deletions_4_weeks": {"additions": 0, "deletions": 0},
                "commit_count_4_weeks": 0,
                "last_4_weeks_commit_activity_series": [],
            }
        if request.flag("tickers", True):
            body["tickers"] = self._tickers(token, second)
        return json_response(body)

    def simple_price(self, request: Request) -> Response:
        ids = split_list(request.param("ids"))
        if not ids:
            raise _error(400, "Missing parameter ids")
        currencies = _vs_currencies(request)
        second = self.clock.second()
        body = {}
        for coin_id in ids:
            token = self.universe.by_coingecko_id.get(coin_id)
            if token is not None:
                body[coin_id] = self._simple_quote(token, second, currencies, request)
        return json_response(body)

    def simple_token_price(self, request: Request, platform: str) -> Response:
        chain = BY_COINGECKO_PLATFORM.get(platform)
        if chain is None:
            raise _error(404, "asset platform not found")
        contracts = split_list(request.param("contract_addresses"))
        if not contracts:
            raise _error(400, "Missing parameter contract_addresses")
        currencies = _vs_currencies(request)
        second = self.clock.second()
        body = {}
        for address in contracts:
            token = self.universe.by_contract(chain.slug, address)
            if token is not None and token.coingecko_id:
                body[canonical_address(chain, address)] = self._simple_quote(token, second, currencies, request)
        return json_response(body)

    def search_trending(self, request: Request) -> Response:
        second = self.clock.second()
        btc = self.universe.prices.usd(self.universe.by_key["native:bitcoin"], second)
        coins = []
        for score, token in enumerate(t for t in self.universe.trending() if t.coingecko_id):
            if score == 15:
                break
            price = self.universe.prices.usd(token, second)
            price_btc = significant(EXACT.divide(price, btc), 16)
            cap = self.universe.market_cap_usd(token, second)
            volume = volume_24h_usd(token)
            coins.append(
                {
                    "item": {
                        "id": token.coingecko_id,
                        "coin_id": token.image_id,
                        "name": token.name,
                        "symbol": token.symbol,
                        "market_cap_rank": token.market_cap_rank,
                        "thumb": _image(token, "standard"),
                        "small": _image(token, "small"),
                        "large": _image(token, "large"),
                        "slug": token.coingecko_id,
                        "price_btc": price_btc,
                        "score": score,
                        "data": {
                            "price": significant(price, 16),
                            "price_btc": format(price_btc, "f"),
                            "price_change_percentage_24h": {
                                "usd": change_percent(self.universe, token, second, DAY, 10),
                                "btc": change_percent(self.universe, token, second, DAY, 10)
                                - change_percent(
                                    self.universe, self.universe.by_key["native:bitcoin"], second, DAY, 10
                                ),
                            },
                            "market_cap": f"${cap:,}",
                            "market_cap_btc": format(significant(EXACT.divide(cap, btc), 16), "f"),
                            "total_volume": f"${volume:,}",
                            "total_volume_btc": format(significant(EXACT.divide(volume, btc), 15), "f"),
                            "sparkline": f"https://www.coingecko.com/coins/{token.image_id}/sparkline.svg",
                            "content": None,
                        },
                    }
                }
            )
        return json_response({"coins": coins, "nfts": _TRENDING_NFTS, "categories": self._trending_categories(second)})

    # --- bodies ----------------------------------------------------------------------------------

    def _market(self, token: Token, second: int, windows: list[str], sparkline: bool) -> dict:
        universe = self.universe
        price = universe.prices.usd(token, second)
        price_24h = universe.prices.usd(token, second - DAY)
        cap = universe.market_cap_usd(token, second)
        cap_24h = universe.market_cap_usd(token, second - DAY)
        high, low = high_low_24h(universe, token, second)
        ath = significant(high * Decimal("1.8"), 8)
        atl = significant(low * Decimal("0.05"), 8)
        item: dict[str, Any] = {
            "id": token.coingecko_id,
            "symbol": token.symbol.lower(),
            "name": token.name,
            "image": _image(token, "large"),
            "current_price": price,
            "market_cap": cap,
            "market_cap_rank": token.market_cap_rank,
            "fully_diluted_valuation": _fdv(token, price),
            "total_volume": volume_24h_usd(token),
            "high_24h": high,
            "low_24h": low,
            "price_change_24h": price - price_24h,
            "price_change_percentage_24h": change_percent(universe, token, second, DAY),
            "market_cap_change_24h": cap - cap_24h,
            "market_cap_change_percentage_24h": (EXACT.divide(cap - cap_24h, cap_24h) * 100).quantize(
                Decimal("0.00001")
            ),
            "circulating_supply": _supply(token.circulating_supply),
            "total_supply": _supply(token.total_supply),
            "max_supply": _supply(token.max_supply) if token.max_supply is not None else None,
            "ath": ath,
            "ath_change_percentage": (EXACT.divide(price - ath, ath) * 100).quantize(Decimal("0.00001")),
            "ath_date": "2025-10-06T18:57:42.558Z",
            "atl": atl,
            "atl_change_percentage": (EXACT.divide(price - atl, atl) * 100).quantize(Decimal("0.00001")),
            "atl_date": "2023-06-10T04:30:21.251Z",
            "roi": None,
            "last_updated": iso_ms(second),
            "market_cap_rank_with_rehypothecated": token.market_cap_rank,
        }
        if sparkline:
            item["sparkline_in_7d"] = {
                "price": [universe.prices.usd(token, second - h * 3600) for h in range(167, -1, -1)]
            }
        for window in windows:
            item[f"price_change_percentage_{window}_in_currency"] = change_percent(
                universe, token, second, _WINDOWS[window], 10
            )
        return item

    def _coin(self, token: Token, second: int) -> dict:
        if token.is_native:
            platforms: dict = {"": ""}
            detail: dict = {"": {"decimal_place": None, "contract_address": ""}}
        else:
            platforms = {CHAINS[c.chain].coingecko_platform: c.canonical_address for c in token.contracts}
            detail = {
                CHAINS[c.chain].coingecko_platform: {
                    "decimal_place": c.decimals,
                    "contract_address": c.canonical_address,
                }
                for c in token.contracts
            }
        slug = token.coingecko_id
        if slug is None:
            raise ValueError(f"{token.key} is not listed on CoinGecko")
        home_contract = token.contracts[0] if token.contracts else None
        home = CHAINS[home_contract.chain] if home_contract else None
        return {
            "id": slug,
            "symbol": token.symbol.lower(),
            "name": token.name,
            "web_slug": slug,
            "asset_platform_id": home.coingecko_platform if home else None,
            "platforms": platforms,
            "detail_platforms": detail,
            "block_time_in_minutes": 10 if token.is_native else 0,
            "hashing_algorithm": "SHA-256" if token.symbol == "BTC" else None,
            "categories": [CATEGORIES[c] for c in token.categories],
            "preview_listing": False,
            "public_notice": None,
            "additional_notices": [],
            "has_supply_breakdown": False,
            "description": {"en": f"{token.name} ({token.symbol}) is a token of the simulated market."},
            "links": {
                "homepage": [f"https://{slug}.example.org", "", ""],
                "whitepaper": f"https://{slug}.example.org/whitepaper.pdf",
                "blockchain_site": [
                    (
                        home.explorer_token_url + home_contract.address
                        if home and home_contract
                        else f"https://explorer.{slug}.example.org/"
                    ),
                    "",
                    "",
                ],
                "official_forum_url": [""],
                "chat_url": [f"https://discord.gg/{slug}", ""],
                "announcement_url": ["", ""],
                "snapshot_url": None,
                "twitter_screen_name": slug.replace("-", ""),
                "facebook_username": "",
                "bitcointalk_thread_identifier": None,
                "telegram_channel_identifier": slug.replace("-", "_"),
                "subreddit_url": f"https://www.reddit.com/r/{slug.replace('-', '')}/",
                "repos_url": {"github": [f"https://github.com/{slug}/{slug}"], "bitbucket": []},
            },
            "image": {
                "thumb": _image(token, "thumb"),
                "small": _image(token, "small"),
                "large": _image(token, "large"),
            },
            "country_origin": "",
            "genesis_date": "2009-01-03" if token.symbol == "BTC" else None,
            "sentiment_votes_up_percentage": Decimal("84.07"),
            "sentiment_votes_down_percentage": Decimal("15.93"),
            "watchlist_portfolio_users": 1000 + token.image_id,
            "market_cap_rank": token.market_cap_rank,
            "market_cap_rank_with_rehypothecated": token.market_cap_rank,
            "status_updates": [],
            "last_updated": iso_ms(second),
        }

    def _coin_market_data(self, token: Token, second: int, sparkline: bool) -> dict:
        universe = self.universe
        price = universe.prices.usd(token, second)
        btc = universe.prices.usd(universe.by_key["native:bitcoin"], second)
        cap = universe.market_cap_usd(token, second)
        cap_change = cap - universe.market_cap_usd(token, second - DAY)
        cap_change_pct = (EXACT.divide(cap_change, cap - cap_change) * 100).quantize(Decimal("0.00001"))
        high, low = high_low_24h(universe, token, second)
        ath, atl = significant(high * Decimal("1.8"), 8), significant(low * Decimal("0.05"), 8)
        fdv = _fdv(token, price)
        windows = {**_WINDOWS, "60d": 60 * DAY}
        changes = {w: change_percent(universe, token, second, s) for w, s in windows.items()}
        price_change = price - universe.prices.usd(token, second - DAY)

        def in_usd_and_btc(usd: Decimal) -> dict:
            return {"btc": significant(EXACT.divide(usd, btc), 12), "usd": usd}

        data = {
            "current_price": in_usd_and_btc(price),
            "total_value_locked": None,
            "mcap_to_tvl_ratio": None,
            "fdv_to_tvl_ratio": None,
            "roi": None,
            "ath": in_usd_and_btc(ath),
            "ath_change_percentage": {"usd": (EXACT.divide(price - ath, ath) * 100).quantize(Decimal("0.00001"))},
            "ath_date": {"usd": "2025-10-06T18:57:42.558Z"},
            "atl": in_usd_and_btc(atl),
            "atl_change_percentage": {"usd": (EXACT.divide(price - atl, atl) * 100).quantize(Decimal("0.00001"))},
            "atl_date": {"usd": "2023-06-10T04:30:21.251Z"},
            "market_cap": {"btc": EXACT.divide(cap, btc).quantize(Decimal(1)), "usd": cap},
            "fully_diluted_valuation": {"usd": fdv} if fdv is not None else {},
            "market_cap_fdv_ratio": EXACT.divide(cap, fdv).quantize(Decimal("0.01")) if fdv else None,
            "market_cap_rank": token.market_cap_rank,
            "outstanding_token_value_usd": None,
            "market_cap_rank_with_rehypothecated": token.market_cap_rank,
            "total_volume": {"usd": volume_24h_usd(token)},
            "high_24h": {"usd": high},
            "low_24h": {"usd": low},
            "price_change_24h": price_change,
            **{f"price_change_percentage_{w}": changes[w] for w in ("24h", "7d", "14d", "30d", "60d", "200d", "1y")},
            "market_cap_change_24h": cap_change,
            "market_cap_change_percentage_24h": cap_change_pct,
            "price_change_24h_in_currency": {"usd": price_change},
            **{
                f"price_change_percentage_{w}_in_currency": {"usd": changes[w]}
                for w in ("1h", "24h", "7d", "14d", "30d", "60d", "200d", "1y")
            },
            "market_cap_change_24h_in_currency": {"usd": cap_change},
            "market_cap_change_percentage_24h_in_currency": {"usd": cap_change_pct},
            "total_supply": _supply(token.total_supply),
            "max_supply": _supply(token.max_supply) if token.max_supply is not None else None,
            "max_supply_infinite": token.max_supply is None,
            "circulating_supply": _supply(token.circulating_supply),
            "outstanding_supply": None,
            "last_updated": iso_ms(second),
        }
        if sparkline:
            data["sparkline_7d"] = {
                "price": [universe.prices.usd(token, second - h * 3600) for h in range(167, -1, -1)]
            }
        return data

    def _tickers(self, token: Token, second: int) -> list[dict]:
        if not token.has_binance_pair:
            return []
        usdt = self.universe.prices.usdt(token, second)
        usd = self.universe.prices.usd(token, second)
        btc = self.universe.prices.usd(self.universe.by_key["native:bitcoin"], second)
        eth = self.universe.prices.usd(self.universe.by_key["native:ethereum"], second)
        volume_usd = volume_24h_usd(token) * Decimal("0.2")
        stamp = iso_seconds(second).replace("Z", "+00:00")
        return [
            {
                "base": token.symbol.upper(),
                "target": "USDT",
                "market": {"name": "Binance", "identifier": "binance", "has_trading_incentive": False},
                "last": usdt,
                "volume": significant(EXACT.divide(volume_usd, usd), 12),
                "converted_last": {
                    "btc": significant(EXACT.divide(usd, btc), 8),
                    "eth": significant(EXACT.divide(usd, eth), 8),
                    "usd": usd,
                },
                "converted_volume": {
                    "btc": EXACT.divide(volume_usd, btc).quantize(Decimal(1)),
                    "eth": EXACT.divide(volume_usd, eth).quantize(Decimal(1)),
                    "usd": volume_usd.quantize(Decimal(1)),
                },
                "trust_score": "green",
                "bid_ask_spread_percentage": Decimal("0.010014"),
                "timestamp": stamp,
                "last_traded_at": stamp,
                "last_fetch_at": stamp,
                "is_anomaly": False,
                "is_stale": False,
                "trade_url": f"https://www.binance.com/en/trade/{token.symbol.upper()}_USDT?ref=37754157",
                "token_info_url": None,
                "coin_id": token.coingecko_id,
                "target_coin_id": "tether",
                "coin_mcap_usd": self.universe.market_cap_usd(token, second),
            }
        ]

    def _simple_quote(self, token: Token, second: int, currencies: list[str], request: Request) -> dict:
        quote: dict = {}
        if "usd" not in currencies:
            return quote
        quote["usd"] = _precision(self.universe.prices.usd(token, second), request.param("precision"))
        if request.flag("include_market_cap", False):
            quote["usd_market_cap"] = self.universe.market_cap_usd(token, second)
        if request.flag("include_24hr_vol", False):
            quote["usd_24h_vol"] = volume_24h_usd(token)
        if request.flag("include_24hr_change", False):
            quote["usd_24h_change"] = change_percent(self.universe, token, second, DAY, 12)
        if request.flag("include_last_updated_at", False):
            quote["last_updated_at"] = second
        return quote

    def _trending_categories(self, second: int) -> list[dict]:
        categories = []
        for n, (slug, members) in enumerate((("meme-token", "meme-token"), ("solana-ecosystem", "solana-ecosystem"))):
            tokens = [t for t in self.universe.trending() if members in t.categories][:3]
            cap = sum((self.universe.market_cap_usd(t, second) for t in tokens), Decimal(0))
            categories.append(
                {
                    "id": 102120800 + n,
                    "name": CATEGORIES[slug],
                    "top_3_coins_images": [_image(t, "small") for t in tokens],
                    "market_cap_1h_change": Decimal("0.1591461077485745"),
                    "slug": slug,
                    "coins_count": str(sum(1 for t in self.universe.tokens if slug in t.categories)),
                    "data": {
                        "market_cap": cap,
                        "market_cap_btc": Decimal(0),
                        "total_volume": Decimal(0),
                        "total_volume_btc": Decimal(0),
                        "market_cap_change_percentage_24h": {"usd": Decimal("0.147"), "btc": Decimal("1.59")},
                        "sparkline": f"https://www.coingecko.com/categories/{102120800 + n}/sparkline.svg",
                    },
                }
            )
        return categories

    # --- Api hooks ---------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return json_response({"error": "Incorrect path. Please check https://www.coingecko.com/api/documentation"}, 404)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 502:
            return html_error_page(502, "Bad Gateway")
        message = (
            _RATE_LIMIT_MESSAGE
            if status == 429
            else {
                418: "I'm a teapot",
                451: "Unavailable For Legal Reasons",
                500: "Internal Server Error",
                503: "Service Unavailable",
            }.get(status, "Error")
        )
        # CoinGecko sends the header lower-case.
        return json_response(
            {"status": {"error_code": status, "error_message": message}},
            status,
            retry_after_header(retry_after, "retry-after"),
        )


_TRENDING_NFTS = [
    {
        "id": "simulated-apes",
        "name": "Simulated Apes",
        "symbol": "SAPE",
        "thumb": "https://coin-images.coingecko.com/nft_contracts/images/1/standard/simulated-apes.png",
        "nft_contract_id": 1,
        "native_currency_symbol": "eth",
        "floor_price_in_native_currency": Decimal("6.98"),
        "floor_price_24h_percentage_change": Decimal("8.231790820932737"),
        "data": {
            "floor_price": "6.98 ETH",
            "floor_price_in_usd_24h_percentage_change": "8.231790820932737",
            "h24_volume": "6.10 ETH",
            "h24_average_sale_price": "6.10 ETH",
            "sparkline": "https://www.coingecko.com/nft/1/sparkline.svg",
            "content": None,
        },
    }
]


def _image(token: Token, size: str) -> str:
    return f"https://coin-images.coingecko.com/coins/images/{token.image_id}/{size}/{token.coingecko_id}.png?1696501400"


def _fdv(token: Token, price: Decimal) -> Decimal | None:
    supply = token.max_supply or token.total_supply
    return (price * supply).quantize(Decimal(1)) if supply else None


def _supply(value: Decimal) -> Decimal:
    """Supplies print like Ruby floats: 20030493.0."""
    return value.quantize(Decimal("0.1"))


def _require_usd(value: str | None, parameter: str) -> None:
    if not value:
        raise _error(400, f"Missing parameter {parameter}")
    if value.lower() != "usd":
        raise _error(400, f"invalid {parameter}")


def _vs_currencies(request: Request) -> list[str]:
    currencies = [c.lower() for c in split_list(request.param("vs_currencies"))]
    if not currencies:
        raise _error(400, "Missing parameter vs_currencies")
    return currencies


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.param(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise _error(400, f"invalid {name}") from None


def _precision(value: Decimal, precision: str | None) -> Decimal:
    if precision is None or precision == "full":
        return value
    try:
        places = int(precision)
    except ValueError:
        raise _error(400, "invalid precision") from None
    return value.quantize(Decimal(1).scaleb(-max(0, min(18, places))))
