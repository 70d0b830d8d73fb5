"""GeckoTerminal JSON:API payloads: trending refs, tokens/multi profiles, simple prices."""

import copy
import json
from decimal import Decimal

from shared.crawler.domain.normalize_geckoterminal import (
    pool_from_geckoterminal,
    profiles_from_tokens_multi,
    split_resource_id,
    trending_refs_from_pools,
    usd_prices_from_simple_token_price,
)
from shared.crawler.models import Contract, Pool, TokenFailure
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
TRUMP = "6p6xgHyF7AeE6TZkSmFsko444wqoP15icUSqi2jfGiPN"
SORACAT = "2g4LS3y2myPe6vj9wTvoBE1wKqxvhnZPoZA9QU9upump"


def sample(name):
    with open(SAMPLES / name, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def test_resource_ids_split_on_the_longest_known_network():
    assert split_resource_id("polygon_pos_0xabc") == ("polygon_pos", "0xabc")
    assert split_resource_id(f"solana_{TRUMP}") == ("solana", TRUMP)
    assert split_resource_id("eth_") is None
    assert split_resource_id("mystery_0xabc") is None
    assert split_resource_id(None) is None


def test_trending_refs_from_real_samples():
    refs, failures = trending_refs_from_pools(sample("geckoterminal.trending_pools.all.json"))
    assert refs == [Contract("base", "0x5f980dcfc4c0fa3911554cf5ab288ed0eb13dba3")] and failures == []
    refs, failures = trending_refs_from_pools(sample("geckoterminal.trending_pools.network.json"))
    assert refs == [Contract("ethereum", "0xf280b16ef293d8e534e370794ef26bf312694126")] and failures == []


def test_trending_refs_messy_pools():
    payload = sample("geckoterminal.trending_pools.network.json")
    first = payload["data"][0]
    solana_pool = copy.deepcopy(first)
    solana_pool["relationships"]["base_token"]["data"]["id"] = f"solana_{TRUMP}"
    no_base = copy.deepcopy(first)
    del no_base["relationships"]["base_token"]
    unknown = copy.deepcopy(first)
    unknown["relationships"]["base_token"]["data"]["id"] = "mystery_0xabc"
    payload["data"] = [first, solana_pool, copy.deepcopy(first), no_base, unknown, "junk"]
    refs, failures = trending_refs_from_pools(payload)
    assert refs == [Contract("ethereum", "0xf280b16ef293d8e534e370794ef26bf312694126"), Contract("solana", TRUMP)]
    assert [f.reason for f in failures] == [
        "geckoterminal pool without a base token",
        "geckoterminal token id 'mystery_0xabc' has no known network",
    ]  # "junk" is not a resource at all: dropped
    assert trending_refs_from_pools({"data": None}) == ([], [])


def test_tokens_multi_real_solana_sample():
    result = profiles_from_tokens_multi("solana", sample("geckoterminal.tokens_multi.solana.json"))
    trump, soracat = result.profiles
    assert trump.key == f"solana:{TRUMP}" and trump.symbol == "TRUMP" and trump.decimals == 6
    assert trump.coingecko_id == "official-trump" and trump.source == "geckoterminal"
    assert trump.market_cap_usd == Decimal("478960276.377951")
    assert trump.main_pool.pair_address == "9d9mb8kooFfaD3SctgZtkxQypkshx6ezhbKio89ixyy2"
    assert trump.main_pool.quote_symbol == "USDC"  # from the pool name, quote token not included
    # 60+ significant digits survive untouched
    assert trump.main_pool.price_usd == Decimal("2.01740501818281139006336492319318380811954562178395002842369476")
    assert result.usd_prices == {f"solana:{TRUMP}": Decimal("2.0174050182")}
    # the bonding-curve token: a profile, but no price (not zero) and the reason
    assert soracat.key == f"solana:{SORACAT}" and soracat.main_pool is None and soracat.market_cap_usd is None
    assert f"solana:{SORACAT}" not in result.usd_prices
    assert [f.ref for f in result.failures] == [f"solana:{SORACAT}"]


def test_single_token_endpoint_and_quote_side_top_pool():
    result = profiles_from_tokens_multi("eth", sample("geckoterminal.token.json"))
    [usdt] = result.profiles
    assert usdt.key == "ethereum:0xdac17f958d2ee523a2206206994597c13d831ec7"
    assert usdt.markets == ()  # its top pool is USDC / USDT: USDT is the quote there
    assert result.usd_prices[usdt.key] == Decimal("0.9976477279")


def test_tokens_multi_messy_entries():
    payload = {
        "data": [
            {"id": "eth_0x12", "attributes": {"address": "0x12", "symbol": "BAD"}},
            {"id": "eth_0xdac17f958d2ee523a2206206994597c13d831ec7", "attributes": {"price_usd": "1"}},
            "junk",
        ]
    }
    result = profiles_from_tokens_multi("eth", payload)
    assert result.profiles == [] and result.usd_prices == {}
    assert len(result.failures) == 2
    assert profiles_from_tokens_multi("nope", {}).failures[0].reason == "unsupported geckoterminal network"


def test_pool_resource_uniswap_v4_id():
    payload = sample("geckoterminal.trending_pools.all.json")
    included = {r["id"]: r for r in payload["included"]}
    pool = pool_from_geckoterminal(payload["data"][0], included)
    assert isinstance(pool, Pool)
    assert pool.pair_address == "0xec33256bf1ded407a57fd3c1965e7556e42ac14db09bc4e6fef57d5e2eb0b0b9"
    assert (pool.chain, pool.quote_symbol, pool.quote_address) == (
        "base",
        "WETH",
        "0x4200000000000000000000000000000000000006",
    )
    assert pool.price_usd == Decimal("0.0000738759066917531")
    assert pool.liquidity_usd == Decimal("2471839.0983")
    assert isinstance(pool_from_geckoterminal({"id": "x"}), TokenFailure)


def test_simple_token_price_real_sample_and_messy():
    prices, failures = usd_prices_from_simple_token_price("eth", sample("geckoterminal.simple_token_price.eth.json"))
    assert (
        prices == {"ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2": Decimal("2084.57379936447")}
        and failures == []
    )
    payload = {
        "data": {"attributes": {"token_prices": {"0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2": None, "nope": "1"}}}
    }
    prices, failures = usd_prices_from_simple_token_price("eth", payload)
    assert prices == {} and len(failures) == 2
    assert usd_prices_from_simple_token_price("eth", None) == ({}, [])
