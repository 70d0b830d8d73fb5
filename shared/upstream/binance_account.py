"""Binance Spot account trades: signed `GET /api/v3/myTrades`, paged by `fromId`.

Signing (USER_DATA, tests/fixtures/upstream/INDEX.md, Binance): the query string, with
`timestamp` (ms) and `recvWindow`, is signed with HMAC-SHA256 under the API secret; the hex
digest goes last as `signature`, the API key in the `X-MBX-APIKEY` header. The exact bytes
signed are the bytes sent: every value is a symbol, digits or hex, which no encoder escapes.

Budget: weight 20 per call (without `orderId`), `limit` at most 1000; the weight budget,
retries, Retry-After on 429/418 and the breaker are the HTTP layer's (`UpstreamHttp`).
Errors branch on Binance's own code: -1021 timestamp outside recvWindow, -1022 signature not
valid, -2015 invalid key/IP/permissions (all HTTP 400/401: permanent for the call, reported).
The secret never leaves this module: it signs, and is never logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from shared.config import BinanceSettings
from shared.errors import BadUpstreamBody

from .http import UpstreamHttp

API = "binance-account"
MY_TRADES_PATH = "/api/v3/myTrades"
MY_TRADES_WEIGHT = 20
MY_TRADES_MAX_LIMIT = 1000
API_KEY_HEADER = "X-MBX-APIKEY"
TIMESTAMP_OUTSIDE_WINDOW = -1021
BAD_SIGNATURE = -1022
INVALID_KEY = -2015
_SYMBOL = re.compile(r"[A-Z0-9]{1,20}")


def binance_signature(secret: str, query: str) -> str:
    """HMAC-SHA256 of the query string under the secret, as lower-case hex (Binance SIGNED)."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


class BinanceAccountClient:
    """Signed account reads of one Binance API key over one `UpstreamHttp`."""

    def __init__(
        self,
        http: UpstreamHttp,
        api_key: str,
        api_secret: str,
        *,
        recv_window_ms: int = 5000,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.http = http
        self._api_key = api_key
        self._secret = api_secret
        self._recv_window_ms = recv_window_ms
        self._wall_clock = wall_clock

    @classmethod
    def build_http(cls, settings: BinanceSettings, **http_options: Any) -> UpstreamHttp:
        """The HTTP layer for account calls: Binance's weight budget, as the market client has."""
        budget = int(settings.weight_limit_per_minute * settings.weight_safety_fraction)
        return UpstreamHttp(API, settings, weight_budget_per_minute=budget, **http_options)

    def my_trades(self, symbol: str, from_id: int, limit: int = MY_TRADES_MAX_LIMIT) -> list[dict[str, Any]]:
        """The account's trades of `symbol` with id >= `from_id`, oldest first, at most `limit`.

        The answer must be a JSON array of objects (anything else is `BadUpstreamBody`);
        the rows themselves are judged by `shared.trades.normalize.binance_my_trade`.
        """
        params = {
            "symbol": symbol,
            "fromId": str(from_id),
            "limit": str(min(max(1, limit), MY_TRADES_MAX_LIMIT)),
            "recvWindow": str(self._recv_window_ms),
            "timestamp": str(int(self._wall_clock() * 1000)),
        }
        if not _SYMBOL.fullmatch(symbol):
            raise ValueError(f"not a Binance symbol: {symbol[:40]!r}")
        # Symbols, digits and hex need no escaping, so the query httpx sends is exactly the text
        # signed; the signature stays out of the path, hence out of every error message.
        params["signature"] = binance_signature(self._secret, urlencode(params))
        body = self.http.get_json(
            MY_TRADES_PATH, params, weight=MY_TRADES_WEIGHT, headers={API_KEY_HEADER: self._api_key}, check=_trade_list
        )
        return list(body)


def _trade_list(body: Any) -> None:
    if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
        raise BadUpstreamBody(API, f"GET {MY_TRADES_PATH}: expected a JSON array of trades")
