"""The CloudEvent of one validated quote, published on the topic `stock-quotes` (DESIGN.md §11).

Binary mode through `shared.kafka.EventProducer` (ce_* headers, JSON body), keyed by the
instrument so one stock's quotes stay in order. The id is the quote's identity in silver,
(instrument, market time): a job retried after a failed publish sends the same id again, so a
consumer deduplicates on it. Decimals travel as exact strings.
"""

from __future__ import annotations

from shared.events import OutboundEvent
from shared.stocks.models import StockQuote

TOPIC = "stock-quotes"
EVENT_TYPE = "stocks.quote.validated"
EVENT_SOURCE = "/stocks/finnhub"


def quote_event(quote: StockQuote) -> OutboundEvent:
    """The event announcing `quote`."""
    market_time = quote.market_time.isoformat().replace("+00:00", "Z")
    return OutboundEvent(
        type=EVENT_TYPE,
        source=EVENT_SOURCE,
        key=quote.instrument_key,
        subject=quote.instrument_key,
        id=f"{quote.instrument_key}@{market_time}",
        time=quote.fetched_at,
        data={
            "instrument_key": quote.instrument_key,
            "symbol": quote.symbol,
            "currency": quote.currency,
            "current_price": quote.current_price,
            "change": quote.change,
            "change_percent": quote.change_percent,
            "day_high": quote.day_high,
            "day_low": quote.day_low,
            "day_open": quote.day_open,
            "previous_close": quote.previous_close,
            "market_time": market_time,
            "fetched_at": quote.fetched_at.isoformat().replace("+00:00", "Z"),
        },
    )
