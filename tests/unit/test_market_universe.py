"""The simulated market's token universe, price model and wire encoding (no HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from local.market import wire
from local.market.addresses import base58_decode, eip55
from local.market.pools import QUIRKS, main_pool, pools_of
from local.market.universe import Universe

T0 = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe()


def test_same_seed_same_universe_other_seed_other_addresses():
    first, second, other = Universe(seed=3), Universe(seed=3), Universe(seed=4)
    assert [t.key for t in first.tokens] == [t.key for t in second.tokens]
    assert first.price_usdt("BTC", T0) == second.price_usdt("BTC", T0)
    assert {t.key for t in first.trending()} != {t.key for t in other.trending()}


def test_top_100_does_not_depend_on_universe_size(universe):
    big = Universe(size=2000)
    assert [t.key for t in big.top(100)] == [t.key for t in universe.top(100)]


def test_fifty_thousand_tokens_have_unique_keys():
    # How fast it builds is the bench's business (bench/, the capacity scenarios), not a timed test's.
    big = Universe(size=50_000)
    assert len(big.tokens) == 50_000
    assert len(big.by_key) == 50_000, "token keys must be unique"


@pytest.mark.parametrize("size", [10, 50_001, "150"])
def test_bad_size_is_rejected_with_the_range(size):
    with pytest.raises(ValueError, match="universe size"):
        Universe(size=size)


def test_top_100_holds_stablecoins_weth_and_tokens_without_a_binance_pair(universe):
    top = universe.top(100)
    symbols = {t.symbol for t in top}
    assert {"USDT", "USDC", "DAI", "FDUSD", "WETH"} <= symbols
    assert [t.market_cap_rank for t in top] == list(range(1, 101))
    without_pair = [t for t in top if not t.has_binance_pair and not t.is_stablecoin and not t.wraps]
    assert len(without_pair) >= 5
    halted = [t for t in top if t.binance_status == "BREAK"]
    assert halted and not halted[0].has_binance_pair


def test_token_kinds_and_address_formats(universe):
    natives = [t for t in universe.tokens if t.is_native]
    assert {"native:bitcoin", "native:ethereum", "native:solana"} <= {t.key for t in natives}
    assert all(t.address is None for t in natives)
    chains = {t.chain for t in universe.tokens if t.contracts}
    assert {"ethereum", "bsc", "base", "solana"} <= chains
    for token in universe.tokens:
        for contract in token.contracts:
            if contract.chain == "solana":
                assert len(base58_decode(contract.address)) == 32
                assert contract.canonical_address == contract.address
            else:
                assert contract.address == eip55(contract.address), "EVM addresses are EIP-55 checksummed"
                assert contract.canonical_address == contract.address.lower()
    assert universe.get("WETH").address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


def test_trending_set_spans_evm_and_solana_with_risky_and_unlisted_tokens(universe):
    trending = universe.trending()
    assert [t.trending_rank for t in trending] == list(range(1, len(trending) + 1))
    assert {t.chain for t in trending} >= {"solana", "base", "bsc", "ethereum"}
    assert any(t.coingecko_id is None for t in trending), "some trending tokens are DEX-only"
    assert {"honeypot", "high_tax", "mintable", "proxy", "closed_source", "sol_mintable"} <= {t.risk for t in trending}


def test_tiny_price_keeps_every_significant_digit(universe):
    pico = universe.get("PICO")
    price = universe.price_usdt(pico, T0)
    assert Decimal("1e-11") < price < Decimal("1.5e-11")
    text = wire.plain(price)
    assert text.startswith("0.0000000000")
    assert Decimal(text) == price
    assert len(text.lstrip("0.").rstrip("0")) >= 5, text


def test_prices_move_every_few_seconds_and_are_deterministic(universe):
    prices = [universe.price_usdt("BTC", T0 + timedelta(seconds=s)) for s in range(0, 30, 5)]
    assert len(set(prices)) == len(prices)
    assert universe.price_usdt("BTC", T0) == universe.price_usdt("BTC", T0.timestamp() + 0.99)


def test_usd_price_is_usdt_price_times_a_tether_rate_that_is_not_one(universe):
    rate = universe.usdt_usd(T0)
    assert rate != 1
    for ref in ("BTC", "PICO", "SHIB", "native:solana"):
        usdt, usd = universe.price_usdt(ref, T0), universe.price_usd(ref, T0)
        assert usd == usdt * rate
        assert usd / rate == usdt, "converting back must give the exact USDT price"
    assert universe.price_usdt("USDT", T0) == 1
    assert universe.price_usd("USDT", T0) == rate


def test_binance_listed_prices_fit_eight_decimals(universe):
    for token in universe.tokens:
        if token.binance_status:
            price = universe.price_usdt(token, T0)
            assert price == price.quantize(Decimal("0.00000001")), token.symbol
            assert price > 0


def test_wrapped_tokens_follow_their_native_coin(universe):
    assert universe.price_usdt("WETH", T0) == universe.price_usdt("ETH", T0)
    assert universe.price_usdt("WBTC", T0) != universe.price_usdt("BTC", T0)


def test_market_cap_ranks_never_cross_in_the_top_150(universe):
    second = int(T0.timestamp())
    for offset in (0, 3_600, 40_000):
        caps = [universe.market_cap_usd(t, second + offset) for t in universe.ranked()]
        assert caps == sorted(caps, reverse=True)


def test_lookup_by_key_symbol_id_pair_and_address(universe):
    btc = universe.get("native:bitcoin")
    assert universe.get("btc") is btc
    assert universe.get("bitcoin") is btc
    assert universe.get("BTCUSDT") is btc
    usdc = universe.get("USDC")
    assert universe.get("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48") is usdc
    assert universe.get("solana:EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v") is usdc
    assert universe.by_contract("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".lower()) is None
    with pytest.raises(LookupError, match="shared by several tokens"):
        universe.get("PEPE")
    with pytest.raises(LookupError, match="no token"):
        universe.get("NOPE-NOT-THERE")


def test_naive_datetime_is_rejected(universe):
    with pytest.raises(ValueError, match="timezone-aware"):
        universe.price_usdt("BTC", datetime(2026, 1, 1))


def test_pools_main_pool_quotes_the_exact_price_and_quirks_exist(universe):
    second = int(T0.timestamp())
    seen_quirks, duplicated = set(), 0
    for token in universe.with_pools():
        pools = pools_of(universe, token)
        assert 2 <= len({p.address for p in pools}) <= 4
        main = main_pool(universe, token)
        assert main.liquidity_usd == max(p.liquidity_usd for p in pools)
        assert main.price_usd(universe, second) == universe.price_usd(token, second)
        seen_quirks |= {p.quirk for p in pools if p.quirk}
        duplicated += len(pools) > len(set(map(id, pools)))
    assert seen_quirks == set(QUIRKS)
    assert duplicated > 0, "some tokens list the same pair twice"
    assert any(pools_of(universe, t)[0] is not main_pool(universe, t) for t in universe.with_pools())


def test_wire_writes_decimals_exactly_and_refuses_floats():
    body = {
        "a": Decimal("7.821066970851871E-11"),
        "b": Decimal("20030493.0"),
        "c": Decimal("77671"),
        "d": Decimal("0.0001"),
        "e": [True, None, "x"],
        "f": -Decimal("0.000005938674704566297"),
    }
    text = wire.dumps(body).decode()
    assert text == (
        '{"a":7.821066970851871e-11,"b":20030493.0,"c":77671,"d":0.0001,"e":[true,null,"x"],"f":-5.938674704566297e-06}'
    )
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed["a"] == body["a"] and parsed["f"] == body["f"]
    with pytest.raises(TypeError, match="float"):
        wire.dumps({"price": 1.5})
    assert wire.plain(Decimal("1.2345E-11")) == "0.000000000012345"
    assert wire.fixed(Decimal("4.000002"), 8) == "4.00000200"
