"""How numbers and JSON reach the wire, exactly as each upstream API writes them.

The standard `json` module can only write a `Decimal` through `float`, which loses digits.
Upstream APIs differ: Binance, GeckoTerminal and GoPlus send decimal *strings*; CoinGecko and
DexScreener send JSON *numbers*. Body builders therefore put `str` where an API sends a string
(`plain()` / `fixed()`) and `Decimal` where it sends a number; `dumps()` writes a `Decimal`
as a JSON number with every digit it has. A `float` anywhere in a body is a bug and raises.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_encode_str = json.encoder.encode_basestring  # C implementation; UTF-8 like the real APIs, not \uXXXX


def plain(value: Decimal) -> str:
    """Fixed-point text without exponent or trailing zeros: Decimal('1.2345E-11') -> '0.000000000012345'."""
    if not value:
        return "0"
    return format(value.normalize(), "f")


def fixed(value: Decimal, places: int) -> str:
    """Fixed-point text with exactly `places` decimals, as Binance prints prices ('4.00000200')."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def number_text(value: Decimal) -> str:
    """A Decimal as a JSON number with all its digits.

    Magnitudes below 1e-4 use exponent form with a two-digit exponent ('7.821066970851871e-11',
    '5.938674704566297e-06'), as CoinGecko prints them; everything else is fixed-point and keeps
    the Decimal's own scale ('20030493.0' stays '20030493.0', '77671' stays '77671').
    """
    if not value.is_finite():
        raise ValueError(f"JSON has no representation for {value}")
    if value and value.adjusted() < -4:
        sign, digits, _ = value.normalize().as_tuple()
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        exponent = value.adjusted()
        return f"{'-' if sign else ''}{mantissa}e-{-exponent:02d}"
    return format(value, "f")


def dumps(value: Any) -> bytes:
    """Serialise a body built from dict/list/tuple/str/int/bool/None/Decimal to compact UTF-8 JSON."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts).encode()


def _write(value: Any, out) -> None:
    if isinstance(value, str):
        out(_encode_str(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, int):
        out(int.__repr__(value))
    elif isinstance(value, Decimal):
        out(number_text(value))
    elif isinstance(value, dict):
        out("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            if not first:
                out(",")
            first = False
            out(_encode_str(key))
            out(":")
            _write(item, out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        first = True
        for item in value:
            if not first:
                out(",")
            first = False
            _write(item, out)
        out("]")
    elif isinstance(value, float):
        raise TypeError(f"float {value!r} in a wire body: use Decimal so no digit is lost")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
