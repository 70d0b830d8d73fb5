"""Binance Spot market data: the USDT listing and batch ticker prices.

Budget: weight 6000/min per IP shared by every replica; `UpstreamHttp` keeps the used
weight from `X-MBX-USED-WEIGHT-1M`. A whole `symbols=[...]` request fails (-1121) if one
symbol is not listed, so prices are only ever asked for symbols in the current listing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.config import BinanceSettings
from shared.errors import BadUpstreamBody, BadWireValue, PermanentUpstreamError
from shared.wire import to_decimal

from .cache import TtlCache
from .http import UpstreamHttp

log = logging.getLogger(__name__)

API = "binance"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
TICKER_PRICE_PATH = "/api/v3/ticker/price"
EXCHANGE_INFO_WEIGHT = 20
TICKER_PRICE_SYMBOLS_WEIGHT = 4  # the same for any number of symbols
TICKER_PRICE_ALL_WEIGHT = 4  # no parameter: every pair
INVALID_SYMBOL = -1121
QUOTE_ASSET = "USDT"
# Chunk only when the URL would get long: at most this many characters of encoded
# `symbols` value per request (~300 typical symbols; a top-100 batch is always one request),
# well under the 8 KiB request line that common front ends accept.
MAX_SYMBOLS_QUERY_CHARS = 6000


@dataclass(frozen=True, slots=True)
class SpotListing:
    """The symbols Binance is trading now."""

    trading_pairs: frozenset[str]  # e.g. "BTCUSDT"
    usdt_bases: frozenset[str]  # base assets of TRADING <BASE>USDT pairs, e.g. "BTC"


class BinanceClient:
    """Binance Spot REST client over one `UpstreamHttp`."""

    def __init__(
        self,
        http: UpstreamHttp,
        *,
        listing_ttl_seconds: float = 3600.0,
        symbols_query_max_chars: int = MAX_SYMBOLS_QUERY_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.http = http
        self._symbols_query_max_chars = symbols_query_max_chars
        self._listing = TtlCache(listing_ttl_seconds, lambda: _listing_from(self.exchange_info()), clock)

    @classmethod
    def from_settings(cls, settings: BinanceSettings, **http_options: Any) -> BinanceClient:
        """Build the client and its HTTP layer (`http_options` go to `UpstreamHttp`)."""
        budget = int(settings.weight_limit_per_minute * settings.weight_safety_fraction)
        http = UpstreamHttp(API, settings, weight_budget_per_minute=budget, **http_options)
        return cls(
            http,
            symbols_query_max_chars=settings.symbols_query_max_chars,
            clock=http_options.get("clock", time.monotonic),
        )

    def exchange_info(self) -> dict[str, Any]:
        """GET /api/v3/exchangeInfo (weight 20): every symbol with its status and assets."""
        return self.http.get_json(EXCHANGE_INFO_PATH, weight=EXCHANGE_INFO_WEIGHT, check=_has_symbols_list)

    def listing(self, *, refresh: bool = False) -> SpotListing:
        """The trading symbols, cached for `listing_ttl_seconds` (one exchangeInfo per hour by default)."""
        return self._listing.get(refresh=refresh)

    def usdt_symbols(self) -> frozenset[str]:
        """Base assets that have a TRADING `<BASE>USDT` pair (cached), e.g. {"BTC", "ETH"}."""
        return self.listing().usdt_bases

    def ticker_prices(self, symbols: Sequence[str]) -> list[dict[str, Any]]:
        """Latest prices of the given pair symbols (e.g. "BTCUSDT") as `{"symbol", "price": Decimal}`
        (the raw value when it is no usable number: that pair then fails, not the batch).

        One GET /api/v3/ticker/price?symbols=[...] (weight 4) for all of them; when they
        would not fit one URL, one GET without parameters (every pair, weight 4) filtered
        to them. Symbols not currently trading are left out
        (asked for, they would fail the whole request); so are duplicates.
        """
        wanted = list(dict.fromkeys(s for s in symbols if isinstance(s, str) and s))
        if not wanted:
            return []
        try:
            return self._prices_of_listed(wanted, self.listing())
        except PermanentUpstreamError as exc:
            if exc.code != INVALID_SYMBOL:
                raise
            # Delisted since the listing was cached: refresh it once and ask again.
            log.warning("binance: %s; refreshing the listing", exc.reason)
            return self._prices_of_listed(wanted, self.listing(refresh=True))

    def _prices_of_listed(self, wanted: list[str], listing: SpotListing) -> list[dict[str, Any]]:
        listed = [s for s in wanted if s in listing.trading_pairs]
        skipped = len(wanted) - len(listed)
        if skipped:
            log.info("binance: %d of %d symbols are not trading; not requested", skipped, len(wanted))
        batches = list(symbol_batches(listed, self._symbols_query_max_chars))
        if len(batches) > 1:
            # The no-parameter form answers every pair for the same weight as one batch:
            # one request, whatever the count (the minimum the API allows).
            body = self.http.get_json(TICKER_PRICE_PATH, weight=TICKER_PRICE_ALL_WEIGHT)
            return _ticker_entries(_only_pairs(body, set(listed)))
        prices: list[dict[str, Any]] = []
        for batch in batches:
            body = self.http.get_json(
                TICKER_PRICE_PATH, {"symbols": symbols_param(batch)}, weight=TICKER_PRICE_SYMBOLS_WEIGHT
            )
            prices.extend(_ticker_entries(body))
        return prices


def symbols_param(symbols: Sequence[str]) -> str:
    """The `symbols` query value: a compact JSON array (Binance rejects spaces with -1100)."""
    return json.dumps(list(symbols), separators=(",", ":"), ensure_ascii=False)


def symbol_batches(symbols: Sequence[str], max_chars: int = MAX_SYMBOLS_QUERY_CHARS) -> Iterator[list[str]]:
    """Consecutive batches whose encoded `symbols` value stays within `max_chars`."""
    batch: list[str] = []
    size = len(quote("[]"))
    for symbol in symbols:
        cost = len(quote(json.dumps(symbol, ensure_ascii=False), safe="")) + len(quote(","))
        if batch and size + cost > max_chars:
            yield batch
            batch, size = [], len(quote("[]"))
        batch.append(symbol)
        size += cost
    if batch:
        yield batch


def _has_symbols_list(body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("symbols"), list):
        raise BadUpstreamBody(API, f"GET {EXCHANGE_INFO_PATH}: answer has no symbols list")


def _listing_from(info: dict[str, Any]) -> SpotListing:
    pairs: set[str] = set()
    bases: set[str] = set()
    for entry in info["symbols"]:
        if not isinstance(entry, dict) or entry.get("status") != "TRADING":
            continue
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            continue
        pairs.add(symbol)
        base = entry.get("baseAsset")
        if entry.get("quoteAsset") == QUOTE_ASSET and isinstance(base, str) and base:
            bases.add(base)
    return SpotListing(frozenset(pairs), frozenset(bases))


def _only_pairs(body: Any, wanted: set[str]) -> Any:
    """The entries of an every-pair answer for the wanted pairs (others are not validated)."""
    if not isinstance(body, list):
        return body  # _ticker_entries says what is wrong
    return [item for item in body if isinstance(item, dict) and item.get("symbol") in wanted]


def _ticker_entries(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict):  # the single-symbol form, tolerated
        body = [body]
    if not isinstance(body, list):
        raise BadUpstreamBody(API, f"GET {TICKER_PRICE_PATH}: expected a JSON array of tickers")
    entries = []
    for item in body:
        symbol = item.get("symbol") if isinstance(item, dict) else None
        if not isinstance(symbol, str):
            log.warning("binance: ticker entry without a symbol skipped: %.120r", item)
            continue
        raw = item.get("price")
        try:
            price = to_decimal(raw, "price")
        except BadWireValue:
            price = None
        # An unusable price is that pair's failure (the normaliser says why), not the batch's.
        entries.append({"symbol": symbol, "price": price if price is not None else raw})
    return entries
