"""FIFO pairing of fills into entry/exit/pnl trades: partial fills, flips, fees, order independence."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.trades.models import Fill, Side, Source
from shared.trades.pairing import pair_fifo, quote_asset

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def fill(
    n: int,
    side: str,
    qty: str,
    price: str,
    fee: str = "0",
    asset: str | None = "USDT",
    symbol: str = "BTCUSDT",
    user: str = "u",
) -> Fill:
    return Fill(
        user_id=user,
        source=Source.BINANCE,
        account="a",
        external_id=str(n),
        symbol=symbol,
        side=Side(side),
        price=Decimal(price),
        quantity=Decimal(qty),
        executed_at=T0 + timedelta(minutes=n),
        fee=Decimal(fee),
        fee_asset=asset,
    )


def test_a_long_closed_by_one_sell_is_one_trade_with_pnl_after_fees() -> None:
    buy, sell = fill(1, "BUY", "2", "100", "0.2"), fill(2, "SELL", "2", "110", "0.22")
    [trade] = pair_fifo([sell, buy])  # arrival order does not matter
    assert trade.status == "closed" and trade.side is Side.BUY
    assert (trade.entry_price, trade.exit_price, trade.quantity) == (Decimal("100"), Decimal("110"), Decimal("2"))
    assert trade.pnl == Decimal("19.58")  # 10 * 2 - 0.2 - 0.22
    assert (trade.entry_fill_id, trade.exit_fill_id) == (buy.fill_id, sell.fill_id)
    assert [(f.asset, f.amount) for f in trade.fees] == [("USDT", Decimal("0.42"))]


def test_partial_fills_close_the_oldest_lot_first() -> None:
    fills = [fill(1, "BUY", "1", "100"), fill(2, "BUY", "1", "200"), fill(3, "SELL", "1.5", "300")]
    closed_a, closed_b, open_b = pair_fifo(fills)
    assert (closed_a.entry_price, closed_a.quantity, closed_a.pnl) == (Decimal("100"), Decimal("1"), Decimal("200"))
    assert (closed_b.entry_price, closed_b.quantity, closed_b.pnl) == (Decimal("200"), Decimal("0.5"), Decimal("50.0"))
    assert open_b.status == "open" and open_b.quantity == Decimal("0.5") and open_b.pnl is None
    assert open_b.entry_fill_id == closed_b.entry_fill_id == fills[1].fill_id


def test_a_sell_larger_than_the_long_flips_the_position_short() -> None:
    fills = [fill(1, "BUY", "1", "100"), fill(2, "SELL", "3", "90"), fill(3, "BUY", "2", "80")]
    long_closed, short_closed = pair_fifo(fills)
    assert (long_closed.side, long_closed.quantity, long_closed.pnl) == (Side.BUY, Decimal("1"), Decimal("-10"))
    assert (short_closed.side, short_closed.quantity, short_closed.pnl) == (Side.SELL, Decimal("2"), Decimal("20"))
    assert short_closed.entry_fill_id == fills[1].fill_id == long_closed.exit_fill_id


def test_fee_parts_add_up_to_the_fill_fee_exactly() -> None:
    buy = fill(1, "BUY", "3", "10", "1")  # 1/3 of the fee per unit: not a finite decimal
    sells = [fill(2, "SELL", "1", "11"), fill(3, "SELL", "1", "11"), fill(4, "SELL", "1", "11")]
    trades = pair_fifo([buy, *sells])
    assert sum(t.fees[0].amount for t in trades) == Decimal("1")
    assert all(t.fees[0].amount.as_tuple().exponent >= -18 for t in trades)  # type: ignore[operator]


def test_fees_in_another_asset_are_listed_not_deducted() -> None:
    [trade] = pair_fifo([fill(1, "BUY", "1", "100", "0.001", "BNB"), fill(2, "SELL", "1", "101", "0.5", "USDT")])
    assert trade.pnl == Decimal("0.5")
    assert {f.asset: f.amount for f in trade.fees} == {"BNB": Decimal("0.001"), "USDT": Decimal("0.5")}


def test_users_and_symbols_are_paired_apart() -> None:
    trades = pair_fifo(
        [
            fill(1, "BUY", "1", "1", user="a"),
            fill(2, "SELL", "1", "2", user="b"),
            fill(3, "SELL", "1", "2", symbol="ETHUSDT", user="a"),
        ]
    )
    assert sorted((t.user_id, t.symbol, t.status) for t in trades) == [
        ("a", "BTCUSDT", "open"),
        ("a", "ETHUSDT", "open"),
        ("b", "BTCUSDT", "open"),
    ]


def test_exact_tiny_prices_keep_every_digit() -> None:
    [trade] = pair_fifo(
        [fill(1, "BUY", "1000000000", "0.000000000012345"), fill(2, "SELL", "1000000000", "0.000000000012346")]
    )
    assert trade.pnl == Decimal("0.000001000000000")


def test_quote_asset_of_symbols() -> None:
    assert quote_asset("BNBBTC") == "BTC"
    assert quote_asset("BTCFDUSD") == "FDUSD"
    assert quote_asset("ETHPERP") is None
    assert quote_asset("USDT") is None


sides = st.sampled_from(["BUY", "SELL"])
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(sides, quantities, prices, quantities), min_size=1, max_size=25), st.randoms())
def test_pairing_conserves_quantity_and_fees_and_ignores_arrival_order(rows, rnd: random.Random) -> None:
    fills = [fill(i, side, str(q), str(p), str(fee / 1000)) for i, (side, q, p, fee) in enumerate(rows)]
    trades = pair_fifo(fills)
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    assert pair_fifo(shuffled) == trades
    ids = [t.trade_id for t in trades]
    assert len(ids) == len(set(ids))
    # Each fill's quantity is used exactly once as an entry or an exit, and its fee exactly once.
    for f in fills:
        used = sum(t.quantity for t in trades if t.entry_fill_id == f.fill_id) + sum(
            t.quantity for t in trades if t.exit_fill_id == f.fill_id
        )
        assert used == f.quantity
    assert sum(a.amount for t in trades for a in t.fees) == sum(f.fee for f in fills)
    # At most one side is open at a time.
    assert len({t.side for t in trades if t.status == "open"}) <= 1
    net = sum(f.quantity if f.side is Side.BUY else -f.quantity for f in fills)
    open_net = sum(t.quantity if t.side is Side.BUY else -t.quantity for t in trades if t.status == "open")
    assert open_net == net
