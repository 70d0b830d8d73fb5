"""The trade normalisers on the recorded samples (tests/fixtures/upstream/) and on bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.trades import normalize
from shared.trades.errors import TradeRejected
from shared.trades.models import Fill, Side, Source, Trade, fill_identity_id
from shared.upstream.jsonbody import decode_json

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RECEIVED = normalize.Received("user-1", NOW, account="main")


def sample(name: str) -> Any:
    return decode_json((SAMPLES / name).read_bytes())


# --- exchanges ---------------------------------------------------------------------------------


def test_binance_my_trades_element_is_one_fill_with_exact_decimals() -> None:
    [item] = sample("binance.myTrades.json")
    fill = normalize.binance_my_trade(item, RECEIVED)
    assert fill == Fill(
        user_id="user-1",
        source=Source.BINANCE,
        account="main",
        external_id="28457",
        symbol="BNBBTC",
        side=Side.BUY,
        price=Decimal("4.00000100"),
        quantity=Decimal("12.00000000"),
        executed_at=datetime(2017, 7, 12, 13, 19, 9, 590000, tzinfo=UTC),
        fee=Decimal("10.10000000"),
        fee_asset="BNB",
        order_id="100234",
        is_maker=False,
        origin="binance.myTrades",
    )
    assert fill.fill_id == fill_identity_id("user-1", "binance", "main", "28457")


def test_binance_execution_report_trade_is_the_last_fill_bare_or_wrapped() -> None:
    bare = sample("binance.user_data.execution_report_trade.json")
    fill = normalize.binance_execution_report(bare, RECEIVED)
    assert fill is not None
    assert (fill.external_id, fill.symbol, fill.side) == ("7", "LTCBNB", Side.BUY)
    # l/L are the last fill's quantity and price, not the order's cumulative z/Z.
    assert (fill.quantity, fill.price) == (Decimal("2.00000000"), Decimal("1.00000000"))
    assert (fill.fee, fill.fee_asset) == (Decimal("0.00100000"), "BNB")
    assert fill.executed_at == datetime(2024, 6, 27, 5, 53, 54, 105000, tzinfo=UTC)
    wrapped = {"subscriptionId": 0, "event": bare}
    assert normalize.binance_execution_report(wrapped, RECEIVED) == fill


def test_binance_execution_report_other_than_trade_is_no_fill() -> None:
    assert (
        normalize.binance_execution_report(sample("binance.ws_api.user_data.execution_report_new.json"), RECEIVED)
        is None
    )


def test_bybit_execution_list_and_ws_frame_give_fills_with_their_exec_ids() -> None:
    [rest] = normalize.bybit_execution_list(sample("bybit.v5.execution_list.json"), RECEIVED)
    assert (rest.external_id, rest.symbol, rest.side) == ("e0cbe81d-0f18-5866-9415-cf319b5dab3b", "ETHPERP", Side.BUY)
    assert (rest.price, rest.quantity, rest.fee, rest.fee_asset) == (
        Decimal("1190.15"),
        Decimal("0.1"),
        Decimal("0.071409"),
        None,  # feeCurrency "" in the REST sample
    )
    assert rest.executed_at == datetime(2022, 12, 29, 2, 58, 42, 429000, tzinfo=UTC)
    [ws] = normalize.bybit_ws_execution(sample("bybit.v5.ws.execution.json"), RECEIVED)
    assert (ws.side, ws.price, ws.quantity, ws.fee_asset) == (Side.SELL, Decimal("95900.1"), Decimal("0.5"), "USDT")
    assert ws.source is Source.BYBIT and ws.origin == "bybit.execution"


def test_bybit_keeps_only_trade_executions_and_maker_rebates() -> None:
    body = sample("bybit.v5.execution_list.json")
    [item] = body["result"]["list"]
    funding = {**item, "execType": "Funding", "execId": "f-1"}
    rebate = {**item, "execId": "r-1", "execFee": "-0.01"}
    body["result"]["list"] = [item, funding, rebate]
    fills = normalize.bybit_execution_list(body, RECEIVED)
    assert [f.external_id for f in fills] == [item["execId"], "r-1"]
    assert fills[1].fee == Decimal("-0.01")


def test_bybit_error_answer_and_bad_element_name_the_field() -> None:
    with pytest.raises(TradeRejected, match="retCode"):
        normalize.bybit_execution_list({"retCode": 10003, "retMsg": "API key is invalid."}, RECEIVED)
    body = sample("bybit.v5.ws.execution.json")
    body["data"][0]["execPrice"] = "NaN"
    with pytest.raises(TradeRejected) as caught:
        normalize.bybit_ws_execution(body, RECEIVED)
    assert caught.value.field == "[0].execPrice"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"price": "1e400"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "0"}, "price"),
        ({"qty": "Infinity"}, "qty"),
        ({"qty": 12.5}, "qty"),  # a float means a decoder lost digits: refused, not rounded
        ({"id": -1}, "id"),
        ({"id": None}, "id"),
        ({"time": 4102444800000}, "time"),  # 2100: in the future
        ({"time": 946684799999}, "time"),  # before 2000
        ({"time": "soon"}, "time"),
        ({"isBuyer": "yes"}, "isBuyer"),
        ({"symbol": "BNB\u0000BTC"}, "symbol"),
        ({"commission": "-0.1"}, "commission"),
    ],
)
def test_binance_bad_values_are_rejected_naming_the_field(change: dict[str, Any], field: str) -> None:
    [item] = sample("binance.myTrades.json")
    with pytest.raises(TradeRejected) as caught:
        normalize.binance_my_trade({**item, **change}, RECEIVED)
    assert caught.value.field == field


# --- manual entry --------------------------------------------------------------------------------

MANUAL = {
    "symbol": "btc/usdt",
    "side": "buy",
    "price": "67000.5",
    "quantity": "0.01",
    "executed_at": "2026-12-01T10:00:00.123456Z",
}


def test_manual_entry_without_exit_is_a_fill_identified_by_its_key() -> None:
    fill = normalize.manual_entry({**MANUAL, "fee": "0.67", "notes": "breakout"}, RECEIVED, "key-1")
    assert isinstance(fill, Fill)
    assert (fill.symbol, fill.side, fill.price, fill.quantity) == (
        "BTCUSDT",
        Side.BUY,
        Decimal("67000.5"),
        Decimal("0.01"),
    )
    assert fill.executed_at == datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)  # milliseconds
    assert (fill.source, fill.account, fill.external_id, fill.notes) == (Source.MANUAL, "manual", "key-1", "breakout")
    again = normalize.manual_entry({**MANUAL, "fee": "0.67", "notes": "breakout"}, RECEIVED, "key-1")
    assert isinstance(again, Fill) and again.fill_id == fill.fill_id


def test_manual_round_trip_is_a_closed_trade_with_pnl_after_quote_fees() -> None:
    trade = normalize.manual_entry(
        {
            "symbol": "ETHUSDT",
            "side": "SELL",
            "entry_price": "3000",
            "exit_price": "2900",
            "quantity": "2",
            "entry_time": "2026-12-01T10:00:00Z",
            "exit_time": "2026-12-01T11:00:00Z",
            "fee": "1.5",
            "fee_asset": "USDT",
        },
        RECEIVED,
        "short-1",
    )
    assert isinstance(trade, Trade)
    assert trade.status == "closed" and trade.side is Side.SELL
    assert trade.pnl == Decimal("198.5")  # (3000 - 2900) * 2 - 1.5


@pytest.mark.parametrize(
    "change,field",
    [
        ({"side": "hold"}, "side"),
        ({"price": "abc"}, "price"),
        ({"price": 1.5}, "price"),
        ({"quantity": None}, "quantity"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "BTC USDT $"}, "symbol"),
        ({"executed_at": "2026-12-01 10:00:00"}, "executed_at"),  # no offset
        ({"executed_at": (NOW + timedelta(hours=1)).isoformat()}, "executed_at"),
        ({"exit_price": "1", "exit_time": "2026-11-30T00:00:00Z"}, "exit_time"),
        ({"price": "1", "entry_price": "1"}, "entry_price"),
        ({"leverage": 10}, "leverage"),
        ({"notes": "x" * 2001}, "notes"),
        ({"fee_asset": "U$D"}, "fee_asset"),
    ],
)
def test_malformed_manual_trade_is_rejected_with_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(TradeRejected) as caught:
        normalize.manual_entry({**MANUAL, **change}, RECEIVED, "k")
    assert caught.value.field == field
    assert caught.value.detail


def test_manual_entry_must_be_an_object() -> None:
    with pytest.raises(TradeRejected, match="JSON object"):
        normalize.manual_entry(["not", "a", "trade"], RECEIVED, "k")


# --- CSV rows ------------------------------------------------------------------------------------

HEADER = ["\ufeffDate(UTC)", "Pair", "Side", "Price", "Amount", "Fee", "Fee Asset", "Notes"]


def test_csv_row_with_bom_header_and_aliases_is_a_fill_keyed_by_file_and_row() -> None:
    columns = normalize.csv_column_map(HEADER)
    fill = normalize.csv_row(
        ["2026-11-01T08:00:00Z", "SOL/USDT", "SELL", "150.25", "3", "0.15", "usdt", ""],
        columns,
        RECEIVED,
        file_digest="d" * 64,
        row_number=2,
    )
    assert (fill.source, fill.account, fill.external_id) == (Source.CSV, "d" * 64, "row:2")
    assert (fill.symbol, fill.side, fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        "SOLUSDT",
        Side.SELL,
        Decimal("150.25"),
        Decimal("3"),
        Decimal("0.15"),
        "USDT",
    )


def test_csv_row_naming_an_exchange_trade_id_is_that_exchange_fill() -> None:
    header = ["time", "symbol", "side", "price", "qty", "exchange", "trade_id"]
    columns = normalize.csv_column_map(header)
    fill = normalize.csv_row(
        ["1499865549590", "BNBBTC", "buy", "4.00000100", "12", "Binance", "28457"],
        columns,
        RECEIVED,
        file_digest="f" * 64,
        row_number=9,
    )
    [item] = sample("binance.myTrades.json")
    synced = normalize.binance_my_trade(item, RECEIVED)
    assert fill.fill_id == synced.fill_id  # imported by CSV and synced from Binance: one fill


def test_csv_local_time_needs_the_files_zone_and_decimal_commas_need_saying() -> None:
    columns = normalize.csv_column_map(["date", "pair", "type", "price", "size"])
    row = ["2026-11-01 09:00:00", "BTCEUR", "Buy", "60000,5", "0,1"]
    with pytest.raises(TradeRejected) as caught:
        normalize.csv_row(row, columns, RECEIVED, file_digest="x", row_number=1, zone=ZoneInfo("Europe/Berlin"))
    assert caught.value.field == "price"  # a comma in a '.'-decimal file is never guessed
    with pytest.raises(TradeRejected) as caught:
        normalize.csv_row(row, columns, RECEIVED, file_digest="x", row_number=1, decimal_comma=True)
    assert caught.value.field == "executed_at"
    fill = normalize.csv_row(
        row, columns, RECEIVED, file_digest="x", row_number=1, zone=ZoneInfo("Europe/Berlin"), decimal_comma=True
    )
    assert fill.executed_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert (fill.price, fill.quantity) == (Decimal("60000.5"), Decimal("0.1"))


def test_csv_header_without_required_columns_or_with_doubles_is_refused() -> None:
    with pytest.raises(TradeRejected, match="no column for price"):
        normalize.csv_column_map(["time", "symbol", "side", "qty"])
    with pytest.raises(TradeRejected, match="two columns"):
        normalize.csv_column_map(["time", "date", "symbol", "side", "price", "qty"])


def test_csv_short_row_is_rejected() -> None:
    columns = normalize.csv_column_map(["time", "symbol", "side", "price", "qty"])
    with pytest.raises(TradeRejected, match="columns"):
        normalize.csv_row(["2026-11-01T00:00:00Z", "BTCUSDT"], columns, RECEIVED, file_digest="x", row_number=3)
