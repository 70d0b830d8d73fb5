"""Chain identifiers across upstream APIs: the one mapping.

Every chain is known by our **canonical slug** (DexScreener's ``chainId``: ``ethereum``,
``bsc``, ``solana``, ...). Each API names chains its own way; this table is the only
place that translates. A chain an API does not cover (or that we do not map) is ``None``
in that column, and every lookup of an unknown identifier returns ``None``: callers report
the token as a failure and skip it, they never guess.

The order of `CHAINS` is also the **preference order** for a token's primary contract
when it lives on several chains (see `chain_preference`): the most liquid, best covered
chains first.

| slug       | DexScreener | CoinGecko platform    | GeckoTerminal | GoPlus   | EVM |
|------------|-------------|-----------------------|---------------|----------|-----|
| ethereum   | ethereum    | ethereum              | eth           | 1        | yes |
| bsc        | bsc         | binance-smart-chain   | bsc           | 56       | yes |
| solana     | solana      | solana                | solana        | solana ° | no  |
| base       | base        | base                  | base          | 8453     | yes |
| arbitrum   | arbitrum    | arbitrum-one          | arbitrum      | 42161    | yes |
| polygon    | polygon     | polygon-pos           | polygon_pos   | 137      | yes |
| avalanche  | avalanche   | avalanche             | avax          | 43114    | yes |
| optimism   | optimism    | optimistic-ethereum   | optimism      | 10       | yes |
| ...        | see `CHAINS` below                                                         |

° GoPlus serves Solana on its own endpoint (``/api/v1/solana/token_security``) with a
different schema; `goplus_chain_id` returns ``"solana"`` so callers can branch on it.
For EVM chains the GoPlus id is the EIP-155 chain id; GoPlus answers code 2018 for a chain
it does not (yet) cover, which the audit reports as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Chain:
    """One chain and its identifier in each upstream API (None = not covered there)."""

    slug: str
    name: str
    dexscreener: str | None
    coingecko_platform: str | None
    geckoterminal: str | None
    goplus: str | None
    evm: bool
    # The chain's Tether (USDT) contract, canonical form: a pool quoted in it gives a
    # direct USDT price. Only contracts we are sure of; None means "convert from USD".
    usdt_address: str | None = None


CHAINS: tuple[Chain, ...] = (
    Chain(
        "ethereum", "Ethereum", "ethereum", "ethereum", "eth", "1", True, "0xdac17f958d2ee523a2206206994597c13d831ec7"
    ),
    Chain(
        "bsc",
        "BNB Smart Chain",
        "bsc",
        "binance-smart-chain",
        "bsc",
        "56",
        True,
        "0x55d398326f99059ff775485246999027b3197955",
    ),
    Chain(
        "solana",
        "Solana",
        "solana",
        "solana",
        "solana",
        "solana",
        False,
        "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
    ),
    Chain("base", "Base", "base", "base", "base", "8453", True),
    Chain(
        "arbitrum",
        "Arbitrum One",
        "arbitrum",
        "arbitrum-one",
        "arbitrum",
        "42161",
        True,
        "0xfd086bc7cd5c481dcc9c85ebe478a1c0b69fcbb9",
    ),
    Chain(
        "polygon",
        "Polygon PoS",
        "polygon",
        "polygon-pos",
        "polygon_pos",
        "137",
        True,
        "0xc2132d05d31c914a87c6611c10748aeb04b58e8f",
    ),
    Chain(
        "avalanche",
        "Avalanche C-Chain",
        "avalanche",
        "avalanche",
        "avax",
        "43114",
        True,
        "0x9702230a8ea53601f5cd2dc00fdbc13d4df4a8c7",
    ),
    Chain(
        "optimism",
        "OP Mainnet",
        "optimism",
        "optimistic-ethereum",
        "optimism",
        "10",
        True,
        "0x94b008aa00579c1307b0ef2c499ad98a8ce58e58",
    ),
    Chain("tron", "Tron", "tron", "tron", "tron", "tron", False, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
    Chain("sonic", "Sonic", "sonic", "sonic", "sonic", "146", True),
    Chain("hyperevm", "HyperEVM", "hyperevm", "hyperevm", "hyperevm", "999", True),
    Chain("berachain", "Berachain", "berachain", "berachain", "berachain", "80094", True),
    Chain("unichain", "Unichain", "unichain", "unichain", "unichain", "130", True),
    Chain("abstract", "Abstract", "abstract", "abstract", "abstract", "2741", True),
    Chain("linea", "Linea", "linea", "linea", "linea", "59144", True),
    Chain("zksync", "zkSync Era", "zksync", "zksync", "zksync", "324", True),
    Chain("scroll", "Scroll", "scroll", "scroll", "scroll", "534352", True),
    Chain("blast", "Blast", "blast", "blast", "blast", "81457", True),
    Chain("mantle", "Mantle", "mantle", "mantle", "mantle", "5000", True),
    Chain("fantom", "Fantom", "fantom", "fantom", "ftm", "250", True),
    Chain("cronos", "Cronos", "cronos", "cronos", "cro", "25", True),
    Chain("celo", "Celo", "celo", "celo", "celo", "42220", True),
    Chain("pulsechain", "PulseChain", "pulsechain", "pulsechain", "pulsechain", "369", True),
    Chain("sui", "Sui", "sui", "sui", "sui-network", None, False),
    Chain("ton", "TON", "ton", "the-open-network", "ton", None, False),
    Chain("aptos", "Aptos", "aptos", "aptos", "aptos", None, False),
    Chain("injective", "Injective", "injective", "injective", "injective", None, False),
)


def _index(column: str) -> MappingProxyType[str, Chain]:
    index: dict[str, Chain] = {}
    for chain in CHAINS:
        key = getattr(chain, column)
        if key is None:
            continue
        if key in index:  # a typo in the table must fail at import, not mis-route silently
            raise AssertionError(f"duplicate {column} id {key!r} in CHAINS")
        index[key] = chain
    return MappingProxyType(index)


_BY_SLUG = _index("slug")
_BY_DEXSCREENER = _index("dexscreener")
_BY_COINGECKO = _index("coingecko_platform")
_BY_GECKOTERMINAL = _index("geckoterminal")
_BY_GOPLUS = _index("goplus")
_PREFERENCE = {chain.slug: rank for rank, chain in enumerate(CHAINS)}


def _normalise(identifier: object) -> str | None:
    # Upstream ids are lower-case slugs; tolerate stray case/whitespace, nothing else.
    if not isinstance(identifier, str):
        return None
    return identifier.strip().lower() or None


def get_chain(slug: object) -> Chain | None:
    """The chain with this canonical slug, or None."""
    key = _normalise(slug)
    return _BY_SLUG.get(key) if key else None


def is_known_chain(slug: object) -> bool:
    """Whether `slug` is one of our canonical chain slugs."""
    return get_chain(slug) is not None


def chain_from_dexscreener(chain_id: object) -> str | None:
    """Canonical slug for a DexScreener ``chainId``; None if unsupported."""
    key = _normalise(chain_id)
    chain = _BY_DEXSCREENER.get(key) if key else None
    return chain.slug if chain else None


def chain_from_coingecko_platform(platform_id: object) -> str | None:
    """Canonical slug for a CoinGecko asset-platform id (``binance-smart-chain`` -> ``bsc``)."""
    key = _normalise(platform_id)
    chain = _BY_COINGECKO.get(key) if key else None
    return chain.slug if chain else None


def chain_from_geckoterminal(network: object) -> str | None:
    """Canonical slug for a GeckoTerminal network id (``eth`` -> ``ethereum``)."""
    key = _normalise(network)
    chain = _BY_GECKOTERMINAL.get(key) if key else None
    return chain.slug if chain else None


def chain_from_goplus(chain_id: object) -> str | None:
    """Canonical slug for a GoPlus chain id (``"56"`` -> ``bsc``)."""
    if isinstance(chain_id, int) and not isinstance(chain_id, bool):
        chain_id = str(chain_id)
    key = _normalise(chain_id)
    chain = _BY_GOPLUS.get(key) if key else None
    return chain.slug if chain else None


def dexscreener_chain_id(chain: str) -> str | None:
    """DexScreener ``chainId`` for a canonical slug; None if unknown."""
    found = get_chain(chain)
    return found.dexscreener if found else None


def coingecko_platform(chain: str) -> str | None:
    """CoinGecko asset-platform id for a canonical slug; None if unknown or not covered."""
    found = get_chain(chain)
    return found.coingecko_platform if found else None


def geckoterminal_network(chain: str) -> str | None:
    """GeckoTerminal network id for a canonical slug; None if unknown or not covered."""
    found = get_chain(chain)
    return found.geckoterminal if found else None


def goplus_chain_id(chain: str) -> str | None:
    """GoPlus chain id for a canonical slug (``"solana"`` means the Solana endpoint)."""
    found = get_chain(chain)
    return found.goplus if found else None


def is_evm(chain: str) -> bool:
    """Whether the chain uses EVM hex addresses (compared case-insensitively)."""
    found = get_chain(chain)
    return bool(found and found.evm)


def usdt_address(chain: str) -> str | None:
    """The chain's canonical Tether (USDT) contract, when we know it for sure."""
    found = get_chain(chain)
    return found.usdt_address if found else None


def chain_preference(chain: str) -> int:
    """Sort key: lower is preferred as a token's primary chain; unknown chains go last."""
    found = get_chain(chain)
    return _PREFERENCE[found.slug] if found else len(CHAINS)


def geckoterminal_networks() -> frozenset[str]:
    """Every GeckoTerminal network id we map (to split ``<network>_<address>`` ids)."""
    return frozenset(_BY_GECKOTERMINAL)


def dexscreener_contracts(chain: str | None, contract: str | None, contracts: dict[str, str]) -> list[tuple[str, str]]:
    """A token's (chain, address) pairs on chains DexScreener covers: primary contract first,
    then the others by chain preference. The price path asks DexScreener for the first."""
    pairs = [(chain, contract)] if chain and contract else []
    pairs += [
        (c, a) for c, a in sorted(contracts.items(), key=lambda ca: chain_preference(ca[0])) if (c, a) not in pairs
    ]
    return [(c, a) for c, a in pairs if dexscreener_chain_id(c)]
