"""Binance Spot REST: exchangeInfo and ticker/price, with request weight, 429 and the 418 ban.

Shapes follow binance.exchangeInfo.skeleton.json, binance.ticker_price.*.json and the error
envelope {code, msg}. Prices are strings with 8 decimals. Every response carries
X-MBX-USED-WEIGHT-1M. Weight is counted per real-time minute (not the simulated clock):
over the limit a request gets 429 with Retry-After until the next minute; a client that keeps
sending after `ban_after_429s` rejections is banned with 418 for `ban_seconds`, like Binance's
auto-ban.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from local.market import wire
from local.market.apis.base import (
    Api,
    ApiError,
    Request,
    Response,
    Route,
    html_error_page,
    json_response,
    retry_after_header,
)
from local.market.prices import EXACT, binance_tick
from local.market.universe import Token

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
HALTED_AT_SECOND = 1_767_225_600  # 2026-01-01T00:00:00Z: a BREAK pair keeps its last traded price
_SYMBOL = r"[A-Z0-9-_.]{1,20}"
_SYMBOL_RE = re.compile(f"^{_SYMBOL}$")
_SYMBOLS_RE = re.compile(rf'^\[("{_SYMBOL}"(,"{_SYMBOL}"){{0,}}){{0,1}}\]$')
# Non-USDT pairs a client must filter out (base, quote).
_CROSS_PAIRS = (
    ("ETH", "BTC"),
    ("BNB", "BTC"),
    ("SOL", "BTC"),
    ("XRP", "BTC"),
    ("BNB", "ETH"),
    ("BTC", "USDC"),
    ("ETH", "USDC"),
    ("SOL", "USDC"),
    ("BTC", "FDUSD"),
    ("ETH", "FDUSD"),
)
_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]


@dataclass(frozen=True)
class _Pair:
    symbol: str
    base: Token
    quote: Token | None  # None: USDT
    status: str
    tick: Decimal


class WeightLimiter:
    """Binance's REQUEST_WEIGHT budget per IP and minute, and its auto-ban."""

    def __init__(self, limit: int = 6000, ban_after_429s: int = 5, ban_seconds: int = 120) -> None:
        self.limit = limit
        self.ban_after_429s = ban_after_429s
        self.ban_seconds = ban_seconds
        self._lock = threading.Lock()
        self._minute = -1
        self._used = 0
        self._rejected = 0
        self._banned_until = 0.0

    def used(self) -> int:
        """Weight used in the current minute."""
        with self._lock:
            self._roll(time.time())
            return self._used

    def charge(self, weight: int) -> None:
        """Spend `weight`, or raise ApiError(429/418) when the budget is exhausted or the IP banned."""
        with self._lock:
            now = time.time()
            self._roll(now)
            if now < self._banned_until:
                raise ApiError(_banned(self._banned_until, now))
            if self._used + weight > self.limit:
                self._rejected += 1
                if self._rejected > self.ban_after_429s:
                    self._banned_until = now + self.ban_seconds
                    raise ApiError(_banned(self._banned_until, now))
                retry_after = max(1, math.ceil(60 - now % 60))
                raise ApiError(
                    json_response(
                        {
                            "code": -1003,
                            "msg": f"Too much request weight used; current limit is {self.limit} request weight "
                            "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                        },
                        429,
                        retry_after_header(retry_after),
                    )
                )
            self._used += weight

    def reset(self) -> None:
        """Forget used weight, rejections and any ban."""
        with self._lock:
            self._minute, self._used, self._rejected, self._banned_until = -1, 0, 0, 0.0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._used, self._rejected = minute, 0, 0


def _banned(until: float, now: float) -> Response:
    body = {
        "code": -1003,
        "msg": f"Way too much request weight used; IP banned until {int(until * 1000)}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    }
    return json_response(body, 418, retry_after_header(max(1, math.ceil(until - now))))


def _error(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(json_response({"code": code, "msg": msg}, status))


class BinanceApi(Api):
    """GET /api/v3/exchangeInfo, /api/v3/ticker/price, /api/v3/ping, /api/v3/time."""

    name = "binance"

    def __init__(self, universe, clock, limiter: WeightLimiter) -> None:
        super().__init__(universe, clock)
        self.limiter = limiter
        self.pairs: dict[str, _Pair] = {}
        for token in universe.tokens:
            if token.binance_status:
                self.pairs[token.binance_symbol] = _Pair(
                    token.binance_symbol, token, None, token.binance_status, token.binance_tick
                )
        for base_symbol, quote_symbol in _CROSS_PAIRS:
            base, quote = universe.get(base_symbol), universe.get(quote_symbol)
            ratio = float(base.base_price_usdt) / float(quote.base_price_usdt)
            self.pairs[base_symbol + quote_symbol] = _Pair(
                base_symbol + quote_symbol, base, quote, "TRADING", binance_tick(ratio)
            )
        self.route("GET", "/api/v3/exchangeInfo", self.exchange_info)
        self.route("GET", "/api/v3/ticker/price", self.ticker_price)
        self.route("GET", "/api/v3/ping", self.ping)
        self.route("GET", "/api/v3/time", self.server_time)

    # --- endpoints -------------------------------------------------------------------------------

    def ping(self, request: Request) -> Response:
        self.limiter.charge(1)
        return json_response({})

    def server_time(self, request: Request) -> Response:
        self.limiter.charge(1)
        return json_response({"serverTime": int(self.clock.now() * 1000)})

    def exchange_info(self, request: Request) -> Response:
        self.limiter.charge(20)
        pairs = self._requested_pairs(request) or list(self.pairs.values())
        status = request.param("symbolStatus")
        if status is not None:
            if status not in ("TRADING", "HALT", "BREAK"):
                raise _error(
                    -1100,
                    "Illegal characters found in parameter 'symbolStatus'; legal range is 'TRADING, HALT, BREAK'.",
                )
            pairs = [p for p in pairs if p.status == status]
        return json_response(
            {
                "timezone": "UTC",
                "serverTime": int(self.clock.now() * 1000),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.limiter.limit,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 10},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [self._symbol_info(p) for p in pairs],
                "sors": [{"baseAsset": "BTC", "symbols": ["BTCUSDT", "BTCUSDC", "BTCFDUSD"]}],
            }
        )

    def ticker_price(self, request: Request) -> Response:
        query = request.query
        has_symbol, has_symbols = "symbol" in query, "symbols" in query
        self.limiter.charge(2 if has_symbol and not has_symbols else 4)
        if has_symbol and has_symbols:
            raise _error(-1128, "Combination of optional parameters invalid.")
        second = self.clock.second()
        if has_symbol:
            pair = self._pair(query["symbol"][0], "symbol")
            return json_response({"symbol": pair.symbol, "price": self._price(pair, second)})
        requested = self._requested_pairs(request) if has_symbols else None  # `symbols` given: never None
        pairs = list(self.pairs.values()) if requested is None else requested
        return json_response([{"symbol": p.symbol, "price": self._price(p, second)} for p in pairs])

    # --- helpers -------------------------------------------------------------------------------------

    def _pair(self, symbol: str, parameter: str) -> _Pair:
        if not _SYMBOL_RE.match(symbol):
            raise _error(-1100, f"Illegal characters found in parameter '{parameter}'; legal range is '^{_SYMBOL}$'.")
        pair = self.pairs.get(symbol)
        if pair is None:
            raise _error(-1121, "Invalid symbol.")
        return pair

    def _requested_pairs(self, request: Request) -> list[_Pair] | None:
        """Pairs named by `symbol` or `symbols` (a JSON array without spaces); None when neither is given."""
        symbol, symbols = request.param("symbol"), request.param("symbols")
        if symbol is not None:
            return [self._pair(symbol, "symbol")]
        if symbols is None:
            return None
        if not _SYMBOLS_RE.match(symbols):
            raise _error(
                -1100, f"Illegal characters found in parameter 'symbols'; legal range is '{_SYMBOLS_RE.pattern}'."
            )
        return [self._pair(s, "symbols") for s in json.loads(symbols)]

    def _price(self, pair: _Pair, second: int) -> str:
        at = HALTED_AT_SECOND if pair.status != "TRADING" else second
        base = self.universe.prices.usdt(pair.base, at)
        if pair.quote is None:
            return wire.fixed(base, 8)
        ratio = EXACT.divide(base, self.universe.prices.usdt(pair.quote, at))
        return wire.fixed(ratio.quantize(pair.tick), 8)

    def _symbol_info(self, pair: _Pair) -> dict:
        margin = pair.base.market_cap_rank is not None and pair.base.market_cap_rank <= 60
        quote = "USDT" if pair.quote is None else pair.quote.symbol
        return {
            "symbol": pair.symbol,
            "status": pair.status,
            "baseAsset": pair.base.symbol.upper(),
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": _ORDER_TYPES,
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "opoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": pair.status == "TRADING",
            "isMarginTradingAllowed": margin,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": wire.fixed(pair.tick, 8),
                    "maxPrice": "1000000.00000000",
                    "tickSize": wire.fixed(pair.tick, 8),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000000.00000000",
                    "stepSize": "0.00001000",
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"] if margin else ["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": _STP_MODES,
        }

    # --- Api hooks ---------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return html_error_page(404, "Not Found")

    def error_response(self, status: int, retry_after: int | None) -> Response:
        headers = retry_after_header(retry_after)
        if status == 429:
            return json_response(
                {
                    "code": -1003,
                    "msg": f"Too much request weight used; current limit is {self.limiter.limit} "
                    "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                    "polling the API.",
                },
                429,
                headers,
            )
        if status == 418:
            until = int((time.time() + (retry_after or 120)) * 1000)
            return json_response(
                {
                    "code": -1003,
                    "msg": f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                },
                418,
                headers,
            )
        if status == 451:
            return json_response(
                {
                    "code": 0,
                    "msg": "Service unavailable from a restricted location according to "
                    "'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service "
                    "if you believe you received this message in error.",
                },
                451,
                headers,
            )
        if status == 503:
            return json_response(
                {
                    "code": -1008,
                    "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
                },
                503,
                headers,
            )
        if status == 403:  # the WAF limit: CloudFront's page, not Binance's JSON
            return html_error_page(403, "Forbidden")
        if status == 502:
            return html_error_page(502, "Bad Gateway")
        return json_response(
            {"code": -1000, "msg": "An unknown error occurred while processing the request."}, status, headers
        )

    def finalize(self, request: Request, route: Route | None, response: Response) -> Response:
        response.headers.append((WEIGHT_HEADER, str(self.limiter.used())))
        return response
