"""The normaliser's pipeline: one raw-trades record in; its fills stored, re-paired, published.

1. The record is read and validated (schemas/raw-trade.v1.json); its payload normalised by the
   normaliser of its `kind` (shared/trades/normalize.py). A record that can never be normalised
   is noted in `trade_rejections` (field and reason) and raised as `TradeRejected`/`BadMessage`:
   the function answers 400 and KafkaSource dead-letters it with that reason.
2. In one transaction, per (user, symbol) under an advisory lock: each fill is inserted once
   (its id derived from its identity: a redelivery or a re-sent record inserts nothing), and
   when one is new the (user, symbol)'s fills are re-paired FIFO from scratch, so a fill
   arriving out of order is paired where it belongs; the stored trades become the pairing.
3. The trades that changed (and those superseded) are published to normalized-trades, keyed by
   user_id, and confirmed by the broker *before* the transaction commits: if publishing fails
   nothing is stored and the record is retried (503); if the commit fails after publishing, the
   retry publishes the same records again (same trade_id, same content): at least once, and a
   reader keyed by trade_id sees each state once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import BadMessage
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.trades import store
from shared.trades.contracts import (
    RAW_TRADE_SCHEMA,
    TRADE_NORMALIZED_TYPE,
    TRADE_SCHEMA,
    RawKind,
    RawTrade,
    validate_record,
)
from shared.trades.errors import TradeRejected
from shared.trades.models import Fill, Trade
from shared.trades.normalize import (
    Received,
    binance_execution_report,
    binance_my_trade,
    bybit_execution_list,
    bybit_ws_execution,
    csv_row,
    manual_entry,
)
from shared.trades.pairing import pair_fifo
from shared.trades.settings import TradesSettings, trades_settings
from shared.upstream.jsonbody import decode_json

log = logging.getLogger(__name__)

EVENT_SOURCE = "/price-crawler/trade-normalizer"
MAX_RAW_BYTES = 4 * 1024 * 1024


def read_raw_trade(data: bytes) -> RawTrade:
    """The raw-trades record of an event body; `BadMessage` when it is not one."""
    if len(data) > MAX_RAW_BYTES:
        raise BadMessage(f"raw trade of {len(data)} bytes is larger than {MAX_RAW_BYTES}")
    try:
        document = decode_json(data)
    except ValueError as exc:
        raise BadMessage(f"raw trade is not JSON: {exc}") from None
    validate_record(RAW_TRADE_SCHEMA, document)
    try:
        return RawTrade.model_validate(document, strict=False)  # JSON strings into the enum
    except ValueError as exc:  # the schema and the model agree; this is belt and braces
        raise BadMessage(f"raw trade: {exc}") from None


def normalise_raw(raw: RawTrade, settings: TradesSettings) -> list[Fill | Trade]:
    """The fills (or manual round trip) of a raw record; `TradeRejected` naming the field."""
    received_at = datetime.fromisoformat(raw.received_at.replace("Z", "+00:00"))
    received = Received(
        raw.user_id,
        received_at,
        account=raw.account or "default",
        clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
    )
    if raw.kind is RawKind.MANUAL:
        if raw.idempotency_key is None:
            raise TradeRejected("idempotency_key", "a manual trade needs its client key")
        return [manual_entry(raw.payload, received, raw.idempotency_key)]
    if raw.kind is RawKind.BINANCE_MY_TRADES:
        items = raw.payload if isinstance(raw.payload, list) else [raw.payload]
        return [binance_my_trade(item, received) for item in items]
    if raw.kind is RawKind.BINANCE_EXECUTION_REPORT:
        fill = binance_execution_report(raw.payload, received)
        return [] if fill is None else [fill]
    if raw.kind is RawKind.CSV_ROW:
        return [csv_import_row(raw.payload, received)]
    if raw.kind is RawKind.BYBIT_EXECUTION_LIST:
        return list(bybit_execution_list(raw.payload, received))
    return list(bybit_ws_execution(raw.payload, received))


def csv_import_row(payload: Any, received: Received) -> Fill:
    """The fill of a `csv.row` raw record (written by the import: shared/trades/imports.py)."""
    if not isinstance(payload, dict):
        raise TradeRejected("payload", "a csv.row payload must be an object")
    cells, columns = payload.get("cells"), payload.get("columns")
    digest, row, zone_name = payload.get("file_digest"), payload.get("row"), payload.get("timezone")
    if not (isinstance(cells, list) and all(isinstance(c, str) for c in cells)):
        raise TradeRejected("cells", "must be an array of strings")
    if not (isinstance(columns, dict) and all(isinstance(v, int) and 0 <= v < 1000 for v in columns.values())):
        raise TradeRejected("columns", "must map fields to column indexes")
    if not isinstance(digest, str) or not isinstance(row, int) or isinstance(row, bool):
        raise TradeRejected("row", "a csv.row needs its file_digest and row number")
    zone = None
    if zone_name is not None:
        try:
            zone = ZoneInfo(str(zone_name))
        except (ValueError, ZoneInfoNotFoundError):
            raise TradeRejected("timezone", f"unknown time zone {str(zone_name)[:40]!r}") from None
    return csv_row(
        cells,
        columns,
        received,
        file_digest=digest,
        row_number=row,
        zone=zone,
        decimal_comma=payload.get("decimal_comma") is True,
    )


def normalize_event(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one raw-trades record (module docstring); the verdict's body."""
    settings = trades_settings(resources)
    raw: RawTrade | None = None
    try:
        raw = read_raw_trade(event.data)
        items = normalise_raw(raw, settings)
    except BadMessage as exc:
        _reject(resources, event, raw, exc)
        raise
    fills = [i for i in items if isinstance(i, Fill)]
    round_trips = [i for i in items if isinstance(i, Trade)]
    received_at = datetime.fromisoformat(raw.received_at.replace("Z", "+00:00"))
    counts = {"new": 0, "duplicate": 0, "conflict": 0}
    published: list[dict[str, Any]] = []
    with resources.db.transaction() as conn:
        by_position: dict[tuple[str, str], list[Fill]] = {}
        for fill in fills:
            by_position.setdefault((fill.user_id, fill.symbol), []).append(fill)
        for (user_id, symbol), group in sorted(by_position.items()):
            store.lock_position(conn, user_id, symbol)
            outcomes = [store.insert_fill(conn, f, raw_event_id=event.id, received_at=received_at) for f in group]
            for fill, outcome in zip(group, outcomes):
                counts[outcome] += 1
                if outcome == "conflict":
                    store.record_rejection(
                        conn,
                        raw_event_id=event.id,
                        user_id=fill.user_id,
                        kind=raw.kind.value,
                        field=f"fill:{fill.external_id}"[:200],
                        reason="its identity (idempotency key or exchange trade id) already names a different "
                        "trade; the first one is kept",
                    )
            if "new" in outcomes:
                trades = pair_fifo(store.fills_of(conn, user_id, symbol), settings.quote_asset_list)
                published += store.replace_paired_trades(conn, user_id, symbol, trades).records
        for trade in round_trips:
            record = store.insert_round_trip(conn, trade)
            counts["new" if record else "duplicate"] += 1
            if record:
                published.append(record)
        _publish(resources, settings.normalized_topic, published)
    for label, n in counts.items():
        if n:
            metrics.count("crawler_trades_fills", n, function="trade_normalizer", outcome=label)
    return {
        "raw_event_id": event.id,
        "fills_new": counts["new"],
        "fills_duplicate": counts["duplicate"],
        "fills_conflicting": counts["conflict"],
        "trades_published": len(published),
    }


def _publish(resources: Resources, topic: str, records: Sequence[dict[str, Any]]) -> None:
    events = []
    for record in records:
        validate_record(TRADE_SCHEMA, record)  # every record we publish meets its schema
        events.append(
            OutboundEvent(
                type=TRADE_NORMALIZED_TYPE,
                source=EVENT_SOURCE,
                data=record,
                key=record["user_id"],
                subject=record["trade_id"],
                dataschema=TRADE_SCHEMA,
            )
        )
    resources.producer.publish(topic, events)


def _reject(resources: Resources, event: InboundEvent, raw: RawTrade | None, exc: BadMessage) -> None:
    field = exc.field if isinstance(exc, TradeRejected) else ""
    metrics.count("crawler_trades_fills", 1, function="trade_normalizer", outcome="rejected")
    try:
        with resources.db.connection() as conn:
            store.record_rejection(
                conn,
                raw_event_id=event.id,
                user_id=raw.user_id if raw else None,
                kind=raw.kind.value if raw else None,
                field=field,
                reason=exc.reason,
            )
    except Exception as db_exc:  # the dead letter still carries the reason
        log.warning("could not record the rejection of %s: %s", event.id, db_exc)
