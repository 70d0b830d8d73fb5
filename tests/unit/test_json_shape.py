"""The pricing decode of DexScreener answers (`POOL_PAIRS`, a `JsonShape`) gives the same
prices and pools as the whole-body decode, for well-formed and hostile bodies alike: it only
skips fields no pool is made of, and hands whatever it does not fit to `decode_json`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from shared.crawler.domain.normalize_dexscreener import normalize_dexscreener_pairs, price_usd_from_pairs
from shared.upstream.dexscreener import POOL_PAIRS
from shared.upstream.jsonbody import decode_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
WSOL = "So11111111111111111111111111111111111111112"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


def _pair(**overrides: object) -> dict:
    pair = {
        "chainId": "ethereum",
        "dexId": "uniswap",
        "url": "https://dexscreener.com/ethereum/0xa17c",
        "pairAddress": "0xA17c9e1d44e79E1DB7F9FD88C2268A57d95404EE",
        "labels": ["v2"],
        "baseToken": {"address": WETH, "name": "WETH", "symbol": "WETH"},
        "quoteToken": {"address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "name": "USD Coin", "symbol": "USDC"},
        "priceNative": "2701.1925",
        "priceUsd": "0.000000000012345678901234567890",
        "txns": {"h24": {"buys": 1, "sells": 2}},
        "volume": {"h24": 11303820587.55, "h6": 3.5},
        "priceChange": {"h24": -1.55},
        "liquidity": {"usd": 7545941647.23, "base": 1396812, "quote": 3773057970},
        "fdv": 726368886759,
        "marketCap": 584186247034,
        "pairCreatedAt": 1706550212000,
        "info": {"imageUrl": "https://x.example/i.png", "websites": [{"url": "https://weth.example.org"}]},
    }
    pair.update(overrides)
    return pair


def _both(body: bytes) -> tuple[object, object]:
    return POOL_PAIRS.decode(body), decode_json(body)


def test_recorded_answer_prices_the_same_and_skips_what_pools_never_read():
    body = (FIXTURES / "dexscreener.tokens_v1.solana_wsol.json").read_bytes()
    shaped, whole = _both(body)
    assert price_usd_from_pairs(shaped, "solana", WSOL) == price_usd_from_pairs(whole, "solana", WSOL)
    assert normalize_dexscreener_pairs(shaped) == normalize_dexscreener_pairs(whole)
    assert all("info" not in pair and "txns" not in pair for pair in shaped)


def test_prices_stay_exact_decimals():
    shaped, _ = _both(json.dumps([_pair()]).encode())
    found = price_usd_from_pairs(shaped, "ethereum", WETH)
    assert found is not None
    price, pool = found
    assert price == Decimal("0.000000000012345678901234567890")
    assert pool.liquidity_usd == Decimal("7545941647.23")
    assert pool.volume_24h_usd == Decimal("11303820587.55")


HOSTILE = {
    "absurd exponent in a kept field": json.dumps([_pair(liquidity={"usd": 1})]).replace('"usd": 1', '"usd": 1e999999'),
    "absurd exponent in a skipped field": json.dumps([_pair()]).replace("-1.55", "1e999999"),
    "NaN": json.dumps([_pair()]).replace("-1.55", "NaN"),
    "huge integer": json.dumps([_pair(fdv=10**60)]),
    "NUL in a symbol": json.dumps([_pair(baseToken={"address": WETH, "symbol": "WE\u0000TH"})]),
    "null sub-object": json.dumps([_pair(baseToken=None)]),
    "string where an object belongs": json.dumps([_pair(liquidity="lots"), _pair(pairAddress="0x" + "1" * 40)]),
    "a number where a string belongs": json.dumps([_pair(priceUsd=12.5, chainId=7)]),
    "non-object element": json.dumps([3, "x", None, _pair()]),
    "an object, not an array": json.dumps({"pairs": [_pair()]}),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_read_as_the_whole_decode_reads_them(name):
    shaped, whole = _both(HOSTILE[name].encode())
    assert normalize_dexscreener_pairs(shaped) == normalize_dexscreener_pairs(whole)
    assert price_usd_from_pairs(shaped, "ethereum", WETH) == price_usd_from_pairs(whole, "ethereum", WETH)


DEEP_IN_A_SKIPPED_FIELD = json.dumps([_pair()]).replace('["v2"]', "[" * 5000 + "]" * 5000).encode()


@pytest.mark.parametrize(
    "body", [b"", b"[", b"[{]", b"<html>blocked</html>", b"[" * 100_000 + b"]" * 100_000, DEEP_IN_A_SKIPPED_FIELD]
)
def test_undecodable_bodies_fail_as_the_whole_decode_fails(body):
    with pytest.raises(ValueError) as whole:
        decode_json(body)
    with pytest.raises(ValueError) as shaped:
        POOL_PAIRS.decode(body)
    assert str(shaped.value) == str(whole.value)
