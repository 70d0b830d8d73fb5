"""The analyser's pipeline: one enriched-trades record in; the alerts it raises stored and published.

1. The record is validated (schemas/enriched-trade.v1.json); one that is not is `BadMessage`.
2. In one transaction, under an advisory lock per user (replicas, redeliveries): the trade is
   written to the analyser's history of the user (`trade_behaviour_history`; a superseded
   trade is removed from it), the history the rules need is read back, and the rules
   (shared/trades/behaviour.py) decide.
3. Each alert is inserted once (its id derives from its cause: ON CONFLICT DO NOTHING); the
   new ones are published to behavioral-alerts, keyed by user_id, confirmed *before* the
   commit. A redelivered trade finds its alerts stored and publishes nothing; a commit that
   failed after publishing republishes the same alert ids (a reader keyed by alert_id sees
   each once).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.errors import BadMessage
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.trades import feed
from shared.trades.behaviour import Alert, AuditFacts, LegFacts, Thresholds, TradeFacts, evaluate
from shared.trades.contracts import (
    BEHAVIOURAL_ALERT_SCHEMA,
    BEHAVIOURAL_ALERT_TYPE,
    ENRICHED_TRADE_SCHEMA,
    millis_text,
    validate_record,
)
from shared.trades.settings import TradesSettings, trades_settings
from shared.upstream.jsonbody import decode_json

EVENT_SOURCE = "/price-crawler/trade-analyser"
MAX_RECORD_BYTES = 1024 * 1024


def thresholds_of(settings: TradesSettings) -> Thresholds:
    """The rules' thresholds from TRADES_ALERT_* settings."""
    return Thresholds(
        overtrading_trades=settings.alert_overtrading_trades,
        overtrading_window=timedelta(minutes=settings.alert_overtrading_window_minutes),
        revenge_window=timedelta(minutes=settings.alert_revenge_window_minutes),
        size_multiple=settings.alert_size_multiple,
        size_history=settings.alert_size_history,
        size_min_history=settings.alert_size_min_history,
        max_tax=settings.alert_max_tax,
        off_market_bps=settings.alert_off_market_bps,
    )


def read_enriched(data: bytes) -> dict[str, Any]:
    """The enriched-trades record of an event body (validated); `BadMessage` when it is not one."""
    if len(data) > MAX_RECORD_BYTES:
        raise BadMessage(f"enriched trade of {len(data)} bytes is larger than {MAX_RECORD_BYTES}")
    try:
        document = decode_json(data)
    except ValueError as exc:
        raise BadMessage(f"enriched trade is not JSON: {exc}") from None
    validate_record(ENRICHED_TRADE_SCHEMA, document)
    assert isinstance(document, dict)
    return document


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def facts_of(record: dict[str, Any]) -> TradeFacts:
    """The rules' view of an enriched trade."""
    trade = record["trade"]
    entry_time = _instant(trade["entry_time"])
    assert entry_time is not None
    return TradeFacts(
        trade_id=trade["trade_id"],
        user_id=trade["user_id"],
        symbol=trade["symbol"],
        quote_asset=record["quote_asset"],
        entry_key=trade["entry_fill_id"] or trade["trade_id"],
        entry_time=entry_time,
        notional=Decimal(trade["entry_price"]) * Decimal(trade["quantity"]),
        exit_key=trade["exit_fill_id"],
        exit_time=_instant(trade["exit_time"]),
        pnl=None if trade["pnl"] is None else Decimal(trade["pnl"]),
    )


def legs_of(record: dict[str, Any], facts: TradeFacts) -> list[LegFacts]:
    """The legs of an enriched trade with their slippage."""
    legs = []
    for name in ("entry", "exit"):
        leg = record[name]
        if leg is None:
            continue
        key = facts.entry_key if name == "entry" else (facts.exit_key or f"{facts.trade_id}:exit")
        slippage = leg["slippage_bps"]
        time = _instant(leg["time"])
        assert time is not None
        legs.append(LegFacts(name, key, time, None if slippage is None else Decimal(slippage)))
    return legs


def audit_of(record: dict[str, Any]) -> AuditFacts | None:
    """The token's audit as the enrichment carried it."""
    audit = record["audit"]
    if audit is None:
        return None
    return AuditFacts(
        audit["provider"],
        audit["is_honeypot"],
        None if audit["buy_tax"] is None else Decimal(audit["buy_tax"]),
        None if audit["sell_tax"] is None else Decimal(audit["sell_tax"]),
    )


# --- the analyser's history ------------------------------------------------------------------


def _remember(conn: Any, facts: TradeFacts) -> None:
    conn.run(
        "INSERT INTO trade_behaviour_history (trade_id, user_id, symbol, quote_asset, entry_key, exit_key,"
        " entry_time, exit_time, pnl, notional)"
        " VALUES (CAST(:id AS uuid), :user, :symbol, :quote, :entry_key, :exit_key, :entry_time, :exit_time,"
        " CAST(:pnl AS numeric), CAST(:notional AS numeric))"
        " ON CONFLICT (trade_id) DO UPDATE SET exit_key = EXCLUDED.exit_key, exit_time = EXCLUDED.exit_time,"
        " pnl = EXCLUDED.pnl, notional = EXCLUDED.notional, entry_time = EXCLUDED.entry_time, updated_at = now()",
        id=facts.trade_id,
        user=facts.user_id,
        symbol=facts.symbol,
        quote=facts.quote_asset,
        entry_key=facts.entry_key,
        exit_key=facts.exit_key,
        entry_time=facts.entry_time,
        exit_time=facts.exit_time,
        pnl=None if facts.pnl is None else format(facts.pnl, "f"),
        notional=format(facts.notional, "f"),
    )


_HISTORY_COLUMNS = "trade_id, user_id, symbol, quote_asset, entry_key, entry_time, notional, exit_key, exit_time, pnl"


def history_for(conn: Any, facts: TradeFacts, th: Thresholds) -> list[TradeFacts]:
    """The user's trades the rules can need for this one (three indexed reads, bounded)."""
    t = facts.entry_time
    rows = conn.run(
        f"SELECT {_HISTORY_COLUMNS} FROM trade_behaviour_history WHERE user_id = :user"
        " AND entry_time > :since AND entry_time <= :t"
        f" UNION SELECT {_HISTORY_COLUMNS} FROM trade_behaviour_history WHERE user_id = :user AND pnl < 0"
        " AND exit_time >= :loss_since AND exit_time <= :t"
        f" UNION SELECT {_HISTORY_COLUMNS} FROM trade_behaviour_history WHERE user_id = :user"
        " AND quote_asset IS NOT DISTINCT FROM :quote AND entry_key IN ("
        "  SELECT entry_key FROM trade_behaviour_history WHERE user_id = :user"
        "  AND quote_asset IS NOT DISTINCT FROM :quote AND entry_time <= :t"
        "  GROUP BY entry_key ORDER BY min(entry_time) DESC LIMIT :entries)",
        user=facts.user_id,
        since=t - th.overtrading_window,
        t=t,
        loss_since=t - th.revenge_window,
        quote=facts.quote_asset,
        entries=th.size_history + 1,
    )
    return [
        TradeFacts(
            str(r[0]),
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            Decimal(r[6]),
            r[7],
            r[8],
            None if r[9] is None else Decimal(r[9]),
        )
        for r in rows
    ]


def _nearest_overtrading_alert(conn: Any, user_id: str, t: datetime) -> datetime | None:
    rows = conn.run(
        "SELECT occurred_at FROM behavioral_alerts WHERE user_id = :user AND rule = 'overtrading'"
        " ORDER BY abs(EXTRACT(EPOCH FROM (occurred_at - CAST(:t AS timestamptz)))) LIMIT 1",
        user=user_id,
        t=t,
    )
    return rows[0][0] if rows else None


def alert_record(alert: Alert) -> dict[str, Any]:
    """The wire form of an alert (validated against behavioral-alert.v1.json)."""
    record = {
        "alert_id": alert.alert_id,
        "user_id": alert.user_id,
        "rule": alert.rule,
        "trade_ids": list(alert.trade_ids),
        "trigger_trade_id": alert.trigger_trade_id,
        "symbol": alert.symbol,
        "message": alert.message[:500],
        "details": alert.details,
        "occurred_at": millis_text(alert.occurred_at),
    }
    validate_record(BEHAVIOURAL_ALERT_SCHEMA, record)
    return record


def insert_alert(conn: Any, alert: Alert) -> dict[str, Any] | None:
    """Store an alert once; its record when it is new, None when it was raised before."""
    record = alert_record(alert)
    rows = conn.run(
        "INSERT INTO behavioral_alerts (alert_id, user_id, rule, trigger_trade_id, trade_ids, symbol, message,"
        " details, occurred_at, record)"
        " VALUES (CAST(:id AS uuid), :user, :rule, CAST(:trigger AS uuid), CAST(:trades AS uuid[]), :symbol,"
        " :message, CAST(:details AS jsonb), :occurred_at, CAST(:record AS jsonb))"
        " ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id",
        id=alert.alert_id,
        user=alert.user_id,
        rule=alert.rule,
        trigger=alert.trigger_trade_id,
        trades=list(alert.trade_ids),
        symbol=alert.symbol,
        message=record["message"],
        details=json.dumps(alert.details),
        occurred_at=alert.occurred_at,
        record=json.dumps(record),
    )
    return record if rows else None


def analyse_event(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one enriched-trades record (module docstring); the verdict's body."""
    settings = trades_settings(resources)
    th = thresholds_of(settings)
    record = read_enriched(event.data)
    facts = facts_of(record)
    published: list[dict[str, Any]] = []
    with resources.db.transaction() as conn:
        conn.run("SELECT pg_advisory_xact_lock(hashtextextended(:key, 19))", key=facts.user_id)
        if record["trade"]["status"] == "superseded":
            conn.run("DELETE FROM trade_behaviour_history WHERE trade_id = CAST(:id AS uuid)", id=facts.trade_id)
            return {"trade_id": facts.trade_id, "alerts_new": 0, "superseded": True}
        _remember(conn, facts)
        alerts = evaluate(
            facts,
            history_for(conn, facts, th),
            th,
            legs=legs_of(record, facts),
            audit=audit_of(record),
            last_overtrading_at=_nearest_overtrading_alert(conn, facts.user_id, facts.entry_time),
        )
        for alert in alerts:
            stored = insert_alert(conn, alert)
            if stored is not None:
                feed.append(conn, facts.user_id, "alert", alert.alert_id, stored)
                published.append(stored)
        if published:
            events = [
                OutboundEvent(
                    type=BEHAVIOURAL_ALERT_TYPE,
                    source=EVENT_SOURCE,
                    data=r,
                    key=r["user_id"],
                    id=r["alert_id"],
                    subject=r["rule"],
                    dataschema=BEHAVIOURAL_ALERT_SCHEMA,
                )
                for r in published
            ]
            resources.producer.publish(settings.alerts_topic, events)
    for r in published:
        metrics.count("crawler_trades_alerts", function="trade_analyser", rule=r["rule"])
    return {
        "trade_id": facts.trade_id,
        "alerts_new": len(published),
        "alerts_known": len(alerts) - len(published),
        "rules": sorted({r["rule"] for r in published}),
    }
