"""JSON text of domain values: Decimals as exact strings (never floats), datetimes as UTC ISO-8601.

One encoder for everything the system writes as JSON: event bodies, jsonb columns.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.wire import WireNumberOutOfBounds


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for Decimal, datetime and dataclass values."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, WireNumberOutOfBounds):  # kept raw in jsonb (GoPlus flags): its text
        return value.shown
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """Compact JSON text of `value`."""
    return json.dumps(value, default=json_default, separators=(",", ":"))
