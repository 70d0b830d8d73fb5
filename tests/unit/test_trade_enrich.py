"""Market context of a trade (shared/trades/enrich.py): hand-computed cases, no infrastructure."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.trades.enrich import (
    MinuteCandle,
    Observation,
    enrichment_status,
    leg_context,
    minute_of,
    nearest_observation,
    slippage_bps,
    split_symbol,
)

QUOTES = ("FDUSD", "USDT", "USDC", "BTC", "ETH", "USD")
T0 = datetime(2026, 12, 1, 10, 0, 30, 250000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("symbol", "base", "quote"),
    [
        ("BTCUSDT", "BTC", "USDT"),
        ("ETHBTC", "ETH", "BTC"),
        ("BNBFDUSD", "BNB", "FDUSD"),  # the longest quote wins over USD
        ("PEPEUSDC", "PEPE", "USDC"),
        ("BRK.B", "BRK.B", None),  # a stock: no quote asset
        ("USDT", "USDT", None),  # nothing left for a base
    ],
)
def test_split_symbol(symbol, base, quote):
    assert split_symbol(symbol, QUOTES) == (base, quote)


def test_slippage_is_signed_adverse_positive_and_exact():
    # bought at 101 with the market at 100: 1 % above = +100 bps (adverse)
    assert slippage_bps("BUY", Decimal("101"), Decimal("100")) == Decimal("100.0000")
    # sold at 101 with the market at 100: better than the market = -100 bps
    assert slippage_bps("SELL", Decimal("101"), Decimal("100")) == Decimal("-100.0000")
    # a sell below the market is adverse
    assert slippage_bps("SELL", Decimal("99.5"), Decimal("100")) == Decimal("50.0000")
    # a meme token keeps its digits: (1.2346e-11 - 1.2345e-11) / 1.2345e-11 * 1e4 = 1e4 / 12345 = 0.81004...
    assert slippage_bps("BUY", Decimal("0.000000000012346"), Decimal("0.000000000012345")) == Decimal("0.8100")
    # half-even at the quantum: 1/3 bps of 30000 -> 0.3333
    assert slippage_bps("BUY", Decimal("30001"), Decimal("30000")) == Decimal("0.3333")
    with pytest.raises(ValueError):
        slippage_bps("BUY", Decimal(1), Decimal(0))


def candle() -> MinuteCandle:
    start = minute_of(T0)
    return MinuteCandle(
        start,
        Decimal("100"),
        Decimal("102"),
        Decimal("99"),
        Decimal("101"),
        start + timedelta(seconds=2),
        start + timedelta(seconds=57),
        12,
    )


def test_nearest_observation_within_tolerance():
    c = candle()
    observations = c.observations()
    # T0 is 10:00:30.25: open at :02 is 28.25 s away, close at :57 is 26.75 s away -> the close
    found = nearest_observation(T0, observations, timedelta(seconds=60))
    assert found is not None and found.kind == "candle_close" and found.price == Decimal("101")
    assert nearest_observation(T0, observations, timedelta(seconds=10)) is None
    # a tie goes to the earlier observation
    a = Observation(Decimal(1), T0 - timedelta(seconds=5), "candle_open")
    b = Observation(Decimal(2), T0 + timedelta(seconds=5), "latest")
    assert nearest_observation(T0, [b, a], timedelta(seconds=60)) == a


def test_leg_context_prefers_the_nearest_and_computes_slippage():
    latest = Observation(Decimal("100.5"), T0 + timedelta(seconds=1), "latest")
    leg = leg_context(
        "entry",
        "BUY",
        T0,
        Decimal("100.7010"),
        candle=candle(),
        latest=latest,
        tolerance=timedelta(seconds=60),
        comparable=True,
    )
    assert leg.market == latest
    # (100.701 - 100.5) / 100.5 * 10000 = 20.0000 bps
    assert leg.slippage_bps == Decimal("20.0000")
    assert leg.price_difference == Decimal("0.2010")


def test_leg_context_without_a_comparable_quote_has_no_slippage():
    leg = leg_context(
        "exit",
        "SELL",
        T0,
        Decimal("0.05"),
        candle=candle(),
        latest=None,
        tolerance=timedelta(seconds=60),
        comparable=False,
    )
    assert leg.market is not None and leg.slippage_bps is None


def test_leg_context_with_no_price_near_the_trade():
    old = Observation(Decimal("100"), T0 - timedelta(hours=3), "latest")
    leg = leg_context(
        "entry", "BUY", T0, Decimal("1"), candle=None, latest=old, tolerance=timedelta(seconds=60), comparable=True
    )
    assert leg.market is None and leg.slippage_bps is None and leg.price_difference is None
    assert enrichment_status("open", True, leg) == "pending_market"


def test_enrichment_status():
    priced = leg_context(
        "entry", "BUY", T0, Decimal("101"), candle=candle(), latest=None, tolerance=timedelta(60), comparable=True
    )
    assert enrichment_status("open", True, priced) == "enriched"
    assert enrichment_status("closed", False, None) == "pending_market"
    assert enrichment_status("superseded", True, priced) == "superseded"
