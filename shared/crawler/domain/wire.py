"""Reading values off decoded upstream JSON, tolerantly and without losing digits.

Upstream clients decode JSON with ``parse_float=Decimal``, so a JSON number arrives as
``Decimal`` (or ``int``); many APIs send numbers as strings instead (``"0.00000000001234"``).
Both are accepted here and converted exactly. The policy for other types:

| value                                    | result                                          |
|------------------------------------------|-------------------------------------------------|
| ``Decimal`` (finite)                      | itself                                          |
| ``int`` (not ``bool``)                    | ``Decimal(value)``                              |
| ``str`` holding a plain decimal number    | ``Decimal(value)``, every digit kept            |
| ``None``, ``""``, ``bool``, other strings | ``None`` (unknown)                              |
| NaN / Infinity (any type)                 | ``None`` (Python's json accepts ``NaN`` literals)|
| a finite ``float``                        | **TypeError**                                   |

A finite float can only come from *our* code decoding JSON without ``parse_float=Decimal``:
its digits are already rounded, so converting it would hide the bug that lost them. It is
therefore a programming error, raised loudly, never upstream messiness.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

# A plain decimal number as text: optional sign, digits with an optional point, optional
# exponent. Rejects "NaN", "Infinity", "1_000", "0x1f" and display strings like "$1,000".
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def to_decimal(value: Any) -> Decimal | None:
    """The exact Decimal a JSON value stands for, or None when it is not a finite number.

    Raises TypeError for a finite float (see the module docstring).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        raise TypeError(
            f"got float {value!r}: decode upstream JSON with parse_float=Decimal so no digit is lost"
        )
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            return None
        return Decimal(text)
    return None


def to_positive_decimal(value: Any) -> Decimal | None:
    """Like `to_decimal`, but only a number greater than zero (a usable price or amount)."""
    number = to_decimal(value)
    return number if number is not None and number > 0 else None


def to_fraction(value: Any) -> Decimal | None:
    """A fraction such as a tax rate ("0.05" = 5 %); None when absent, "" or negative."""
    number = to_decimal(value)
    return number if number is not None and number >= 0 else None


def parse_display_number(value: Any) -> Decimal | None:
    """A number that may be formatted for display: "$521,967,819" -> Decimal("521967819").

    Accepts what `to_decimal` accepts plus a leading currency sign and thousands commas.
    Anything else ("6.98 ETH", "n/a") is None.
    """
    if isinstance(value, str):
        value = value.strip().removeprefix("$").replace(",", "").strip()
    return to_decimal(value)


def to_int(value: Any) -> int | None:
    """An integer from an int, an integral Decimal or an integral numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = to_decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def text(value: Any) -> str | None:
    """A non-empty string, stripped; None for anything else (including "")."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one (missing or null sub-objects)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is a JSON array, else an empty one (missing or null arrays)."""
    return value if isinstance(value, list) else []


def datetime_from_millis(value: Any) -> datetime | None:
    """A UTC datetime from Unix milliseconds (int, Decimal or string); None when unusable."""
    millis = to_decimal(value)
    if millis is None or millis <= 0:
        return None
    try:
        return datetime.fromtimestamp(float(millis / 1000), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def datetime_from_iso(value: Any) -> datetime | None:
    """A UTC datetime from an ISO-8601 string ("2025-01-18T10:39:31Z"); None when unusable."""
    raw = text(value)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def require_utc(moment: datetime, what: str = "timestamp") -> datetime:
    """Return `moment` if it is timezone-aware; a naive datetime is a caller bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {moment!r}")
    return moment.astimezone(timezone.utc)
