"""Binance ticker prices and exchangeInfo, from the recorded samples and messy variants."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.crawler.domain.normalize_binance import (
    parse_binance_ticker_prices,
    usdt_bases_from_exchange_info,
    usdt_pair,
)
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
NOW = datetime(2025, 6, 25, 21, 0, tzinfo=timezone.utc)


def sample(name):
    with open(SAMPLES / name, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def test_real_ticker_array_keeps_every_digit():
    quotes, failures = parse_binance_ticker_prices(
        sample("binance.ticker_price.symbols.json"), {"LTCBTC": "k:ltc", "ETHBTC": "k:eth"}, {"ETHBTC": "ETH"}, NOW
    )
    assert failures == []
    by_key = {q.token_key: q for q in quotes}
    assert str(by_key["k:ltc"].price_usdt) == "4.00000200"
    assert by_key["k:eth"].price_usdt == Decimal("0.07946600")
    assert by_key["k:eth"].symbol == "ETH"
    assert by_key["k:ltc"].symbol == "LTCBTC"  # no USDT suffix to strip, no symbol given
    assert all(q.source == "binance" and q.observed_at == NOW for q in quotes)


def test_single_object_form():
    quotes, failures = parse_binance_ticker_prices(sample("binance.ticker_price.single.json"), {"LTCBTC": "k"}, {}, NOW)
    assert [q.price_usdt for q in quotes] == [Decimal("4.00000200")] and failures == []


def test_bad_prices_and_missing_pairs_are_failures_never_quotes():
    rows = [
        {"symbol": "BTCUSDT", "price": "0.00000000"},
        {"symbol": "ETHUSDT", "price": "abc"},
        {"symbol": "SOLUSDT"},
        {"symbol": "PEPEUSDT", "price": "0.00000000001234"},
        {"symbol": "PEPEUSDT", "price": "9"},  # a repeat: the first answer counts
        {"symbol": "OTHERUSDT", "price": "1"},  # not asked for: ignored
        "garbage",
        {"price": "1"},
    ]
    wanted = {p: f"k:{p}" for p in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT", "DOGEUSDT")}
    quotes, failures = parse_binance_ticker_prices(rows, wanted, {}, NOW)
    assert [(q.token_key, q.symbol, q.price_usdt) for q in quotes] == [
        ("k:PEPEUSDT", "PEPE", Decimal("0.00000000001234"))
    ]
    reasons = {f.ref: f.reason for f in failures}
    assert set(reasons) == {"k:BTCUSDT", "k:ETHUSDT", "k:SOLUSDT", "k:DOGEUSDT"}
    assert "unusable price" in reasons["k:BTCUSDT"]
    assert "no price" in reasons["k:DOGEUSDT"]


def test_not_a_list_at_all():
    quotes, failures = parse_binance_ticker_prices({"code": -1121, "msg": "Invalid symbol."}, {"BTCUSDT": "k"}, {}, NOW)
    assert quotes == [] and [f.ref for f in failures] == ["k"]


def test_naive_observed_at_is_a_caller_bug():
    with pytest.raises(ValueError):
        parse_binance_ticker_prices([], {}, {}, datetime(2025, 1, 1))


def test_usdt_bases_from_real_skeleton_and_synthetic_symbols():
    assert usdt_bases_from_exchange_info(sample("binance.exchangeInfo.skeleton.json")) == set()  # ETHBTC only
    payload = {
        "symbols": [
            {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT"},
            {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT"},
            {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"},
            {
                "symbol": "XUSDT",
                "status": "TRADING",
                "baseAsset": "X",
                "quoteAsset": "USDT",
                "isSpotTradingAllowed": False,
            },
            {"symbol": "BROKEN"},
            None,
        ]
    }
    assert usdt_bases_from_exchange_info(payload) == {"BTC"}
    assert usdt_bases_from_exchange_info(None) == set()
    assert usdt_pair(" btc ") == "BTCUSDT"


def test_binance_pairs_keep_the_best_ranked_namesake_and_only_listed_bases():
    from types import SimpleNamespace as Token

    from shared.crawler.domain.normalize_binance import binance_pairs

    tokens = [
        Token(symbol="btc", key="native:bitcoin"),
        Token(symbol="BTC", key="ethereum:0xfake"),
        Token(symbol="PEPE", key="ethereum:0x6982"),
        Token(symbol="NOPE", key="solana:Nope"),
    ]
    assert binance_pairs(tokens, {"BTC", "PEPE"}) == {"BTCUSDT": "native:bitcoin", "PEPEUSDT": "ethereum:0x6982"}
