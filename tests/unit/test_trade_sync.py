"""Exchange sync without infrastructure: signing, the signed clients over a mock transport,
page checks, cursor advance and Bybit windows (shared/trades/sync.py, shared/upstream/*)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from shared.config import BinanceSettings, BybitSettings
from shared.errors import BadUpstreamBody, PermanentUpstreamError, RateLimited
from shared.trades.contracts import RAW_TRADE_SCHEMA, validate_record
from shared.trades.normalize import Received, bybit_execution_list
from shared.trades.sync import (
    LinkedAccount,
    StreamCursor,
    SyncAnswerRejected,
    SyncSettings,
    binance_page,
    bybit_fitting_span,
    bybit_window,
    bybit_window_fills,
    raw_event_id,
)
from shared.upstream.binance_account import BinanceAccountClient, binance_signature
from shared.upstream.bybit import BybitClient, bybit_signature
from shared.upstream.http import UpstreamHttp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
BINANCE_ACCOUNT = LinkedAccount("alice:binance:main", "alice", "binance", "main", ("BNBBTC",), (), "alice-binance")
BYBIT_ACCOUNT = LinkedAccount("alice:bybit:main", "alice", "bybit", "main", (), ("linear",), "alice-bybit")


def sample(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def my_trade(trade_id: int, symbol: str = "BNBBTC", time_ms: int = 1_764_000_000_000) -> dict[str, Any]:
    row = dict(sample("binance.myTrades.json")[0])
    return {**row, "id": trade_id, "symbol": symbol, "time": time_ms}


def execution(exec_id: str, exec_ms: int, exec_type: str = "Trade") -> dict[str, Any]:
    row = dict(sample("bybit.v5.execution_list.json")["result"]["list"][0])
    return {**row, "execId": exec_id, "execTime": str(exec_ms), "execType": exec_type}


# --- signing ---------------------------------------------------------------------------------


def test_binance_signature_matches_the_documented_example() -> None:
    # Binance's SIGNED endpoint example (rest-api.md "SIGNED Endpoint Examples for POST
    # /api/v3/order", HMAC Keys): key, query and signature as the docs print them.
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert binance_signature(secret, query) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_bybit_signature_signs_timestamp_key_window_then_query() -> None:
    # No vendor example value exists in the samples; the order of the parts is the contract.
    expected = hmac.new(b"s3cret", b"1672282722429KEY5000category=spot&limit=100", hashlib.sha256).hexdigest()
    assert bybit_signature("s3cret", "1672282722429", "KEY", "5000", "category=spot&limit=100") == expected
    assert bybit_signature("s3cret", "1672282722429", "KEY", "5000", "limit=100&category=spot") != expected


# --- the clients over a mock transport ----------------------------------------------------------


def _http(api: str, settings: Any, handler: Any) -> UpstreamHttp:
    return UpstreamHttp(api, settings, transport=httpx.MockTransport(handler), sleep=lambda _: None)


def test_binance_client_signs_the_exact_query_it_sends() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[my_trade(7)])

    http = _http("binance-account", BinanceSettings(base_url="http://sim/binance", max_retries=0), answer)
    client = BinanceAccountClient(http, "KEY", "SECRET", wall_clock=lambda: 1_700_000_000.123)
    rows = client.my_trades("BNBBTC", 7, 1000)
    assert rows[0]["id"] == 7
    request = seen[0]
    query = request.url.query.decode()
    signed, _, signature = query.rpartition("&signature=")
    assert signature == hmac.new(b"SECRET", signed.encode(), hashlib.sha256).hexdigest()
    assert dict(parse_qsl(signed)) == {
        "symbol": "BNBBTC",
        "fromId": "7",
        "limit": "1000",
        "recvWindow": "5000",
        "timestamp": "1700000000123",
    }
    assert request.headers["X-MBX-APIKEY"] == "KEY"


@pytest.mark.parametrize("code", [-1021, -1022, -2015])
def test_binance_auth_errors_are_permanent_with_their_code_and_no_signature(code: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400 if code != -2015 else 401, json={"code": code, "msg": "refused"})

    http = _http("binance-account", BinanceSettings(base_url="http://sim/binance", max_retries=2), answer)
    with pytest.raises(PermanentUpstreamError) as caught:
        BinanceAccountClient(http, "KEY", "SECRET").my_trades("BNBBTC", 0)
    assert caught.value.code == code
    assert "signature" not in str(caught.value) and "SECRET" not in str(caught.value)


def test_binance_client_refuses_an_answer_that_is_no_trade_list() -> None:
    http = _http(
        "binance-account",
        BinanceSettings(base_url="http://sim/binance", max_retries=0),
        lambda request: httpx.Response(200, json={"code": 0}),
    )
    with pytest.raises(BadUpstreamBody):
        BinanceAccountClient(http, "KEY", "SECRET").my_trades("BNBBTC", 0)


def test_bybit_client_sends_the_signed_headers_and_the_cursor_unchanged() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=sample("bybit.v5.execution_list.json"))

    http = _http("bybit", BybitSettings(base_url="http://sim/bybit", max_retries=0), answer)
    client = BybitClient(http, "KEY", "SECRET", wall_clock=lambda: 1_700_000_000.5)
    page = client.execution_list("linear", 1, 2, cursor="132766%3A2%2C132766%3A2", limit=100)
    assert page.next_cursor == "132766%3A2%2C132766%3A2" and len(page.rows) == 1
    request = seen[0]
    query = request.url.query.decode()
    assert query == "category=linear&startTime=1&endTime=2&limit=100&cursor=132766%3A2%2C132766%3A2"
    assert request.headers["X-BAPI-API-KEY"] == "KEY"
    assert request.headers["X-BAPI-TIMESTAMP"] == "1700000000500"
    assert request.headers["X-BAPI-RECV-WINDOW"] == "5000"
    assert request.headers["X-BAPI-SIGN"] == bybit_signature("SECRET", "1700000000500", "KEY", "5000", query)


def test_bybit_bad_signature_is_permanent_and_never_echoes_the_key() -> None:
    body = {"retCode": 10004, "retMsg": "error sign! origin_string[1700000000500KEY5000category=spot]", "result": {}}
    http = _http(
        "bybit", BybitSettings(base_url="http://sim/bybit", max_retries=2), lambda r: httpx.Response(200, json=body)
    )
    with pytest.raises(PermanentUpstreamError) as caught:
        BybitClient(http, "KEY", "SECRET").execution_list("spot", 1, 2)
    assert caught.value.code == 10004
    assert "KEY" not in str(caught.value) and "origin_string" not in str(caught.value)


def test_bybit_too_many_visits_is_a_rate_limit() -> None:
    body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}}
    http = _http(
        "bybit",
        BybitSettings(base_url="http://sim/bybit", max_retries=0),
        lambda r: httpx.Response(200, json=body),
    )
    with pytest.raises(RateLimited):
        BybitClient(http, "KEY", "SECRET").execution_list("spot", 1, 2)


# --- Binance pages and the fromId cursor ------------------------------------------------------------


def test_binance_page_advances_from_id_past_the_last_trade() -> None:
    cursor = StreamCursor(BINANCE_ACCOUNT.account_id, "BNBBTC", from_id=5)
    page = binance_page(BINANCE_ACCOUNT, cursor, [my_trade(5), my_trade(9)], 2, NOW)
    assert page.cursor.from_id == 10 and page.cursor.fills_synced == 2 and page.more
    for record in page.records:
        validate_record(RAW_TRADE_SCHEMA, record)
        assert record["kind"] == "binance.myTrades" and record["account"] == "main" and record["user_id"] == "alice"
    assert page.event_ids == [raw_event_id(BINANCE_ACCOUNT, "5"), raw_event_id(BINANCE_ACCOUNT, "9")]
    short = binance_page(BINANCE_ACCOUNT, cursor, [my_trade(5)], 1000, NOW)
    assert not short.more and short.cursor.from_id == 6


def test_binance_empty_page_keeps_the_cursor() -> None:
    cursor = StreamCursor(BINANCE_ACCOUNT.account_id, "BNBBTC", from_id=42, fills_synced=3)
    page = binance_page(BINANCE_ACCOUNT, cursor, [], 1000, NOW)
    assert page.cursor == cursor and not page.more and page.records == []


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([my_trade(4)], "not after"),  # below fromId
        ([my_trade(6), my_trade(6)], "not after"),  # repeated
        ([my_trade(7), my_trade(6)], "not after"),  # out of order
        ([my_trade(6, symbol="ETHBTC")], "was not asked"),
        ([{**my_trade(6), "price": "NaN"}], "price"),
        ([{**my_trade(6), "id": "6"}], "not an integer"),
    ],
)
def test_binance_page_failing_its_checks_is_refused_whole(rows: list[dict[str, Any]], reason: str) -> None:
    cursor = StreamCursor(BINANCE_ACCOUNT.account_id, "BNBBTC", from_id=5)
    with pytest.raises(SyncAnswerRejected, match=reason):
        binance_page(BINANCE_ACCOUNT, cursor, [my_trade(5), *rows], 1000, NOW)


# --- Bybit windows -------------------------------------------------------------------------------


def test_bybit_window_starts_at_the_lookback_and_ends_settled() -> None:
    settings = SyncSettings(sync_bybit_lookback_seconds=3600, sync_bybit_window_seconds=600, sync_settle_seconds=2)
    now = 10_000_000
    assert bybit_window(StreamCursor("a", "spot"), now, settings) == (now - 3_600_000, now - 3_600_000 + 599_999)
    near = StreamCursor("a", "spot", next_start_ms=now - 5_000)
    assert bybit_window(near, now, settings) == (now - 5_000, now - 2_000)
    assert bybit_window(StreamCursor("a", "spot", next_start_ms=now - 1_000), now, settings) is None


T0 = 1_764_000_000_000  # 2025-11-24, ms


def test_bybit_window_fills_are_oldest_first_once_each_and_move_the_cursor_past_the_window() -> None:
    cursor = StreamCursor(BYBIT_ACCOUNT.account_id, "linear", next_start_ms=T0)
    pages = [
        [execution("c", T0 + 2_000), execution("b", T0 + 1_000)],
        [execution("b", T0 + 1_000), execution("f", T0 + 500, "Funding"), execution("a", T0)],
    ]
    page = bybit_window_fills(BYBIT_ACCOUNT, cursor, (T0, T0 + 3_000), pages, NOW)
    ids = [r["payload"]["result"]["list"][0]["execId"] for r in page.records]
    assert ids == ["a", "b", "c"]
    assert page.cursor.next_start_ms == T0 + 3_001 and page.cursor.last_exec_id == "c"
    assert page.cursor.last_exec_time_ms == T0 + 2_000 and page.cursor.fills_synced == 3
    received = Received("alice", NOW, account="main")
    fills = bybit_execution_list(page.records[0]["payload"], received)  # what the normaliser reads
    assert [f.external_id for f in fills] == ["a"]


def test_bybit_row_outside_its_window_refuses_the_window() -> None:
    cursor = StreamCursor(BYBIT_ACCOUNT.account_id, "linear", next_start_ms=T0)
    with pytest.raises(SyncAnswerRejected, match="outside"):
        bybit_window_fills(BYBIT_ACCOUNT, cursor, (T0, T0 + 3_000), [[execution("z", T0 + 9_000)]], NOW)


def test_bybit_fitting_span_shrinks_a_dense_window_to_what_the_pages_left_can_read() -> None:
    # 100 rows over the window's last 1,000 ms: 10 pages fit 10,000 ms at that density, half asked;
    # the 999,000 ms before the oldest row seen can be read first, and that is wider.
    rows = [execution(str(i), 999_000 + i * 10) for i in range(100)]
    assert bybit_fitting_span((0, 999_999), rows, 10) == 999_000
    # A steady 1,000 fills a minute: the newest 100 of a 60 s window span its last 6 s.
    steady = [execution(str(i), 54_000 + i * 60) for i in range(100)]
    assert bybit_fitting_span((0, 59_999), steady, 20) == 60_000  # 20 pages read it whole
    assert bybit_fitting_span((0, 59_999), steady, 5) == 54_000  # 5 do not: what precedes the page first
    late = [execution(str(i), 1_000 + i * 10) for i in range(100)]
    assert bybit_fitting_span((0, 1_999), late, 10) == 2_000  # never wider than the window
    assert bybit_fitting_span((0, 999_999), [], 10) == 1_000_000


def test_credentials_are_secret_in_every_representation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRADES_EXCHANGE_CREDENTIALS", json.dumps({"alice-binance": {"api_key": "k-123456", "api_secret": "s-654321"}})
    )
    settings = SyncSettings()
    credential = settings.exchange_credentials["alice-binance"]
    assert credential.api_secret.get_secret_value() == "s-654321"
    for text in (repr(settings), str(settings), repr(credential)):
        assert "k-123456" not in text and "s-654321" not in text
    assert sorted(settings.secret_values()) == ["k-123456", "s-654321"]
