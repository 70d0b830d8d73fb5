"""Bridge routes and the providers' own estimates of them (DESIGN.md §10).

A route is configuration: from chain, to chain, the token on each side (address and
decimals, since USDT has 6 on Ethereum and 18 on BSC), the amount in token units and the
providers asked. A route whose two chains are the same is a same-chain swap: 1inch's quote
there is the aggregator check. Each provider's parser (shared/stats/lifi.py, relay.py,
oneinch.py) turns one answer into a `BridgeEstimate` or raises `QuoteAnomaly`: a quote for
another token or chain, an input amount other than the one asked, a missing or malformed
field. An anomaly is reported with its reason and never becomes a statistic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import BadWireValue
from shared.wire import to_decimal

Provider = Literal["lifi", "relay", "oneinch"]
NATIVE = "0x0000000000000000000000000000000000000000"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE_UNITS = re.compile(r"(0|[1-9][0-9]{0,77})")


class QuoteAnomaly(ValueError):
    """A provider's answer that cannot be read as a quote for the route asked; the reason says why."""


class BridgeStatus(StrEnum):
    """The outcome of one sample of a route from one provider."""

    OK = "ok"  # a quote, within the route's duration threshold
    SLOW = "slow"  # a quote whose estimated duration is above the route's threshold
    NO_ROUTE = "no_route"  # the provider says it has no quote for it (LI.FI 1002, Relay NO_QUOTES, ...)
    RATE_LIMITED = "rate_limited"  # 429: the budget is spent (the sample is skipped, not a statistic)
    ERROR = "error"  # the provider failed (5xx, timeout, breaker open, a 4xx refusing the request)
    ANOMALY = "anomaly"  # an answer that is no quote for this route (QuoteAnomaly)


class TokenSide(BaseModel):
    """One side of a route: the token's address on that chain and its decimals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(gt=0)
    token: str = Field(pattern=_ADDRESS.pattern)
    symbol: str = Field(min_length=1, max_length=32)
    decimals: int = Field(ge=0, le=36)


class BridgeRoute(BaseModel):
    """One configured route (`STATS_BRIDGE_ROUTES`); `name` is its event key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    source: TokenSide
    destination: TokenSide
    amount: Decimal = Field(gt=0, description="in source token units, e.g. 1000 (USDC)")
    providers: tuple[Provider, ...] = Field(min_length=1)
    # An estimated duration above this is `slow` (and the Prometheus alert's threshold).
    slow_after_seconds: Decimal = Field(default=Decimal(600), gt=0)
    # Any address works for a quote (nothing is signed or sent); providers require one.
    quote_address: str = Field(default="0x552008c0f6870c2f77e5cC1d2eb9bdff03e30Ea0", pattern=_ADDRESS.pattern)

    @model_validator(mode="after")
    def _consistent(self) -> BridgeRoute:
        exponent = self.amount.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if places > self.source.decimals:
            raise ValueError(
                f"route {self.name}: amount {self.amount} has more decimals than {self.source.symbol}'s {self.source.decimals}"
            )
        same_chain = self.source.chain_id == self.destination.chain_id
        if "oneinch" in self.providers and not same_chain:
            raise ValueError(f"route {self.name}: 1inch quotes same-chain swaps only (source and destination chain)")
        if same_chain and self.source.token.lower() == self.destination.token.lower():
            raise ValueError(f"route {self.name}: the same token on the same chain is no route")
        return self

    @property
    def base_units(self) -> int:
        """The amount in the source token's base units (exact: the validator refused extra decimals)."""
        return int(self.amount.scaleb(self.source.decimals))


@dataclass(frozen=True)
class BridgeEstimate:
    """The provider's own estimate for a route, exact decimals in token units and USD."""

    output_amount: Decimal  # destination token units (base units / 10**decimals)
    output_base_units: int
    duration_seconds: Decimal | None  # the provider's estimate; None when it gives none (1inch)
    fees_usd: Decimal | None  # None when the provider states no USD cost
    tool: str | None  # the bridge or DEX the provider chose


def units(base_units: int, decimals: int) -> Decimal:
    """Base units as token units, exactly (`246061367`, 6 -> `246.061367`)."""
    return Decimal(base_units).scaleb(-decimals)


def base_units_field(value: Any, field: str) -> int:
    """A base-unit amount: a decimal string of digits (what every provider sends); else QuoteAnomaly."""
    if not isinstance(value, str) or not _BASE_UNITS.fullmatch(value):
        raise QuoteAnomaly(f"{field} is not a base-unit amount: {str(value)[:40]!r}")
    return int(value)


def decimal_field(value: Any, field: str, *, required: bool = True) -> Decimal | None:
    """A non-negative exact number (JSON number or decimal string); QuoteAnomaly if absent or malformed."""
    try:
        number = to_decimal(value, field)
    except (BadWireValue, TypeError) as exc:
        raise QuoteAnomaly(f"{field}: {exc}") from None
    if number is None:
        if required or value is not None:
            raise QuoteAnomaly(f"{field} missing or not a number: {str(value)[:40]!r}")
        return None
    if number < 0:
        raise QuoteAnomaly(f"{field} is negative: {number}")
    return number


def field_of(document: Any, *path: str | int) -> Any:
    """`document[path...]`, or QuoteAnomaly naming the first missing step."""
    current = document
    for step in path:
        if isinstance(step, int):
            ok = isinstance(current, list) and -len(current) <= step < len(current)
        else:
            ok = isinstance(current, dict) and step in current
        if not ok:
            raise QuoteAnomaly(f"answer has no {'.'.join(map(str, path))}")
        current = current[step]
    return current


def check_token(found_chain: Any, found_address: Any, found_decimals: Any, side: TokenSide, what: str) -> None:
    """The provider quoted the token asked (chain, address, decimals); else QuoteAnomaly."""
    if found_chain != side.chain_id:
        raise QuoteAnomaly(f"{what} is on chain {found_chain!r}, not {side.chain_id}")
    if not isinstance(found_address, str) or found_address.lower() != side.token.lower():
        raise QuoteAnomaly(f"{what} is {str(found_address)[:50]!r}, not {side.symbol} {side.token}")
    if found_decimals is not None and found_decimals != side.decimals:
        raise QuoteAnomaly(f"{what} has {found_decimals!r} decimals, configured {side.decimals}")
