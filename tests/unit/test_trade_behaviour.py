"""Behavioural alert rules (shared/trades/behaviour.py): hand-computed cases, no infrastructure."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from shared.trades.behaviour import (
    AuditFacts,
    LegFacts,
    Thresholds,
    TradeFacts,
    alert_id,
    evaluate,
    off_market_fills,
    oversized_position,
    overtrading,
    revenge_trading,
    risky_token,
)
from shared.trades.models import derived_id

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
TH = Thresholds()


def trade(n: int, minutes: float, notional: str = "100", **kw) -> TradeFacts:
    tid = derived_id("t", str(n))
    return TradeFacts(
        trade_id=kw.pop("trade_id", tid),
        user_id=kw.pop("user_id", "alice"),
        symbol=kw.pop("symbol", "BTCUSDT"),
        quote_asset=kw.pop("quote_asset", "USDT"),
        entry_key=kw.pop("entry_key", f"fill-{n}"),
        entry_time=T0 + timedelta(minutes=minutes),
        notional=Decimal(notional),
        **kw,
    )


# --- overtrading -------------------------------------------------------------------------------


def test_overtrading_needs_n_entries_in_the_window():
    history = [trade(i, i * 5) for i in range(9)]  # entries at 0, 5, ..., 40 min
    ninth = history[-1]
    assert overtrading(ninth, history[:-1], TH, None) is None  # 9 < 10
    tenth = trade(9, 45)
    alert = overtrading(tenth, history, TH, None)
    assert alert is not None and alert.rule == "overtrading"
    assert alert.trade_ids == tuple(t.trade_id for t in [*history, tenth])  # oldest first, the trigger last
    assert alert.trigger_trade_id == tenth.trade_id
    assert alert.details["trades"] == "10"
    assert alert.alert_id == alert_id("overtrading", "alice", "fill-9")


def test_overtrading_window_is_sliding_and_excludes_its_start():
    history = [trade(i, i * 5) for i in range(9)]  # 0 .. 40
    # at 60 min the window is (0, 60]: the entry at 0 falls out -> 8 + this one = 9
    assert overtrading(trade(9, 60), history, TH, None) is None
    # at 59 min: (−1, 59] holds all nine + this one
    assert overtrading(trade(9, 59), history, TH, None) is not None


def test_overtrading_counts_an_entry_split_in_parts_once():
    history = [trade(i, i) for i in range(8)]
    # one entry fill paired into a closed part and an open rest: two trades, one entry
    part_a = trade(100, 9, entry_key="fill-8")
    part_b = trade(101, 9, entry_key="fill-8")
    assert overtrading(part_b, [*history, part_a], TH, None) is None  # 9 entries
    assert overtrading(trade(9, 10), [*history, part_a, part_b], TH, None) is not None


def test_overtrading_is_quiet_for_a_window_after_its_alert():
    history = [trade(i, i) for i in range(10)]
    assert overtrading(trade(10, 11), history, TH, last_alert_at=T0 + timedelta(minutes=9)) is None
    assert overtrading(trade(10, 70), [trade(i, 61 + i) for i in range(9)], TH, T0 + timedelta(minutes=9)) is not None


# --- revenge trading ---------------------------------------------------------------------------


def test_revenge_after_a_loss_within_the_window():
    loss = trade(1, 0, pnl=Decimal("-25.5"), exit_time=T0 + timedelta(minutes=30), exit_key="fill-x")
    win = trade(2, 0, entry_key="fill-2", pnl=Decimal("10"), exit_time=T0 + timedelta(minutes=31))
    after = trade(3, 40)  # 10 min after the loss's exit
    alert = revenge_trading(after, [loss, win], TH)
    assert alert is not None
    assert alert.trade_ids == (loss.trade_id, after.trade_id)
    assert alert.details == {
        "loss_trade_id": loss.trade_id,
        "loss_pnl": "-25.5",
        "seconds_after_loss": "600",
        "window_minutes": "15",
    }
    assert alert.alert_id == alert_id("revenge_trading", "alice", loss.trade_id, "fill-3")


def test_no_revenge_outside_the_window_or_before_the_loss_or_after_a_win():
    loss = trade(1, 0, pnl=Decimal("-1"), exit_time=T0 + timedelta(minutes=30), exit_key="fill-x")
    assert revenge_trading(trade(3, 45, trade_id=derived_id("late")), [loss], TH) is not None  # exactly 15 min: in
    assert revenge_trading(trade(3, 45.01), [loss], TH) is None  # just past
    assert revenge_trading(trade(3, 29), [loss], TH) is None  # entered before the loss closed
    win = trade(1, 0, pnl=Decimal("5"), exit_time=T0 + timedelta(minutes=30))
    assert revenge_trading(trade(3, 35), [win], TH) is None
    # the flip: the fill that closed the loss opened this trade; not a reaction to it
    flip = trade(4, 30, entry_key="fill-x")
    assert revenge_trading(flip, [loss], TH) is None


def test_revenge_names_the_latest_loss():
    first = trade(1, 0, pnl=Decimal("-1"), exit_time=T0 + timedelta(minutes=20))
    second = trade(2, 0, entry_key="fill-2", pnl=Decimal("-2"), exit_time=T0 + timedelta(minutes=25))
    alert = revenge_trading(trade(3, 30), [first, second], TH)
    assert alert is not None and alert.trade_ids[0] == second.trade_id


# --- oversized position ------------------------------------------------------------------------


def test_oversized_against_the_median_of_the_last_entries():
    # notionals 100, 200, 300, 400, 500 -> median 300; limit 3 x 300 = 900
    history = [trade(i, i, str(100 * (i + 1))) for i in range(5)]
    assert oversized_position(trade(9, 10, "900"), history, TH) is None  # not above
    alert = oversized_position(trade(9, 10, "900.01"), history, TH)
    assert alert is not None
    assert alert.details == {"notional": "900.01", "median_notional": "300", "multiple": "3", "history": "5"}


def test_oversized_needs_enough_history_in_the_same_quote():
    usdt = [trade(i, i, "100") for i in range(4)]
    btc = [trade(10 + i, i, "0.001", quote_asset="BTC", entry_key=f"b{i}") for i in range(5)]
    assert oversized_position(trade(9, 10, "10000"), [*usdt, *btc], TH) is None  # 4 USDT entries < 5


def test_oversized_uses_only_the_last_m_entries_and_sums_an_entrys_parts():
    th = Thresholds(size_history=3, size_min_history=3)
    old = [trade(i, i, "1") for i in range(10)]
    recent = [trade(20 + i, 20 + i, "100") for i in range(3)]
    assert oversized_position(trade(9, 30, "301"), [*old, *recent], th) is not None  # median of recent = 100
    # an entry in two parts of 200 each: 400 > 300
    part = trade(50, 30, "200", entry_key="big")
    assert oversized_position(trade(51, 30, "200", entry_key="big"), [*recent, part], th) is not None


def test_even_history_median_is_the_mean_of_the_middle_two():
    history = [trade(i, i, n) for i, n in enumerate(["10", "20", "30", "40", "50", "60"])]
    # median (30 + 40) / 2 = 35; limit 105
    assert oversized_position(trade(9, 10, "105"), history, TH) is None
    assert oversized_position(trade(9, 10, "105.5"), history, TH) is not None


# --- risky token ---------------------------------------------------------------------------------


def test_risky_token_for_a_honeypot_or_a_high_tax():
    t = trade(1, 0, symbol="SCAMUSDT")
    assert risky_token(t, None, TH) is None
    assert risky_token(t, AuditFacts("goplus", False, Decimal("0.05"), Decimal("0.10")), TH) is None  # at the limit
    honeypot = risky_token(t, AuditFacts("goplus", True, None, None), TH)
    assert honeypot is not None and "honeypot" in honeypot.message
    taxed = risky_token(t, AuditFacts("goplus", False, Decimal("0.02"), Decimal("0.35")), TH)
    assert taxed is not None and taxed.details["sell_tax"] == "0.35" and "sell tax 0.35" in taxed.message


# --- off-market fill -----------------------------------------------------------------------------


def test_off_market_fill_either_way_per_leg():
    t = trade(1, 0)
    legs = [
        LegFacts("entry", "fill-1", T0, Decimal("-250.5")),  # a buy far below the market: off either way
        LegFacts("exit", "fill-2", T0 + timedelta(minutes=5), Decimal("199.9999")),
    ]
    alerts = off_market_fills(t, legs, TH)
    assert [a.details["leg"] for a in alerts] == ["entry"]
    assert alerts[0].alert_id == alert_id("off_market_fill", "alice", "entry", "fill-1")
    assert off_market_fills(t, [LegFacts("entry", "f", T0, None)], TH) == []


def test_evaluate_is_stable_for_a_redelivered_trade():
    history = [trade(i, i, "100") for i in range(10)]
    current = trade(10, 11, "1000")
    legs = [LegFacts("entry", "fill-10", current.entry_time, Decimal("300"))]
    audit = AuditFacts("goplus", True, None, None)
    first = evaluate(current, history, TH, legs=legs, audit=audit)
    again = evaluate(current, [*history, current], TH, legs=legs, audit=audit)
    assert sorted(a.rule for a in first) == ["off_market_fill", "oversized_position", "overtrading", "risky_token"]
    assert [a.alert_id for a in first] == [a.alert_id for a in again]


def test_thresholds_come_from_the_settings_and_refuse_a_rule_that_could_never_run():
    import pytest
    from pydantic import ValidationError

    from shared.trades.analyser import thresholds_of
    from shared.trades.settings import TradesSettings

    th = thresholds_of(TradesSettings(alert_overtrading_trades=4, alert_revenge_window_minutes=5, alert_max_tax="0.2"))
    assert (th.overtrading_trades, th.revenge_window, th.max_tax) == (4, timedelta(minutes=5), Decimal("0.2"))
    assert thresholds_of(TradesSettings()) == Thresholds()  # the documented defaults are the settings' defaults
    with pytest.raises(ValidationError, match="SIZE_MIN_HISTORY"):
        TradesSettings(alert_size_history=3, alert_size_min_history=4)
