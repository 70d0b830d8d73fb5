"""Stock symbols and instrument keys (`stock:<SYMBOL>`)."""

from __future__ import annotations

import re

from shared.errors import BadMessage

# The original's producer quotes these five (original-spec/stock-analytics-architecture.vi.md).
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "TSLA", "GOOGL", "AMZN")
KEY_PREFIX = "stock:"
# US tickers: letters, digits, and a class suffix after a dot or dash (BRK.B, BF-B); at most
# 15 characters. Anything else (spaces, slashes, exchange suffixes like ".L") is refused.
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,9}(?:[.-][A-Z0-9]{1,4})?")


def canonical_symbol(raw: str) -> str:
    """The symbol upper-cased and stripped; `BadMessage` when it is no US ticker."""
    symbol = raw.strip().upper() if isinstance(raw, str) else ""
    if not _SYMBOL.fullmatch(symbol):
        raise BadMessage(f"not a stock symbol: {str(raw)[:40]!r}")
    return symbol


def instrument_key(symbol: str) -> str:
    """`"aapl"` -> `"stock:AAPL"`."""
    return KEY_PREFIX + canonical_symbol(symbol)


def parse_symbol_list(value: str) -> tuple[str, ...]:
    """A comma-separated configuration list, canonical, in order, without repeats."""
    symbols: list[str] = []
    for item in value.split(","):
        if item.strip():
            symbol = canonical_symbol(item)
            if symbol not in symbols:
                symbols.append(symbol)
    return tuple(symbols)
