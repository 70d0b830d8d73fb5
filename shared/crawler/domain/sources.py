"""Names of the upstream sources, as stored in ``PriceQuote.source`` and ``TokenProfile.source``."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """An upstream data source. Values are plain strings, so they compare equal to "binance" etc."""

    BINANCE = "binance"
    COINGECKO = "coingecko"
    DEXSCREENER = "dexscreener"
    GECKOTERMINAL = "geckoterminal"
    GOPLUS = "goplus"
