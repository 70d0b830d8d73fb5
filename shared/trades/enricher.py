"""The enricher's pipeline: one normalized-trades record in; its market context stored and published.

1. The record is validated (schemas/trade.v1.json); a record that is not one is `BadMessage`
   (400, dead-lettered with the reason).
2. The trade's base asset is resolved to a crawler token and its market read through the
   quotes API's own read functions (`shared.crawler.quotes.reads`, `shared.crawler.gold`,
   `shared.crawler.store.latest_prices`): the 1-minute candle and the nearest observation of
   each leg, 24-h KPIs, volatility, the current audit. The decisions are pure
   (shared/trades/enrich.py).
3. A token the crawler does not track (or has no price of near the trade) leaves the trade
   `pending_market` and records the request in `trade_market_requests` (KF-01); when the
   crawler announces prices (`price-crawler.price.updated`, the same function on a second
   source) the trades waiting for those assets are enriched again and published.
4. In one transaction the enrichment is stored (`trade_enrichments`) and published to
   enriched-trades, keyed by user_id, confirmed *before* the commit (as the normaliser does):
   at least once; a redelivered trade already enriched publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from shared.crawler import gold
from shared.crawler import store as crawler_store
from shared.crawler.quotes import reads
from shared.errors import BadMessage
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.trades import feed
from shared.trades.contracts import (
    ENRICHED_TRADE_SCHEMA,
    TRADE_ENRICHED_TYPE,
    TRADE_SCHEMA,
    TradeRecord,
    decimal_text,
    millis_text,
    validate_record,
)
from shared.trades.enrich import (
    LegContext,
    MinuteCandle,
    Observation,
    enrichment_status,
    leg_context,
    minute_of,
    split_symbol,
)
from shared.trades.models import derived_id
from shared.trades.settings import TradesSettings, trades_settings
from shared.upstream.jsonbody import decode_json

log = logging.getLogger(__name__)

EVENT_SOURCE = "/price-crawler/trade-enricher"
PRICE_UPDATED_TYPE = "price-crawler.price.updated"  # shared/crawler/pipelines/price_events.py
MAX_TRADE_BYTES = 1024 * 1024


def read_trade(data: bytes) -> TradeRecord:
    """The normalized-trades record of an event body; `BadMessage` when it is not one."""
    if len(data) > MAX_TRADE_BYTES:
        raise BadMessage(f"trade record of {len(data)} bytes is larger than {MAX_TRADE_BYTES}")
    try:
        document = decode_json(data)
    except ValueError as exc:
        raise BadMessage(f"trade record is not JSON: {exc}") from None
    validate_record(TRADE_SCHEMA, document)
    return TradeRecord.model_validate(document)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def trade_digest(trade: TradeRecord) -> str:
    """SHA-256 of the trade record: a redelivered (unchanged) trade has the same digest."""
    return hashlib.sha256(json.dumps(trade.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


# --- reading the crawler's market ------------------------------------------------------------


def resolve_token(conn: Any, base_asset: str) -> tuple[str | None, str]:
    """The crawler's token key of an asset symbol (as the quotes API resolves `BTC`), or why not."""
    try:
        parsed = reads.parse_ref(base_asset)
    except reads.BadReference as exc:
        return None, str(exc)
    found = reads.resolve_refs(conn, [parsed])[parsed.ref]
    return found.token_key, found.reason


def _candle(conn: Any, token_key: str, at: datetime) -> MinuteCandle | None:
    start = minute_of(at)
    rows = gold.candles(conn, token_key, "1m", start=start, end=start + timedelta(minutes=1), limit=1)
    if not rows:
        return None
    c = rows[0]
    return MinuteCandle(c.bucket_start, c.open, c.high, c.low, c.close, c.open_at, c.close_at, c.ticks)


def enrich_trade(conn: Any, trade: TradeRecord, settings: TradesSettings, now: datetime) -> dict[str, Any]:
    """The enriched-trades record of a trade (validated), from the crawler's tables."""
    base, quote = split_symbol(trade.symbol, settings.quote_asset_list)
    token_key: str | None = None
    reason: str | None = None
    entry = exit_leg = None
    kpis = volatility = audit = None
    if trade.status != "superseded":
        token_key, why = resolve_token(conn, base)
        if token_key is None:
            reason = f"the crawler does not track {base}: {why}"[:500]
        else:
            latest_row = crawler_store.latest_prices(conn, [token_key], 0).get(token_key)
            latest = Observation(latest_row.price_usdt, latest_row.observed_at, "latest") if latest_row else None
            tolerance = timedelta(seconds=settings.enrich_price_tolerance_seconds)
            comparable = quote == settings.enrich_market_quote
            legs: list[tuple[Literal["entry", "exit"], Literal["BUY", "SELL"], str, str]] = [
                ("entry", trade.side, trade.entry_time, trade.entry_price)
            ]
            if trade.exit_time is not None and trade.exit_price is not None:
                legs.append(("exit", "SELL" if trade.side == "BUY" else "BUY", trade.exit_time, trade.exit_price))
            contexts = []
            for leg, side, time_text, price_text in legs:
                at = _instant(time_text)
                contexts.append(
                    leg_context(
                        leg,
                        side,
                        at,
                        Decimal(price_text),
                        candle=_candle(conn, token_key, at),
                        latest=latest,
                        tolerance=tolerance,
                        comparable=comparable,
                    )
                )
            entry = contexts[0]
            exit_leg = contexts[1] if len(contexts) > 1 else None
            if entry.market is None:
                reason = (
                    f"the crawler has no price of {base} within {settings.enrich_price_tolerance_seconds:g} s "
                    f"of {trade.entry_time}"
                )
            elif not comparable:
                reason = f"quoted in {quote or 'an unknown asset'}, not {settings.enrich_market_quote}: no slippage"
            kpis = gold.kpis(conn, [token_key]).get(token_key)
            volatility = gold.volatility(
                conn, token_key, settings.enrich_volatility_resolution, settings.enrich_volatility_periods
            )
            profile = reads.profile(conn, token_key)
            audit = profile.audits[0] if profile and profile.audits else None
    status = enrichment_status(trade.status, token_key is not None, entry)
    record = {
        "trade": trade.model_dump(mode="json"),
        "status": status,
        "reason": reason,
        "base_asset": base,
        "quote_asset": quote,
        "token_key": token_key,
        "entry": _leg_record(entry),
        "exit": _leg_record(exit_leg),
        "kpis_24h": _kpis_record(kpis),
        "volatility_24h": _volatility_record(volatility),
        "audit": _audit_record(audit),
        "enriched_at": millis_text(now),
    }
    validate_record(ENRICHED_TRADE_SCHEMA, record)
    return record


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _leg_record(leg: LegContext | None) -> dict[str, Any] | None:
    if leg is None:
        return None
    candle = leg.candle
    return {
        "leg": leg.leg,
        "side": leg.side,
        "time": millis_text(leg.time),
        "fill_price": decimal_text(leg.fill_price),
        "market_price_usdt": _text(leg.market.price) if leg.market else None,
        "market_observed_at": millis_text(leg.market.observed_at) if leg.market else None,
        "market_observation": leg.market.kind if leg.market else None,
        "slippage_bps": _text(leg.slippage_bps),
        "price_difference": _text(leg.price_difference) if leg.slippage_bps is not None else None,
        "candle_1m": None
        if candle is None
        else {
            "bucket_start": millis_text(candle.bucket_start),
            "open": decimal_text(candle.open),
            "high": decimal_text(candle.high),
            "low": decimal_text(candle.low),
            "close": decimal_text(candle.close),
            "ticks": candle.ticks,
        },
    }


def _kpis_record(kpis: gold.Kpis | None) -> dict[str, Any] | None:
    if kpis is None:
        return None
    return {
        "as_of": millis_text(kpis.as_of),
        "price_usdt": decimal_text(kpis.price_usdt),
        "open_24h": _text(kpis.open_24h),
        "high_24h": _text(kpis.high_24h),
        "low_24h": _text(kpis.low_24h),
        "change_pct_24h": _text(kpis.change_pct_24h),
        "ticks_24h": kpis.ticks_24h,
    }


def _statistic(value: Any) -> str | None:
    # Derived statistics (stddev) come back from PostgreSQL as numeric; kept as stored.
    return None if value is None else decimal_text(Decimal(value))


def _volatility_record(v: gold.Volatility | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "resolution": v.resolution,
        "periods": v.periods,
        "samples": v.samples,
        "stddev": _statistic(v.stddev),
        "relative": _statistic(v.relative),
        "returns_stddev": _statistic(v.returns_stddev),
    }


def _audit_record(audit: reads.Audit | None) -> dict[str, Any] | None:
    if audit is None:
        return None
    return {
        "provider": audit.provider,
        "score": decimal_text(Decimal(audit.score)),
        "is_honeypot": audit.is_honeypot,
        "buy_tax": _text(audit.buy_tax),
        "sell_tax": _text(audit.sell_tax),
        "flags": json.loads(json.dumps(audit.flags, default=str)),
        "audited_at": millis_text(audit.audited_at),
    }


# --- storing and publishing ------------------------------------------------------------------


def _stored(conn: Any, trade_id: str) -> tuple[str, str] | None:
    rows = conn.run(
        "SELECT content_digest, status FROM trade_enrichments WHERE trade_id = CAST(:id AS uuid)", id=trade_id
    )
    return (rows[0][0], rows[0][1]) if rows else None


def store_enrichment(conn: Any, record: dict[str, Any], digest: str) -> None:
    """Upsert a trade's enrichment (the latest is its state) and, when it waits for a market
    price, its asset's request (KF-01)."""
    trade, entry, exit_leg = record["trade"], record["entry"] or {}, record["exit"] or {}
    conn.run(
        "INSERT INTO trade_enrichments (trade_id, user_id, symbol, base_asset, quote_asset, status, reason,"
        " token_key, entry_market_price, entry_slippage_bps, exit_market_price, exit_slippage_bps, audit_score,"
        " record, content_digest, enriched_at)"
        " VALUES (CAST(:trade_id AS uuid), :user_id, :symbol, :base, :quote, :status, :reason, :token_key,"
        " CAST(:entry_price AS numeric), CAST(:entry_slip AS numeric), CAST(:exit_price AS numeric),"
        " CAST(:exit_slip AS numeric), CAST(:score AS numeric), CAST(:record AS jsonb), :digest, :enriched_at)"
        " ON CONFLICT (trade_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,"
        " token_key = EXCLUDED.token_key, entry_market_price = EXCLUDED.entry_market_price,"
        " entry_slippage_bps = EXCLUDED.entry_slippage_bps, exit_market_price = EXCLUDED.exit_market_price,"
        " exit_slippage_bps = EXCLUDED.exit_slippage_bps, audit_score = EXCLUDED.audit_score,"
        " record = EXCLUDED.record, content_digest = EXCLUDED.content_digest,"
        " enriched_at = EXCLUDED.enriched_at, updated_at = now()",
        trade_id=trade["trade_id"],
        user_id=trade["user_id"],
        symbol=trade["symbol"],
        base=record["base_asset"],
        quote=record["quote_asset"],
        status=record["status"],
        reason=record["reason"],
        token_key=record["token_key"],
        entry_price=entry.get("market_price_usdt"),
        entry_slip=entry.get("slippage_bps"),
        exit_price=exit_leg.get("market_price_usdt"),
        exit_slip=exit_leg.get("slippage_bps"),
        score=(record["audit"] or {}).get("score"),
        record=json.dumps(record),
        digest=digest,
        enriched_at=_instant(record["enriched_at"]),
    )
    if record["status"] == "pending_market":
        conn.run(
            "INSERT INTO trade_market_requests AS r (base_asset, example_symbol, reason, trades_waiting)"
            " SELECT :base, :symbol, :reason, count(*) FROM trade_enrichments"
            " WHERE status = 'pending_market' AND base_asset = :base"
            " ON CONFLICT (base_asset) DO UPDATE SET trades_waiting = EXCLUDED.trades_waiting,"
            " reason = EXCLUDED.reason, last_requested_at = now()",
            base=record["base_asset"],
            symbol=trade["symbol"],
            reason=record["reason"] or "no market price",
        )
    else:  # no longer waiting: the request counts one trade less, and goes once none waits
        conn.run(
            "UPDATE trade_market_requests r SET trades_waiting = (SELECT count(*) FROM trade_enrichments e"
            " WHERE e.status = 'pending_market' AND e.base_asset = r.base_asset) WHERE r.base_asset = :base",
            base=record["base_asset"],
        )
        conn.run(
            "DELETE FROM trade_market_requests WHERE base_asset = :base AND trades_waiting = 0",
            base=record["base_asset"],
        )


def _content_digest(record: dict[str, Any]) -> str:
    content = {k: v for k, v in record.items() if k not in ("enriched_at", "kpis_24h", "volatility_24h")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def publish_enriched(resources: Resources, topic: str, records: Sequence[dict[str, Any]]) -> None:
    """Publish enriched records (each validated), keyed by user_id, confirmed by the broker."""
    events = []
    for record in records:
        validate_record(ENRICHED_TRADE_SCHEMA, record)
        events.append(
            OutboundEvent(
                type=TRADE_ENRICHED_TYPE,
                source=EVENT_SOURCE,
                data=record,
                key=record["trade"]["user_id"],
                # the same trade state enriched the same way is the same event (a republish after a
                # failed commit is recognisable); the time of enrichment is left out
                id=derived_id("enriched", _content_digest(record)),
                subject=record["trade"]["trade_id"],
                dataschema=ENRICHED_TRADE_SCHEMA,
            )
        )
    resources.producer.publish(topic, events)


def enrich_event(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one event: a normalized trade, or the crawler's price announcement (module docstring)."""
    if event.type == PRICE_UPDATED_TYPE:
        return reenrich_for_prices(event, resources)
    settings = trades_settings(resources)
    trade = read_trade(event.data)
    digest = trade_digest(trade)
    now = datetime.now(timezone.utc)
    with resources.db.transaction() as conn:
        stored = _stored(conn, trade.trade_id)
        if stored is not None and stored[0] == digest and stored[1] != "pending_market":
            metrics.count("crawler_trades_enriched", function="trade_enricher", outcome="duplicate")
            return {"trade_id": trade.trade_id, "status": stored[1], "published": 0, "duplicate": True}
        record = enrich_trade(conn, trade, settings, now)
        unchanged_pending = stored is not None and stored[0] == digest and record["status"] == "pending_market"
        if unchanged_pending:  # still waiting: the request is noted already, nothing new to say
            return {"trade_id": trade.trade_id, "status": "pending_market", "published": 0, "duplicate": True}
        store_enrichment(conn, record, digest)
        feed.append(conn, trade.user_id, "trade", trade.trade_id, record)
        publish_enriched(resources, settings.enriched_topic, [record])
    metrics.count("crawler_trades_enriched", function="trade_enricher", outcome=record["status"])
    return {"trade_id": trade.trade_id, "status": record["status"], "published": 1}


def _announced_assets(data: bytes) -> list[str]:
    try:
        document = decode_json(data)
    except ValueError as exc:
        raise BadMessage(f"price.updated is not JSON: {exc}") from None
    prices = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(prices, list):
        raise BadMessage("price.updated: prices must be an array")
    return sorted({str(p["symbol"]).upper() for p in prices if isinstance(p, dict) and p.get("symbol")})


def reenrich_for_prices(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Enrich again the trades waiting for a market price of the assets a price event announces."""
    settings = trades_settings(resources)
    assets = _announced_assets(event.data)
    if not assets:
        return {"reenriched": 0, "still_pending": 0}
    now = datetime.now(timezone.utc)
    published: list[dict[str, Any]] = []
    still_pending = 0
    with resources.db.transaction() as conn:
        rows = conn.run(
            # by user: the feed locks (shared/trades/feed.py) are then always taken in one order
            "SELECT record, content_digest FROM trade_enrichments WHERE status = 'pending_market'"
            " AND base_asset = ANY(CAST(:assets AS text[])) ORDER BY user_id, enriched_at LIMIT :n FOR UPDATE SKIP LOCKED",
            assets=assets,
            n=settings.enrich_pending_batch,
        )
        for stored_record, digest in rows:
            document = json.loads(stored_record) if isinstance(stored_record, str) else stored_record
            trade = TradeRecord.model_validate(document["trade"])
            record = enrich_trade(conn, trade, settings, now)
            if record["status"] == "pending_market":
                still_pending += 1
                continue
            store_enrichment(conn, record, digest)
            feed.append(conn, trade.user_id, "trade", trade.trade_id, record)
            published.append(record)
        if published:
            publish_enriched(resources, settings.enriched_topic, published)
    if published:
        metrics.count("crawler_trades_enriched", len(published), function="trade_enricher", outcome="reenriched")
    return {"reenriched": len(published), "still_pending": still_pending}
