"""Property tests: any JSON or CSV text becomes a fill (or a round trip, or nothing) or a
`TradeRejected` naming the field, never another exception; nothing absurd becomes a fill."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.trades import normalize
from shared.trades.errors import TradeRejected
from shared.trades.models import Fill, Trade
from shared.upstream.jsonbody import decode_json
from shared.wire import MAX_ADJUSTED_EXPONENT, MAX_SIGNIFICANT_DIGITS

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
RECEIVED = normalize.Received("user-1", datetime(2026, 12, 3, tzinfo=UTC), account="main")

# Values as they come out of the decoder, hostile ones included.
hostile_text = st.sampled_from(
    [
        "",
        " ",
        "NaN",
        "-Infinity",
        "1e400",
        "1e-400",
        "9" * 500,
        "\u0000",
        "1\u00002",
        "0x1f",
        "1_000",
        "$1,000",
        "-0",
        "٣",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=25,
)


def _samples() -> dict[str, Any]:
    return {
        "myTrades": decode_json((SAMPLES / "binance.myTrades.json").read_bytes())[0],
        "report": decode_json((SAMPLES / "binance.user_data.execution_report_trade.json").read_bytes()),
        "bybit": decode_json((SAMPLES / "bybit.v5.ws.execution.json").read_bytes()),
        "bybit_list": decode_json((SAMPLES / "bybit.v5.execution_list.json").read_bytes()),
    }


SAMPLE = _samples()
MANUAL = {"symbol": "BTCUSDT", "side": "BUY", "price": "1", "quantity": "1", "executed_at": "2026-01-01T00:00:00Z"}


def _sane(fill: Fill) -> None:
    for number in (fill.price, fill.quantity):
        assert number > 0 and number.is_finite()
        assert number.adjusted() <= MAX_ADJUSTED_EXPONENT
        assert len(number.as_tuple().digits) <= MAX_SIGNIFICANT_DIGITS + 1 + abs(MAX_ADJUSTED_EXPONENT)
    assert fill.fee.is_finite()
    assert "\x00" not in fill.symbol + fill.external_id + (fill.notes or "")
    assert fill.executed_at.tzinfo is not None and fill.executed_at.microsecond % 1000 == 0


def _outcome(call) -> None:
    try:
        result = call()
    except TradeRejected as exc:
        assert isinstance(exc.detail, str) and exc.detail
        return
    fills = result if isinstance(result, list) else [result]
    for item in fills:
        if isinstance(item, Fill):
            _sane(item)
        else:
            assert item is None or isinstance(item, Trade)


NORMALISERS = {
    "manual": lambda v: normalize.manual_entry(v, RECEIVED, "k"),
    "myTrades": lambda v: normalize.binance_my_trade(v, RECEIVED),
    "report": lambda v: normalize.binance_execution_report(v, RECEIVED),
    "bybit": lambda v: normalize.bybit_ws_execution(v, RECEIVED),
    "bybit_list": lambda v: normalize.bybit_execution_list(v, RECEIVED),
}
BASES = {"manual": MANUAL, **SAMPLE}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(NORMALISERS)), json_values)
def test_any_json_value_is_a_fill_or_a_typed_rejection(kind: str, value: Any) -> None:
    _outcome(lambda: NORMALISERS[kind](value))


def _mutations(base: dict[str, Any]):
    keys = sorted(base)
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=4).map(lambda change: {**base, **change})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_samples_with_any_field_replaced_are_a_fill_or_a_typed_rejection(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["manual", "myTrades", "report"]))
    record = data.draw(_mutations(BASES[kind]))
    _outcome(lambda: NORMALISERS[kind](record))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SAMPLE["bybit"]["data"][0])), json_values, max_size=4))
def test_bybit_frames_with_any_field_replaced_are_fills_or_a_typed_rejection(change: dict[str, Any]) -> None:
    frame = {**SAMPLE["bybit"], "data": [{**SAMPLE["bybit"]["data"][0], **change}]}
    _outcome(lambda: normalize.bybit_ws_execution(frame, RECEIVED))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_through_the_decoder_are_a_fill_or_a_typed_rejection(raw: bytes) -> None:
    try:
        value = decode_json(raw)
    except ValueError:
        return  # not JSON: the API answers 400 before any normaliser
    _outcome(lambda: normalize.manual_entry(value, RECEIVED, "k"))


def test_deep_nesting_and_absurd_numbers_are_rejected_not_crashed() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    try:
        value = decode_json(deep)
    except ValueError:
        value = None
    _outcome(lambda: normalize.manual_entry(value, RECEIVED, "k"))
    for number in ("1e999999999", "1" * 100_000, "1e-999999", "NaN"):
        doc = decode_json(json.dumps(MANUAL)[:-1] + f', "fee": {number}' + "}")
        _outcome(lambda doc=doc: normalize.manual_entry(doc, RECEIVED, "k"))
        doc = {**MANUAL, "price": number}
        _outcome(lambda doc=doc: normalize.manual_entry(doc, RECEIVED, "k"))


csv_cells = st.one_of(st.text(max_size=20), hostile_text, st.decimals(allow_nan=True).map(str))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(csv_cells, min_size=0, max_size=9),
    st.booleans(),
)
def test_any_csv_row_is_a_fill_or_a_typed_rejection(cells: list[str], decimal_comma: bool) -> None:
    columns = normalize.csv_column_map(
        ["time", "symbol", "side", "price", "qty", "fee", "exchange", "trade_id", "notes"]
    )
    _outcome(
        lambda: normalize.csv_row(cells, columns, RECEIVED, file_digest="d", row_number=1, decimal_comma=decimal_comma)
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=15), max_size=12))
def test_any_csv_header_maps_or_is_rejected(header: list[str]) -> None:
    try:
        columns = normalize.csv_column_map(header)
    except TradeRejected:
        return
    assert set(normalize.CSV_REQUIRED) <= set(columns)


def test_a_valid_row_still_reads_after_the_property_runs() -> None:
    columns = normalize.csv_column_map(["time", "symbol", "side", "price", "qty"])
    fill = normalize.csv_row(
        ["2026-01-01T00:00:00Z", "BTCUSDT", "BUY", "1.5", "2"], columns, RECEIVED, file_digest="d", row_number=1
    )
    assert fill.price == Decimal("1.5")


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_csv_row_payload_is_a_fill_or_a_typed_rejection(payload: Any) -> None:
    from shared.trades.normalizer import csv_import_row

    _outcome(lambda: csv_import_row(payload, RECEIVED))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_uploaded_bytes_open_as_a_csv_or_a_typed_rejection(data: bytes) -> None:
    from shared.trades.csv_import import open_csv

    try:
        csv_file = open_csv(data)
    except TradeRejected:
        return
    for row in csv_file.rows():
        if not isinstance(row, TradeRejected):
            _outcome(
                lambda row=row: normalize.csv_row(
                    row.cells, csv_file.columns, RECEIVED, file_digest="d", row_number=row.number
                )
            )
