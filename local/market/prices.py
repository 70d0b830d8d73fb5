"""The price model: a token's exact USDT price as a deterministic function of (token, second).

log(price) = log(base) + three sine waves with per-token periods (about a minute, tens of
minutes, hours) and phases. That moves every second, stays bounded (no drift to zero over a
long run, market-cap ranks never cross), and is cheap for 50,000 tokens. The float result is
rounded once to the token's quote precision and from then on is an exact `Decimal`:

- a token with a Binance USDT pair: to its tick size (Binance prints 8 decimals), so the
  value Binance sends *is* the expected price;
- any other token: to 8 significant digits, so 1.2345e-11 keeps all its digits.

Every USD-quoting API (CoinGecko, DexScreener, GeckoTerminal) sends `price_usdt * usdt_usd`,
computed exactly, with a tether rate that is deliberately not 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Protocol

SIGNIFICANT_DIGITS = 8
DEFAULT_USDT_USD = Decimal("1.0003")
# Wide enough that products of quoted prices, supplies and rates are never rounded.
EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Wave:
    """One sine component of a token's log-price."""

    amplitude: float
    omega: float  # radians per second
    phase: float


def binance_tick(price: float) -> Decimal:
    """A tick giving about six significant digits, within Binance's 1e-8 .. 0.01 range."""
    exponent = math.floor(math.log10(price)) - 5
    return Decimal(1).scaleb(min(-2, max(-8, exponent)))


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> Decimal:
    """`value` rounded to `digits` significant digits, as an exact Decimal without trailing zeros."""
    return Decimal(f"{value:.{digits - 1}e}").normalize()


class PricedToken(Protocol):
    """What the price model reads of a token (`local.market.universe.Token` is one)."""

    @property
    def index(self) -> int: ...
    @property
    def base_price_usdt(self) -> Decimal: ...
    @property
    def log_base(self) -> float: ...
    @property
    def waves(self) -> tuple[Wave, ...]: ...
    @property
    def binance_tick(self) -> Decimal | None: ...
    @property
    def peg(self) -> tuple[str, Decimal] | None: ...


class PriceModel:
    """Exact USDT/USD prices of the tokens of one universe, cached per second."""

    def __init__(self, tokens_by_key: Mapping[str, PricedToken], usdt_usd: Decimal = DEFAULT_USDT_USD) -> None:
        if usdt_usd <= 0:
            raise ValueError("the USDT/USD rate must be positive")
        self._tokens_by_key = tokens_by_key
        self.usdt_usd = usdt_usd
        self._cache: dict[tuple[int, int], Decimal] = {}

    def usdt(self, token: PricedToken, second: int) -> Decimal:
        """The token's USDT price during the whole of unix second `second`."""
        cache_key = (token.index, second)
        price = self._cache.get(cache_key)
        if price is None:
            if len(self._cache) > 400_000:  # a few seconds of a 50k universe; older seconds are rare
                self._cache.clear()
            price = self._compute(token, second)
            self._cache[cache_key] = price
        return price

    def usd(self, token: PricedToken, second: int) -> Decimal:
        """The token's USD price: its USDT price times the tether rate, exactly."""
        return EXACT.multiply(self.usdt(token, second), self.usdt_usd)

    def usdt_usd_rate(self, second: int) -> Decimal:
        """USD price of one USDT (what CoinGecko reports for `tether`)."""
        return self.usdt_usd

    def _compute(self, token: PricedToken, second: int) -> Decimal:
        if token.peg is not None:
            anchor_key, factor = token.peg
            anchor = self.usdt(self._tokens_by_key[anchor_key], second)
            return anchor if factor == 1 else round_significant(float(anchor * factor))
        if not token.waves:
            return token.base_price_usdt
        log_price = token.log_base + sum(w.amplitude * math.sin(w.omega * second + w.phase) for w in token.waves)
        value = math.exp(log_price)
        if token.binance_tick is not None:
            price = Decimal(repr(value)).quantize(token.binance_tick, rounding=ROUND_HALF_EVEN)
            return max(price, token.binance_tick)
        return round_significant(value)
