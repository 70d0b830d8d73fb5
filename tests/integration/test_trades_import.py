"""CSV import through the trades API on real Kafka, PostgreSQL and a moto S3 server: the file in
bronze, every row imported or rejected with its number and reason, a re-import adding nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from shared.config import Settings
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from shared.trades.app import TradesApp
from shared.trades.auth import issue_token
from shared.trades.settings import TradesSettings
from tests.helpers.cloudevents import request_for_message
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import read_all

SOURCE = "trade-normalizer-source"
# A BOM, semicolons, decimal commas, a quoted note with the delimiter in it, local times, a bad
# price, a missing column, a row naming a Binance trade id, and an empty line.
CSV = (
    "\ufeffDate;Pair;Side;Price;Amount;Fee;Notes;Exchange;Trade ID\r\n"
    '2026-11-01 09:00:00;BTC/EUR;Buy;60000,5;0,1;1,2;"first; long";;\r\n'
    "2026-11-01 10:00:00;BTC/EUR;Sell;61000;0,1;1,22;;;\r\n"
    "2026-11-01 11:00:00;ETH/EUR;Buy;abc;1;0;;;\r\n"
    "\r\n"
    "2026-11-01 12:00:00;ETH/EUR\r\n"
    "2026-11-01 13:00:00;BNBBTC;Buy;0,004;12;0;;Binance;28457\r\n"
).encode()


pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def stack(clean_db: str, kafka_bootstrap: str, unique_topic, s3_endpoint: str) -> Iterator[dict[str, Any]]:
    settings = TradesSettings(
        token_key=SecretStr("import-key-" + "x" * 40), raw_topic=unique_topic("raw-import", partitions=3)
    )
    resources = Resources(
        Settings(
            database_url=clean_db,
            kafka_bootstrap_servers=kafka_bootstrap,
            archive_enabled=True,
            s3_endpoint_url=s3_endpoint,
            s3_bucket="trades-bronze",
        )
    )
    api = TradesApp(resources=resources, trades=settings)
    db = Database(clean_db)
    try:
        yield {
            "api": api,
            "settings": settings,
            "resources": resources,
            "db": db,
            "s3": s3_endpoint,
            "bootstrap": kafka_bootstrap,
        }
    finally:
        db.close()
        resources.close()


def call(stack: dict[str, Any], method: str, path: str, body: bytes = b"", user: str = "alice") -> HttpResponse:
    token = issue_token(stack["settings"], user)
    return stack["api"].handle_http(
        method, path, {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}, body
    )


def test_a_csv_file_is_archived_and_each_row_imported_or_rejected_with_its_reason(stack: dict[str, Any]) -> None:
    response = call(stack, "POST", "/api/trades/import?decimal=comma&timezone=Europe/Berlin&account=main", CSV)
    assert response.status == 202, response.body
    report = json.loads(response.body)
    assert (report["status"], report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (
        "done",
        5,
        3,
        2,
    )
    assert [(r["row"], r["field"]) for r in report["rejections"]] == [("row 4", "price"), ("row 6", "")]
    assert all(r["error"] for r in report["rejections"])
    # The file, byte for byte, in bronze under its digest.
    s3 = boto3.client("s3", endpoint_url=stack["s3"], region_name="us-east-1")
    key = f"bronze/trades/imports/alice/{report['file_digest']}.csv"
    assert s3.get_object(Bucket="trades-bronze", Key=key)["Body"].read() == CSV
    # The accepted rows go through the normaliser like any raw trade.
    normalizer = function_app("trade_normalizer", stack["resources"])
    records = read_all(stack["bootstrap"], stack["settings"].raw_topic)
    assert [request_for_message(r, source_name=SOURCE).to(normalizer).status for r in records] == [200, 200, 200]
    fills = stack["db"].rows(
        "SELECT source, account, external_id, symbol, price::text, executed_at FROM trade_fills ORDER BY executed_at"
    )
    assert [(f["source"], f["external_id"], f["symbol"], f["price"]) for f in fills] == [
        ("csv", "row:2", "BTCEUR", "60000.5"),
        ("csv", "row:3", "BTCEUR", "61000"),
        ("binance", "28457", "BNBBTC", "0.004"),  # the row names its exchange fill: that fill's identity
    ]
    assert fills[0]["executed_at"].isoformat() == "2026-11-01T08:00:00+00:00"  # 09:00 in Berlin
    assert fills[2]["account"] == "main"
    # Progress is readable by its owner only.
    status = call(stack, "GET", f"/api/trades/import/{report['import_id']}")
    assert status.status == 200 and json.loads(status.body)["rows_accepted"] == 3
    assert call(stack, "GET", f"/api/trades/import/{report['import_id']}", user="bob").status == 404


def test_re_importing_the_same_file_adds_nothing(stack: dict[str, Any]) -> None:
    first = json.loads(call(stack, "POST", "/api/trades/import?decimal=comma&timezone=UTC", CSV).body)
    again = call(stack, "POST", "/api/trades/import?decimal=comma&timezone=UTC", CSV)
    assert again.status == 200 and json.loads(again.body)["import_id"] == first["import_id"]
    assert len(read_all(stack["bootstrap"], stack["settings"].raw_topic)) == first["rows_accepted"]
    assert stack["db"].value("SELECT count(*) FROM trade_imports") == 1


@pytest.mark.parametrize(
    "body,query,status,reason",
    [
        (b"\xff\xfe not utf-8", "", 202, "UTF-8"),
        (b"", "", 202, "empty"),
        (b"a,b,c\n1,2,3\n", "", 202, "no column"),
        (b'time,symbol,side,price,qty\n2026-01-01T00:00:00Z,BTCUSDT,BUY,"1,5\n', "", 202, "unreadable CSV"),
        (CSV, "?decimal=dot", 400, "decimal"),
        (CSV, "?timezone=Mars/Olympus", 400, "timezone"),
    ],
)
def test_unreadable_files_and_bad_options_say_why(
    stack: dict[str, Any], body: bytes, query: str, status: int, reason: str
) -> None:
    response = call(stack, "POST", "/api/trades/import" + query, body)
    assert response.status == status, response.body
    text = response.body.decode()
    assert reason in text
    if status == 202:
        report = json.loads(text)
        assert report["status"] == "failed" and report["stopped_at"]


def test_a_file_over_the_limit_is_413(stack: dict[str, Any]) -> None:
    limit = stack["settings"].max_import_bytes
    assert call(stack, "POST", "/api/trades/import", b"x" * (limit + 1)).status == 413
