"""CoinGecko: top-100 profiles keyed by primary contract, detail enrichment, prices, trending."""

import json
from decimal import Decimal

import pytest

from shared.crawler.domain.normalize_coingecko import (
    apply_coin_detail,
    contracts_from_platforms,
    top100_profiles,
    trending_coins,
    usd_prices_from_simple_price,
    usd_prices_from_token_price,
    usdt_usd_rate,
)
from shared.crawler.models import Contract
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
STABLES = frozenset({"USDT", "USDC", "DAI", "WETH"})
LINK_ETH = "0x514910771AF9Ca656af840dff83E8264EcF986CA"
LINK_BSC = "0xf8a0bf9cf54bb92f17374d9e9a321e6a111a51bd"


def sample(name):
    with open(SAMPLES / name, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def market(coin_id, symbol, rank, cap="1000"):
    return {
        "id": coin_id,
        "symbol": symbol,
        "name": coin_id.title(),
        "market_cap_rank": rank,
        "market_cap": Decimal(cap),
        "image": f"https://img/{coin_id}.png",
    }


COINS_LIST = [
    {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "platforms": {}},
    {"id": "ethereum", "symbol": "eth", "name": "Ethereum", "platforms": {"": ""}},
    {
        "id": "tether",
        "symbol": "usdt",
        "name": "Tether",
        "platforms": {"ethereum": "0xdac17f958d2ee523a2206206994597c13d831ec7"},
    },
    {
        "id": "chainlink",
        "symbol": "link",
        "name": "Chainlink",
        # listed bsc-first with an unknown platform: the key must still be the ethereum contract
        "platforms": {"binance-smart-chain": LINK_BSC, "energi": "0xdeadbeef", "ethereum": LINK_ETH, "solana": ""},
    },
    {
        "id": "bonk",
        "symbol": "bonk",
        "name": "Bonk",
        "platforms": {"solana": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"},
    },
]


def test_real_markets_sample_bitcoin_is_native():
    profiles, failures = top100_profiles(sample("coingecko.coins_markets.json"), COINS_LIST, STABLES)
    assert failures == []
    [btc] = profiles
    assert btc.key == "native:bitcoin" and btc.symbol == "BTC" and btc.chain is None and btc.contracts == ()
    assert btc.market_cap_usd == Decimal("1555886872303") and btc.market_cap_rank == 1
    assert btc.coingecko_id == "bitcoin" and btc.source == "coingecko"


def test_top_n_excludes_stablecoins_before_counting_and_keys_by_preferred_chain():
    markets = [
        market("tether", "usdt", 3),
        market("chainlink", "link", 4),
        market("bitcoin", "btc", 1),
        market("ethereum", "eth", 2),
        market("bonk", "bonk", 5),
    ]
    profiles, failures = top100_profiles(markets, COINS_LIST, STABLES, limit=3)
    assert failures == []
    assert [p.key for p in profiles] == ["native:bitcoin", "native:ethereum", f"ethereum:{LINK_ETH.lower()}"]
    link = profiles[2]
    assert link.contracts == (Contract("ethereum", LINK_ETH.lower()), Contract("bsc", LINK_BSC))
    assert (link.chain, link.address) == ("ethereum", LINK_ETH.lower())


def test_stablecoin_by_id_and_rankless_rows_go_last():
    markets = [market("bonk", "bonk", None), market("bitcoin", "btc", 1), market("tether", "usdt", 2)]
    profiles, _ = top100_profiles(markets, COINS_LIST, frozenset(), frozenset({"tether"}))
    assert [p.coingecko_id for p in profiles] == ["bitcoin", "bonk"]
    assert profiles[1].key == "solana:DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def test_coin_missing_from_coins_list_is_a_failure_not_a_native_guess():
    profiles, failures = top100_profiles([market("newcoin", "new", 1), {"symbol": "x"}, "junk"], COINS_LIST, STABLES)
    assert profiles == []
    assert [f.ref for f in failures][0] == "newcoin"
    assert "coins/list" in failures[0].reason
    assert len(failures) == 3


def test_two_coins_with_one_contract_keep_the_better_rank():
    coins = {"a": {"ethereum": LINK_ETH}, "b": {"ethereum": LINK_ETH.lower()}}
    profiles, failures = top100_profiles([market("b", "b", 2), market("a", "a", 1)], coins, STABLES)
    assert [p.coingecko_id for p in profiles] == ["a"]
    assert failures[0].ref == "b" and "same key" in failures[0].reason


def test_contracts_skip_quirks_and_invalid_addresses():
    assert contracts_from_platforms({"": ""}) == ()
    assert contracts_from_platforms(None) == ()
    assert contracts_from_platforms(
        {"ethereum": "not-an-address", "solana": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}
    ) == (Contract("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),)


def test_apply_real_bitcoin_detail():
    [btc], _ = top100_profiles(sample("coingecko.coins_markets.json"), COINS_LIST, STABLES)
    enriched = apply_coin_detail(btc, sample("coingecko.coins_id.bitcoin.json"))
    assert enriched.key == "native:bitcoin" and enriched.contracts == ()  # {"": ""} adds nothing
    assert enriched.websites == ("http://www.bitcoin.org",)  # empty homepage entries dropped
    socials = dict(enriched.socials)
    assert socials["twitter"] == "https://x.com/bitcoin"
    assert socials["reddit"] == "https://www.reddit.com/r/Bitcoin/"
    assert ("github", "https://github.com/bitcoin/bips") in enriched.socials
    assert "telegram" not in socials  # "" identifier
    assert enriched.tags == ("Cryptocurrency", "Layer 1 (L1)")
    assert enriched.logo_url == btc.logo_url  # the markets image is kept
    assert enriched.decimals is None


def test_apply_detail_adds_decimals_and_contracts_but_never_changes_the_key():
    [link], _ = top100_profiles([market("chainlink", "link", 1)], COINS_LIST, STABLES)
    detail = {
        "id": "chainlink",
        "platforms": {"ethereum": LINK_ETH, "arbitrum-one": "0xf97f4df75117a78c1a5a0dbb814af92458539fb4"},
        "detail_platforms": {
            "ethereum": {"decimal_place": 18, "contract_address": LINK_ETH},
            "arbitrum-one": {"decimal_place": 18, "contract_address": "0xf97f4df75117a78c1a5a0dbb814af92458539fb4"},
        },
        "links": {
            "homepage": ["https://chain.link/", ""],
            "telegram_channel_identifier": "chainlinkofficial",
            "chat_url": ["https://discord.gg/x"],
        },
        "categories": ["Oracle", None, ""],
    }
    enriched = apply_coin_detail(link, detail)
    assert enriched.key == link.key
    assert enriched.decimals == 18
    assert [c.chain for c in enriched.contracts] == ["ethereum", "bsc", "arbitrum"]
    assert enriched.contracts[0].decimals == 18 and enriched.contracts[1].decimals is None
    assert ("telegram", "https://t.me/chainlinkofficial") in enriched.socials
    assert ("discord", "https://discord.gg/x") in enriched.socials
    assert enriched.tags == ("Oracle",)


@pytest.mark.parametrize("detail", [None, [], {"id": "other"}, {}])
def test_apply_unusable_detail_leaves_profile_unchanged(detail):
    [btc], _ = top100_profiles(sample("coingecko.coins_markets.json"), COINS_LIST, STABLES)
    assert apply_coin_detail(btc, detail) == btc


def test_simple_price_real_sample_and_messy_entries():
    prices, failures = usd_prices_from_simple_price(sample("coingecko.simple_price.json"))
    assert prices == {"bitcoin": Decimal("76975")} and failures == []
    prices, failures = usd_prices_from_simple_price(
        {"a": {"usd": 0}, "b": {}, "c": None, "d": {"usd": "0.000000000012345"}}
    )
    assert prices == {"d": Decimal("0.000000000012345")}
    assert sorted(f.ref for f in failures) == ["a", "b", "c"]


def test_token_price_real_sample_is_keyed_by_token_key():
    prices, failures = usd_prices_from_token_price("ethereum", sample("coingecko.simple_token_price.ethereum.json"))
    assert prices == {"ethereum:0x2260fac5e5542a773aa44fbcfedf7c193bc2c599": Decimal("76721")} and failures == []
    prices, failures = usd_prices_from_token_price(
        "ethereum", {"0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599": {"usd": 1}, "bad": {"usd": 1}}
    )
    assert list(prices) == ["ethereum:0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"] and len(failures) == 1
    assert usd_prices_from_token_price("energi", {})[1][0].reason == "unknown coingecko platform"


def test_usdt_usd_rate_is_read_never_assumed():
    assert usdt_usd_rate({"tether": {"usd": Decimal("1.0003")}}) == Decimal("1.0003")
    assert usdt_usd_rate({"tether": {"usd": Decimal("0.9987")}}) == Decimal("0.9987")
    assert usdt_usd_rate({}) is None
    assert usdt_usd_rate({"tether": {"usd": 0}}) is None
    assert usdt_usd_rate({"tether": {"usd": 1000}}) is None  # a glitch, not a market
    assert usdt_usd_rate(None) is None


def test_trending_real_sample_with_mixed_number_types():
    coins, failures = trending_coins(sample("coingecko.search_trending.json"))
    assert failures == []
    [bonk] = coins
    assert (bonk.coingecko_id, bonk.symbol, bonk.market_cap_rank, bonk.position) == ("bonk", "BONK", 103, 0)
    assert bonk.price_usd == Decimal("5.938674704566297e-06")
    assert bonk.market_cap_usd == Decimal("521967819")  # from "$521,967,819"
    assert bonk.volume_24h_usd == Decimal("31701707")
    assert bonk.logo_url.endswith("large/bonk.jpg?1696527587")


def test_trending_messy_items_do_not_crash():
    payload = {
        "coins": [
            {"item": {"id": "x", "symbol": "x", "data": {"price": "n/a", "market_cap": "6.98 ETH"}}},
            {"item": {"symbol": "noid"}},
            None,
            {"item": {"id": "x", "symbol": "x"}},
        ]
    }
    coins, failures = trending_coins(payload)
    assert [(c.coingecko_id, c.price_usd, c.market_cap_usd) for c in coins] == [("x", None, None)]
    assert len(failures) == 2
    assert trending_coins({"coins": None}) == ([], [])
