"""JSON decoding for upstream bodies: every non-integer number becomes a Decimal.

Money travels as Decimal from the wire to the column. `json.loads` would turn
`7.82e-11` or `0.000000000012345` into a float and lose digits; here they stay
exactly as printed. Integers stay `int` (exact already). NaN and Infinity are not
JSON (RFC 8259) and are refused rather than turned into floats.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def decode_json(content: bytes | str) -> Any:
    """Decode a JSON document, numbers with a fraction or exponent as `Decimal`.

    Raises `ValueError` (including `json.JSONDecodeError`) for malformed, truncated or
    empty input.
    """
    if not content:
        raise ValueError("empty body")
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError as exc:  # absurdly deep nesting
        raise ValueError("JSON nested too deeply") from exc
