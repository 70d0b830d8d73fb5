"""Behavioural alert rules (pure: no database, no Kafka; defaults in docs/trades.md, "Alerts").

The original names five behaviours and defines none; these are the definitions, each with
thresholds from `Thresholds` (TRADES_ALERT_* settings):

| rule | raised when | default |
|---|---|---|
| overtrading | at least N distinct entries within a window ending at this entry; then quiet for one window | 10 in 60 min |
| revenge_trading | an entry within a window after the exit of a losing trade (pnl < 0) | 15 min |
| oversized_position | the entry's notional > k × the median notional of the user's last M entries in the same quote asset (at least `min_history` of them) | k = 3, M = 20, 5 |
| risky_token | the token's audit says honeypot, or a buy/sell tax above the limit | tax > 0.10 (10 %) |
| off_market_fill | a leg's fill priced at least this far from the market, either way | 200 bps |

An **entry** is what a trader opened: a trade's `entry_fill_id` (one fill FIFO-split into a
closed part and an open rest is one entry), or the trade itself (a manual round trip). Its
notional is entry price × quantity summed over its parts. Every alert's id derives from the
rule and its cause (the entry, the loss and the entry, the leg's fill), so a redelivered or
re-published trade produces the same id and the store keeps one alert.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from shared.trades.contracts import decimal_text
from shared.trades.models import derived_id

Rule = Literal["overtrading", "revenge_trading", "oversized_position", "risky_token", "off_market_fill"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The rules' thresholds (defaults documented in the module docstring)."""

    overtrading_trades: int = 10
    overtrading_window: timedelta = timedelta(minutes=60)
    revenge_window: timedelta = timedelta(minutes=15)
    size_multiple: Decimal = Decimal(3)
    size_history: int = 20
    size_min_history: int = 5
    max_tax: Decimal = Decimal("0.10")
    off_market_bps: Decimal = Decimal(200)


@dataclass(frozen=True, slots=True)
class TradeFacts:
    """What the rules know of one of a user's trades."""

    trade_id: str
    user_id: str
    symbol: str
    quote_asset: str | None
    entry_key: str
    entry_time: datetime
    notional: Decimal
    exit_key: str | None = None
    exit_time: datetime | None = None
    pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LegFacts:
    """A leg of the trade being analysed, against the market (from its enrichment)."""

    leg: Literal["entry", "exit"]
    fill_key: str
    time: datetime
    slippage_bps: Decimal | None


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """The token's current audit, as the enrichment carried it."""

    provider: str
    is_honeypot: bool | None
    buy_tax: Decimal | None
    sell_tax: Decimal | None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: its rule, the trades that caused it (the trigger last) and what was measured."""

    alert_id: str
    rule: Rule
    user_id: str
    symbol: str
    trade_ids: tuple[str, ...]
    trigger_trade_id: str
    message: str
    occurred_at: datetime
    details: dict[str, str] = field(default_factory=dict)


def alert_id(rule: Rule, user_id: str, *cause: str) -> str:
    """The id of the alert of `rule` for this cause: the same cause, the same id."""
    return derived_id("alert", rule, user_id, *cause)


def entries(trades: Sequence[TradeFacts]) -> dict[str, tuple[datetime, Decimal, str, str | None]]:
    """Per entry key: (entry time, notional over its parts, its first trade id, quote asset)."""
    out: dict[str, tuple[datetime, Decimal, str, str | None]] = {}
    for t in sorted(trades, key=lambda t: t.trade_id):
        if t.entry_key in out:
            time, notional, first, quote = out[t.entry_key]
            out[t.entry_key] = (time, notional + t.notional, first, quote)
        else:
            out[t.entry_key] = (t.entry_time, t.notional, t.trade_id, t.quote_asset)
    return out


def _with_current(current: TradeFacts, history: Sequence[TradeFacts]) -> list[TradeFacts]:
    return [*(t for t in history if t.trade_id != current.trade_id), current]


def overtrading(
    current: TradeFacts, history: Sequence[TradeFacts], th: Thresholds, last_alert_at: datetime | None
) -> Alert | None:
    """N distinct entries within the window ending at this entry, unless an overtrading alert
    of the user's lies within one window of it (one alert per burst, not one per trade)."""
    t = current.entry_time
    if last_alert_at is not None and abs(t - last_alert_at) < th.overtrading_window:
        return None
    window = {
        key: value
        for key, value in entries(_with_current(current, history)).items()
        if t - th.overtrading_window < value[0] <= t
    }
    if len(window) < th.overtrading_trades:
        return None
    trade_ids = tuple(v[2] for _, v in sorted(window.items(), key=lambda kv: (kv[1][0], kv[0])))
    minutes = th.overtrading_window.total_seconds() / 60
    return Alert(
        alert_id("overtrading", current.user_id, current.entry_key),
        "overtrading",
        current.user_id,
        current.symbol,
        trade_ids,
        current.trade_id,
        f"{len(window)} trades within {minutes:g} minutes (threshold {th.overtrading_trades})",
        t,
        {"trades": str(len(window)), "threshold": str(th.overtrading_trades), "window_minutes": f"{minutes:g}"},
    )


def revenge_trading(current: TradeFacts, history: Sequence[TradeFacts], th: Thresholds) -> Alert | None:
    """An entry within the window after the latest loss that closed before it.

    The fill that closed the loss and opened the rest (a flip) is the same decision, not a
    reaction to the loss: it is not counted.
    """
    t = current.entry_time
    losses = [
        h
        for h in history
        if h.pnl is not None
        and h.pnl < 0
        and h.exit_time is not None
        and h.exit_time <= t <= h.exit_time + th.revenge_window
        and h.entry_key != current.entry_key
        and h.exit_key != current.entry_key
    ]
    if not losses:
        return None
    loss = max(losses, key=lambda h: (h.exit_time or t, h.trade_id))
    assert loss.exit_time is not None and loss.pnl is not None
    after = t - loss.exit_time
    return Alert(
        alert_id("revenge_trading", current.user_id, loss.trade_id, current.entry_key),
        "revenge_trading",
        current.user_id,
        current.symbol,
        (loss.trade_id, current.trade_id),
        current.trade_id,
        f"entered {after.total_seconds() / 60:g} minutes after a loss of {decimal_text(loss.pnl)} on {loss.symbol}",
        t,
        {
            "loss_trade_id": loss.trade_id,
            "loss_pnl": decimal_text(loss.pnl),
            "seconds_after_loss": f"{after.total_seconds():g}",
            "window_minutes": f"{th.revenge_window.total_seconds() / 60:g}",
        },
    )


def oversized_position(current: TradeFacts, history: Sequence[TradeFacts], th: Thresholds) -> Alert | None:
    """An entry whose notional is more than k × the median of the user's last M entries
    before it, in the same quote asset (notionals in different assets do not compare)."""
    all_entries = entries(_with_current(current, history))
    time, notional, _, quote = all_entries[current.entry_key]
    before = sorted(
        (
            (v[0], key, v[1])
            for key, v in all_entries.items()
            if key != current.entry_key and v[3] == quote and v[0] <= time
        ),
        reverse=True,
    )[: th.size_history]
    if len(before) < th.size_min_history:
        return None
    median = statistics.median(n for _, _, n in before)
    limit = median * th.size_multiple
    if notional <= limit:
        return None
    return Alert(
        alert_id("oversized_position", current.user_id, current.entry_key),
        "oversized_position",
        current.user_id,
        current.symbol,
        (current.trade_id,),
        current.trade_id,
        f"notional {decimal_text(notional)} {quote or ''} is more than {decimal_text(th.size_multiple)} x the median "
        f"{decimal_text(median)} of the last {len(before)} trades".replace("  ", " "),
        time,
        {
            "notional": decimal_text(notional),
            "median_notional": decimal_text(median),
            "multiple": decimal_text(th.size_multiple),
            "history": str(len(before)),
        },
    )


def risky_token(current: TradeFacts, audit: AuditFacts | None, th: Thresholds) -> Alert | None:
    """A trade in a token its audit calls a honeypot or taxes above the limit."""
    if audit is None:
        return None
    reasons = []
    if audit.is_honeypot:
        reasons.append("honeypot")
    for name, tax in (("buy tax", audit.buy_tax), ("sell tax", audit.sell_tax)):
        if tax is not None and tax > th.max_tax:
            reasons.append(f"{name} {decimal_text(tax)}")
    if not reasons:
        return None
    details = {"provider": audit.provider, "max_tax": decimal_text(th.max_tax)}
    details["is_honeypot"] = str(bool(audit.is_honeypot)).lower()
    if audit.buy_tax is not None:
        details["buy_tax"] = decimal_text(audit.buy_tax)
    if audit.sell_tax is not None:
        details["sell_tax"] = decimal_text(audit.sell_tax)
    return Alert(
        alert_id("risky_token", current.user_id, current.entry_key),
        "risky_token",
        current.user_id,
        current.symbol,
        (current.trade_id,),
        current.trade_id,
        f"{current.symbol} is flagged by {audit.provider}: {', '.join(reasons)}",
        current.entry_time,
        details,
    )


def off_market_fills(current: TradeFacts, legs: Sequence[LegFacts], th: Thresholds) -> list[Alert]:
    """One alert per leg priced at least `off_market_bps` from the market, either way."""
    alerts = []
    for leg in legs:
        if leg.slippage_bps is None or abs(leg.slippage_bps) < th.off_market_bps:
            continue
        alerts.append(
            Alert(
                alert_id("off_market_fill", current.user_id, leg.leg, leg.fill_key),
                "off_market_fill",
                current.user_id,
                current.symbol,
                (current.trade_id,),
                current.trade_id,
                f"{leg.leg} filled {decimal_text(leg.slippage_bps)} bps from the market "
                f"(threshold {decimal_text(th.off_market_bps)})",
                leg.time,
                {
                    "leg": leg.leg,
                    "slippage_bps": decimal_text(leg.slippage_bps),
                    "threshold_bps": decimal_text(th.off_market_bps),
                },
            )
        )
    return alerts


def evaluate(
    current: TradeFacts,
    history: Sequence[TradeFacts],
    th: Thresholds,
    *,
    legs: Sequence[LegFacts] = (),
    audit: AuditFacts | None = None,
    last_overtrading_at: datetime | None = None,
) -> list[Alert]:
    """Every alert the trade raises, given the user's other trades (`history`)."""
    found = [
        overtrading(current, history, th, last_overtrading_at),
        revenge_trading(current, history, th),
        oversized_position(current, history, th),
        risky_token(current, audit, th),
    ]
    return [a for a in found if a is not None] + off_market_fills(current, legs, th)
