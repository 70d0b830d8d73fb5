"""The one chain mapping: every id translates both ways; unknown ids are None."""

import pytest

from shared.crawler.domain import chains
from shared.crawler.domain.chains import CHAINS


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.slug)
def test_every_chain_maps_both_ways(chain):
    assert chains.get_chain(chain.slug) is chain
    assert chains.dexscreener_chain_id(chain.slug) == chain.dexscreener
    assert chains.coingecko_platform(chain.slug) == chain.coingecko_platform
    assert chains.geckoterminal_network(chain.slug) == chain.geckoterminal
    assert chains.goplus_chain_id(chain.slug) == chain.goplus
    assert chains.is_evm(chain.slug) is chain.evm
    if chain.dexscreener:
        assert chains.chain_from_dexscreener(chain.dexscreener) == chain.slug
    if chain.coingecko_platform:
        assert chains.chain_from_coingecko_platform(chain.coingecko_platform) == chain.slug
    if chain.geckoterminal:
        assert chains.chain_from_geckoterminal(chain.geckoterminal) == chain.slug
    if chain.goplus:
        assert chains.chain_from_goplus(chain.goplus) == chain.slug


@pytest.mark.parametrize(
    ("slug", "dexscreener", "coingecko", "geckoterminal", "goplus", "evm"),
    [
        ("ethereum", "ethereum", "ethereum", "eth", "1", True),
        ("bsc", "bsc", "binance-smart-chain", "bsc", "56", True),
        ("solana", "solana", "solana", "solana", "solana", False),
        ("base", "base", "base", "base", "8453", True),
        ("arbitrum", "arbitrum", "arbitrum-one", "arbitrum", "42161", True),
        ("polygon", "polygon", "polygon-pos", "polygon_pos", "137", True),
        ("avalanche", "avalanche", "avalanche", "avax", "43114", True),
        ("optimism", "optimism", "optimistic-ethereum", "optimism", "10", True),
        ("fantom", "fantom", "fantom", "ftm", "250", True),
        ("cronos", "cronos", "cronos", "cro", "25", True),
        ("zksync", "zksync", "zksync", "zksync", "324", True),
        ("linea", "linea", "linea", "linea", "59144", True),
        ("tron", "tron", "tron", "tron", "tron", False),
        ("sui", "sui", "sui", "sui-network", None, False),
        ("ton", "ton", "the-open-network", "ton", None, False),
    ],
)
def test_known_identifiers(slug, dexscreener, coingecko, geckoterminal, goplus, evm):
    assert chains.chain_from_dexscreener(dexscreener) == slug
    assert chains.chain_from_coingecko_platform(coingecko) == slug
    assert chains.chain_from_geckoterminal(geckoterminal) == slug
    assert chains.goplus_chain_id(slug) == goplus
    assert chains.is_evm(slug) is evm


@pytest.mark.parametrize("unknown", ["", "   ", None, 56, "bitcoin", "eth", "binance-smart-chain", "ETHEREUM-CLASSIC"])
def test_unknown_dexscreener_ids_are_none(unknown):
    assert chains.chain_from_dexscreener(unknown) is None


def test_unknown_lookups_are_none_in_every_direction():
    assert chains.chain_from_coingecko_platform("") is None  # the native-coin {"": ""} quirk
    assert chains.chain_from_coingecko_platform("energi") is None
    assert chains.chain_from_geckoterminal("ethereum") is None  # GeckoTerminal says "eth"
    assert chains.chain_from_goplus("66") is None
    assert chains.goplus_chain_id("nonexistent") is None
    assert chains.geckoterminal_network("nonexistent") is None
    assert chains.coingecko_platform("nonexistent") is None
    assert chains.is_evm("nonexistent") is False


def test_ids_tolerate_case_and_whitespace_and_goplus_ints():
    assert chains.chain_from_dexscreener(" Ethereum ") == "ethereum"
    assert chains.chain_from_goplus(56) == "bsc"
    assert chains.chain_from_goplus(True) is None


def test_each_column_is_unique():
    for column in ("slug", "dexscreener", "coingecko_platform", "geckoterminal", "goplus"):
        values = [getattr(c, column) for c in CHAINS if getattr(c, column) is not None]
        assert len(values) == len(set(values)), column


def test_preference_order_starts_with_the_documented_chains():
    documented = ["ethereum", "bsc", "solana", "base", "arbitrum", "polygon", "avalanche", "optimism"]
    assert [c.slug for c in CHAINS[: len(documented)]] == documented
    assert chains.chain_preference("ethereum") < chains.chain_preference("bsc") < chains.chain_preference("injective")
    assert chains.chain_preference("nonexistent") == len(CHAINS)


def test_usdt_contracts_are_canonical():
    from shared.crawler.domain.tokens import canonical_address

    for chain in CHAINS:
        if chain.usdt_address:
            assert canonical_address(chain.slug, chain.usdt_address) == chain.usdt_address
