"""The CloudEvent of one validated quote, published on the topic `stock-quotes` (DESIGN.md §11).

Binary mode through `shared.kafka.EventProducer` (ce_* headers, JSON body), keyed by the
instrument so one stock's quotes stay in order. The id is the quote's identity in silver,
(instrument, market time): a job retried after a failed publish sends the same id again, so a
consumer deduplicates on it. Decimals travel as exact positional strings; the data is
validated against its published schema (`shared.stocks.contracts`) before it leaves.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.events import OutboundEvent
from shared.stocks.contracts import QUOTE_VALIDATED, QUOTE_VALIDATED_SCHEMA, StockQuoteValidated
from shared.stocks.models import StockQuote

TOPIC = "stock-quotes"
EVENT_TYPE = QUOTE_VALIDATED
EVENT_SOURCE = "/stocks/finnhub"


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _text(value: Decimal | None) -> str | None:
    # Positional: str(Decimal) may write 1E+2, which the schema (and most readers) refuse.
    return None if value is None else format(value, "f")


def quote_data(quote: StockQuote) -> dict[str, Any]:
    """The data of the event of `quote`, validated against `stock-quote-validated.v1.json`."""
    data = {
        "instrument_key": quote.instrument_key,
        "symbol": quote.symbol,
        "currency": quote.currency,
        "current_price": _text(quote.current_price),
        "change": _text(quote.change),
        "change_percent": _text(quote.change_percent),
        "day_high": _text(quote.day_high),
        "day_low": _text(quote.day_low),
        "day_open": _text(quote.day_open),
        "previous_close": _text(quote.previous_close),
        "market_time": _utc(quote.market_time),
        "fetched_at": _utc(quote.fetched_at),
    }
    StockQuoteValidated.model_validate(data)  # a quote that breaks the contract is our bug: fail loudly
    return data


def quote_event(quote: StockQuote) -> OutboundEvent:
    """The event announcing `quote`."""
    return OutboundEvent(
        type=QUOTE_VALIDATED,
        source=EVENT_SOURCE,
        key=quote.instrument_key,
        subject=quote.instrument_key,
        id=f"{quote.instrument_key}@{_utc(quote.market_time)}",
        time=quote.fetched_at,
        data=quote_data(quote),
        dataschema=QUOTE_VALIDATED_SCHEMA,
    )
