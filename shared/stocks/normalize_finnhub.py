"""Finnhub `GET /api/v1/quote` answers -> `StockQuote`, `NoQuoteData` or `QuoteRejected`.

The answer is `{"c", "d", "dp", "h", "l", "o", "pc", "t"}`, every value a JSON number
(tests/fixtures/upstream/finnhub.quote*.json), decoded by the platform's bounded decoder
(`shared.upstream.jsonbody`) and read through `shared.wire`, so prices are exact `Decimal`.

- All prices zero and `t` zero: Finnhub's answer for a symbol it has no data for
  (`{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}`): `NoQuoteData`, never a price 0.
- The original's silver rules (current price, open and previous close > 0, high >= low),
  plus: day high and low > 0, no price above `QuoteRules.max_price`, `t` an integer number
  of seconds, after `MIN_MARKET_TIME` and not ahead of our own clock by more than the skew.
  A `t` in milliseconds is named as such. Anything else is `QuoteRejected` with its reason.
- `d` and `dp` are kept when they are numbers (they may be negative), None when null.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from shared.errors import BadWireValue
from shared.stocks.market_hours import in_regular_session
from shared.stocks.models import NoQuoteData, QuoteOutcome, QuoteRejected, RejectionReason, StockQuote
from shared.stocks.symbols import canonical_symbol, instrument_key
from shared.wire import require_utc, to_decimal

PRICE_FIELDS = {"c": "current price", "h": "day high", "l": "day low", "o": "day open", "pc": "previous close"}
# A Unix time in seconds above this (year 5138) is milliseconds (or nonsense).
MILLISECONDS_THRESHOLD = 100_000_000_000
MIN_MARKET_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class QuoteRules:
    """Bounds of a believable quote (configuration: `StockSettings`)."""

    # The dearest US share trades below 1e6 USD (BRK.A); a price above this is a wire accident.
    max_price: Decimal = Decimal(10_000_000)
    # A market time this far ahead of our clock is no time Finnhub could have sent.
    max_clock_skew: timedelta = timedelta(minutes=5)


class _Rejected(Exception):
    def __init__(self, reason: RejectionReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def normalise_quote(symbol: str, body: Any, fetched_at: datetime, rules: QuoteRules | None = None) -> QuoteOutcome:
    """What one decoded `/api/v1/quote` answer for `symbol` is (module docstring).

    `symbol` must already be canonical-able (`BadMessage` otherwise: the job named it);
    `fetched_at` is aware.
    """
    symbol = canonical_symbol(symbol)
    fetched_at = require_utc(fetched_at, "fetched_at")
    rules = rules or QuoteRules()
    try:
        return _normalise(symbol, body, fetched_at, rules)
    except _Rejected as rejected:
        return QuoteRejected(symbol, rejected.reason, rejected.detail)


def _normalise(symbol: str, body: Any, fetched_at: datetime, rules: QuoteRules) -> QuoteOutcome:
    if not isinstance(body, dict):
        raise _Rejected(RejectionReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(body).__name__}")
    if "error" in body:
        raise _Rejected(RejectionReason.ERROR_BODY, f"error body: {str(body.get('error'))[:200]}")
    prices = {field: _number(body, field, required=True) for field in PRICE_FIELDS}
    raw_time = _number(body, "t", required=False)
    if all(value == 0 for value in prices.values()) and not raw_time:
        return NoQuoteData(symbol)
    for field, value in prices.items():
        assert value is not None  # required
        if value <= 0:
            raise _Rejected(RejectionReason.NOT_POSITIVE, f"{PRICE_FIELDS[field]} ({field}) {value} is not above 0")
        if value > rules.max_price:
            raise _Rejected(
                RejectionReason.ABSURD_PRICE, f"{PRICE_FIELDS[field]} ({field}) {value} above {rules.max_price} USD"
            )
    high, low = prices["h"], prices["l"]
    assert high is not None and low is not None
    if high < low:
        raise _Rejected(RejectionReason.HIGH_BELOW_LOW, f"day high {high} below day low {low}")
    market_time = _market_time(raw_time, fetched_at, rules)
    return StockQuote(
        instrument_key=instrument_key(symbol),
        symbol=symbol,
        current_price=prices["c"],  # type: ignore[arg-type]  # checked above
        change=_number(body, "d", required=False),
        change_percent=_number(body, "dp", required=False),
        day_high=high,
        day_low=low,
        day_open=prices["o"],  # type: ignore[arg-type]
        previous_close=prices["pc"],  # type: ignore[arg-type]
        market_time=market_time,
        fetched_at=fetched_at,
    )


def _number(body: dict[str, Any], field: str, *, required: bool) -> Decimal | None:
    value = body.get(field)
    if value is None:
        if required:
            raise _Rejected(RejectionReason.MISSING_FIELD, f"{field} is missing or null")
        return None
    try:
        number = to_decimal(value, field)
    except BadWireValue as exc:
        raise _Rejected(RejectionReason.BAD_NUMBER, exc.reason) from None
    if number is None or isinstance(value, str):  # Finnhub sends numbers; "1.5" or true is another API
        raise _Rejected(RejectionReason.BAD_NUMBER, f"{field} is not a JSON number: {str(value)[:40]!r}")
    return number


def _market_time(raw: Decimal | None, fetched_at: datetime, rules: QuoteRules) -> datetime:
    if raw is None:
        raise _Rejected(RejectionReason.MISSING_FIELD, "t is missing or null")
    if raw != raw.to_integral_value() or raw <= 0:
        raise _Rejected(RejectionReason.TIME_INVALID, f"t {raw} is not a positive whole number of seconds")
    if raw >= MILLISECONDS_THRESHOLD:
        raise _Rejected(RejectionReason.TIME_IN_MILLISECONDS, f"t {raw} is milliseconds (or later than year 5000)")
    moment = datetime.fromtimestamp(int(raw), tz=timezone.utc)
    if moment < MIN_MARKET_TIME:
        raise _Rejected(RejectionReason.TIME_INVALID, f"t {raw} ({moment:%Y-%m-%d}) is before {MIN_MARKET_TIME:%Y}")
    if moment > fetched_at + rules.max_clock_skew:
        raise _Rejected(
            RejectionReason.TIME_IN_FUTURE,
            f"t {raw} ({moment.isoformat()}) is ahead of the fetch at {fetched_at.isoformat()}",
        )
    return moment


def same_prices(a: StockQuote, b: StockQuote) -> bool:
    """Whether two quotes carry the same prices (the time and fetch aside)."""
    return (a.current_price, a.day_high, a.day_low, a.day_open, a.previous_close) == (
        b.current_price,
        b.day_high,
        b.day_low,
        b.day_open,
        b.previous_close,
    )


def is_new_quote(quote: StockQuote, previous: StockQuote | None) -> bool:
    """Whether `quote` is news after `previous` (the symbol's latest quote in silver).

    Not new: the same or an older market time (Finnhub repeats its last `t` on every call
    outside market hours), or a market time moved outside the regular session with the
    same prices (Finnhub stamps closed days: the 2025 AAPL sample has a Sunday `t`).
    """
    if previous is None:
        return True
    if quote.market_time <= previous.market_time:
        return False
    return in_regular_session(quote.market_time) or not same_prices(quote, previous)
