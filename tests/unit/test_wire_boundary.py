"""Issue #22: an absurd number about one token fails that token, naming the field and the
limit; its neighbours in the same answer are read as usual. Bodies go through the real
decoder, as they do in production."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.crawler.domain.normalize_binance import parse_binance_ticker_prices
from shared.crawler.domain.normalize_coingecko import (
    top100_profiles,
    trending_coins,
    usd_prices_from_simple_price,
    usd_prices_from_token_price,
    usdt_usd_rate,
)
from shared.crawler.domain.normalize_dexscreener import normalize_dexscreener_pairs
from shared.crawler.domain.normalize_geckoterminal import profiles_from_tokens_multi, usd_prices_from_simple_token_price
from shared.crawler.domain.normalize_goplus import audit_from_goplus
from shared.crawler.models import TokenFailure
from shared.upstream.jsonbody import decode_json

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ABSURD = ["1e400", "1e999999999", "1E-999999999", "9" * 5000, "NaN", "-Infinity"]
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def _timed(fn):
    started = time.monotonic()
    result = fn()
    assert time.monotonic() - started < 1.0, "a wire number stalled the parser"
    return result


@pytest.mark.parametrize("absurd", ABSURD)
@pytest.mark.parametrize("quoted", [True, False], ids=["string", "number"])
def test_binance_ticker(absurd: str, quoted: bool) -> None:
    value = f'"{absurd}"' if quoted else absurd
    body = decode_json(f'[{{"symbol":"BTCUSDT","price":{value}}},{{"symbol":"ETHUSDT","price":"2701.5"}}]')
    quotes, failures = _timed(
        lambda: parse_binance_ticker_prices(body, {"BTCUSDT": "native:bitcoin", "ETHUSDT": "native:ethereum"}, {}, NOW)
    )
    assert [(q.token_key, q.price_usdt) for q in quotes] == [("native:ethereum", Decimal("2701.5"))]
    assert [f.ref for f in failures] == ["native:bitcoin"]
    assert failures[0].reason.startswith("binance BTCUSDT: price ")


@pytest.mark.parametrize("absurd", ABSURD)
def test_dexscreener_pairs(absurd: str) -> None:
    pair = (
        '{{"chainId":"ethereum","pairAddress":"0x{p}","dexId":"uniswap","priceUsd":{v},'
        '"baseToken":{{"address":"{a}","symbol":"X"}},"quoteToken":{{"address":"{q}","symbol":"USDT"}}}}'
    )
    body = decode_json(
        '{"pairs":['
        + pair.format(p="1" * 40, v=absurd, a=WETH, q=USDC)
        + ","
        + pair.format(p="2" * 40, v='"3000.25"', a=USDC, q=WETH)
        + "]}"
    )
    pools, failures = _timed(lambda: normalize_dexscreener_pairs(body))
    assert [p.price_usd for p in pools] == [Decimal("3000.25")]
    assert len(failures) == 1 and "priceUsd" in failures[0].reason


@pytest.mark.parametrize("absurd", ABSURD)
def test_coingecko_simple_and_token_prices(absurd: str) -> None:
    body = decode_json(f'{{"bitcoin":{{"usd":{absurd}}},"ethereum":{{"usd":2701.5}}}}')
    prices, failures = _timed(lambda: usd_prices_from_simple_price(body))
    assert prices == {"ethereum": Decimal("2701.5")}
    assert [f.ref for f in failures] == ["bitcoin"] and failures[0].reason.startswith("coingecko: usd ")

    body = decode_json(f'{{"{WETH}":{{"usd":{absurd}}},"{USDC}":{{"usd":"0.9998"}}}}')
    prices, failures = usd_prices_from_token_price("ethereum", body)
    assert prices == {f"ethereum:{USDC}": Decimal("0.9998")}
    assert [f.ref for f in failures] == [f"ethereum:{WETH}"]

    assert usdt_usd_rate(decode_json(f'{{"tether":{{"usd":{absurd}}}}}')) is None


@pytest.mark.parametrize("absurd", ABSURD)
def test_coingecko_top100_and_trending(absurd: str) -> None:
    markets = decode_json(
        f'[{{"id":"bitcoin","symbol":"btc","market_cap_rank":{absurd},"market_cap":1}},'
        f'{{"id":"ethereum","symbol":"eth","market_cap_rank":2,"market_cap":{absurd}}},'
        '{"id":"solana","symbol":"sol","market_cap_rank":5,"market_cap":8.5e10}]'
    )
    coins: dict[str, dict[str, object]] = {"bitcoin": {}, "ethereum": {}, "solana": {}}
    profiles, failures = _timed(lambda: top100_profiles(markets, coins, frozenset()))
    assert [p.coingecko_id for p in profiles] == ["solana"]
    assert {f.ref: f.reason.split(" ")[1] for f in failures} == {"bitcoin": "market_cap_rank", "ethereum": "market_cap"}

    trending = decode_json(
        f'{{"coins":[{{"item":{{"id":"a","symbol":"a","data":{{"price":{absurd}}}}}}},'
        '{"item":{"id":"b","symbol":"b","data":{"price":"0.5"}}}]}'
    )
    found, failures = trending_coins(trending)
    assert [c.coingecko_id for c in found] == ["b"]
    assert [f.ref for f in failures] == ["a"] and "data.price" in failures[0].reason


@pytest.mark.parametrize("absurd", ABSURD)
def test_geckoterminal(absurd: str) -> None:
    body = decode_json(
        f'{{"data":[{{"id":"eth_{WETH}","attributes":{{"address":"{WETH}","symbol":"WETH","price_usd":{absurd}}}}},'
        f'{{"id":"eth_{USDC}","attributes":{{"address":"{USDC}","symbol":"USDC","price_usd":"0.9999"}}}}]}}'
    )
    result = _timed(lambda: profiles_from_tokens_multi("eth", body))
    assert [p.symbol for p in result.profiles] == ["USDC"]
    assert result.usd_prices == {f"ethereum:{USDC}": Decimal("0.9999")}
    assert [f.ref for f in result.failures] == [f"ethereum:{WETH}"] and "price_usd" in result.failures[0].reason

    simple = decode_json(f'{{"data":{{"attributes":{{"token_prices":{{"{WETH}":{absurd},"{USDC}":"0.9999"}}}}}}}}')
    prices, failures = usd_prices_from_simple_token_price("eth", simple)
    assert prices == {f"ethereum:{USDC}": Decimal("0.9999")} and [f.ref for f in failures] == [f"ethereum:{WETH}"]


@pytest.mark.parametrize("absurd", ABSURD)
def test_goplus_tax(absurd: str) -> None:
    entry = decode_json(f'{{"is_open_source":"1","is_honeypot":"0","buy_tax":"0","sell_tax":{absurd}}}')
    report = _timed(lambda: audit_from_goplus("ethereum:" + WETH, "ethereum", WETH, entry, NOW))
    assert isinstance(report, TokenFailure) and report.reason.startswith("goplus: sell_tax ")


def test_bad_data_alone_never_makes_a_price_job_retry() -> None:
    # Every source answered with bad data: the job ends with its token failures (no retry
    # storm, no dead letter); a transport failure among them still asks for a retry.
    from shared.crawler.pipelines.source_ledger import SourceLedger
    from shared.errors import BadUpstreamBody, RetryableUpstreamError

    ledger = SourceLedger()
    ledger.source_failed(
        "binance", BadUpstreamBody("binance", "GET /api/v3/ticker/price: expected a JSON array"), ["k"]
    )
    assert ledger.retryable_error() is None and ledger.reasons["k"]
    timeout = RetryableUpstreamError("coingecko", "timed out")
    ledger.source_failed("coingecko", timeout, ["k"])
    assert ledger.retryable_error() is timeout
