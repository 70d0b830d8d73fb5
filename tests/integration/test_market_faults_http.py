"""Fault injection, request stats, the clock and the /_sim/ admin API of the simulated market, over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from local.market import SimulatedMarket, wait_until_serving

TICKER = "/binance/api/v3/ticker/price?symbol=BTCUSDT"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def market(simulated_market):
    return simulated_market


@pytest.fixture
def client(market):
    with httpx.Client(base_url=market.url, timeout=5) as http:
        yield http


def arm(client: httpx.Client, **fault) -> dict:
    response = client.post("/_sim/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


def test_binance_429_for_count_requests_then_normal(client):
    arm(client, api="binance", kind="429", count=3, retry_after=7, path="/api/v3/ticker/price")
    statuses = []
    for _ in range(4):
        response = client.get(TICKER)
        statuses.append(response.status_code)
        assert "X-MBX-USED-WEIGHT-1M" in response.headers
    assert statuses == [429, 429, 429, 200]
    limited = client.get(TICKER)  # the fault is used up; arm a new one to see its body and headers
    assert limited.status_code == 200
    arm(client, api="binance", kind="429", retry_after=7)
    limited = client.get("/binance/api/v3/exchangeInfo")
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["code"] == -1003


def test_binance_418_and_451_bodies(client):
    arm(client, api="binance", kind="418", retry_after=120)
    banned = client.get(TICKER)
    assert banned.status_code == 418
    assert banned.headers["Retry-After"] == "120"
    assert banned.json()["code"] == -1003 and "banned until" in banned.json()["msg"]
    arm(client, api="binance", kind="451")
    restricted = client.get(TICKER)
    assert restricted.status_code == 451
    assert restricted.json()["code"] == 0 and "restricted location" in restricted.json()["msg"]


def test_coingecko_429_body_and_lowercase_retry_after(client):
    arm(client, api="coingecko", kind="429", retry_after=30)
    response = client.get("/coingecko/api/v3/simple/price?ids=bitcoin&vs_currencies=usd")
    assert response.status_code == 429
    assert response.json()["status"]["error_code"] == 429
    assert (b"retry-after", b"30") in response.headers.raw  # CoinGecko writes the name lower-case


def test_goplus_rate_limit_is_http_200_with_code_4029(client):
    arm(client, api="goplus", kind="429")
    response = client.get(
        "/goplus/api/v1/token_security/1?contract_addresses=0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    )
    assert response.status_code == 200
    assert response.json() == {"code": 4029, "message": "Frequency over limit", "result": None}


@pytest.mark.parametrize(
    ("api", "path"),
    [
        ("binance", TICKER),
        ("coingecko", "/coingecko/api/v3/coins/bitcoin"),
        ("dexscreener", "/dexscreener/token-boosts/top/v1"),
        ("geckoterminal", "/geckoterminal/api/v2/networks/trending_pools"),
        ("goplus", "/goplus/api/v1/solana/token_security?contract_addresses=x"),
    ],
)
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_on_every_api(client, api, path, status):
    arm(client, api=api, kind=str(status))
    response = client.get(path)
    assert response.status_code == status
    if status == 502:
        assert response.headers["Content-Type"].startswith("text/html"), "gateways answer with HTML"
    else:
        response.json()
    assert client.get(path).status_code == 200


def test_timeout_holds_the_connection_longer_than_the_client_waits(client):
    arm(client, api="dexscreener", kind="timeout", hold_seconds=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/dexscreener/token-profiles/latest/v1", timeout=0.3)
    assert time.monotonic() - started < 1
    arm(client, api="dexscreener", kind="timeout", hold_seconds=0.1)
    with pytest.raises(httpx.RemoteProtocolError):  # held, then dropped without a response
        client.get("/dexscreener/token-profiles/latest/v1", timeout=3)


def test_malformed_truncated_and_empty_bodies(client):
    arm(client, api="coingecko", kind="malformed")
    malformed = client.get("/coingecko/api/v3/search/trending")
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)

    arm(client, api="coingecko", kind="truncated")
    with pytest.raises(httpx.RemoteProtocolError):  # Content-Length promised more than arrived
        client.get("/coingecko/api/v3/search/trending")

    arm(client, api="coingecko", kind="empty")
    empty = client.get("/coingecko/api/v3/search/trending")
    assert (empty.status_code, empty.content) == (200, b"")
    assert client.get("/coingecko/api/v3/search/trending").json()["coins"]


def test_slow_fault_and_global_latency(client):
    arm(client, api="geckoterminal", kind="slow", latency_ms=300)
    started = time.monotonic()
    assert client.get("/geckoterminal/api/v2/networks/trending_pools").status_code == 200
    assert time.monotonic() - started >= 0.3

    assert client.post("/_sim/config", json={"latency_ms": 200}).json()["latency_ms"] == 200
    started = time.monotonic()
    client.get(TICKER)
    assert time.monotonic() - started >= 0.2


def test_faults_until_cleared_and_delete(client):
    fault = arm(client, api="binance", kind="503", count="until_cleared")
    assert fault["count"] is None
    assert [client.get(TICKER).status_code for _ in range(3)] == [503, 503, 503]
    assert [f["id"] for f in client.get("/_sim/faults").json()] == [fault["id"]]
    assert client.delete("/_sim/faults").status_code == 204
    assert client.get(TICKER).status_code == 200


def test_bad_fault_is_a_400_with_the_reason(client):
    response = client.post("/_sim/faults", json={"api": "binance", "kind": "404"})
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]
    assert client.post("/_sim/faults", content=b"{nope").status_code == 400


def test_python_fault_api(market, client):
    market.faults.add("500", api="dexscreener", path="/tokens/v1/{chainId}/{tokenAddresses}", count=1)
    wif = market.universe.get("WIF").address
    assert client.get(f"/dexscreener/tokens/v1/solana/{wif}").status_code == 500
    assert client.get(f"/dexscreener/tokens/v1/solana/{wif}").status_code == 200


def test_stats_count_requests_per_api_path_and_status(client, market):
    client.get(TICKER)
    client.get(TICKER)
    client.get("/coingecko/api/v3/coins/bitcoin")
    client.get("/coingecko/api/v3/coins/ethereum")
    client.get("/binance/api/v3/ticker/price?symbol=NOPEUSDT")
    stats = client.get("/_sim/stats").json()
    binance = stats["apis"]["binance"]
    assert binance["paths"] == {"/api/v3/ticker/price": 3}
    assert binance["statuses"] == {"200": 2, "400": 1}
    assert stats["apis"]["coingecko"]["routes"] == {"/api/v3/coins/{id}": 2}
    assert stats["total"] == 5
    assert market.stats.count("binance", "/api/v3/ticker/price") == 3
    assert client.post("/_sim/stats/reset").status_code == 204
    assert client.get("/_sim/stats").json() == {"total": 0, "apis": {}}


def test_clock_and_expected_price_endpoints(client, market):
    frozen = client.post("/_sim/clock", json={"freeze": "2026-06-25T21:00:00Z"}).json()
    assert frozen["frozen"] and frozen["now"].startswith("2026-06-25T21:00:00")
    expected = client.get("/_sim/price", params={"token": "BTC"}).json()
    ticker = client.get(TICKER).json()
    assert Decimal(ticker["price"]) == Decimal(expected["price_usdt"])
    assert Decimal(expected["price_usd"]) == Decimal(expected["price_usdt"]) * Decimal(expected["usdt_usd"])
    client.post("/_sim/clock", json={"advance_seconds": 5})
    assert client.get("/_sim/price", params={"token": "BTC"}).json()["at"] == str(int(frozen["unix"]) + 5)
    at = client.get("/_sim/price", params={"token": "native:bitcoin", "at": "2026-06-25T21:00:00Z"}).json()
    assert at["price_usdt"] == expected["price_usdt"]
    assert client.get("/_sim/price", params={"token": "PEPE"}).status_code == 400  # ambiguous symbol
    assert client.post("/_sim/clock", json={"resume": True}).json()["frozen"] is False


def test_token_listing_filters(client, market):
    trending = client.get("/_sim/tokens", params={"trending": "true"}).json()
    assert len(trending) == len(market.universe.trending())
    top = client.get("/_sim/tokens", params={"top": "100", "binance": "false", "stablecoin": "false"}).json()
    assert top and all(not t["has_binance_pair"] and not t["is_stablecoin"] for t in top)
    assert {"key", "chain", "address", "has_binance_pair", "is_stablecoin", "is_trending"} <= set(top[0])


def test_unknown_prefix_and_route(client):
    assert client.get("/kraken/0/public/Ticker").status_code == 404
    assert client.get("/coingecko/api/v3/nothing/here").status_code == 404


def test_hundreds_of_requests_per_second_in_parallel(market):
    def burst(_: int) -> int:
        with httpx.Client(base_url=market.url, timeout=5) as http:
            return sum(http.get(TICKER).status_code == 200 for _ in range(50))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ok = sum(pool.map(burst, range(8)))
    rate = ok / (time.monotonic() - started)
    assert ok == 400
    assert rate > 150, f"{rate:.0f} requests/s"  # ~900/s on an idle 2-core machine


def test_market_starts_on_an_ephemeral_port_and_stops_cleanly():
    with SimulatedMarket(universe_size=200, latency_ms=0) as market:
        assert market.port > 0
        env = market.env()
        assert env["BINANCE_BASE_URL"] == f"{market.url}/binance"
        assert set(env) == {
            "BINANCE_BASE_URL",
            "COINGECKO_BASE_URL",
            "DEXSCREENER_BASE_URL",
            "GECKOTERMINAL_BASE_URL",
            "GOPLUS_BASE_URL",
            "FINNHUB_BASE_URL",
            "LIFI_BASE_URL",
            "RELAY_BASE_URL",
            "ONEINCH_BASE_URL",
            "BYBIT_BASE_URL",  # the exchange sync's accounts (Binance's share BINANCE_BASE_URL)
            "DEFILLAMA_BASE_URL",
        }
        assert httpx.get(f"{market.url}/_sim/health").json()["universe_size"] == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{market.url}/_sim/health", timeout=1)


def test_command_line_serves_until_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "local.market", "--port", str(port), "--seed", "11"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", timeout=20)
        assert httpx.get(f"http://127.0.0.1:{port}/_sim/health").json()["seed"] == 11
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert b"BINANCE_BASE_URL=" in process.stdout.read()


def test_command_line_rejects_a_bad_universe_size():
    result = subprocess.run(
        [sys.executable, "-m", "local.market", "--universe-size", "3"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"universe size" in result.stderr
