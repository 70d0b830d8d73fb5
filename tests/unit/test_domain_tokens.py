"""Token identity: one key per token, EVM case-folded, base58 never."""

import pytest

from shared.crawler.domain.tokens import (
    canonical_address,
    canonical_pool_address,
    configured_stablecoin_rule,
    is_native_key,
    is_stablecoin,
    native_token_key,
    split_token_key,
    token_key,
)

WETH_CHECKSUMMED = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def test_evm_mixed_case_gives_one_key():
    assert token_key("ethereum", WETH_CHECKSUMMED) == token_key("ethereum", WETH) == f"ethereum:{WETH}"
    assert token_key("ethereum", f"  {WETH.upper().replace('0X', '0x')} ") == f"ethereum:{WETH}"


@pytest.mark.parametrize(
    "bad", ["", "0x123", WETH[2:], WETH + "0", "0xg02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", USDC_MINT]
)
def test_invalid_evm_addresses_say_why(bad):
    with pytest.raises(ValueError, match="EVM address|empty"):
        canonical_address("bsc", bad)


def test_solana_case_is_kept_exactly():
    assert token_key("solana", USDC_MINT) == f"solana:{USDC_MINT}"
    assert token_key("solana", USDC_MINT.lower()) != token_key("solana", USDC_MINT)


@pytest.mark.parametrize("bad", ["short", "0" * 43, "O" * 43, "I" * 43, "l" * 43, USDC_MINT + "x" * 10, WETH])
def test_invalid_solana_addresses_say_why(bad):
    with pytest.raises(ValueError, match="Solana address"):
        canonical_address("solana", bad)


def test_other_chains_only_strip():
    assert (
        canonical_address("injective", " inj19dtllzcquads0hu3ykda9m58llupksqwekkfnw ")
        == "inj19dtllzcquads0hu3ykda9m58llupksqwekkfnw"
    )
    assert canonical_address("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t") == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert canonical_address("sui", "0x2::sui::SUI") == "0x2::sui::SUI"
    with pytest.raises(ValueError, match="not a usable address"):
        canonical_address("tron", "T R7")
    with pytest.raises(ValueError, match="not a usable address"):
        canonical_address("tron", "T" * 200)


def test_unknown_chain_is_refused():
    with pytest.raises(ValueError, match="unknown chain"):
        token_key("bitcoin", "whatever")


def test_pool_ids_accept_uniswap_v4_32_byte_ids():
    v4 = "0xEC33256bf1ded407a57fd3c1965e7556e42ac14db09bc4e6fef57d5e2eb0b0b9"
    assert canonical_pool_address("base", v4) == v4.lower()
    assert canonical_pool_address("ethereum", WETH_CHECKSUMMED) == WETH
    with pytest.raises(ValueError):
        canonical_pool_address("ethereum", "0x1234")


def test_native_keys():
    assert native_token_key("bitcoin") == "native:bitcoin"
    assert native_token_key(" Avalanche-2 ") == "native:avalanche-2"
    assert is_native_key("native:bitcoin") and not is_native_key(f"ethereum:{WETH}")
    with pytest.raises(ValueError):
        native_token_key("")
    with pytest.raises(ValueError):
        native_token_key("bit coin")


def test_split_token_key_round_trips_and_rejects_non_canonical_keys():
    assert split_token_key(f"ethereum:{WETH}") == ("ethereum", WETH)
    assert split_token_key(f"solana:{USDC_MINT}") == ("solana", USDC_MINT)
    assert split_token_key("native:bitcoin") == ("native", "bitcoin")
    with pytest.raises(ValueError, match="not canonical"):
        split_token_key(f"ethereum:{WETH_CHECKSUMMED}")
    with pytest.raises(ValueError):
        split_token_key("no-colon")


def test_stablecoins_by_symbol_or_id():
    stable = frozenset({"USDT", "USDC", "WETH"})
    assert is_stablecoin("usdt", stable)
    assert is_stablecoin(" WETH ", stable)
    assert not is_stablecoin("BTC", stable)
    assert is_stablecoin("XUSD", stable, "some-dollar", frozenset({"some-dollar"}))
    assert not is_stablecoin(None, stable)


# --- stablecoins in disguise (issue #22) -------------------------------------------------


@pytest.mark.parametrize(
    "symbol",
    [
        "USDC.e",
        "USDT.e",
        "axlUSDC",
        "ceUSDC",
        "multiUSDT",
        "whUSDC",
        "DAI.b",
        "USDT_BSC",
        "EURC.e",
        "USDC.wh",
        "soUSDT",
    ],
)
def test_bridged_and_wrapped_variants_are_stablecoins_naming_the_rule(symbol):
    from shared.config import Settings

    rule = configured_stablecoin_rule(Settings(), symbol)
    assert rule is not None and "STABLECOIN_VARIANT_PATTERN" in rule and symbol.upper() in rule


@pytest.mark.parametrize("symbol", ["BTC", "ETH", "WBTC", "SOL", "SUSDE", "SDAI", "PEPE", "BASE", "OP", "STG", "AXL"])
def test_ordinary_tokens_are_not_caught_by_the_variant_pattern(symbol):
    from shared.config import Settings

    assert configured_stablecoin_rule(Settings(), symbol) is None


def test_each_rule_says_its_name():
    from shared.config import Settings
    from shared.crawler.domain.tokens import stablecoin_rule

    settings = Settings()
    assert "(STABLECOINS)" in configured_stablecoin_rule(settings, "usdt")
    assert "(STABLECOIN_CATEGORIES)" in configured_stablecoin_rule(settings, "XYZ", "xyz", ("Bridged USDC",))
    assert configured_stablecoin_rule(settings, "XYZ", "xyz", ("Meme",)) is None
    assert "stablecoins category" in stablecoin_rule("XYZ", frozenset(), "some-dollar", frozenset({"some-dollar"}))
    # The pattern is configuration: empty turns the variant rule off.
    assert configured_stablecoin_rule(Settings(stablecoin_variant_pattern=""), "USDC.e") is None


def test_top100_drops_variants_and_reports_the_rule():
    from shared.config import Settings
    from shared.crawler.domain.normalize_coingecko import top100_profiles

    settings = Settings()
    markets = [
        {"id": "bridged-usdc", "symbol": "usdc.e", "market_cap_rank": 1},
        {"id": "bitcoin", "symbol": "btc", "market_cap_rank": 2},
    ]
    excluded = []
    profiles, _ = top100_profiles(
        markets,
        {"bridged-usdc": {}, "bitcoin": {}},
        settings.stablecoin_symbols,
        variant_pattern=settings.stablecoin_variant_regex,
        excluded=excluded,
    )
    assert [p.coingecko_id for p in profiles] == ["bitcoin"]
    assert [(e.ref, "STABLECOIN_VARIANT_PATTERN" in e.reason) for e in excluded] == [("bridged-usdc", True)]
