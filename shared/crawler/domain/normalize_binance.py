"""Binance Spot payloads -> USDT price quotes.

Binance quotes ``<BASE>USDT`` pairs directly in USDT, so no conversion is needed: the
price string is the USDT price, kept digit for digit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.crawler.domain.sources import Source
from shared.crawler.models import PriceQuote, TokenFailure
from shared.errors import BadWireValue
from shared.wire import as_dict, as_list, require_utc, text, to_positive_decimal

QUOTE_ASSET = "USDT"


def usdt_pair(symbol: str) -> str:
    """The Binance symbol of a token's USDT pair: ``"btc"`` -> ``"BTCUSDT"``."""
    return symbol.strip().upper() + QUOTE_ASSET


def binance_pairs(tokens: Iterable[Any], listed: Collection[str]) -> dict[str, str]:
    """USDT pair -> token key for the tokens (objects with `symbol` and `key`, best rank first)
    whose base asset Binance lists; a lower-ranked namesake is not the coin Binance lists."""
    pair_to_key: dict[str, str] = {}
    for token in tokens:
        if token.symbol.upper() in listed:
            pair_to_key.setdefault(usdt_pair(token.symbol), token.key)
    return pair_to_key


def parse_binance_ticker_prices(
    rows: Any,
    pair_to_key: Mapping[str, str],
    symbols: Mapping[str, str],
    observed_at: datetime,
) -> tuple[list[PriceQuote], list[TokenFailure]]:
    """Quotes from ``GET /api/v3/ticker/price`` for the pairs we asked about.

    - `rows`: the decoded body, an array of ``{"symbol", "price"}`` (or the single object
      Binance returns for ``?symbol=``).
    - `pair_to_key`: Binance pair (``"BTCUSDT"``) -> our token key; rows for other pairs
      are ignored (the no-parameter form returns every pair).
    - `symbols`: Binance pair -> the token's symbol for the quote; defaults to the pair
      without its ``USDT`` suffix.

    A zero, negative or unparsable price is a failure with the reason, never a quote;
    so is a requested pair missing from the answer.
    """
    observed_at = require_utc(observed_at, "observed_at")
    if isinstance(rows, dict):
        rows = [rows]
    quotes: list[PriceQuote] = []
    failures: list[TokenFailure] = []
    seen: set[str] = set()
    for row in as_list(rows):
        row = as_dict(row)
        pair = text(row.get("symbol"))
        if pair is None or pair not in pair_to_key or pair in seen:
            continue
        seen.add(pair)
        key = pair_to_key[pair]
        try:
            price = to_positive_decimal(row.get("price"), "price")
        except BadWireValue as exc:
            failures.append(TokenFailure(key, f"binance {pair}: {exc}"))
            continue
        if price is None:
            failures.append(TokenFailure(key, f"binance {pair}: unusable price {row.get('price')!r}"))
            continue
        symbol = symbols.get(pair) or pair.removesuffix(QUOTE_ASSET)
        quotes.append(PriceQuote(key, symbol, price, Source.BINANCE.value, observed_at))
    for pair, key in pair_to_key.items():
        if pair not in seen:
            failures.append(TokenFailure(key, f"binance returned no price for {pair}"))
    return quotes, failures


def usdt_bases_from_exchange_info(payload: Any) -> set[str]:
    """Base assets that have a ``<BASE>USDT`` spot pair currently trading.

    From ``GET /api/v3/exchangeInfo``: symbols with ``status == "TRADING"`` and
    ``quoteAsset == "USDT"`` (and spot trading not explicitly disabled).
    """
    bases: set[str] = set()
    for entry in as_list(as_dict(payload).get("symbols")):
        entry = as_dict(entry)
        base = text(entry.get("baseAsset"))
        if (
            base
            and entry.get("status") == "TRADING"
            and entry.get("quoteAsset") == QUOTE_ASSET
            and entry.get("isSpotTradingAllowed", True) is not False
        ):
            bases.add(base.upper())
    return bases
