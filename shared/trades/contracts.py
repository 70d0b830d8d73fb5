"""The trade system's wire records and their schemas (DESIGN.md §9, docs/trades.md).

    raw-trades         RawTrade     a source's record as received, with who sent it and when
    normalized-trades  TradeRecord  the original `Trade` record, exact decimals as text
    enriched-trades    EnrichedTradeRecord  that record with its market context (shared/trades/enrich.py)
    behavioral-alerts  BehaviouralAlertRecord  an alert naming the trades that caused it

The JSON Schemas in `schemas/` (`raw-trade.v1.json`, `trade.v1.json`) are generated from
these models (`python -m shared.trades.contracts` rewrites them; a test fails when a file
and its model differ). `schemas/trade.v1.avsc` is the same `Trade` record for Avro readers:
decimals as decimal strings (their scale varies, so Avro's fixed-scale `decimal` would round
them), times as `timestamp-millis`; a test checks its fields against the model and round-trips
records through fastavro. Every producer and consumer validates with `validate_record`
(jsonschema, against the generated schema): the API before it publishes a raw trade, the
normaliser on the raw trade it receives and on every trade it publishes. Each event names
its schema in the CloudEvent `dataschema`.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import (
    DATASCHEMA_BASE,
    model_schema,
    rewrite_schema_files,
    validate_document,
)
from shared.trades.models import Trade

RAW_TRADE_SCHEMA = DATASCHEMA_BASE + "raw-trade.v1.json"
TRADE_SCHEMA = DATASCHEMA_BASE + "trade.v1.json"
ENRICHED_TRADE_SCHEMA = DATASCHEMA_BASE + "enriched-trade.v1.json"
BEHAVIOURAL_ALERT_SCHEMA = DATASCHEMA_BASE + "behavioral-alert.v1.json"
TRADE_AVRO_SCHEMA_FILE = "trade.v1.avsc"

RAW_TRADE_TYPE = "trades.raw.received"
TRADE_NORMALIZED_TYPE = "trades.trade.normalized"
TRADE_ENRICHED_TYPE = "trades.trade.enriched"
BEHAVIOURAL_ALERT_TYPE = "trades.alert.raised"

DECIMAL_TEXT = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
SIGNED_DECIMAL_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
# UTC with milliseconds, always three digits: 2024-06-27T05:53:54.105Z.
UTC_MILLIS_TEXT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
USER_ID_TEXT = r"^[A-Za-z0-9._:@-]{1,128}$"
UUID_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class RawKind(StrEnum):
    """What a raw trade's payload is, i.e. which normaliser reads it."""

    MANUAL = "manual"
    BINANCE_MY_TRADES = "binance.myTrades"
    BINANCE_EXECUTION_REPORT = "binance.executionReport"
    BYBIT_EXECUTION_LIST = "bybit.execution.list"
    BYBIT_WS_EXECUTION = "bybit.ws.execution"
    CSV_ROW = "csv.row"


class RawTrade(BaseModel):
    """Data of `trades.raw.received` on raw-trades: one source record, unchanged, and its context.

    `user_id` is the authenticated caller (or the linked account's owner), never read from
    the payload; `idempotency_key` is a manual trade's client key; `account` the exchange
    account label of an exchange record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    user_id: str = Field(pattern=USER_ID_TEXT)
    kind: RawKind
    received_at: str = Field(pattern=UTC_MILLIS_TEXT, json_schema_extra={"format": "date-time"})
    account: str | None = Field(default=None, min_length=1, max_length=128)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    payload: Any = Field(description="the source's own record: a manual trade, a myTrades element, a frame, ...")


class FeeRecord(BaseModel):
    """A fee in the asset it was charged in."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    asset: str | None = Field(pattern=r"^[A-Z0-9]{1,20}$")
    amount: str = Field(pattern=SIGNED_DECIMAL_TEXT)


class TradeRecord(BaseModel):
    """Data of `trades.trade.normalized` on normalized-trades: the original `Trade` record.

    The fields of the original (trade_id … source) with exact decimals as text and UTC
    times with milliseconds, plus `status`, `fees` and the fills it was paired from. Keyed
    by trade_id for a reader: the latest record of a trade_id is its state.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    trade_id: str = Field(pattern=UUID_TEXT)
    user_id: str = Field(pattern=USER_ID_TEXT)
    symbol: str = Field(pattern=r"^[A-Z0-9][A-Z0-9.]{0,39}$")
    side: Literal["BUY", "SELL"]
    entry_price: str = Field(pattern=DECIMAL_TEXT)
    exit_price: str | None = Field(pattern=DECIMAL_TEXT)
    quantity: str = Field(pattern=DECIMAL_TEXT)
    entry_time: str = Field(pattern=UTC_MILLIS_TEXT, json_schema_extra={"format": "date-time"})
    exit_time: str | None = Field(pattern=UTC_MILLIS_TEXT, json_schema_extra={"format": "date-time"})
    pnl: str | None = Field(pattern=SIGNED_DECIMAL_TEXT)
    notes: str | None = Field(max_length=2000)
    source: Literal["manual", "csv", "binance", "bybit"]
    # superseded: a trade that re-pairing replaced (an open lot that closed, a pairing that an
    # earlier fill arriving late changed); the same event batch carries what replaced it.
    status: Literal["open", "closed", "superseded"]
    fees: list[FeeRecord]
    entry_fill_id: str | None = Field(pattern=UUID_TEXT)
    exit_fill_id: str | None = Field(pattern=UUID_TEXT)


class CandleRecord(BaseModel):
    """The crawler's 1-minute candle of the minute a leg happened in (USDT)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    bucket_start: str = Field(pattern=UTC_MILLIS_TEXT)
    open: str = Field(pattern=DECIMAL_TEXT)
    high: str = Field(pattern=DECIMAL_TEXT)
    low: str = Field(pattern=DECIMAL_TEXT)
    close: str = Field(pattern=DECIMAL_TEXT)
    ticks: int = Field(ge=1)


class LegRecord(BaseModel):
    """The market around one leg of a trade: its fill against the crawler's price then."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    leg: Literal["entry", "exit"]
    side: Literal["BUY", "SELL"]
    time: str = Field(pattern=UTC_MILLIS_TEXT)
    fill_price: str = Field(pattern=DECIMAL_TEXT)
    market_price_usdt: str | None = Field(pattern=DECIMAL_TEXT)
    market_observed_at: str | None = Field(pattern=UTC_MILLIS_TEXT)
    market_observation: Literal["latest", "candle_open", "candle_close"] | None
    # positive = adverse (bought above / sold below the market); None unless quoted in USDT
    slippage_bps: str | None = Field(pattern=SIGNED_DECIMAL_TEXT)
    price_difference: str | None = Field(pattern=SIGNED_DECIMAL_TEXT)
    candle_1m: CandleRecord | None


class KpisRecord(BaseModel):
    """The token's last 24 hours as the crawler saw them at enrichment (`as_of`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    as_of: str = Field(pattern=UTC_MILLIS_TEXT)
    price_usdt: str = Field(pattern=DECIMAL_TEXT)
    open_24h: str | None = Field(pattern=DECIMAL_TEXT)
    high_24h: str | None = Field(pattern=DECIMAL_TEXT)
    low_24h: str | None = Field(pattern=DECIMAL_TEXT)
    change_pct_24h: str | None = Field(pattern=SIGNED_DECIMAL_TEXT)
    ticks_24h: int = Field(ge=0)


class VolatilityRecord(BaseModel):
    """Dispersion of the token's hourly closes over the last 24 hours (shared/crawler/gold.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    resolution: str
    periods: int = Field(ge=2)
    samples: int = Field(ge=0)
    stddev: str | None = Field(pattern=DECIMAL_TEXT)
    relative: str | None = Field(pattern=DECIMAL_TEXT)
    returns_stddev: str | None = Field(pattern=DECIMAL_TEXT)


class AuditRecord(BaseModel):
    """The token's current audit (newest provider first): its score and flags."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    provider: str
    score: str = Field(pattern=SIGNED_DECIMAL_TEXT)
    is_honeypot: bool | None
    buy_tax: str | None = Field(pattern=DECIMAL_TEXT)
    sell_tax: str | None = Field(pattern=DECIMAL_TEXT)
    flags: dict[str, Any]
    audited_at: str = Field(pattern=UTC_MILLIS_TEXT)


class EnrichedTradeRecord(BaseModel):
    """Data of `trades.trade.enriched` on enriched-trades: a trade and its market context.

    `status` is `enriched` (the entry has a market price), `pending_market` (the crawler does
    not track the token or has no price near the trade's time; `reason` says which) or
    `superseded` (the trade was replaced by re-pairing: no context). Keyed by trade_id: the
    latest record of a trade is its state.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    trade: TradeRecord
    status: Literal["enriched", "pending_market", "superseded"]
    reason: str | None = Field(max_length=500)
    base_asset: str
    quote_asset: str | None
    token_key: str | None = Field(max_length=200)
    entry: LegRecord | None
    exit: LegRecord | None
    kpis_24h: KpisRecord | None
    volatility_24h: VolatilityRecord | None
    audit: AuditRecord | None
    enriched_at: str = Field(pattern=UTC_MILLIS_TEXT)


class BehaviouralAlertRecord(BaseModel):
    """Data of `trades.alert.raised` on behavioral-alerts: one alert and the trades behind it.

    `alert_id` derives from the rule and its cause, so a redelivered trade raises nothing new;
    `details` holds the measured values and the thresholds as text (exact decimals).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    alert_id: str = Field(pattern=UUID_TEXT)
    user_id: str = Field(pattern=USER_ID_TEXT)
    rule: Literal["overtrading", "revenge_trading", "oversized_position", "risky_token", "off_market_fill"]
    trade_ids: list[str] = Field(min_length=1)
    trigger_trade_id: str = Field(pattern=UUID_TEXT)
    symbol: str
    message: str = Field(max_length=500)
    details: dict[str, str]
    occurred_at: str = Field(pattern=UTC_MILLIS_TEXT)


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    RAW_TRADE_SCHEMA: RawTrade,
    TRADE_SCHEMA: TradeRecord,
    ENRICHED_TRADE_SCHEMA: EnrichedTradeRecord,
    BEHAVIOURAL_ALERT_SCHEMA: BehaviouralAlertRecord,
}


# --- text forms -------------------------------------------------------------------------------


def decimal_text(value: Decimal) -> str:
    """An exact decimal as positional text (no exponent, digits as they are)."""
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text


def millis_text(moment: datetime) -> str:
    """A UTC time with milliseconds, always three digits and a Z."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def trade_record(trade: Trade) -> dict[str, Any]:
    """The wire form of a trade (validated against trade.v1.json)."""
    record = {
        "trade_id": trade.trade_id,
        "user_id": trade.user_id,
        "symbol": trade.symbol,
        "side": trade.side.value,
        "entry_price": decimal_text(trade.entry_price),
        "exit_price": None if trade.exit_price is None else decimal_text(trade.exit_price),
        "quantity": decimal_text(trade.quantity),
        "entry_time": millis_text(trade.entry_time),
        "exit_time": None if trade.exit_time is None else millis_text(trade.exit_time),
        "pnl": None if trade.pnl is None else decimal_text(trade.pnl),
        "notes": trade.notes,
        "source": trade.source.value,
        "status": trade.status,
        "fees": [{"asset": f.asset, "amount": decimal_text(f.amount)} for f in trade.fees],
        "entry_fill_id": trade.entry_fill_id,
        "exit_fill_id": trade.exit_fill_id,
    }
    validate_record(TRADE_SCHEMA, record)
    return record


# --- validation -------------------------------------------------------------------------------


def schema_document(uri: str) -> dict[str, Any]:
    """The JSON Schema published at `uri`, as its model generates it."""
    return model_schema(uri, SCHEMA_MODELS[uri])


def validate_record(uri: str, document: Any) -> None:
    """`BadMessage` naming the first field where `document` breaks the schema at `uri`."""
    validate_document(uri, SCHEMA_MODELS[uri], document)


def main(argv: list[str]) -> int:
    """Rewrite schemas/ from the models (`--check`: exit 1 when a file differs)."""
    check = "--check" in argv
    stale = rewrite_schema_files(SCHEMA_MODELS, check=check)
    if stale:
        print(("out of date: " if check else "rewrote: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
