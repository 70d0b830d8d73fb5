"""The chains of the simulated market and what each upstream API calls them.

Every API names a chain differently (DexScreener `ethereum`, GeckoTerminal `eth`, CoinGecko
`ethereum`, GoPlus `1`); this table is the one place that knows all of them, so a body builder
never spells a chain id itself. The canonical slug is DexScreener's, as in the token keys of
docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dex:
    """One DEX as DexScreener (`dex_id`, optional label) and GeckoTerminal (`gt_id`, `gt_name`) call it."""

    dex_id: str
    label: str | None
    gt_id: str
    gt_name: str


@dataclass(frozen=True, slots=True)
class QuoteAsset:
    """The token on the other side of a pool; its USD price follows the universe token `pegged_to`."""

    symbol: str
    name: str
    address: str
    pegged_to: str  # token key in the universe
    coingecko_id: str
    decimals: int


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain and its ids in every API the market serves."""

    slug: str  # canonical, = DexScreener chainId
    name: str
    is_evm: bool
    coingecko_platform: str
    geckoterminal_network: str
    goplus_chain_id: str | None  # None: GoPlus serves it on its own endpoint (Solana)
    explorer_token_url: str
    native_quote: QuoteAsset  # the wrapped native coin pools quote against
    usd_quote: QuoteAsset
    dexes: tuple[Dex, ...]


_USDC_KEY = "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
_USDT_KEY = "ethereum:0xdac17f958d2ee523a2206206994597c13d831ec7"

CHAINS: dict[str, Chain] = {
    chain.slug: chain
    for chain in (
        Chain(
            "ethereum",
            "Ethereum",
            True,
            "ethereum",
            "eth",
            "1",
            "https://etherscan.io/token/",
            QuoteAsset(
                "WETH", "Wrapped Ether", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "native:ethereum", "weth", 18
            ),
            QuoteAsset("USDC", "USD Coin", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", _USDC_KEY, "usd-coin", 6),
            (
                Dex("uniswap", "v2", "uniswap_v2", "Uniswap V2"),
                Dex("uniswap", "v3", "uniswap_v3", "Uniswap V3"),
                Dex("sushiswap", None, "sushiswap", "SushiSwap"),
            ),
        ),
        Chain(
            "bsc",
            "BNB Chain",
            True,
            "binance-smart-chain",
            "bsc",
            "56",
            "https://bscscan.com/token/",
            QuoteAsset(
                "WBNB", "Wrapped BNB", "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c", "native:binancecoin", "wbnb", 18
            ),
            QuoteAsset("USDT", "Tether USD", "0x55d398326f99059fF775485246999027B3197955", _USDT_KEY, "tether", 18),
            (
                Dex("pancakeswap", "v2", "pancakeswap_v2", "PancakeSwap V2 (BSC)"),
                Dex("pancakeswap", "v3", "pancakeswap-v3-bsc", "PancakeSwap V3 (BSC)"),
                Dex("uniswap", "v3", "uniswap-bsc", "Uniswap V3 (BSC)"),
            ),
        ),
        Chain(
            "solana",
            "Solana",
            False,
            "solana",
            "solana",
            None,
            "https://solscan.io/token/",
            QuoteAsset(
                "SOL",
                "Wrapped SOL",
                "So11111111111111111111111111111111111111112",
                "native:solana",
                "wrapped-solana",
                9,
            ),
            QuoteAsset("USDC", "USD Coin", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", _USDC_KEY, "usd-coin", 6),
            (
                Dex("raydium", None, "raydium", "Raydium"),
                Dex("orca", None, "orca", "Orca"),
                Dex("meteora", "DLMM", "meteora", "Meteora DLMM"),
            ),
        ),
        Chain(
            "base",
            "Base",
            True,
            "base",
            "base",
            "8453",
            "https://basescan.org/token/",
            QuoteAsset(
                "WETH",
                "Wrapped Ether",
                "0x4200000000000000000000000000000000000006",
                "native:ethereum",
                "l2-standard-bridged-weth-base",
                18,
            ),
            QuoteAsset("USDC", "USD Coin", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", _USDC_KEY, "usd-coin", 6),
            (
                Dex("aerodrome", None, "aerodrome-base", "Aerodrome (Base)"),
                Dex("uniswap", "v3", "uniswap-v3-base", "Uniswap V3 (Base)"),
                Dex("uniswap", "v4", "uniswap-v4-base", "Uniswap V4 (Base)"),
            ),
        ),
        Chain(
            "arbitrum",
            "Arbitrum",
            True,
            "arbitrum-one",
            "arbitrum",
            "42161",
            "https://arbiscan.io/token/",
            QuoteAsset(
                "WETH", "Wrapped Ether", "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", "native:ethereum", "weth", 18
            ),
            QuoteAsset("USDC", "USD Coin", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", _USDC_KEY, "usd-coin", 6),
            (
                Dex("uniswap", "v3", "uniswap_v3_arbitrum", "Uniswap V3 (Arbitrum)"),
                Dex("camelot", None, "camelot", "Camelot"),
            ),
        ),
        Chain(
            "polygon",
            "Polygon",
            True,
            "polygon-pos",
            "polygon_pos",
            "137",
            "https://polygonscan.com/token/",
            QuoteAsset(
                "WPOL",
                "Wrapped Polygon Ecosystem Token",
                "0x0d500B1d8E8eF31E21C99d1Db9A6444d3ADf1270",
                "ethereum:0x455e53cbb86018ac2b8092fdcd39d8444affc3f6",
                "wmatic",
                18,
            ),
            QuoteAsset("USDC", "USD Coin", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", _USDC_KEY, "usd-coin", 6),
            (
                Dex("quickswap", None, "quickswap", "QuickSwap"),
                Dex("uniswap", "v3", "uniswap_v3_polygon_pos", "Uniswap V3 (Polygon)"),
            ),
        ),
    )
}

BY_COINGECKO_PLATFORM: dict[str, Chain] = {c.coingecko_platform: c for c in CHAINS.values()}
BY_GECKOTERMINAL_NETWORK: dict[str, Chain] = {c.geckoterminal_network: c for c in CHAINS.values()}
BY_GOPLUS_CHAIN_ID: dict[str, Chain] = {c.goplus_chain_id: c for c in CHAINS.values() if c.goplus_chain_id}


def canonical_address(chain: Chain, address: str) -> str:
    """The form addresses are compared in: EVM hex lower-cased, everything else exactly as written."""
    return address.lower() if chain.is_evm else address
