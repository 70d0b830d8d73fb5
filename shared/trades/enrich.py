"""Market context of a trade, from the crawler's own observations (pure: no database, no Kafka).

The enricher (shared/trades/enricher.py) reads what the crawler knows of the trade's token
through the quotes API's read functions and hands it here as plain values; this module
decides what the trade's market context is:

- the **token**: the base asset of the symbol (`BTCUSDT` → `BTC`, the quote asset being the
  longest configured quote asset the symbol ends with);
- per leg (the entry, and the exit of a closed trade): the **market price**, the crawler
  observation nearest the leg's time among the 1-minute candle's open and close ticks and
  the latest price, within a tolerance (default 60 s); farther than that, none;
- the **slippage** of the leg's fill against that price, signed so that positive is adverse
  (a buy above the market, a sell below it), in basis points, exact to `SLIPPAGE_QUANTUM`;
  only when the trade is quoted in USDT (the crawler's prices are USDT; nothing is assumed
  to be worth one USDT);
- the **status**: `enriched` (a market price for the entry), `pending_market` (the crawler
  does not track the token, or has no price near the trade's time yet) or `superseded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Literal

BPS = Decimal(10000)
# Slippage in bps to 4 decimals (a millionth of a percent): far below any fee.
SLIPPAGE_QUANTUM = Decimal("0.0001")

EnrichmentStatus = Literal["enriched", "pending_market", "superseded"]


def split_symbol(symbol: str, quote_assets: tuple[str, ...]) -> tuple[str, str | None]:
    """(base, quote) of a symbol: the longest configured quote asset it ends with; (symbol, None)
    when none fits (a stock, or an unknown quote)."""
    for quote in sorted(quote_assets, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, None


@dataclass(frozen=True, slots=True)
class Observation:
    """One crawler price at one instant: a tick, a candle's open or close."""

    price: Decimal
    observed_at: datetime
    kind: Literal["latest", "candle_open", "candle_close"]


@dataclass(frozen=True, slots=True)
class MinuteCandle:
    """The crawler's 1-minute candle of the minute a leg happened in."""

    bucket_start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    open_at: datetime
    close_at: datetime
    ticks: int

    def observations(self) -> list[Observation]:
        """Its first and last ticks as observations."""
        return [
            Observation(self.open, self.open_at, "candle_open"),
            Observation(self.close, self.close_at, "candle_close"),
        ]


def nearest_observation(at: datetime, observations: list[Observation], tolerance: timedelta) -> Observation | None:
    """The observation nearest `at` within `tolerance` (ties: the earlier one), or None."""
    close = [o for o in observations if abs(o.observed_at - at) <= tolerance]
    if not close:
        return None
    return min(close, key=lambda o: (abs(o.observed_at - at), o.observed_at))


def slippage_bps(side: Literal["BUY", "SELL"], fill_price: Decimal, market_price: Decimal) -> Decimal:
    """Slippage of a fill against the market in basis points; positive is adverse.

    BUY: (fill − market) / market × 10,000; SELL: (market − fill) / market × 10,000;
    rounded half-even to `SLIPPAGE_QUANTUM` in a context wide enough for any stored price.
    """
    if market_price <= 0:
        raise ValueError("a market price must be positive")
    difference = fill_price - market_price if side == "BUY" else market_price - fill_price
    with localcontext() as ctx:
        ctx.prec = 100
        return (difference * BPS / market_price).quantize(SLIPPAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class LegContext:
    """The market around one leg (entry or exit) of a trade."""

    leg: Literal["entry", "exit"]
    side: Literal["BUY", "SELL"]
    time: datetime
    fill_price: Decimal
    candle: MinuteCandle | None
    market: Observation | None
    slippage_bps: Decimal | None

    @property
    def price_difference(self) -> Decimal | None:
        """fill − market, exact (in the quote asset), when there is a market price."""
        return None if self.market is None else self.fill_price - self.market.price


def leg_context(
    leg: Literal["entry", "exit"],
    side: Literal["BUY", "SELL"],
    time: datetime,
    fill_price: Decimal,
    *,
    candle: MinuteCandle | None,
    latest: Observation | None,
    tolerance: timedelta,
    comparable: bool,
) -> LegContext:
    """A leg's market price (nearest observation within `tolerance`) and slippage.

    `comparable` says whether the trade's quote asset is the crawler's (USDT): otherwise the
    market price is still reported but no slippage is computed.
    """
    observations = (candle.observations() if candle else []) + ([latest] if latest else [])
    market = nearest_observation(time, observations, tolerance)
    slippage = slippage_bps(side, fill_price, market.price) if market is not None and comparable else None
    return LegContext(leg, side, time, fill_price, candle, market, slippage)


def minute_of(moment: datetime) -> datetime:
    """The start of the UTC minute `moment` is in (the crawler's 1-minute buckets)."""
    return moment.replace(second=0, microsecond=0)


def enrichment_status(trade_status: str, token_known: bool, entry: LegContext | None) -> EnrichmentStatus:
    """`superseded` for a replaced trade; `enriched` when the entry has a market price;
    otherwise `pending_market` (untracked token, or no price near the trade's time yet)."""
    if trade_status == "superseded":
        return "superseded"
    if token_known and entry is not None and entry.market is not None:
        return "enriched"
    return "pending_market"
