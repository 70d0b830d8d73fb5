"""USDT prices: conversion from USD, direct USDT pools, and the choice of source.

Prices are always in USDT. A USD price is converted with a current
USDT/USD rate (USD per 1 USDT, e.g. 1.0003), never assumed to be 1:

    price_usdt = price_usd / usdt_usd_rate

The division runs in its own decimal context with at least 40 significant digits (more
when the USD price itself carries more), so a price of 0.000000000012345 keeps all its
digits. A pool quoted in the chain's USDT contract gives the USDT price directly
(``priceNative``), which is preferred over a converted USD price.

Top-100 source order per token: Binance (a ``<SYMBOL>USDT`` spot pair trading) ->
DexScreener (the token has a contract on a chain DexScreener covers) -> CoinGecko (by id).
Binance pairs are matched by symbol; CoinGecko's top 100 has no duplicate symbols that
Binance lists under another asset today, and a wrong match would show up as a price far
from CoinGecko's, which the price function may check.

Plausibility (`screen_prices`, docs/pricing.md): a price orders of magnitude from the
token's last stored price, or far from what another source gave moments ago, is held back
as suspect instead of served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from shared.crawler.domain import chains
from shared.crawler.domain.normalize_binance import usdt_pair
from shared.crawler.domain.sources import Source
from shared.crawler.models import Pool, PriceQuote, TokenFailure, TokenProfile
from shared.wire import require_utc, to_decimal

MIN_SIGNIFICANT_DIGITS = 40


def usd_to_usdt(price_usd: Decimal, usdt_usd_rate: Decimal) -> Decimal:
    """A USD price in USDT: ``price_usd / usdt_usd_rate``, to at least 40 significant digits.

    Raises ValueError when the rate is missing or not positive, or the price is not
    positive: a price is never produced from an assumed rate.
    """
    price = to_decimal(price_usd)
    rate = to_decimal(usdt_usd_rate)
    if rate is None or rate <= 0:
        raise ValueError(f"USDT/USD rate must be a positive number, got {usdt_usd_rate!r}")
    if price is None or price <= 0:
        raise ValueError(f"USD price must be a positive number, got {price_usd!r}")
    digits = max(MIN_SIGNIFICANT_DIGITS, len(price.as_tuple().digits) + 1)
    return Context(prec=digits, rounding=ROUND_HALF_EVEN).divide(price, rate)


def price_usdt_direct(pool: Pool) -> Decimal | None:
    """The pool's price in USDT when its quote token is the chain's USDT contract, else None.

    ``price_native`` is the price in quote-token units, so in a USDT-quoted pool it *is*
    the USDT price. Matching is by contract address, never by the spoofable symbol.
    """
    usdt = chains.usdt_address(pool.chain)
    if usdt is None or pool.quote_address != usdt:
        return None
    return pool.price_native if pool.price_native is not None and pool.price_native > 0 else None


def quote_from_usd(
    token_key: str,
    symbol: str,
    price_usd: Decimal | None,
    usdt_usd_rate: Decimal | None,
    source: str,
    observed_at: datetime,
) -> PriceQuote | TokenFailure:
    """A `PriceQuote` converted from a USD price, or the reason there is none."""
    observed_at = require_utc(observed_at, "observed_at")
    if price_usd is None or price_usd <= 0:
        return TokenFailure(token_key, f"{source}: no usable USD price")
    if usdt_usd_rate is None or usdt_usd_rate <= 0:
        return TokenFailure(token_key, f"{source}: no usable USDT/USD rate to convert the USD price")
    return PriceQuote(token_key, symbol, usd_to_usdt(price_usd, usdt_usd_rate), source, observed_at)


def quote_from_pool(
    token_key: str,
    symbol: str,
    pool: Pool,
    usdt_usd_rate: Decimal | None,
    source: str,
    observed_at: datetime,
) -> PriceQuote | TokenFailure:
    """A `PriceQuote` from a token's main pool: direct when USDT-quoted, else converted USD."""
    direct = price_usdt_direct(pool)
    if direct is not None:
        return PriceQuote(token_key, symbol, direct, source, require_utc(observed_at, "observed_at"))
    return quote_from_usd(token_key, symbol, pool.price_usd, usdt_usd_rate, source, observed_at)


# --- source selection ------------------------------------------------------------------------


def price_sources(profile: TokenProfile, usdt_bases: frozenset[str] | set[str]) -> tuple[Source, ...]:
    """The sources that can price this top-100 token, in the order to try them."""
    sources: list[Source] = []
    if profile.symbol.strip().upper() in usdt_bases:
        sources.append(Source.BINANCE)
    if profile.chain and profile.address and chains.dexscreener_chain_id(profile.chain):
        sources.append(Source.DEXSCREENER)
    if profile.coingecko_id:
        sources.append(Source.COINGECKO)
    return tuple(sources)


@dataclass(frozen=True, slots=True)
class Top100SourcePlan:
    """Which source prices which top-100 token first (fall back along `price_sources`)."""

    binance: dict[str, TokenProfile] = field(default_factory=dict)  # Binance pair -> profile
    dexscreener: tuple[TokenProfile, ...] = ()
    coingecko: tuple[TokenProfile, ...] = ()


def choose_top100_sources(
    profiles: Iterable[TokenProfile], usdt_bases: frozenset[str] | set[str]
) -> tuple[Top100SourcePlan, list[TokenFailure]]:
    """Group tokens by their first price source; a token no source can price is a failure."""
    binance: dict[str, TokenProfile] = {}
    dexscreener: list[TokenProfile] = []
    coingecko: list[TokenProfile] = []
    failures: list[TokenFailure] = []
    for profile in profiles:
        sources = price_sources(profile, usdt_bases)
        if sources and sources[0] is Source.BINANCE:
            pair = usdt_pair(profile.symbol)
            if pair not in binance:
                binance[pair] = profile
                continue
            sources = sources[1:]  # a second coin with the same ticker: the pair is not its
        if not sources:
            reason = "no price source: no Binance USDT pair, contract or CoinGecko id"
            failures.append(TokenFailure(profile.key, reason))
        elif sources[0] is Source.DEXSCREENER:
            dexscreener.append(profile)
        else:
            coingecko.append(profile)
    return Top100SourcePlan(binance, tuple(dexscreener), tuple(coingecko)), failures


# --- plausibility ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlausibilityLimits:
    """How far a new price may be from the token's last stored one before it is held back.

    `max_jump_ratio`: against the last stored price from any source (10 = one order of
    magnitude either way). `max_source_spread_ratio`: against a price *another* source gave
    within `same_tick_seconds` (the same tick, seen from two sources). A last price older
    than `reference_max_age_seconds` is no reference: a genuine jump is held back at most
    that long, never forever.
    """

    max_jump_ratio: Decimal
    max_source_spread_ratio: Decimal
    same_tick_seconds: float
    reference_max_age_seconds: float


@dataclass(frozen=True, slots=True)
class ReferencePrice:
    """A token's last stored price, what a new one is checked against."""

    price_usdt: Decimal
    source: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class SuspectPrice:
    """A quote held back, with the reason."""

    quote: PriceQuote
    reason: str


def price_ratio(a: Decimal, b: Decimal) -> Decimal:
    """How many times the larger of two positive prices is the smaller (1 = equal)."""
    return max(a, b) / min(a, b)


def implausibility(quote: PriceQuote, reference: ReferencePrice | None, limits: PlausibilityLimits) -> str | None:
    """Why `quote` is not plausible against the token's last stored price, or None when it is."""
    if reference is None or reference.price_usdt <= 0 or quote.price_usdt <= 0:
        return None
    age = (quote.observed_at - reference.observed_at).total_seconds()
    if age > limits.reference_max_age_seconds:
        return None
    ratio = price_ratio(quote.price_usdt, reference.price_usdt)
    if (
        reference.source != quote.source
        and abs(age) <= limits.same_tick_seconds
        and ratio > limits.max_source_spread_ratio
    ):
        return (
            f"suspect price: {quote.source} says {quote.price_usdt} USDT, {reference.source} said "
            f"{reference.price_usdt} USDT {age:.0f} s before: {float(ratio):.3g}x apart "
            f"(limit {limits.max_source_spread_ratio}x across sources)"
        )
    if ratio > limits.max_jump_ratio:
        return (
            f"suspect price: {quote.source} says {quote.price_usdt} USDT, {float(ratio):.3g}x the last stored "
            f"{reference.price_usdt} USDT ({reference.source}, {age:.0f} s before; limit {limits.max_jump_ratio}x)"
        )
    return None


def screen_prices(
    quotes: Iterable[PriceQuote], references: Mapping[str, ReferencePrice], limits: PlausibilityLimits
) -> tuple[list[PriceQuote], list[SuspectPrice]]:
    """Split quotes into the plausible ones (served) and the suspect ones (held back, with why)."""
    plausible: list[PriceQuote] = []
    suspect: list[SuspectPrice] = []
    for quote in quotes:
        reason = implausibility(quote, references.get(quote.token_key), limits)
        if reason is None:
            plausible.append(quote)
        else:
            suspect.append(SuspectPrice(quote, reason))
    return plausible, suspect
