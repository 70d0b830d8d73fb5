"""The stock system's records: plain frozen dataclasses, `Decimal` money, UTC datetimes.

Prices are USD and say so (`currency`): the USDT rule of the crypto side is for tokens
(DESIGN.md §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class StockQuote:
    """One validated Finnhub quote of a stock at one market time.

    `market_time` is Finnhub's `t`; `fetched_at` when we received the answer. Silver keeps
    one row per (symbol, market_time).
    """

    instrument_key: str  # stock:<SYMBOL>
    symbol: str
    current_price: Decimal  # c
    change: Decimal | None  # d (null for an unknown symbol; may be negative)
    change_percent: Decimal | None  # dp
    day_high: Decimal  # h
    day_low: Decimal  # l
    day_open: Decimal  # o
    previous_close: Decimal  # pc
    market_time: datetime  # t, UTC
    fetched_at: datetime
    currency: str = CURRENCY


class RejectionReason(StrEnum):
    """Why a raw answer is not a quote: the label of the rejections metric and silver's log."""

    NOT_AN_OBJECT = "not_an_object"
    ERROR_BODY = "error_body"  # {"error": "..."} on a 2xx
    MISSING_FIELD = "missing_field"  # a required field absent or null
    BAD_NUMBER = "bad_number"  # NaN, Infinity, out of the wire bounds, not a number
    NOT_POSITIVE = "not_positive"  # price, open or previous close <= 0 (the original's rule)
    NEGATIVE = "negative"  # a day high or low below zero
    HIGH_BELOW_LOW = "high_below_low"
    ABSURD_PRICE = "absurd_price"  # above the configured ceiling
    TIME_IN_MILLISECONDS = "time_in_milliseconds"
    TIME_INVALID = "time_invalid"  # t <= 0, not an integer, before the first listed trade
    TIME_IN_FUTURE = "time_in_future"


@dataclass(frozen=True, slots=True)
class QuoteRejected:
    """A raw answer that breaks a rule: never a silver row, always counted with its reason."""

    symbol: str
    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class NoQuoteData:
    """Finnhub's all-zero answer (an unknown or unquoted symbol): no data, never a price of 0."""

    symbol: str


QuoteOutcome = StockQuote | QuoteRejected | NoQuoteData
