"""Fault bookkeeping and the Binance weight budget of the simulated market (no HTTP)."""

from __future__ import annotations

import pytest

from local.market.apis.base import ApiError
from local.market.apis.binance import WeightLimiter
from local.market.faults import FaultInjector
from local.market.stats import RequestStats


def test_fault_applies_to_count_matching_requests_then_disarms():
    faults = FaultInjector()
    faults.add("429", api="binance", path="/api/v3/ticker/price", count=2)
    assert faults.take("coingecko", "/api/v3/ticker/price", "/api/v3/ticker/price") is None
    assert faults.take("binance", "/api/v3/exchangeInfo", "/api/v3/exchangeInfo") is None
    first = faults.take("binance", "/api/v3/ticker/price", "/api/v3/ticker/price")
    assert first.status == 429 and first.retry_after == 1
    assert faults.take("binance", "/api/v3/ticker/price", "/api/v3/ticker/price") is first
    assert faults.take("binance", "/api/v3/ticker/price", "/api/v3/ticker/price") is None
    assert faults.active() == []


def test_fault_until_cleared_matches_templates_and_prefixes():
    faults = FaultInjector()
    faults.add("503", api="coingecko", path="/api/v3/coins/{id}", count="until_cleared")
    faults.add("slow", path="/tokens/*", count=None, latency_ms=5)
    for _ in range(3):
        assert faults.take("coingecko", "/api/v3/coins/bitcoin", "/api/v3/coins/{id}").kind == "503"
    assert faults.take("dexscreener", "/tokens/v1/solana/abc", "/tokens/v1/{chainId}/{tokenAddresses}").kind == "slow"
    faults.clear()
    assert faults.take("coingecko", "/api/v3/coins/bitcoin", "/api/v3/coins/{id}") is None


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"kind": "404"}, "unknown fault kind"),
        ({"kind": "429", "api": "kraken"}, "unknown api"),
        ({"kind": "429", "count": 0}, "count"),
        ({"kind": "429", "count": "twice"}, "count"),
        ({"kind": "429", "retry_after": -1}, "retry_after"),
        ({"kind": "429", "path": "api/v3"}, "path"),
        ({"kind": "slow", "latency_ms": 1.5}, "latency_ms"),
        ({"kind": "429", "colour": "red"}, "unknown fault field"),
        ({"api": "binance"}, "needs a 'kind'"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_fault_specs_are_rejected_with_the_reason(spec, reason):
    with pytest.raises(ValueError, match=reason):
        FaultInjector().add_from_json(spec)


def test_weight_limiter_answers_429_then_bans_with_418():
    limiter = WeightLimiter(limit=10, ban_after_429s=2, ban_seconds=60)
    limiter.charge(4)
    limiter.charge(4)
    assert limiter.used() == 8
    statuses = []
    for _ in range(4):
        with pytest.raises(ApiError) as raised:
            limiter.charge(4)
        response = raised.value.response
        statuses.append(response.status)
        assert any(name == "Retry-After" for name, _ in response.headers)
    assert statuses == [429, 429, 418, 418]
    limiter.reset()
    limiter.charge(4)


def test_stats_count_by_path_and_route():
    stats = RequestStats()
    stats.record_request("coingecko", "/api/v3/coins/bitcoin", "/api/v3/coins/{id}")
    stats.record_request("coingecko", "/api/v3/coins/ethereum", "/api/v3/coins/{id}")
    stats.record_outcome("coingecko", 200)
    assert stats.count("coingecko") == 2
    assert stats.count("coingecko", "/api/v3/coins/{id}") == 2
    assert stats.count("coingecko", "/api/v3/coins/bitcoin") == 1
    snapshot = stats.snapshot()
    assert snapshot["total"] == 2
    assert snapshot["apis"]["coingecko"]["statuses"] == {"200": 1}
    stats.reset()
    assert stats.snapshot() == {"total": 0, "apis": {}}


def test_hostile_bodies_carry_absurd_numbers_and_nul_and_every_item_fails_alone():
    import json

    from local.market.faults import hostile_body
    from shared.crawler.domain.normalize_dexscreener import normalize_dexscreener_pairs
    from shared.upstream.jsonbody import decode_json

    pair = {
        "chainId": "ethereum",
        "pairAddress": "0x" + "1" * 40,
        "dexId": "uniswap",
        "priceUsd": "2701.5",
        "liquidity": {"usd": 1000000},
        "baseToken": {"address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "symbol": "WETH"},
        "labels": [True, None],
    }
    damaged = hostile_body(json.dumps([pair, pair]).encode())
    assert damaged.count(b"1e999999999") == 4 and b"\\u0000" in damaged and b"true, null" in damaged
    pools, failures = normalize_dexscreener_pairs(decode_json(damaged))
    assert pools == [] and len(failures) == 2
    assert all("exponent above the limit" in f.reason and "\x00" not in f.reason for f in failures)
    assert hostile_body(b"<html>") == b"<html>"
