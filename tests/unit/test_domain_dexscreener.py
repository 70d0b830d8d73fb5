"""DexScreener: pools, profiles, prices and trending refs from real samples and messy pairs."""

import copy
import json
from decimal import Decimal

import pytest

from shared.crawler.domain.normalize_dexscreener import (
    dedupe_pools,
    normalize_dexscreener_pair,
    normalize_dexscreener_pairs,
    pairs_from_payload,
    price_usd_from_pairs,
    profile_from_dexscreener,
    select_main_pool,
    trending_refs_from_boosts,
    trending_refs_from_profiles,
)
from shared.crawler.models import Contract, Pool, TokenFailure, TokenProfile
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC_ETH = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WSOL = "So11111111111111111111111111111111111111112"
USDC_SOL = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_SOL = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"


def sample(name):
    with open(SAMPLES / name, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def weth_pair(**changes):
    pair = copy.deepcopy(sample("dexscreener.pairs.ethereum_weth_usdc.json")["pairs"][0])
    pair.update(changes)
    return pair


# --- envelopes and pools -------------------------------------------------------------------


def test_every_envelope_is_read():
    pairs_env = sample("dexscreener.pairs.ethereum_weth_usdc.json")
    assert len(pairs_from_payload(pairs_env)) == 1
    assert len(pairs_from_payload({"schemaVersion": "1.0.0", "pairs": None, "pair": pairs_env["pair"]})) == 1
    assert len(pairs_from_payload(sample("dexscreener.tokens_v1.solana_wsol.json"))) == 1  # bare array
    assert pairs_from_payload({"schemaVersion": "1.0.0", "pairs": None}) == []
    assert pairs_from_payload({"pairs": None, "pair": None}) == []
    assert pairs_from_payload(None) == [] and pairs_from_payload("oops") == []


def test_real_weth_pair_becomes_a_canonical_pool():
    pool = normalize_dexscreener_pair(sample("dexscreener.pairs.ethereum_weth_usdc.json")["pair"])
    assert isinstance(pool, Pool)
    assert (pool.chain, pool.dex) == ("ethereum", "uniswap")
    assert pool.pair_address == "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"  # checksummed in, lower out
    assert pool.base_address == WETH and pool.quote_address == USDC_ETH and pool.quote_symbol == "USDC"
    assert pool.price_usd == Decimal("2701.37") and pool.price_native == Decimal("2701.3735")
    assert pool.liquidity_usd == Decimal("98107272.35") and pool.volume_24h_usd == Decimal("17174868.85")
    assert pool.fdv_usd == Decimal("5528581517") and pool.market_cap_usd == Decimal("5530815254")
    assert pool.created_at.year == 2021


def test_real_solana_pair_keeps_case_and_missing_fdv_is_unknown():
    [pool], failures = normalize_dexscreener_pairs(sample("dexscreener.tokens_v1.solana_wsol.json"))
    assert failures == []
    assert pool.base_address == WSOL and pool.pair_address == "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2"
    assert pool.fdv_usd is None and pool.market_cap_usd is None


def test_real_injective_pairs_bech32_addresses():
    pools, failures = normalize_dexscreener_pairs(sample("dexscreener.latest_dex.injective_babydojo.json"))
    assert failures == [] and len(pools) == 2
    assert {p.base_address for p in pools} == {"inj19dtllzcquads0hu3ykda9m58llupksqwekkfnw"}
    assert select_main_pool(pools).pair_address == "inj17ufy5gqw33t0prwhkwa6ensv0jpj3xfvylgx8j"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chainId": "osmosis-x"}, "unsupported chain"),
        ({"baseToken": {"symbol": "X"}}, "without a base token address"),
        ({"baseToken": None}, "without a base token address"),
        ({"baseToken": {"address": "0x1234", "symbol": "X"}}, "not an EVM address"),
        ({"pairAddress": None}, "pool"),
    ],
)
def test_unusable_pairs_are_failures_with_reasons(change, reason):
    result = normalize_dexscreener_pair(weth_pair(**change))
    assert isinstance(result, TokenFailure) and reason in result.reason


def test_missing_optional_objects_are_unknown_not_zero():
    pair = weth_pair()
    for key in ("info", "liquidity", "volume", "fdv", "marketCap", "priceUsd", "pairCreatedAt", "url"):
        pair.pop(key)
    pool = normalize_dexscreener_pair(pair)
    assert isinstance(pool, Pool)
    assert pool.price_usd is None and pool.liquidity_usd is None and pool.volume_24h_usd is None
    assert pool.created_at is None and pool.url is None
    assert normalize_dexscreener_pair("not a pair").reason.startswith("dexscreener pair on unsupported chain")


def test_tiny_prices_keep_every_digit():
    pool = normalize_dexscreener_pair(weth_pair(priceUsd="0.00000000001234", priceNative="0.000000000000000004567"))
    assert pool.price_usd.as_tuple() == Decimal("0.00000000001234").as_tuple()  # same digits, same exponent
    assert format(pool.price_usd, "f") == "0.00000000001234"
    assert format(pool.price_native, "f") == "0.000000000000000004567"


def pool(address, liquidity, volume=None, chain="ethereum"):
    return Pool(
        chain,
        "dex",
        address,
        WETH,
        "USDC",
        USDC_ETH,
        Decimal(1),
        None,
        None if liquidity is None else Decimal(liquidity),
        None if volume is None else Decimal(volume),
        None,
        None,
    )


def test_main_pool_is_the_most_liquid_and_zero_or_unknown_never_wins():
    pools = [pool("0xb", None, "999999"), pool("0xa", "0", "999999"), pool("0xc", "10"), pool("0xd", "5000")]
    assert select_main_pool(pools).pair_address == "0xd"
    assert select_main_pool(pools[:3]).pair_address == "0xc"  # 10 USD beats huge volume at zero liquidity
    assert select_main_pool([]) is None


def test_main_pool_ties_are_deterministic():
    tied = [pool("0xb", "100", "5"), pool("0xa", "100", "5"), pool("0xc", "100", "7")]
    assert select_main_pool(tied).pair_address == "0xc"  # more volume
    assert select_main_pool(tied[:2]).pair_address == "0xa"
    assert select_main_pool(list(reversed(tied[:2]))).pair_address == "0xa"  # order does not matter
    assert select_main_pool([pool("0xz", None), pool("0xy", "0")]).pair_address == "0xy"


def test_dedupe_keeps_first_and_order():
    a, b = pool("0xa", "1"), pool("0xb", "2")
    assert dedupe_pools([a, b, pool("0xa", "99")]) == [a, b]


# --- prices --------------------------------------------------------------------------------


def test_price_from_real_pairs_for_checksummed_or_lower_address():
    payload = sample("dexscreener.pairs.ethereum_weth_usdc.json")
    for address in (WETH, WETH.upper().replace("0X", "0x")):
        price, main = price_usd_from_pairs(payload, "ethereum", address)
        assert price == Decimal("2701.37") and main.pair_address == "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"


def test_pairs_null_or_empty_means_no_price():
    assert price_usd_from_pairs({"schemaVersion": "1.0.0", "pairs": None}, "ethereum", WETH) is None
    assert price_usd_from_pairs([], "solana", WSOL) is None
    assert price_usd_from_pairs([], "nonexistent", WSOL) is None
    assert price_usd_from_pairs([], "ethereum", "bad") is None


def test_token_only_as_quote_is_not_priced():
    # USDC is the quote of the WSOL pair: that pair says nothing about USDC's price.
    assert price_usd_from_pairs(sample("dexscreener.tokens_v1.solana_wsol.json"), "solana", USDC_SOL) is None


def test_pairs_without_price_usd_are_skipped_even_if_more_liquid():
    deep_no_price = weth_pair(pairAddress="0x" + "1" * 40, priceUsd=None, liquidity={"usd": Decimal("1e12")})
    shallow = weth_pair(pairAddress="0x" + "2" * 40, priceUsd="2700.01", liquidity={"usd": Decimal("10")})
    price, main = price_usd_from_pairs([deep_no_price, shallow], "ethereum", WETH)
    assert price == Decimal("2700.01") and main.pair_address == "0x" + "2" * 40


def test_duplicate_and_zero_liquidity_pairs():
    zero = weth_pair(pairAddress="0x" + "3" * 40, priceUsd="1", liquidity={"usd": 0})
    real = weth_pair()
    price, main = price_usd_from_pairs([zero, real, copy.deepcopy(real)], "ethereum", WETH)
    assert price == Decimal("2701.37")


def test_other_chain_pairs_do_not_count():
    other_chain = weth_pair(chainId="base", priceUsd="1", liquidity={"usd": Decimal("1e15")})
    price, main = price_usd_from_pairs([other_chain, weth_pair()], "ethereum", WETH)
    assert main.chain == "ethereum" and price == Decimal("2701.37")


# --- profiles ------------------------------------------------------------------------------


def test_profile_from_real_weth_pair():
    profile = profile_from_dexscreener("ethereum", WETH, sample("dexscreener.pairs.ethereum_weth_usdc.json"))
    assert isinstance(profile, TokenProfile)
    assert (profile.key, profile.symbol, profile.name) == (f"ethereum:{WETH}", "WETH", "Wrapped Ether")
    assert profile.contracts == (Contract("ethereum", WETH),)
    assert profile.logo_url.startswith("https://cdn.dexscreener.com/cms/images/e7ad3f")
    assert profile.websites == () and profile.socials == ()
    assert profile.main_pool == profile.markets[0] and len(profile.markets) == 1  # "pair" duplicate not counted
    assert profile.market_cap_usd == Decimal("5530815254") and profile.source == "dexscreener"


def test_profile_from_real_solana_pair_with_links():
    profile = profile_from_dexscreener("solana", WSOL, sample("dexscreener.tokens_v1.solana_wsol.json"))
    assert profile.key == f"solana:{WSOL}" and profile.symbol == "SOL"
    assert profile.websites == ("https://solana.com",)
    assert profile.socials == (("twitter", "https://x.com/solana"),)


def test_profile_of_a_token_seen_only_as_quote_is_named_but_has_no_markets():
    profile = profile_from_dexscreener("solana", USDC_SOL, sample("dexscreener.tokens_v1.solana_wsol.json"))
    assert (profile.symbol, profile.name) == ("USDC", "USD Coin")
    assert profile.markets == () and profile.main_pool is None and profile.market_cap_usd is None


def test_profile_without_info_uses_the_boost_item_and_builds_icon_url():
    boost = sample("dexscreener.token_boosts.item.json")[0]
    mint = boost["tokenAddress"]
    pair = {
        "chainId": "solana",
        "dexId": "pumpswap",
        "pairAddress": "7" * 44,
        "baseToken": {"address": mint, "name": "Yaruo", "symbol": "YARUO"},
        "quoteToken": {"address": WSOL, "symbol": "SOL"},
        "priceUsd": "0.0001",
        "liquidity": {"usd": 5},
    }
    profile = profile_from_dexscreener("solana", mint, [pair], boost)
    assert profile.logo_url == f"https://dd.dexscreener.com/ds-data/tokens/solana/{mint}.png"
    assert profile.websites[0] == "https://yaruocoin.xyz/" and len(profile.websites) == 3  # links without type/label
    assert profile.socials == (("twitter", "https://x.com/YaruoSOL"),)


def test_profile_item_with_labels_and_types():
    item = sample("dexscreener.token_profiles.latest.json")[2]
    mint = item["tokenAddress"]
    pair = {"chainId": "solana", "pairAddress": "8" * 44, "baseToken": {"address": mint, "symbol": "DOGSHIT"}}
    profile = profile_from_dexscreener("solana", mint, {"pairs": [pair]}, item)
    assert profile.websites == (f"https://pump.fun/coin/{mint}",)
    assert [kind for kind, _ in profile.socials] == ["twitter", "telegram"]
    assert profile.logo_url == item["icon"]


def test_profile_item_for_another_token_is_ignored():
    item = sample("dexscreener.token_profiles.latest.json")[0]  # a bsc token
    profile = profile_from_dexscreener("solana", WSOL, sample("dexscreener.tokens_v1.solana_wsol.json"), item)
    assert ("twitter", "https://x.com/esatoshiclub/status/1904862456469438881") not in profile.socials


@pytest.mark.parametrize(
    ("chain", "address", "pairs", "reason"),
    [
        ("solana", WSOL, {"pairs": None}, "no symbol"),
        ("nonexistent", WSOL, [], "unsupported chain"),
        ("ethereum", "0x12", [], "EVM address"),
    ],
)
def test_profile_failures(chain, address, pairs, reason):
    result = profile_from_dexscreener(chain, address, pairs)
    assert isinstance(result, TokenFailure) and reason in result.reason


# --- trending ------------------------------------------------------------------------------


def test_trending_refs_from_real_profiles_keep_solana_case():
    refs, failures = trending_refs_from_profiles(sample("dexscreener.token_profiles.latest.json"))
    assert failures == []
    assert refs == [
        Contract("bsc", "0x795d2710e383f33fbebe980a155b29757b6703f3"),
        Contract("solana", "ENK9rDXuLW4YsaA4ZyzHkPR9pBJpgY7Q416SfjGxDLfx"),
        Contract("solana", "FeFKV9XUpUHFJTR1gXsQHWxo6eTghREGQpJtanr4pump"),
    ]


def test_trending_refs_from_boosts_dedupe_and_report_unknown_chains():
    [boost] = sample("dexscreener.token_boosts.item.json")
    items = [
        boost,
        dict(boost),
        {"chainId": "bsc", "tokenAddress": "0x795D2710E383F33FBEBE980A155B29757B6703F3"},
        {"chainId": "bsc", "tokenAddress": "0x795d2710e383f33fbebe980a155b29757b6703f3"},
        {"chainId": "somechain", "tokenAddress": "abc"},
        {"chainId": "solana", "tokenAddress": "0xnope"},
        None,
    ]
    refs, failures = trending_refs_from_boosts(items)
    assert refs == [
        Contract("solana", boost["tokenAddress"]),
        Contract("bsc", "0x795d2710e383f33fbebe980a155b29757b6703f3"),
    ]
    assert len(failures) == 3
    assert "unsupported chain 'somechain'" in failures[0].reason
    assert trending_refs_from_boosts(None) == ([], [])
