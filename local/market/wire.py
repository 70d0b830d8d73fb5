"""How numbers and JSON reach the wire, exactly as each upstream API writes them.

The standard `json` module can only write a `Decimal` through `float`, which loses digits.
Upstream APIs differ: Binance, GeckoTerminal and GoPlus send decimal *strings*; CoinGecko and
DexScreener send JSON *numbers*. Body builders therefore put `str` where an API sends a string
(`plain()` / `fixed()`) and `Decimal` where it sends a number; `dumps()` writes a `Decimal`
as a JSON number with every digit it has. A `float` anywhere in a body is a bug and raises.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import orjson

STRICT = os.environ.get("MARKET_WIRE_STRICT", "1") != "0"


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
    """Serialise a body built from dict/list/tuple/str/int/bool/None/Decimal to compact UTF-8 JSON.

    orjson writes the tree in C and hands each `Decimal` back for `number_text`: a pure-Python
    writer spent 70 % of the market's CPU on a DexScreener answer (3.8 ms for 30 tokens), and
    the market serves a whole tick's requests on one process. With `STRICT` on (the default;
    `MARKET_WIRE_STRICT=0` turns it off for benchmarks) a float anywhere raises `TypeError`.
    """
    if STRICT:
        _refuse_floats(value)
    return orjson.dumps(value, default=_decimal_number)


def _decimal_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(number_text(value))
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in a wire body: use Decimal so no digit is lost")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)
