"""Market statistics several APIs report the same way (24h change, volume, highs and lows)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal

from local.market.prices import EXACT
from local.market.universe import Token, Universe

DAY = 86_400


def significant(value: Decimal, digits: int) -> Decimal:
    """`value` rounded to `digits` significant digits (exact Decimal arithmetic)."""
    return Context(prec=digits).plus(value)


def change_percent(universe: Universe, token: Token, second: int, window: int, places: int = 5) -> Decimal:
    """Price change over the last `window` seconds in percent, `places` decimals."""
    before = universe.prices.usd(token, second - window)
    now = universe.prices.usd(token, second)
    return (EXACT.divide(now - before, before) * 100).quantize(Decimal(1).scaleb(-places))


def high_low_24h(universe: Universe, token: Token, second: int) -> tuple[Decimal, Decimal]:
    """Highest and lowest USD price over the last 24 h, sampled hourly and now."""
    samples = [universe.prices.usd(token, second - hour * 3600) for hour in range(25)]
    return max(samples), min(samples)


def volume_24h_usd(token: Token) -> Decimal:
    """A fixed 24 h trading volume: 2-12 % of the designed market cap, whole dollars."""
    share = 0.02 + 0.10 * ((token.index * 104729) % 97) / 97
    return Decimal(round(token.design_market_cap_usd * share))


def iso_ms(second: int | float) -> str:
    """'2026-05-18T12:49:21.599Z' as CoinGecko writes timestamps."""
    moment = datetime.fromtimestamp(second, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(second: int | float) -> str:
    """'2025-04-13T14:45:47Z' as GeckoTerminal writes timestamps."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
