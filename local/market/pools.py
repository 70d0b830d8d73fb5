"""DEX pools of the universe's tokens, shared by DexScreener, GeckoTerminal and GoPlus.

Each token with a contract has, on each of its chains, 2-3 pools with different liquidity.
The most liquid one (`is_main`) quotes the token's exact price; the others are a few tenths of
a percent off, so a client that does not pick the deepest pool is detectable. Some tokens also
carry a messy extra, as real DexScreener data does:

- `no_price_usd`: a pool against an obscure quote token, without `priceUsd`;
- `zero_liquidity`: an abandoned pool with liquidity 0 and a far-off price;
- `duplicate`: the main pool listed twice.

The response order is not by liquidity for every token (the main pool is second for some).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from local.market import addresses
from local.market.chains import CHAINS, Chain, Dex, QuoteAsset
from local.market.prices import EXACT, round_significant
from local.market.universe import Contract, Token, Universe

QUIRKS = ("no_price_usd", "zero_liquidity")  # values of Pool.quirk; a duplicate is the main Pool listed twice
_OBSCURE_QUOTE = QuoteAsset("ZIGGY", "Ziggy Test Token", "", "", "", 18)  # address drawn per pool


@dataclass(frozen=True, slots=True)
class Pool:
    """One DEX pool of `token` on `chain`, against `quote`."""

    token: Token
    chain: Chain
    contract: Contract
    dex: Dex
    address: str  # canonical (EVM lower-case, Solana as written)
    display_address: str  # as DexScreener writes it (EIP-55 for EVM)
    quote: QuoteAsset
    quote_address: str
    liquidity_usd: Decimal
    volume_24h_usd: Decimal
    price_factor: Decimal  # pool price / token price
    created_at_ms: int
    is_main: bool
    quirk: str | None = None

    @property
    def has_price_usd(self) -> bool:
        return self.quirk != "no_price_usd"

    def price_usd(self, universe: Universe, second: int) -> Decimal:
        """This pool's USD price of the token (exact for the main pool)."""
        price = universe.prices.usd(self.token, second)
        if self.price_factor == 1:
            return price
        return round_significant(float(price * self.price_factor), 10)

    def quote_price_usd(self, universe: Universe, second: int) -> Decimal:
        """USD price of the quote token (the obscure one is worth a fixed cent)."""
        if not self.quote.pegged_to:
            return Decimal("0.01")
        return universe.prices.usd(universe.by_key[self.quote.pegged_to], second)

    def price_native(self, universe: Universe, second: int) -> Decimal:
        """Price of the token in units of the quote token, 8 significant digits."""
        ratio = EXACT.divide(self.price_usd(universe, second), self.quote_price_usd(universe, second))
        return round_significant(float(ratio))


def liquidity_usd(token: Token) -> Decimal:
    """The token's total DEX liquidity in USD (fixed; 1-4 % of its designed market cap)."""
    share = 0.01 + 0.03 * ((token.index * 7919) % 100) / 100
    return Decimal(round(token.design_market_cap_usd * share, 2)).quantize(Decimal("0.01"))


def pools_of(universe: Universe, token: Token, chain: str | None = None) -> tuple[Pool, ...]:
    """The pools of `token` on `chain` (default: its home chain) in DexScreener's response order."""
    contract = token.contract_on(chain) if chain else (token.contracts[0] if token.contracts else None)
    if contract is None:
        return ()
    cache = universe.memo.setdefault("pools", {})
    key = (token.index, contract.chain)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _pools(universe, token, contract)
    return found


def main_pool(universe: Universe, token: Token, chain: str | None = None) -> Pool | None:
    """The deepest pool, the one quoting the token's exact price."""
    return next((p for p in pools_of(universe, token, chain) if p.is_main), None)


def _pools(universe: Universe, token: Token, contract: Contract) -> tuple[Pool, ...]:
    chain = CHAINS[contract.chain]
    rng = random.Random(f"{universe.seed}:pools:{token.key}:{contract.chain}")
    total = liquidity_usd(token)
    count = 2 + rng.randrange(2)
    shares = sorted((rng.uniform(0.05, 0.3) for _ in range(count - 1)), reverse=True)
    main_share = Decimal(1) - sum(Decimal(f"{s:.4f}") for s in shares)
    own_address = contract.canonical_address
    pools = []
    for i, share in enumerate((main_share, *(Decimal(f"{s:.4f}") for s in shares))):
        quote = chain.native_quote if i % 2 == 0 else chain.usd_quote
        if quote.address.lower() == own_address.lower():  # WETH/WETH: quote against the other asset
            quote = chain.usd_quote if quote is chain.native_quote else chain.native_quote
        factor = Decimal(1) if i == 0 else Decimal(1) + Decimal(rng.choice((-1, 1)) * rng.randint(8, 45)) / 10000
        pools.append(
            _pool(
                rng,
                token,
                chain,
                contract,
                chain.dexes[i % len(chain.dexes)],
                quote,
                (total * share).quantize(Decimal("0.01")),
                factor,
                i == 0,
            )
        )
    quirk_roll = token.index % 6
    if quirk_roll == 1:
        pools.append(
            _pool(
                rng,
                token,
                chain,
                contract,
                chain.dexes[-1],
                _OBSCURE_QUOTE,
                (total * Decimal("0.01")).quantize(Decimal("0.01")),
                Decimal("1.02"),
                False,
                "no_price_usd",
            )
        )
    elif quirk_roll == 3:
        pools.append(
            _pool(
                rng,
                token,
                chain,
                contract,
                chain.dexes[0],
                chain.native_quote,
                Decimal(0),
                Decimal(rng.choice(("0.31", "2.7", "4.05"))),
                False,
                "zero_liquidity",
            )
        )
    elif quirk_roll == 5:
        pools.append(pools[0])  # the same pair twice, as DexScreener sometimes returns it
    if token.index % 3 == 2:  # not every response lists the deepest pool first
        pools[0], pools[1] = pools[1], pools[0]
    return tuple(pools)


def _pool(
    rng: random.Random,
    token: Token,
    chain: Chain,
    contract: Contract,
    dex: Dex,
    quote: QuoteAsset,
    liquidity: Decimal,
    factor: Decimal,
    is_main: bool,
    quirk: str | None = None,
) -> Pool:
    if chain.is_evm:
        address = "0x" + rng.randbytes(20).hex()
        display = addresses.eip55(address)
    else:
        address = display = addresses.random_solana_address(rng)
    quote_address = quote.address
    if not quote_address:  # the obscure quote token gets an address of its own
        quote_address = (
            addresses.eip55("0x" + rng.randbytes(20).hex()) if chain.is_evm else addresses.random_solana_address(rng)
        )
    turnover = Decimal(f"{rng.uniform(0.2, 3.0):.3f}")
    return Pool(
        token=token,
        chain=chain,
        contract=contract,
        dex=dex,
        address=address,
        display_address=display,
        quote=quote,
        quote_address=quote_address,
        liquidity_usd=liquidity,
        volume_24h_usd=(liquidity * turnover).quantize(Decimal("0.01")),
        price_factor=factor,
        created_at_ms=1_600_000_000_000 + rng.randrange(0, 170_000_000) * 1000,
        is_main=is_main,
        quirk=quirk,
    )
