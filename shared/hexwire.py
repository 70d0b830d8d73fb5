"""JSON-RPC hex values (execution-apis `QUANTITY` and `DATA`), read strictly (the platform's, beside
`shared.wire`: the JSON-RPC client and the chain stats both read them).

A QUANTITY is a JSON string "0x" followed by hex digits ("0x0" is zero). JSON numbers,
decimal strings, "0x", non-hex digits and absurd lengths are `BadQuantity` - a typed
error naming the field, never a guessed value. Leading zeros are tolerated (some
proxies pad) but the length is bounded: 64 hex digits (256 bits) is the widest EVM word.
"""

from __future__ import annotations

import re
from typing import Any

from shared.errors import BadWireValue

MAX_QUANTITY_HEX_DIGITS = 64
_QUANTITY = re.compile(rf"0x[0-9a-fA-F]{{1,{MAX_QUANTITY_HEX_DIGITS}}}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


class BadQuantity(BadWireValue):
    """A JSON-RPC field that should be a hex QUANTITY or DATA value and is not."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_quantity(value: Any, field: str) -> int:
    """The integer a hex QUANTITY string holds; `BadQuantity` for anything else."""
    if not isinstance(value, str):
        raise BadQuantity(field, _shown(value), f"not a hex quantity string ({type(value).__name__})")
    if _QUANTITY.fullmatch(value) is None:
        raise BadQuantity(field, _shown(value), "not a hex quantity (0x + 1-64 hex digits)")
    return int(value, 16)


def parse_data(value: Any, field: str, size: int | None = None) -> bytes:
    """The bytes a hex DATA string holds (`size` bytes when given); `BadQuantity` otherwise."""
    if not isinstance(value, str) or len(value) > 2 + 2 * (size or 4096):
        raise BadQuantity(field, _shown(value), "not hex data")
    if _DATA.fullmatch(value) is None:
        raise BadQuantity(field, _shown(value), "not hex data (0x + an even number of hex digits)")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise BadQuantity(field, _shown(value), f"{len(raw)} bytes, expected {size}")
    return raw
