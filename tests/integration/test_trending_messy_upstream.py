"""Messy upstream answers through the trending job, stored in real PostgreSQL: each case has one
defined outcome, and no wrong number is ever stored.

The outside world is an httpx transport serving DexScreener / GeckoTerminal / CoinGecko
documents in their real shapes (tests.helpers.upstream_doubles); our own database and Kafka are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

import pytest

from shared.config import CoinGeckoSettings, DexScreenerSettings, GeckoTerminalSettings, Settings
from shared.crawler.domain.pricing import usd_to_usdt
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.upstream import UpstreamClients
from tests.helpers.cloudevents import job_request
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import json_value, read_all
from tests.helpers.upstream_doubles import ReplayTransport, Reply

RATE = "1.0003"  # USD per USDT, as CoinGecko's tether price
WBNB = "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c"
BSC_USDT = "0x55d398326f99059fF775485246999027B3197955"
TINY = "0x1111111111111111111111111111111111111111"  # priceUsd "0.00000000001234", no `info`
DIRECT = "0x2222222222222222222222222222222222222222"  # quoted in USDT: priceNative is the USDT price
ABANDONED = "0x3333333333333333333333333333333333333333"  # its only pair has zero liquidity
UNPRICED = "0x4444444444444444444444444444444444444444"  # its pair has no priceUsd
DUPLICATED = "0x5555555555555555555555555555555555555555"  # the same pair twice, deepest listed last
NOWHERE = "0x6666666666666666666666666666666666666666"  # no source knows it
SOL_MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"  # mixed case, must stay so


def pair(
    base: str,
    *,
    pair_address: str,
    price_usd: str | None,
    liquidity: str | None = "50000",
    quote: str = WBNB,
    quote_symbol: str = "WBNB",
    price_native: str | None = None,
    chain: str = "bsc",
    info: dict[str, Any] | None = None,
    symbol: str = "TKN",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "chainId": chain,
        "dexId": "pancakeswap",
        "url": f"https://dexscreener.com/{chain}/{pair_address.lower()}",
        "pairAddress": pair_address,
        "baseToken": {"address": base, "name": f"{symbol} token", "symbol": symbol},
        "quoteToken": {"address": quote, "name": quote_symbol, "symbol": quote_symbol},
        "priceNative": price_native or "0.000001",
        "volume": {"h24": 1000},
        "fdv": 120000,
        "marketCap": 100000,
    }
    if price_usd is not None:
        doc["priceUsd"] = price_usd
    if liquidity is not None:
        doc["liquidity"] = {"usd": int(liquidity), "base": 1, "quote": 1}
    if info is not None:
        doc["info"] = info
    return doc


def dexscreener_pairs(request) -> Reply:
    path = request.url.path
    if path.startswith("/tokens/v1/solana/"):
        return Reply(
            200,
            json.dumps(
                [
                    pair(
                        SOL_MINT,
                        pair_address="Pool1111111111111111111111111111111111111111",
                        price_usd="0.5001500",
                        chain="solana",
                        quote="So11111111111111111111111111111111111111112",
                        quote_symbol="SOL",
                        symbol="MIXED",
                    )
                ]
            ).encode(),
        )
    pairs = [
        pair(
            TINY, pair_address="0xa000000000000000000000000000000000000001", price_usd="0.00000000001234", symbol="TINY"
        ),
        pair(
            DIRECT,
            pair_address="0xa000000000000000000000000000000000000002",
            price_usd="0.0000000000123437",
            quote=BSC_USDT,
            quote_symbol="USDT",
            price_native="0.00000000001234",
            symbol="DIRECT",
            info={
                "imageUrl": "https://img.example/direct.png",
                "websites": [{"url": "https://direct.example"}],
                "socials": [{"type": "twitter", "url": "https://x.com/direct"}],
            },
        ),
        pair(
            ABANDONED,
            pair_address="0xa000000000000000000000000000000000000003",
            price_usd="7.5",
            liquidity="0",
            symbol="GONE",
        ),
        pair(UNPRICED, pair_address="0xa000000000000000000000000000000000000004", price_usd=None, symbol="NOPX"),
        pair(
            DUPLICATED,
            pair_address="0xa000000000000000000000000000000000000005",
            price_usd="1.00030",
            liquidity="1000",
            symbol="DUP",
        ),
        pair(
            DUPLICATED,
            pair_address="0xa000000000000000000000000000000000000005",
            price_usd="1.00030",
            liquidity="1000",
            symbol="DUP",
        ),
        pair(
            DUPLICATED,
            pair_address="0xa000000000000000000000000000000000000006",
            price_usd="2.0006",
            liquidity="900000",
            symbol="DUP",
        ),
    ]
    return Reply(200, json.dumps(pairs).encode())


def geckoterminal_tokens(request) -> Reply:
    # Only ABANDONED is known there (with a price); the other addresses are silently dropped.
    data = [
        {
            "id": f"bsc_{ABANDONED}",
            "type": "token",
            "attributes": {
                "address": ABANDONED,
                "name": "Gone token",
                "symbol": "GONE",
                "decimals": 18,
                "image_url": "missing.png",
                "price_usd": "2.0006",
                "coingecko_coin_id": None,
            },
            "relationships": {"top_pools": {"data": []}},
        }
    ]
    return Reply(200, json.dumps({"data": data, "included": []}).encode())


@pytest.fixture
def transport() -> ReplayTransport:
    return ReplayTransport(
        {
            "/tokens/v1/": dexscreener_pairs,
            "/api/v2/networks/bsc/tokens/multi/": geckoterminal_tokens,
            "/api/v2/networks/solana/tokens/multi/": Reply(200, b'{"data": [], "included": []}'),
            "/api/v3/simple/price": Reply(200, b'{"tether": {"usd": 1.0003}}'),
            "/api/v3/simple/token_price/binance-smart-chain": Reply(
                200, b'{"' + UNPRICED.encode() + b'": {"usd": 3.0009}}'
            ),
            "/api/v3/simple/token_price/solana": Reply(200, b"{}"),
        }
    )


@pytest.fixture
def price_app(transport: ReplayTransport, clean_db: str, kafka_bootstrap: str, unique_topic) -> Iterator[FunctionApp]:
    fast: dict[str, Any] = {"max_retries": 0, "rate_limit_per_minute": 100_000}
    settings = Settings(
        database_url=clean_db,
        kafka_bootstrap_servers=kafka_bootstrap,
        audit_topic=unique_topic("audit", partitions=1),
        price_updated_topic=unique_topic("updated", partitions=1),
        dexscreener=DexScreenerSettings(**fast),
        geckoterminal=GeckoTerminalSettings(**fast),
        coingecko=CoinGeckoSettings(**fast),
    )
    resources = Resources(settings, upstream=UpstreamClients.from_settings(settings, transport=transport))
    try:
        yield function_app("price", resources)
    finally:
        resources.close()


def run_contracts(app: FunctionApp, addresses: list[str], chain: str = "bsc") -> dict[str, Any]:
    job = {
        "job_type": "price",
        "token_type": "trending",
        "symbols": [],
        "job_id": "trending:messy",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "contracts": [{"chain": chain, "address": a} for a in addresses],
    }
    response = job_request(job).to(app)
    assert response.status == 200, response.body
    return json.loads(response.body)


def key(address: str) -> str:
    return f"bsc:{address.lower()}"


def test_each_messy_case_has_its_defined_outcome(price_app: FunctionApp, clean_db: str) -> None:
    result = run_contracts(price_app, [TINY, DIRECT, ABANDONED, UNPRICED, DUPLICATED, NOWHERE])
    db = Database(clean_db)
    try:
        prices = {k: (p["price_usdt"], p["source"]) for k, p in db.latest_prices().items()}
        tokens = {r["token_key"]: r for r in db.rows("SELECT * FROM tokens")}
    finally:
        db.close()

    rate = Decimal(RATE)
    # A USD price of 0.00000000001234 is converted with the rate, keeping every digit (40 significant).
    tiny, source = prices[key(TINY)]
    assert source == "dexscreener" and tiny == usd_to_usdt(Decimal("0.00000000001234"), rate)
    assert len(tiny.as_tuple().digits) == 40 and Context(prec=30).multiply(tiny, rate) == Decimal("1.234E-11")
    # A USDT-quoted pool gives the USDT price as written, digit for digit.
    assert prices[key(DIRECT)] == (Decimal("0.00000000001234"), "dexscreener")
    # A zero-liquidity pair never prices a token: the next source does.
    assert prices[key(ABANDONED)] == (Decimal(2), "geckoterminal")
    # No priceUsd on DexScreener, unknown to GeckoTerminal: CoinGecko prices it by contract.
    assert prices[key(UNPRICED)] == (Decimal(3), "coingecko")
    # Duplicate pairs count once; the deepest pool prices the token and is the main pool.
    assert prices[key(DUPLICATED)] == (Decimal(2), "dexscreener")
    dup = tokens[key(DUPLICATED)]
    assert [m["pair_address"] for m in dup["markets"]] == [
        "0xa000000000000000000000000000000000000006",
        "0xa000000000000000000000000000000000000005",
    ]
    assert dup["main_pool"]["pair_address"] == "0xa000000000000000000000000000000000000006"
    # Missing `info`: the token is stored without a logo or links, never with made-up ones.
    assert tokens[key(TINY)]["logo_url"] is None and tokens[key(TINY)]["socials"] == []
    assert tokens[key(DIRECT)]["logo_url"] == "https://img.example/direct.png"
    assert tokens[key(DIRECT)]["socials"] == [{"type": "twitter", "url": "https://x.com/direct"}]
    # Known nowhere: a failure with every source's reason, nothing stored.
    assert key(NOWHERE) not in tokens
    [failure] = result["failures"]
    assert failure["token"] == key(NOWHERE)
    assert all(api in failure["reason"] for api in ("dexscreener", "geckoterminal"))
    assert (result["requested"], result["succeeded"]) == (6, 5)


def test_a_solana_mint_keeps_its_case_from_the_wire_to_the_completion_event(
    price_app: FunctionApp, clean_db: str, kafka_bootstrap: str
) -> None:
    result = run_contracts(price_app, [SOL_MINT], chain="solana")

    assert result["succeeded"] == 1
    db = Database(clean_db)
    try:
        [row] = db.rows("SELECT token_key, contract, contracts FROM tokens")
        latest = db.latest_prices()
    finally:
        db.close()
    assert row == {"token_key": f"solana:{SOL_MINT}", "contract": SOL_MINT, "contracts": {"solana": SOL_MINT}}
    assert latest[f"solana:{SOL_MINT}"]["price_usdt"] == Decimal("0.5")  # 0.50015 USD / 1.0003
    [event] = read_all(kafka_bootstrap, price_app.resources.settings.audit_topic)
    assert json_value(event)["token_keys"] == [f"solana:{SOL_MINT}"]


def test_a_lowercased_solana_mint_is_a_different_token(price_app: FunctionApp, clean_db: str) -> None:
    result = run_contracts(price_app, [SOL_MINT.lower()], chain="solana")

    # DexScreener's pair names the mixed-case mint, not this one: it is not silently merged.
    assert result["succeeded"] == 0 and result["failures"][0]["token"] == f"solana:{SOL_MINT.lower()}"


def test_a_pairs_null_envelope_is_a_dexscreener_failure_and_geckoterminal_prices_the_token(
    transport: ReplayTransport, price_app: FunctionApp, clean_db: str
) -> None:
    # /tokens/v1 answers a bare array; the legacy `{"pairs": null}` envelope here is a broken answer.
    transport.route("/tokens/v1/", Reply(200, b'{"schemaVersion": "1.0.0", "pairs": null}'))

    result = run_contracts(price_app, [ABANDONED, TINY])

    assert result["succeeded"] == 1
    [failure] = result["failures"]
    assert failure["token"] == key(TINY) and "expected a JSON array" in failure["reason"]
    db = Database(clean_db)
    try:
        assert {k: p["source"] for k, p in db.latest_prices().items()} == {key(ABANDONED): "geckoterminal"}
        assert db.value("SELECT source FROM tokens") == "geckoterminal"
    finally:
        db.close()


def test_hostile_wire_values_fail_their_token_only_and_nul_never_reaches_postgresql(
    transport: ReplayTransport, price_app: FunctionApp, clean_db: str
) -> None:
    # Issue #22: an absurd exponent for one token and NUL in another's name, symbol and URL.
    tiny = pair(TINY, pair_address="0xa000000000000000000000000000000000000001", price_usd="0", symbol="TINY")
    direct = pair(
        DIRECT,
        pair_address="0xa000000000000000000000000000000000000002",
        price_usd="0.0000000000123437",
        quote=BSC_USDT,
        quote_symbol="USDT",
        price_native="0.00000000001234",
        symbol="DI\u0000RECT",
        info={"imageUrl": "https://img.example/di\u0000rect.png"},
    )
    body = json.dumps([tiny, direct]).encode().replace(b'"priceUsd": "0"', b'"priceUsd": 1e999999999')
    assert b"\\u0000" in body and b"1e999999999" in body
    transport.route("/tokens/v1/", Reply(200, body))

    result = run_contracts(price_app, [TINY, DIRECT])

    assert result["succeeded"] == 1
    [failure] = result["failures"]
    assert failure["token"] == key(TINY)
    assert "priceUsd 1e999999999: exponent above the limit of 40" in failure["reason"]
    db = Database(clean_db)
    try:
        [row] = db.rows("SELECT symbol, name, logo_url FROM tokens")
        assert row == {"symbol": "DIRECT", "name": "DIRECT token", "logo_url": "https://img.example/direct.png"}
        assert {k: p["price_usdt"] for k, p in db.latest_prices().items()} == {key(DIRECT): Decimal("0.00000000001234")}
        messages = db.rows("SELECT message FROM job_logs WHERE job_id = 'trending:messy' AND row_kind = 'token'")
        assert [m["message"] for m in messages] == [failure["reason"]]
    finally:
        db.close()
