"""The stock routes of the quotes API (docs/openapi.yaml, docs/stocks.md), registered beside the
crawler's in `shared.crawler.quotes.api.ROUTES`:

    GET /v1/stocks/quotes[?symbols=AAPL,MSFT]   latest silver quote per symbol
    GET /v1/stocks/kpis[?symbols=...]           gold KPIs with the treechart's volatility
    GET /v1/stocks/{symbol}/candles             gold daily candles (US/Eastern days, last 12)

Symbols are read exactly as documented (`SYMBOL_PATTERN`, any case, upper-cased); money is
exact decimal text in USD. Gold answers are per symbol: one the gold layer has not built yet
is an error object (404), never a 5xx.
"""

from __future__ import annotations

import re
from typing import Any

from shared.crawler.quotes.api import ApiError, Query, QuotesApi, decimal_text, route, stat_text, time_text
from shared.stocks import reads
from shared.stocks.models import CURRENCY, StockQuote
from shared.stocks.settings import StockSettings
from shared.stocks.symbols import KEY_PREFIX

MAX_SYMBOLS = 100
SYMBOL_PATTERN = r"[A-Za-z][A-Za-z0-9]{0,9}(?:[.-][A-Za-z0-9]{1,4})?"
_SYMBOL = re.compile(SYMBOL_PATTERN)


def _settings(api: QuotesApi) -> StockSettings:
    return api.resources.once("stocks.settings", StockSettings)


def parse_symbol(text: str) -> str:
    """One documented symbol, upper-cased; 400 otherwise."""
    if not _SYMBOL.fullmatch(text):
        raise ApiError(400, f"not a stock symbol: {text[:40]!r} (letters and digits, a class suffix after . or -)")
    return text.upper()


def parse_symbols(params: Query) -> list[str] | None:
    """The `symbols` list (1 to 100 comma-separated symbols), in request order; None when absent."""
    text = params.one("symbols")
    if text is None:
        return None
    items = text.split(",")
    if len(items) > MAX_SYMBOLS:
        raise ApiError(400, f"at most {MAX_SYMBOLS} symbols per request, got {len(items)}")
    return list(dict.fromkeys(parse_symbol(item) for item in items))


def quote_json(quote: StockQuote) -> dict[str, Any]:
    return {
        "symbol": quote.symbol,
        "instrument_key": quote.instrument_key,
        "currency": quote.currency,
        "current_price": decimal_text(quote.current_price),
        "change": decimal_text(quote.change),
        "change_percent": decimal_text(quote.change_percent),
        "day_high": decimal_text(quote.day_high),
        "day_low": decimal_text(quote.day_low),
        "day_open": decimal_text(quote.day_open),
        "previous_close": decimal_text(quote.previous_close),
        "market_time": time_text(quote.market_time),
        "fetched_at": time_text(quote.fetched_at),
    }


def _missing(symbol: str, what: str) -> dict[str, Any]:
    return {"symbol": symbol, "status": 404, "error": f"no {what} yet for {symbol}"}


@route("stock_quotes", "/stocks/quotes", params=("symbols",))
def _quotes(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    symbols = parse_symbols(params)
    found = reads.latest_quotes(conn, symbols)
    order = symbols if symbols is not None else sorted(found)
    return 200, {
        "quotes": [quote_json(found[s]) for s in order if s in found],
        "errors": [_missing(s, "quote") for s in order if s not in found],
    }


@route("stock_kpis", "/stocks/kpis", params=("symbols",))
def _kpis(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    symbols = parse_symbols(params)
    found = reads.kpis(conn, _settings(api).gold_schema, symbols)
    order = symbols if symbols is not None else sorted(found)
    items = []
    for symbol in order:
        kpi = found.get(symbol)
        if kpi is None:
            continue
        items.append(
            {
                "symbol": kpi.symbol,
                "instrument_key": KEY_PREFIX + kpi.symbol,
                "currency": CURRENCY,
                "current_price": decimal_text(kpi.current_price),
                "change": decimal_text(kpi.change_amount),
                "change_percent": decimal_text(kpi.change_percent),
                "day_high": decimal_text(kpi.day_high),
                "day_low": decimal_text(kpi.day_low),
                "day_open": decimal_text(kpi.day_open),
                "previous_close": decimal_text(kpi.prev_close),
                "market_time": time_text(kpi.market_time),
                "fetched_at": time_text(kpi.fetched_at),
                "latest_day": kpi.latest_day.isoformat() if kpi.latest_day else None,
                "latest_day_avg_price": stat_text(kpi.latest_day_avg_price),
                "volatility": stat_text(kpi.volatility),
                "relative_volatility": stat_text(kpi.relative_volatility),
                "quote_count": kpi.quote_count,
            }
        )
    return 200, {"kpis": items, "errors": [_missing(s, "gold KPIs") for s in order if s not in found]}


@route("stock_candles", "/stocks/{ref}/candles")
def _candles(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    symbol = parse_symbol(segments[0])
    rows = reads.candles(conn, _settings(api).gold_schema, symbol)
    if not rows:
        raise ApiError(404, f"no daily candles yet for {symbol}", symbol=symbol)
    return 200, {
        "symbol": symbol,
        "instrument_key": KEY_PREFIX + symbol,
        "currency": CURRENCY,
        "timezone": "America/New_York",
        "candles": [
            {
                "date": c.candle_date.isoformat(),
                "open": decimal_text(c.open),
                "high": decimal_text(c.high),
                "low": decimal_text(c.low),
                "close": decimal_text(c.close),
                "trend_line": stat_text(c.trend_line),
                "quotes": c.quote_count,
                "first_quote_at": time_text(c.first_quote_at),
                "last_quote_at": time_text(c.last_quote_at),
            }
            for c in rows
        ],
    }
