"""The simulated exchanges over real HTTP: Binance myTrades and Bybit's execution list refuse a
bad key, a bad signature and a stale timestamp with the real codes, page by fromId / cursor
without gaps or repeats, and Bybit answers 10006 beyond 50 requests a second per key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from local.market.server import SimulatedMarket
from shared.upstream.binance_account import binance_signature
from shared.upstream.bybit import bybit_signature

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
def keys(simulated_market: SimulatedMarket) -> Iterator[dict[str, tuple[str, str]]]:
    run = uuid.uuid4().hex[:8]
    made = {name: (f"{name}-{run}", f"{name}-secret-{run}") for name in ("binance", "bybit")}
    for name, (key, secret) in made.items():
        simulated_market.exchange_accounts.add_account(name, key, secret, SYMBOLS)
    yield made


def my_trades(market: SimulatedMarket, key: str, secret: str, **params: Any) -> httpx.Response:
    query = urlencode({"recvWindow": 5000, "timestamp": int(time.time() * 1000), **params})
    signature = binance_signature(secret, query)
    return httpx.get(
        f"{market.base_url('binance')}/api/v3/myTrades?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": key},
    )


def executions(
    market: SimulatedMarket,
    key: str,
    secret: str,
    query: str,
    stamp: int | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    stamp_text = str(stamp if stamp is not None else int(time.time() * 1000))
    headers = {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": stamp_text,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": bybit_signature(secret, stamp_text, key, "5000", query),
    }
    return (client or httpx).get(f"{market.base_url('bybit')}/v5/execution/list?{query}", headers=headers)


def test_binance_refuses_bad_keys_signatures_and_stale_timestamps(simulated_market, keys) -> None:
    key, secret = keys["binance"]
    unknown = my_trades(simulated_market, "nobody", secret, symbol="BTCUSDT")
    assert (unknown.status_code, unknown.json()["code"]) == (401, -2015)
    forged = my_trades(simulated_market, key, "wrong-secret", symbol="BTCUSDT")
    assert forged.status_code == 400
    assert forged.json() == {"code": -1022, "msg": "Signature for this request is not valid."}
    stale = my_trades(simulated_market, key, secret, symbol="BTCUSDT", timestamp=int(time.time() * 1000) - 60_000)
    assert (stale.status_code, stale.json()["code"]) == (400, -1021)
    big = my_trades(simulated_market, key, secret, symbol="BTCUSDT", limit=1001)
    assert big.json()["code"] == -1130


def test_binance_pages_by_from_id(simulated_market, keys) -> None:
    key, secret = keys["binance"]
    simulated_market.exchange_accounts.add_fills(key, 30)
    wanted = [f.trade_id for f in simulated_market.exchange_accounts.fills(key) if f.symbol == "ETHUSDT"]
    seen: list[int] = []
    from_id = 0
    while True:
        page = my_trades(simulated_market, key, secret, symbol="ETHUSDT", fromId=from_id, limit=4).json()
        assert len(page) <= 4
        seen += [row["id"] for row in page]
        if len(page) < 4:
            break
        from_id = page[-1]["id"] + 1
    assert seen == wanted
    row = my_trades(simulated_market, key, secret, symbol="ETHUSDT", fromId=wanted[0], limit=1).json()[0]
    assert set(row) == {"symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission",
                        "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch"}  # fmt: skip
    assert isinstance(row["price"], str) and isinstance(row["time"], int)


def test_bybit_refuses_bad_keys_signatures_and_stale_timestamps(simulated_market, keys) -> None:
    key, secret = keys["bybit"]
    assert executions(simulated_market, "nobody", secret, "category=spot").json()["retCode"] == 10003
    forged = executions(simulated_market, key, "wrong-secret", "category=spot")
    assert forged.status_code == 200 and forged.json()["retCode"] == 10004
    assert forged.json()["retMsg"].startswith("error sign!")
    stale = executions(simulated_market, key, secret, "category=spot", stamp=int(time.time() * 1000) - 60_000)
    assert stale.json()["retCode"] == 10002
    assert executions(simulated_market, key, secret, "category=spot&limit=101").json()["retCode"] == 10001


def test_bybit_cursor_pages_hold_still_while_fills_arrive(simulated_market, keys) -> None:
    key, secret = keys["bybit"]
    accounts = simulated_market.exchange_accounts
    accounts.add_fills(key, 25)
    before = {f.exec_id for f in accounts.fills(key)}
    seen: list[str] = []
    cursor = ""
    end = int(time.time() * 1000)
    while True:
        query = f"category=spot&startTime={end - 60_000}&endTime={end}&limit=10" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = executions(simulated_market, key, secret, query).json()
        assert body["retCode"] == 0, body
        seen += [row["execId"] for row in body["result"]["list"]]
        accounts.add_fills(key, 3, at_ms=end)  # new fills of the same window between pages
        cursor = body["result"]["nextPageCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 25 and set(seen) == before


def test_bybit_rate_limit_is_10006(simulated_market, keys) -> None:
    key, secret = keys["bybit"]
    bybit = simulated_market.apis["bybit"]
    bybit.per_key_per_second = 5  # the documented 50/s, scaled down so a test reaches it in time
    try:
        with httpx.Client() as client:  # one kept-alive connection: 8 requests well within a second
            codes = [executions(simulated_market, key, secret, "category=linear", client=client) for _ in range(8)]
    finally:
        bybit.per_key_per_second = 50
    assert [c.json()["retCode"] for c in codes[:5]] == [0] * 5
    limited = codes[-1]
    assert limited.json()["retCode"] == 10006 and limited.json()["retMsg"] == "Too many visits!"
    assert limited.headers["X-Bapi-Limit"] == "5"
