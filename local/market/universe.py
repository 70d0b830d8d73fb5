"""The token universe of the simulated market, deterministic from a seed.

A universe of `size` tokens holds, in market-cap rank order:

- well-known tokens with their real ids and contract addresses (BTC, ETH, USDT, USDC, WETH,
  PEPE, BONK, ...): native coins without a contract, ERC-20, BEP-20, Base, Arbitrum and
  Solana SPL tokens, stablecoins and WETH inside the top 100;
- top-100 tokens *without* a Binance USDT pair (HYPE, LEO, XMR, ...), which must be priced
  through CoinGecko or a DEX, and one whose Binance pair is halted (status BREAK);
- about twenty trending tokens (EVM and Solana, several not listed on CoinGecko at all,
  some risky for GoPlus, one priced around 1.2345e-11 USDT, one whose symbol PEPE collides
  with the ERC-20 PEPE);
- generated tokens filling the remaining ranks (a 50,000-token universe builds in about a
  second). The first 150 tokens are the same for every size >= 150, so the top 100 does
  not depend on the size.

`Universe.price_usdt(ref, at)` answers what every API quotes for a token at an instant.
Token keys follow docs/architecture.md: `native:<coingecko id>` or `<chain>:<address>`
(EVM lower-cased, Solana exactly as written).
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, cached_property
from typing import Any

from local.market import addresses
from local.market.chains import CHAINS, canonical_address
from local.market.prices import DEFAULT_USDT_USD, PriceModel, Wave, binance_tick

DEFAULT_SEED = 7
DEFAULT_SIZE = 150
MAX_SIZE = 50_000
CORE_SIZE = 150  # ranks whose tokens do not depend on the universe size

# CoinGecko category id -> display name (the ids are what `category=` takes).
CATEGORIES: dict[str, str] = {
    "layer-1": "Layer 1 (L1)",
    "smart-contract-platform": "Smart Contract Platform",
    "cryptocurrency": "Cryptocurrency",
    "stablecoins": "Stablecoins",
    "usd-stablecoin": "USD Stablecoin",
    "meme-token": "Meme",
    "decentralized-finance-defi": "Decentralized Finance (DeFi)",
    "wrapped-tokens": "Wrapped-Tokens",
    "exchange-based-tokens": "Exchange-based Tokens",
    "artificial-intelligence": "Artificial Intelligence (AI)",
    "gaming": "Gaming (GameFi)",
    "ethereum-ecosystem": "Ethereum Ecosystem",
    "binance-smart-chain": "BNB Chain Ecosystem",
    "solana-ecosystem": "Solana Ecosystem",
    "base-ecosystem": "Base Ecosystem",
    "arbitrum-ecosystem": "Arbitrum Ecosystem",
    "polygon-ecosystem": "Polygon Ecosystem",
    "pump-fun": "Pump.fun Ecosystem",
}
_ECOSYSTEM = {
    "ethereum": "ethereum-ecosystem",
    "bsc": "binance-smart-chain",
    "solana": "solana-ecosystem",
    "base": "base-ecosystem",
    "arbitrum": "arbitrum-ecosystem",
    "polygon": "polygon-ecosystem",
}

# GoPlus risk profiles; "clean" is a well-behaved token. Solana profiles start with "sol_".
EVM_RISKS = ("clean", "honeypot", "high_tax", "mintable", "proxy", "closed_source")
SOLANA_RISKS = ("clean", "sol_mintable", "sol_freezable")


@dataclass(frozen=True, slots=True)
class Contract:
    """A token's contract on one chain.

    `canonical_address` is what keys and lookups use (EVM lower-case, Solana as written);
    `address` is how the chain writes it (EIP-55 checksummed for EVM, computed on first use:
    hashing every address of a 50,000-token universe up front would cost a second).
    """

    chain: str
    canonical_address: str
    decimals: int

    @property
    def address(self) -> str:
        """The address as block explorers and DexScreener write it (EIP-55 for EVM)."""
        return _checksummed(self.canonical_address) if CHAINS[self.chain].is_evm else self.canonical_address


@cache
def _checksummed(lower_hex: str) -> str:
    return addresses.eip55(lower_hex)


@dataclass(frozen=True, slots=True)
class Token:
    """One token of the universe with its fixed properties and price-model parameters."""

    index: int
    key: str  # docs/architecture.md: `native:<coingecko id>` or `<chain>:<canonical address>`
    symbol: str
    name: str
    coingecko_id: str | None  # None: not listed on CoinGecko (a fresh DEX-only token)
    contracts: tuple[Contract, ...]  # empty for a native coin; the first is the home chain
    market_cap_rank: int | None
    is_stablecoin: bool
    wraps: str | None  # key of the native coin a wrapped token tracks (WETH -> native:ethereum)
    binance_status: str | None  # None: no SYMBOLUSDT on Binance; "TRADING" or "BREAK"
    trending_rank: int | None  # 1 = most boosted; None: not trending
    categories: tuple[str, ...]  # CoinGecko category ids
    risk: str  # GoPlus profile, see EVM_RISKS / SOLANA_RISKS
    is_meme: bool
    image_id: int
    design_market_cap_usd: float  # market cap at the base price; ranks follow it
    circulating_supply: Decimal
    total_supply: Decimal
    max_supply: Decimal | None
    # price model
    base_price_usdt: Decimal
    log_base: float
    waves: tuple[Wave, ...]
    binance_tick: Decimal | None  # quote precision of the Binance pair (also for a halted one)
    peg: tuple[str, Decimal] | None  # (anchor key, factor): price follows another token

    @property
    def is_native(self) -> bool:
        """A chain's own coin, without a contract (BTC, ETH, SOL, ...)."""
        return not self.contracts

    @property
    def chain(self) -> str | None:
        """Home chain slug, None for a native coin."""
        return self.contracts[0].chain if self.contracts else None

    @property
    def address(self) -> str | None:
        """Home contract address as the chain writes it, None for a native coin."""
        return self.contracts[0].address if self.contracts else None

    @property
    def has_binance_pair(self) -> bool:
        """True when Binance trades SYMBOLUSDT (status TRADING) for this token."""
        return self.binance_status == "TRADING"

    @property
    def binance_symbol(self) -> str | None:
        """The Binance USDT pair symbol, also for a halted pair; None when Binance has none."""
        return f"{self.symbol.upper()}USDT" if self.binance_status else None

    @property
    def is_trending(self) -> bool:
        """Appears in DexScreener boosts/profiles, GeckoTerminal and CoinGecko trending lists."""
        return self.trending_rank is not None

    @property
    def rank_in_trending(self) -> int:
        """`trending_rank` of a trending token; ValueError for one that is not trending."""
        if self.trending_rank is None:
            raise ValueError(f"{self.key} is not trending")
        return self.trending_rank

    def contract_on(self, chain: str) -> Contract | None:
        """The token's contract on `chain`, if it has one there."""
        return next((c for c in self.contracts if c.chain == chain), None)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for tests and the /_sim/tokens endpoint."""
        return {
            "key": self.key,
            "symbol": self.symbol,
            "name": self.name,
            "coingecko_id": self.coingecko_id,
            "chain": self.chain,
            "address": self.address,
            "contracts": [{"chain": c.chain, "address": c.address, "decimals": c.decimals} for c in self.contracts],
            "market_cap_rank": self.market_cap_rank,
            "is_native": self.is_native,
            "is_stablecoin": self.is_stablecoin,
            "wraps": self.wraps,
            "has_binance_pair": self.has_binance_pair,
            "binance_symbol": self.binance_symbol,
            "binance_status": self.binance_status,
            "is_trending": self.is_trending,
            "trending_rank": self.trending_rank,
            "risk": self.risk,
        }


# --- the designed part of the universe ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """A designed token: real well-known ones and the generated edge cases tests rely on."""

    symbol: str
    name: str
    coingecko_id: str | None
    price: str  # USDT; ignored when `peg` is set
    rank: int | None  # desired market-cap rank; None: not on CoinGecko
    binance: str | None = "TRADING"
    contracts: tuple[tuple[str, str, int], ...] = ()  # (chain, address or "*" to generate, decimals)
    categories: tuple[str, ...] = ()
    stable: bool = False
    wraps: str | None = None
    peg: tuple[str, str] | None = None
    trending: int | None = None
    risk: str = "clean"
    meme: bool = False
    pump: bool = False  # generated Solana mint ends in "pump"


_L1 = ("layer-1", "smart-contract-platform")
_STABLE = ("stablecoins", "usd-stablecoin")
_ETH, _BSC, _SOL = "ethereum", "bsc", "solana"

# fmt: off
_DESIGNED: tuple[_Spec, ...] = (
    _Spec("BTC", "Bitcoin", "bitcoin", "77000", 1, categories=("cryptocurrency", "layer-1")),
    _Spec("ETH", "Ethereum", "ethereum", "2700", 2, categories=_L1),
    _Spec("USDT", "Tether", "tether", "1", 3, binance=None, stable=True, categories=_STABLE,
          contracts=((_ETH, "0xdAC17F958D2ee523a2206206994597C13D831ec7", 6),
                     (_BSC, "0x55d398326f99059fF775485246999027B3197955", 18),
                     (_SOL, "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6))),
    _Spec("XRP", "XRP", "ripple", "2.1", 4, categories=("layer-1",)),
    _Spec("BNB", "BNB", "binancecoin", "640", 5,
          categories=("layer-1", "smart-contract-platform", "exchange-based-tokens")),
    _Spec("SOL", "Solana", "solana", "150", 6, categories=("layer-1", "smart-contract-platform", "solana-ecosystem")),
    _Spec("USDC", "USDC", "usd-coin", "0.9997", 7, stable=True, categories=_STABLE,
          contracts=((_ETH, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6),
                     (_SOL, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6),
                     ("base", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", 6),
                     ("arbitrum", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", 6),
                     ("polygon", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", 6))),
    _Spec("DOGE", "Dogecoin", "dogecoin", "0.17", 8, meme=True, categories=("meme-token", "layer-1")),
    _Spec("TRX", "TRON", "tron", "0.27", 9, categories=_L1),
    _Spec("ADA", "Cardano", "cardano", "0.68", 10, categories=_L1),
    _Spec("HYPE", "Hyperliquid", "hyperliquid", "38", 11, binance=None, categories=("layer-1",)),
    _Spec("LINK", "Chainlink", "chainlink", "15", 12, categories=("ethereum-ecosystem",),
          contracts=((_ETH, "0x514910771AF9Ca656af840dff83E8264EcF986CA", 18),)),
    _Spec("WETH", "WETH", "weth", "0", 14, binance=None, wraps="native:ethereum", peg=("native:ethereum", "1"),
          categories=("wrapped-tokens", "ethereum-ecosystem"),
          contracts=((_ETH, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18),)),
    _Spec("AVAX", "Avalanche", "avalanche-2", "22", 15, categories=_L1),
    _Spec("XLM", "Stellar", "stellar", "0.27", 16, categories=("layer-1",)),
    _Spec("SUI", "Sui", "sui", "3.2", 17, categories=_L1),
    _Spec("BCH", "Bitcoin Cash", "bitcoin-cash", "420", 18, categories=("cryptocurrency", "layer-1")),
    _Spec("LEO", "LEO Token", "leo-token", "9.1", 19, binance=None, categories=("exchange-based-tokens",),
          contracts=((_ETH, "0x2AF5D2aD76741191D15Dfe7bF6aC92d4Bd912Ca3", 18),)),
    _Spec("TON", "Toncoin", "the-open-network", "3.1", 20, categories=_L1),
    _Spec("SHIB", "Shiba Inu", "shiba-inu", "0.0000128", 21, meme=True,
          categories=("meme-token", "ethereum-ecosystem"),
          contracts=((_ETH, "0x95aD61b0a150d79219dCF64E1E6Cc01f0B64C4cE", 18),)),
    _Spec("DOT", "Polkadot", "polkadot", "4.0", 22, categories=_L1),
    _Spec("LTC", "Litecoin", "litecoin", "88", 23, categories=("cryptocurrency", "layer-1")),
    _Spec("WBTC", "Wrapped Bitcoin", "wrapped-bitcoin", "0", 24, binance=None, wraps="native:bitcoin",
          peg=("native:bitcoin", "0.9996"), categories=("wrapped-tokens", "ethereum-ecosystem"),
          contracts=((_ETH, "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8),)),
    _Spec("DAI", "Dai", "dai", "0.9998", 25, binance=None, stable=True, categories=_STABLE,
          contracts=((_ETH, "0x6B175474E89094C44Da98b954EedeAC495271d0F", 18),)),
    _Spec("USDe", "Ethena USDe", "ethena-usde", "0.9994", 26, binance=None, stable=True, categories=_STABLE,
          contracts=((_ETH, "0x4c9EDD5852cd905f086C759E8383e09bff1E68B3", 18),)),
    _Spec("XMR", "Monero", "monero", "330", 27, binance=None, categories=("cryptocurrency", "layer-1")),
    _Spec("UNI", "Uniswap", "uniswap", "8.1", 28, categories=("decentralized-finance-defi", "ethereum-ecosystem"),
          contracts=((_ETH, "0x1f9840a85d5aF5bf1D1762F925BDADdC4201F984", 18),)),
    _Spec("PEPE", "Pepe", "pepe", "0.0000098", 29, trending=3, meme=True,
          categories=("meme-token", "ethereum-ecosystem"),
          contracts=((_ETH, "0x6982508145454Ce325dDbE47a25d4ec3d2311933", 18),)),
    _Spec("NEAR", "NEAR Protocol", "near", "2.6", 30, categories=_L1),
    _Spec("AAVE", "Aave", "aave", "270", 32, categories=("decentralized-finance-defi", "ethereum-ecosystem"),
          contracts=((_ETH, "0x7Fc66500c84A76Ad7e9c93437bFc5Ac33E2DDaE9", 18),)),
    _Spec("APT", "Aptos", "aptos", "5.1", 34, categories=_L1),
    _Spec("ETC", "Ethereum Classic", "ethereum-classic", "17", 36, categories=_L1),
    _Spec("ONDO", "Ondo", "ondo-finance", "0.92", 38, categories=("decentralized-finance-defi", "ethereum-ecosystem"),
          contracts=((_ETH, "0xfAbA6f8e4a5E8Ab82F62fe7C39859FA577269BE3", 18),)),
    _Spec("CRO", "Cronos", "crypto-com-chain", "0.095", 40, binance=None,
          categories=("exchange-based-tokens", "layer-1")),
    _Spec("FDUSD", "First Digital USD", "first-digital-usd", "0.9991", 42, stable=True, categories=_STABLE,
          contracts=((_ETH, "0xc5f0f7b66764F6ec8C8Dff7BA683102295E16409", 18),
                     (_BSC, "0xc5f0f7b66764F6ec8C8Dff7BA683102295E16409", 18))),
    _Spec("ARB", "Arbitrum", "arbitrum", "0.41", 44, categories=("arbitrum-ecosystem",),
          contracts=(("arbitrum", "0x912CE59144191C1204E64559FE8253a0e49E6548", 18),)),
    _Spec("POL", "POL (ex-MATIC)", "polygon-ecosystem-token", "0.23", 46, categories=("polygon-ecosystem",),
          contracts=((_ETH, "0x455e53CBB86018Ac2B8092FdCd39d8444aFFC3F6", 18),)),
    _Spec("KAS", "Kaspa", "kaspa", "0.09", 48, binance=None, categories=("layer-1",)),
    _Spec("RENDER", "Render", "render-token", "4.2", 50, categories=("artificial-intelligence", "ethereum-ecosystem"),
          contracts=((_ETH, "0x6De037ef9aD2725EB40118Bb1702EBb27e4Aeb24", 18),)),
    _Spec("PYUSD", "PayPal USD", "paypal-usd", "0.9996", 52, binance=None, stable=True, categories=_STABLE,
          contracts=((_ETH, "0x6c3ea9036406852006290770BEdFcAbA0e23A0e8", 6),)),
    _Spec("OKB", "OKB", "okb", "52", 54, binance=None, categories=("exchange-based-tokens",),
          contracts=((_ETH, "0x75231F58b43240C9718Dd58B4967c5114342a86c", 18),)),
    _Spec("BONK", "Bonk", "bonk", "0.0000215", 56, trending=5, meme=True,
          categories=("meme-token", "solana-ecosystem"),
          contracts=((_SOL, "DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f", 5),)),
    _Spec("WIF", "dogwifhat", "dogwifcoin", "0.91", 60, trending=9, meme=True,
          categories=("meme-token", "solana-ecosystem"),
          contracts=((_SOL, "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", 6),)),
    _Spec("CAKE", "PancakeSwap", "pancakeswap-token", "2.3", 64,
          categories=("decentralized-finance-defi", "binance-smart-chain"),
          contracts=((_BSC, "0x0E09FaBB73Bd3Ade0a17ECC321fD13a19e81cE82", 18),)),
    _Spec("JUP", "Jupiter", "jupiter-exchange-solana", "0.55", 68,
          categories=("decentralized-finance-defi", "solana-ecosystem"),
          contracts=((_SOL, "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6),)),
    _Spec("TUSD", "TrueUSD", "true-usd", "0.9985", 72, stable=True, categories=_STABLE,
          contracts=((_ETH, "0x0000000000085d4780B73119b644AE5ecd22b376", 18),)),
    # Edge cases with generated addresses ("*").
    _Spec("ORBT", "Orbital Ledger", "orbital-ledger", "0.74", 77, binance="BREAK",
          categories=("decentralized-finance-defi", "ethereum-ecosystem"), contracts=((_ETH, "*", 18),)),
    _Spec("PICO", "Picocat", "picocat", "0.000000000012345", 130, binance=None, trending=2, meme=True,
          categories=("meme-token", "binance-smart-chain"), contracts=((_BSC, "*", 18),)),
    _Spec("PEPE", "Pepe on Solana", None, "0.0042", None, binance=None, trending=4, risk="sol_mintable", meme=True,
          pump=True, contracts=((_SOL, "*", 6),)),
    _Spec("GLORP", "Glorp the Frog", None, "0.0031", None, binance=None, trending=1, meme=True, pump=True,
          contracts=((_SOL, "*", 6),)),
    _Spec("ZAPY", "Zappy Lizard", None, "0.00042", None, binance=None, trending=6, risk="sol_freezable", meme=True,
          pump=True, contracts=((_SOL, "*", 6),)),
    _Spec("MORA", "Moranga", "moranga", "0.087", 104, binance=None, trending=7,
          categories=("artificial-intelligence", "solana-ecosystem"), contracts=((_SOL, "*", 9),)),
    _Spec("HONK", "Honk Goose", None, "0.0000071", None, binance=None, trending=8, meme=True, pump=True,
          contracts=((_SOL, "*", 6),)),
    _Spec("KRILL", "Krill Protocol", "krill-protocol", "1.42", 117, binance=None, trending=10,
          categories=("decentralized-finance-defi", "solana-ecosystem"), contracts=((_SOL, "*", 9),)),
    _Spec("TRAPX", "Trapdoor", None, "0.000183", None, binance=None, trending=11, risk="honeypot", meme=True,
          contracts=(("base", "*", 18),)),
    _Spec("BLUB", "Blub Fish", "blub-fish", "0.0265", 109, binance=None, trending=12, meme=True,
          categories=("meme-token", "base-ecosystem"), contracts=(("base", "*", 18),)),
    _Spec("TAXO", "Taxocoin", None, "0.0049", None, binance=None, trending=13, risk="high_tax",
          contracts=(("base", "*", 18),)),
    _Spec("MINTY", "Minty Fresh", None, "0.00000314", None, binance=None, trending=14, risk="mintable", meme=True,
          contracts=((_BSC, "*", 18),)),
    _Spec("PRXY", "Proxy Finance", "proxy-finance", "0.61", 121, binance=None, trending=15, risk="proxy",
          categories=("decentralized-finance-defi", "binance-smart-chain"), contracts=((_BSC, "*", 18),)),
    _Spec("SHDW", "Shadow Vault", None, "0.000022", None, binance=None, trending=16, risk="closed_source",
          contracts=((_ETH, "*", 18),)),
    _Spec("AURA8", "Aurate", "aurate", "0.33", 112, binance=None, trending=17,
          categories=("artificial-intelligence", "ethereum-ecosystem"), contracts=((_ETH, "*", 18),)),
    _Spec("FEEZ", "Feez Token", None, "0.0117", None, binance=None, trending=18, risk="high_tax",
          contracts=((_ETH, "*", 9),)),
    _Spec("CAMO", "Camo Chameleon", "camo-chameleon", "0.072", 138, binance=None, trending=19, meme=True,
          categories=("meme-token", "arbitrum-ecosystem"), contracts=(("arbitrum", "*", 18),)),
    _Spec("BASED", "Based Brett Jr", None, "0.00088", None, binance=None, trending=20, meme=True,
          contracts=(("base", "*", 18),)),
    _Spec("NUBS", "Nubs", None, "0.000056", None, binance=None, trending=21, meme=True, pump=True,
          contracts=((_SOL, "*", 6),)),
)
# fmt: on

# Market cap by rank: 7 % apart in the first 150 ranks, more than the price model ever moves
# two tokens apart, so ranks never cross; a slower power-law tail beyond.
_TOP_CAP = 1.5e12
_CAP_STEP = 0.93


def market_cap_for_rank(rank: int) -> float:
    """Designed USD market cap of the token at `rank`."""
    if rank <= CORE_SIZE:
        return _TOP_CAP * _CAP_STEP ** (rank - 1)
    return _TOP_CAP * _CAP_STEP ** (CORE_SIZE - 1) * (rank / CORE_SIZE) ** -1.6


_ONSETS = (
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "fl",
    "g",
    "gl",
    "gr",
    "h",
    "j",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pl",
    "qu",
    "r",
    "s",
    "sh",
    "sk",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "x",
    "z",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "oo", "y", "io")
_CODAS = ("", "", "", "n", "r", "x", "k", "s", "th", "l", "m")
_SYLLABLES = tuple(onset + vowel + coda for onset in _ONSETS for vowel in _VOWELS for coda in _CODAS)
_SUFFIXES = ("", "", "", " Protocol", " Finance", " Network", " AI", " Labs", " Chain", " Swap", " DAO")
_MEME_SUFFIXES = (" Inu", " Cat", " Frog", " Dog", " Pepe", " Moon")
_FILLER_CHAINS = (
    ("ethereum", 0.36),
    ("bsc", 0.22),
    ("solana", 0.24),
    ("base", 0.10),
    ("arbitrum", 0.04),
    ("polygon", 0.04),
)


class Universe:
    """All tokens of the simulated market and their prices over time."""

    def __init__(
        self, seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE, usdt_usd: Decimal = DEFAULT_USDT_USD
    ) -> None:
        if not isinstance(size, int) or not len(_DESIGNED) <= size <= MAX_SIZE:
            raise ValueError(f"universe size must be an integer from {len(_DESIGNED)} to {MAX_SIZE}, got {size!r}")
        self.seed = seed
        self.size = size
        # Building allocates ~2 million objects, none of them cyclic: without the cyclic
        # collector rescanning the growing heap the build takes half the time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.tokens: tuple[Token, ...] = tuple(_Builder(seed, size).build())
            self.by_key: dict[str, Token] = {t.key: t for t in self.tokens}
            self.by_coingecko_id: dict[str, Token] = {t.coingecko_id: t for t in self.tokens if t.coingecko_id}
            self.by_binance_symbol: dict[str, Token] = {t.binance_symbol: t for t in self.tokens if t.binance_symbol}
            self._by_symbol: dict[str, list[Token]] = {}
            self._by_contract: dict[tuple[str, str], Token] = {}
            self._by_address: dict[str, list[tuple[Token, Contract]]] = {}
            for token in self.tokens:
                self._by_symbol.setdefault(token.symbol.upper(), []).append(token)
                for contract in token.contracts:
                    canonical = contract.canonical_address
                    self._by_contract[(contract.chain, canonical)] = token
                    self._by_address.setdefault(canonical, []).append((token, contract))
        finally:
            if collecting:
                gc.enable()
        self.prices = PriceModel(self.by_key, usdt_usd)
        # Derived data computed on demand by the body builders (e.g. pools), memoised per universe.
        self.memo: dict[str, dict] = {}

    # --- lookups -------------------------------------------------------------------------------

    def get(self, ref: str | Token) -> Token:
        """A token by key, CoinGecko id, symbol (case-insensitive, must be unique), Binance pair or address.

        Raises LookupError when nothing matches or a symbol is shared by several tokens.
        """
        if isinstance(ref, Token):
            return ref
        if not isinstance(ref, str) or not ref:
            raise LookupError(f"token reference must be a non-empty string, got {ref!r}")
        if ref in self.by_key:
            return self.by_key[ref]
        if ref in self.by_coingecko_id:
            return self.by_coingecko_id[ref]
        if ":" in ref:
            chain, _, address = ref.partition(":")
            if chain in CHAINS and (token := self.by_contract(chain, address)) is not None:
                return token
        candidates = self._by_symbol.get(ref.upper(), [])
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            keys = ", ".join(t.key for t in candidates)
            raise LookupError(f"symbol {ref!r} is shared by several tokens ({keys}); use a token key")
        if ref.upper() in self.by_binance_symbol:
            return self.by_binance_symbol[ref.upper()]
        matches = self.by_address(ref)
        if len(matches) == 1:
            return matches[0][0]
        raise LookupError(f"no token {ref!r} in the simulated universe (seed {self.seed}, size {self.size})")

    def by_contract(self, chain: str, address: str) -> Token | None:
        """The token with `address` on `chain` (EVM case-insensitive, Solana exact), or None."""
        chain_info = CHAINS.get(chain)
        if chain_info is None:
            return None
        return self._by_contract.get((chain, canonical_address(chain_info, address)))

    def by_address(self, address: str) -> list[tuple[Token, Contract]]:
        """Every (token, contract) with this address on any chain (EVM case-insensitive)."""
        hits = self._by_address.get(address, [])
        if not hits and address.startswith(("0x", "0X")):
            hits = self._by_address.get(address.lower(), [])
        return hits

    def ranked(self) -> list[Token]:
        """CoinGecko-listed tokens by market-cap rank."""
        # (every token sorted has a market_cap_rank; `or 0` only tells the type checker so)
        return sorted((t for t in self.tokens if t.market_cap_rank), key=lambda t: t.market_cap_rank or 0)

    def top(self, n: int = 100) -> list[Token]:
        """The top `n` by market cap, stablecoins and wrapped tokens included (as CoinGecko lists them)."""
        return self.ranked()[:n]

    def trending(self) -> list[Token]:
        """Trending tokens, most boosted first."""
        # (every token sorted has a trending_rank; `or 0` only tells the type checker so)
        return sorted((t for t in self.tokens if t.trending_rank), key=lambda t: t.trending_rank or 0)

    def with_pools(self) -> Iterable[Token]:
        """Tokens traded on DEXes (every token with a contract)."""
        return (t for t in self.tokens if t.contracts)

    # --- prices --------------------------------------------------------------------------------

    def price_usdt(self, ref: str | Token, at: datetime | float | None = None) -> Decimal:
        """The exact USDT price every API quotes for the token at `at` (default: now)."""
        return self.prices.usdt(self.get(ref), unix_second(at))

    def price_usd(self, ref: str | Token, at: datetime | float | None = None) -> Decimal:
        """The exact USD price CoinGecko, DexScreener and GeckoTerminal quote at `at`."""
        return self.prices.usd(self.get(ref), unix_second(at))

    def usdt_usd(self, at: datetime | float | None = None) -> Decimal:
        """USD price of one USDT at `at` (deliberately not 1)."""
        return self.prices.usdt_usd_rate(unix_second(at))

    def market_cap_usd(self, token: Token, second: int) -> Decimal:
        """Market cap in USD (price times circulating supply), whole dollars."""
        return (self.prices.usd(token, second) * token.circulating_supply).quantize(Decimal(1))

    @cached_property
    def quote_tokens(self) -> dict[str, Token]:
        """Universe tokens that DEX pools quote against, by key (WETH's anchor ETH, USDC, ...)."""
        keys = {q.pegged_to for c in CHAINS.values() for q in (c.native_quote, c.usd_quote)}
        return {key: self.by_key[key] for key in keys}


def unix_second(at: datetime | float | None) -> int:
    """The unix second containing `at` (a timezone-aware datetime, a unix timestamp, or now)."""
    if at is None:
        return int(datetime.now(UTC).timestamp())
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware (UTC)")
        return math.floor(at.timestamp())
    return math.floor(at)


# --- generation ------------------------------------------------------------------------------------


class _Builder:
    """Turns the designed specs plus a seeded stream of generated tokens into Token objects."""

    def __init__(self, seed: int, size: int) -> None:
        self.seed = seed
        self.size = size
        self.rng = random.Random(seed)
        self.pick = _picker(self.rng)
        self.symbols: set[str] = {s.symbol.upper() for s in _DESIGNED}
        self.ids: set[str] = {s.coingecko_id for s in _DESIGNED if s.coingecko_id}

    def build(self) -> list[Token]:
        # (designed rank, spec), by rank
        pending = sorted(((s.rank, s) for s in _DESIGNED if s.rank is not None), key=lambda ranked: ranked[0])
        unlisted = [s for s in _DESIGNED if s.rank is None]
        listed_slots = self.size - len(unlisted)
        tokens: list[Token] = []
        for rank in range(1, listed_slots + 1):
            remaining_slots = listed_slots - rank + 1
            if pending and (pending[0][0] <= rank or len(pending) >= remaining_slots):
                tokens.append(self._designed(pending.pop(0)[1], len(tokens), rank))
            else:
                tokens.append(self._filler(len(tokens), rank))
        for spec in unlisted:
            tokens.append(self._designed(spec, len(tokens), None))
        return tokens

    def _waves(self, rng: random.Random, scale: float) -> tuple[Wave, ...]:
        # Periods of about a minute, tens of minutes and hours. Amplitudes sum to <= 3 % (x scale):
        # less than half the 7 % gap between two ranks, so ranks never cross.
        r, tau = rng.random, 2 * math.pi
        return (
            Wave(scale * (0.002 + 0.002 * r()), tau / (45 + 75 * r()), tau * r()),
            Wave(scale * (0.006 + 0.004 * r()), tau / (600 + 3000 * r()), tau * r()),
            Wave(scale * (0.010 + 0.006 * r()), tau / (14400 + 93600 * r()), tau * r()),
        )

    def _supplies(
        self, rng: random.Random, cap: float, price: float, fixed_max: bool
    ) -> tuple[Decimal, Decimal, Decimal | None]:
        circulating = max(1, round(cap / price))
        total = round(circulating * (1 + 0.4 * rng.random()))
        return Decimal(circulating), Decimal(total), (Decimal(total) if fixed_max or rng.random() < 0.5 else None)

    def _designed(self, spec: _Spec, index: int, rank: int | None) -> Token:
        rng = random.Random(f"{self.seed}:{spec.symbol}:{spec.name}")
        contracts = tuple(
            Contract(
                chain,
                self._address(rng, chain, spec.pump) if address == "*" else canonical_address(CHAINS[chain], address),
                decimals,
            )
            for chain, address, decimals in spec.contracts
        )
        price = Decimal(spec.price)
        if spec.peg is not None:
            anchor = next(s for s in _DESIGNED if _spec_key(s) == spec.peg[0])
            price = Decimal(anchor.price) * Decimal(spec.peg[1])
        # A DEX-only launch (no rank) has a small market cap.
        cap = market_cap_for_rank(rank) if rank is not None else rng.uniform(2e5, 4e7)
        price_float = float(price)
        waves: tuple[Wave, ...]
        if spec.stable:
            waves = () if price == 1 else (Wave(0.0001, 2 * math.pi / rng.uniform(60, 300), rng.uniform(0, 6.28)),)
        elif spec.peg is not None:
            waves = ()
        else:
            waves = self._waves(rng, 1.0 if rank is not None else 2.5)
        circulating, total, maximum = self._supplies(rng, cap, price_float, fixed_max=spec.symbol == "BTC")
        if spec.symbol == "BTC":
            circulating, total, maximum = Decimal(19_870_000), Decimal(19_870_000), Decimal(21_000_000)
        chain = contracts[0].chain if contracts else None
        categories = spec.categories or (
            (("meme-token",) if spec.meme else ()) + ((_ECOSYSTEM[chain],) if chain else ())
        )
        return Token(
            index=index,
            key=_key(spec.coingecko_id, contracts),
            symbol=spec.symbol,
            name=spec.name,
            coingecko_id=spec.coingecko_id,
            contracts=contracts,
            market_cap_rank=rank,
            is_stablecoin=spec.stable,
            wraps=spec.wraps,
            binance_status=spec.binance,
            trending_rank=spec.trending,
            categories=categories,
            risk=spec.risk,
            is_meme=spec.meme,
            image_id=rng.randrange(1000, 60000),
            design_market_cap_usd=cap,
            circulating_supply=circulating,
            total_supply=total,
            max_supply=maximum,
            base_price_usdt=price,
            log_base=math.log(price_float),
            waves=waves,
            binance_tick=binance_tick(price_float) if spec.binance else None,
            peg=(spec.peg[0], Decimal(spec.peg[1])) if spec.peg else None,
        )

    def _filler(self, index: int, rank: int) -> Token:
        rng = self.rng
        meme = rng.random() < 0.25
        native = rng.random() < (0.08 if rank <= CORE_SIZE else 0.02)
        chain = None if native else _weighted(rng, _FILLER_CHAINS)
        pick = self.pick
        word = (pick(_SYLLABLES) + pick(_SYLLABLES) + (pick(_SYLLABLES) if rng.random() < 0.3 else "")).capitalize()
        suffix = pick(_MEME_SUFFIXES if meme else _SUFFIXES)
        name = word + suffix
        symbol = self._unique_symbol(word)
        coingecko_id = self._unique_id(name)
        cap = market_cap_for_rank(rank)
        price = 10 ** ((-7.5 + 8 * rng.random()) if meme else (-3 + 6.5 * rng.random()))
        # Binance lists nothing it could not quote with 8 decimals.
        on_binance = rng.random() < (0.75 if rank <= 100 else 0.45 if rank <= 1000 else 0.1) and price >= 1e-5
        contracts = (
            ()
            if chain is None
            else (Contract(chain, self._address(rng, chain, pump=meme and rng.random() < 0.5), pick((6, 9, 18, 18))),)
        )
        risk = _filler_risk(rng, chain)
        waves = self._waves(rng, 1.0)
        circulating, total, maximum = self._supplies(rng, cap, price, fixed_max=False)
        categories = (("meme-token",) if meme else ("layer-1",) if native else ("decentralized-finance-defi",)) + (
            (_ECOSYSTEM[chain],) if chain else ()
        )
        return Token(
            index=index,
            key=_key(coingecko_id, contracts),
            symbol=symbol,
            name=name,
            coingecko_id=coingecko_id,
            contracts=contracts,
            market_cap_rank=rank,
            is_stablecoin=False,
            wraps=None,
            binance_status="TRADING" if on_binance else None,
            trending_rank=None,
            categories=categories,
            risk=risk,
            is_meme=meme,
            image_id=1000 + int(rng.random() * 900000),
            design_market_cap_usd=cap,
            circulating_supply=circulating,
            total_supply=total,
            max_supply=maximum,
            base_price_usdt=Decimal(repr(price)),
            log_base=math.log(price),
            waves=waves,
            binance_tick=binance_tick(price) if on_binance else None,
            peg=None,
        )

    def _address(self, rng: random.Random, chain: str, pump: bool) -> str:
        """A fresh canonical address (EVM lower-case hex, Solana base58)."""
        if CHAINS[chain].is_evm:
            return "0x" + rng.randbytes(20).hex()
        return addresses.random_solana_address(rng, "pump" if pump else "")

    def _unique_symbol(self, word: str) -> str:
        letters = word.upper()  # generated words are letters only
        for length in (self.pick((3, 4, 4, 5)), 5, 6, len(letters)):
            candidate = letters[:length]
            if len(candidate) >= 2 and candidate not in self.symbols:
                self.symbols.add(candidate)
                return candidate
        n = 2
        while f"{letters[:6]}{n}" in self.symbols:
            n += 1
        self.symbols.add(f"{letters[:6]}{n}")
        return f"{letters[:6]}{n}"

    def _unique_id(self, name: str) -> str:
        slug = name.lower().replace(" ", "-")  # generated names are letters and spaces
        candidate, n = slug, 2
        while candidate in self.ids:
            candidate, n = f"{slug}-{n}", n + 1
        self.ids.add(candidate)
        return candidate


def _key(coingecko_id: str | None, contracts: tuple[Contract, ...]) -> str:
    if not contracts:
        return f"native:{coingecko_id}"
    return f"{contracts[0].chain}:{contracts[0].canonical_address}"


def _spec_key(spec: _Spec) -> str:
    if not spec.contracts:
        return f"native:{spec.coingecko_id}"
    chain, address, _ = spec.contracts[0]
    return f"{chain}:{canonical_address(CHAINS[chain], address)}"


def _picker(rng: random.Random):
    """`rng.choice` without its overhead (a third of the build time of a 50k universe)."""
    draw = rng.random
    return lambda seq: seq[int(draw() * len(seq))]


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    point, acc = rng.random(), 0.0
    for value, weight in choices:
        acc += weight
        if point < acc:
            return value
    return choices[-1][0]


def _filler_risk(rng: random.Random, chain: str | None) -> str:
    point = rng.random()
    if chain is None or point < 0.85:
        return "clean"
    risks = SOLANA_RISKS[1:] if not CHAINS[chain].is_evm else EVM_RISKS[1:]
    return risks[int((point - 0.85) / 0.15 * len(risks))]
