"""The published contract of the stock system's events (DESIGN.md §11).

    stocks.quote.validated  StockQuoteValidated  (stocks → stock-quotes, key: stock:<SYMBOL>)

The JSON Schema `schemas/stock-quote-validated.v1.json` is generated from the model
(`python -m shared.stocks.contracts` rewrites it; a test fails when file and model differ);
each event names it in its CloudEvent `dataschema`, and `shared.stocks.events` validates what
it publishes against the model. Prices travel as positional decimal text (USD), never floats.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import DATASCHEMA_BASE, rewrite_schema_files

QUOTE_VALIDATED = "stocks.quote.validated"
QUOTE_VALIDATED_SCHEMA = DATASCHEMA_BASE + "stock-quote-validated.v1.json"

# A price: positive positional decimal text ("189.9800"), never an exponent.
PRICE_TEXT = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
# A change (d, dp): may be negative.
SIGNED_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
UTC_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"


class StockQuoteValidated(BaseModel):
    """Data of `stocks.quote.validated`: one new quote, as silver stored it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    instrument_key: str = Field(pattern=r"^stock:[A-Z][A-Z0-9]{0,9}([.-][A-Z0-9]{1,4})?$")
    symbol: str = Field(pattern=r"^[A-Z][A-Z0-9]{0,9}([.-][A-Z0-9]{1,4})?$")
    currency: Literal["USD"]
    current_price: str = Field(pattern=PRICE_TEXT)
    change: str | None = Field(pattern=SIGNED_TEXT)
    change_percent: str | None = Field(pattern=SIGNED_TEXT)
    day_high: str = Field(pattern=PRICE_TEXT)
    day_low: str = Field(pattern=PRICE_TEXT)
    day_open: str = Field(pattern=PRICE_TEXT)
    previous_close: str = Field(pattern=PRICE_TEXT)
    market_time: str = Field(pattern=UTC_TIME, description="Finnhub's t, UTC")
    fetched_at: str = Field(pattern=UTC_TIME, description="when the answer was received, UTC")


EVENT_DATASCHEMAS: dict[str, str] = {QUOTE_VALIDATED: QUOTE_VALIDATED_SCHEMA}
SCHEMA_MODELS: dict[str, type[BaseModel]] = {QUOTE_VALIDATED_SCHEMA: StockQuoteValidated}


if __name__ == "__main__":
    for name in rewrite_schema_files(SCHEMA_MODELS):
        print(f"schemas/{name}")
    sys.exit(0)
