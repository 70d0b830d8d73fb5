"""Reads of the stock system for the quotes API: silver's latest quote per symbol, and the dbt
gold tables (gold_kpi_latest, gold_treechart, gold_candlestick) in their configured schema.

Until the first gold build the gold tables do not exist: `gold_built` says so and the reads
of gold answer nothing (the API then says "not built yet" per symbol, never a 5xx).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.stocks.models import StockQuote
from shared.stocks.store import _COLUMNS

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def gold_relation(schema: str, table: str) -> str:
    """`schema.table`, both checked to be plain identifiers (they come from configuration)."""
    if not (_IDENTIFIER.fullmatch(schema) and _IDENTIFIER.fullmatch(table)):
        raise ValueError(f"not a plain identifier: {schema}.{table}")
    return f'"{schema}"."{table}"'


def latest_quotes(conn: Any, symbols: Sequence[str] | None, limit: int = 1000) -> dict[str, StockQuote]:
    """The latest silver quote (by market time) of each symbol asked for, or of every symbol."""
    where = "WHERE symbol = ANY(CAST(:symbols AS text[]))" if symbols is not None else ""
    rows = conn.run(
        f"SELECT DISTINCT ON (symbol) {_COLUMNS} FROM stock_quotes {where}"
        " ORDER BY symbol, market_time DESC LIMIT :limit",
        limit=limit,
        **({"symbols": list(symbols)} if symbols is not None else {}),
    )
    found = {}
    for symbol, key, currency, c, d, dp, h, low, o, pc, market_time, fetched_at in rows:
        found[symbol] = StockQuote(key, symbol, c, d, dp, h, low, o, pc, market_time, fetched_at, currency)
    return found


def gold_built(conn: Any, schema: str) -> bool:
    """Whether the gold tables exist (dbt build ran at least once)."""
    rows = conn.run(
        "SELECT to_regclass(:a) IS NOT NULL AND to_regclass(:b) IS NOT NULL AND to_regclass(:c) IS NOT NULL",
        a=gold_relation(schema, "gold_kpi_latest"),
        b=gold_relation(schema, "gold_treechart"),
        c=gold_relation(schema, "gold_candlestick"),
    )
    return bool(rows[0][0])


@dataclass(frozen=True, slots=True)
class StockKpi:
    """The latest KPI of a symbol (gold_kpi_latest) with its volatility (gold_treechart)."""

    symbol: str
    current_price: Decimal
    change_amount: Decimal | None
    change_percent: Decimal | None
    day_high: Decimal
    day_low: Decimal
    day_open: Decimal
    prev_close: Decimal
    market_time: datetime
    fetched_at: datetime
    latest_day: date | None
    latest_day_avg_price: Decimal | None
    volatility: Decimal | None
    relative_volatility: Decimal | None
    quote_count: int | None


def kpis(conn: Any, schema: str, symbols: Sequence[str] | None) -> dict[str, StockKpi]:
    """Gold KPIs of the symbols asked for (or all); empty before the first gold build."""
    if not gold_built(conn, schema):
        return {}
    where = "WHERE k.symbol = ANY(CAST(:symbols AS text[]))" if symbols is not None else ""
    rows = conn.run(
        "SELECT k.symbol, k.current_price, k.change_amount, k.change_percent, k.day_high, k.day_low, k.day_open,"
        " k.prev_close, k.market_time_utc, k.fetched_at, t.latest_day, t.avg_price, t.volatility,"
        f" t.relative_volatility, t.quote_count FROM {gold_relation(schema, 'gold_kpi_latest')} k"
        f" LEFT JOIN {gold_relation(schema, 'gold_treechart')} t USING (symbol) {where} ORDER BY k.symbol",
        **({"symbols": list(symbols)} if symbols is not None else {}),
    )
    return {
        r[0]: StockKpi(
            symbol=r[0],
            current_price=r[1],
            change_amount=r[2],
            change_percent=r[3],
            day_high=r[4],
            day_low=r[5],
            day_open=r[6],
            prev_close=r[7],
            market_time=r[8],
            fetched_at=r[9],
            latest_day=r[10],
            latest_day_avg_price=r[11],
            volatility=r[12],
            relative_volatility=r[13],
            quote_count=int(r[14]) if r[14] is not None else None,
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class DailyCandle:
    """One daily candle of gold_candlestick (US/Eastern trading day)."""

    candle_date: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    trend_line: Decimal
    quote_count: int
    first_quote_at: datetime
    last_quote_at: datetime


def candles(conn: Any, schema: str, symbol: str) -> list[DailyCandle]:
    """The symbol's daily candles, oldest first (at most the 12 the model keeps); empty before gold."""
    if not gold_built(conn, schema):
        return []
    rows = conn.run(
        "SELECT candle_date, candle_open, candle_high, candle_low, candle_close, trend_line, quote_count,"
        f" first_quote_at, last_quote_at FROM {gold_relation(schema, 'gold_candlestick')}"
        " WHERE symbol = :symbol ORDER BY candle_date",
        symbol=symbol,
    )
    return [
        DailyCandle(
            candle_date=r[0],
            open=r[1],
            high=r[2],
            low=r[3],
            close=r[4],
            trend_line=r[5],
            quote_count=int(r[6]),
            first_quote_at=r[7],
            last_quote_at=r[8],
        )
        for r in rows
    ]
