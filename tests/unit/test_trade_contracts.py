"""The trade records' schemas: JSON Schema files generated from the models, the Avro schema with
the same fields, records validated by jsonschema and round-tripped through fastavro."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from shared import schemas
from shared.errors import BadMessage
from shared.trades import contracts
from shared.trades.models import Fill, Side, Source
from shared.trades.pairing import pair_fifo

ROOT = Path(__file__).resolve().parents[2]
AVSC = schemas.SCHEMAS_DIR / contracts.TRADE_AVRO_SCHEMA_FILE
T0 = datetime(2026, 11, 1, 9, 30, 0, 123000, tzinfo=UTC)


def fills() -> list[Fill]:
    def make(n: int, side: str, qty: str, price: str, fee: str, asset: str | None) -> Fill:
        return Fill("u-1", Source.BINANCE, "main", str(n), "BNBBTC", Side(side), Decimal(price), Decimal(qty),
                    T0 + timedelta(seconds=n), Decimal(fee), asset)  # fmt: skip

    return [make(1, "BUY", "12", "0.000000000012345", "0.001", "BNB"), make(2, "SELL", "5", "0.00000000002", "0", None)]


@pytest.mark.parametrize("uri", sorted(contracts.SCHEMA_MODELS))
def test_each_schema_file_is_what_its_model_generates(uri: str) -> None:
    path = schemas.schema_file(uri)
    assert path.is_file(), "run python -m shared.trades.contracts"
    assert json.loads(path.read_text()) == contracts.schema_document(uri), "run python -m shared.trades.contracts"


def test_avro_schema_has_the_json_schemas_fields_in_order_and_never_a_double() -> None:
    avsc = json.loads(AVSC.read_text())
    fastavro.parse_schema(avsc)
    assert [f["name"] for f in avsc["fields"]] == list(contracts.TradeRecord.model_fields)
    assert "double" not in AVSC.read_text() and "float" not in AVSC.read_text()


def _to_avro(record: dict[str, Any]) -> dict[str, Any]:
    def millis(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))

    return {**record, "entry_time": millis(record["entry_time"]), "exit_time": millis(record["exit_time"])}


def test_paired_trades_validate_and_round_trip_through_avro_exactly() -> None:
    schema = fastavro.parse_schema(json.loads(AVSC.read_text()))
    trades = pair_fifo(fills())
    assert [t.status for t in trades] == ["closed", "open"]
    for trade in trades:
        record = contracts.trade_record(trade)  # validated against trade.v1.json on the way
        contracts.TradeRecord.model_validate(record)
        assert record["entry_time"] == "2026-11-01T09:30:01.123Z"
        assert record["entry_price"] == "0.000000000012345"  # never 1.2345E-11
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, _to_avro(record))
        buffer.seek(0)
        back = fastavro.schemaless_reader(buffer, schema, schema)
        assert isinstance(back, dict)
        uuids = ("trade_id", "entry_fill_id", "exit_fill_id")  # the uuid logical type reads back as UUID
        assert {k: str(v) if k in uuids and v is not None else v for k, v in back.items()} == _to_avro(record)
    closed = contracts.trade_record(trades[0])
    assert closed["pnl"] == "0.000000000038275"  # (0.00000000002 - 0.000000000012345) * 5, BNB fee not deducted
    assert closed["fees"] == [{"asset": "BNB", "amount": "0.000416666666666667"}]


@pytest.mark.parametrize(
    "change,where",
    [
        ({"entry_price": 1.5}, "entry_price"),
        ({"entry_price": "1e-5"}, "entry_price"),
        ({"quantity": "-1"}, "quantity"),
        ({"entry_time": "2026-11-01T09:30:00Z"}, "entry_time"),  # milliseconds are required
        ({"side": "buy"}, "side"),
        ({"extra": 1}, "(record)"),
    ],
)
def test_records_breaking_the_schema_are_refused_naming_the_field(change: dict[str, Any], where: str) -> None:
    record = {**contracts.trade_record(pair_fifo(fills())[0]), **change}
    with pytest.raises(BadMessage, match=where.replace("(", r"\(").replace(")", r"\)")):
        contracts.validate_record(contracts.TRADE_SCHEMA, record)


def test_raw_trade_envelope_validates() -> None:
    raw = {
        "user_id": "u-1",
        "kind": "manual",
        "received_at": "2026-12-03T10:00:00.000Z",
        "account": None,
        "idempotency_key": "k",
        "payload": {"symbol": "BTCUSDT"},
    }
    contracts.validate_record(contracts.RAW_TRADE_SCHEMA, raw)
    with pytest.raises(BadMessage, match="kind"):
        contracts.validate_record(contracts.RAW_TRADE_SCHEMA, {**raw, "kind": "ftx"})
    with pytest.raises(BadMessage, match="user_id"):
        contracts.validate_record(contracts.RAW_TRADE_SCHEMA, {**raw, "user_id": "a b"})


def test_every_trade_event_names_its_schema() -> None:
    """Every OutboundEvent(...) in shared/trades passes the dataschema of its type."""
    import ast

    expected = {
        "RAW_TRADE_TYPE": "RAW_TRADE_SCHEMA",
        "TRADE_NORMALIZED_TYPE": "TRADE_SCHEMA",
        "TRADE_ENRICHED_TYPE": "ENRICHED_TRADE_SCHEMA",
        "BEHAVIOURAL_ALERT_TYPE": "BEHAVIOURAL_ALERT_SCHEMA",
    }
    calls = []
    for path in (ROOT / "shared" / "trades").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "OutboundEvent":
                names = {k.arg: k.value.id for k in node.keywords if isinstance(k.value, ast.Name)}
                calls.append((path.name, names.get("type"), names.get("dataschema")))
    assert sorted(calls) == [
        ("analyser.py", "BEHAVIOURAL_ALERT_TYPE", "BEHAVIOURAL_ALERT_SCHEMA"),
        ("api.py", "RAW_TRADE_TYPE", "RAW_TRADE_SCHEMA"),
        ("enricher.py", "TRADE_ENRICHED_TYPE", "ENRICHED_TRADE_SCHEMA"),
        ("imports.py", "RAW_TRADE_TYPE", "RAW_TRADE_SCHEMA"),
        ("normalizer.py", "TRADE_NORMALIZED_TYPE", "TRADE_SCHEMA"),
        ("sync_job.py", "RAW_TRADE_TYPE", "RAW_TRADE_SCHEMA"),
    ]
    assert all(t is not None and expected[t] == d for _, t, d in calls)
