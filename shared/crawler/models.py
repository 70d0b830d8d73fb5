"""Domain records shared by every pipeline.

Plain frozen dataclasses: no CloudEvent, HTTP or database types here. Money is
`Decimal` everywhere; timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Contract:
    """A token's contract on one chain. `chain` is the canonical slug of shared.crawler.domain.chains."""

    chain: str
    address: str
    decimals: int | None = None


@dataclass(frozen=True, slots=True)
class Pool:
    """One market (DEX pair) of a token, as normalised from DexScreener or GeckoTerminal."""

    chain: str
    dex: str
    pair_address: str
    base_address: str
    quote_symbol: str
    quote_address: str | None
    price_usd: Decimal | None
    price_native: Decimal | None
    liquidity_usd: Decimal | None
    volume_24h_usd: Decimal | None
    fdv_usd: Decimal | None
    market_cap_usd: Decimal | None
    url: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenProfile:
    """Everything known about a token's identity and metadata (not its price)."""

    key: str
    symbol: str
    name: str | None
    chain: str | None
    address: str | None
    contracts: tuple[Contract, ...] = ()
    decimals: int | None = None
    logo_url: str | None = None
    websites: tuple[str, ...] = ()
    socials: tuple[tuple[str, str], ...] = ()  # (kind, url), e.g. ("twitter", "https://x.com/...")
    tags: tuple[str, ...] = ()
    coingecko_id: str | None = None
    market_cap_usd: Decimal | None = None
    market_cap_rank: int | None = None
    markets: tuple[Pool, ...] = ()
    main_pool: Pool | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """One observed USDT price of a token."""

    token_key: str
    symbol: str
    price_usdt: Decimal
    source: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The current security audit of a token by one provider."""

    token_key: str
    provider: str
    score: Decimal  # 0..100, higher is safer; formula in shared.crawler.domain.audit_score
    is_verified: bool
    report_url: str
    is_honeypot: bool | None
    buy_tax: Decimal | None
    sell_tax: Decimal | None
    flags: dict[str, Any] = field(default_factory=dict)  # the provider's raw result, unmodified
    audited_at: datetime | None = None
    # Why the score is what it is: (rule, points subtracted; negative = bonus) and the
    # scored flags the provider did not report (they cost nothing). See docs/audit-score.md.
    penalties: tuple[tuple[str, Decimal], ...] = ()
    unknown_flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenFailure:
    """A token a job could not process, with the reason (a job_logs row)."""

    ref: str  # token key, symbol or address as the job named it
    reason: str
