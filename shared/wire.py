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
| NaN / Infinity (any type)                 | **BadWireValue** (not a price, not unknown)     |
| a number outside the bounds below         | **BadWireValue**                                |
| a finite ``float``                        | **TypeError**                                   |

A finite float can only come from *our* code decoding JSON without ``parse_float=Decimal``:
its digits are already rounded, so converting it would hide the bug that lost them. It is
therefore a programming error, raised loudly, never upstream messiness.

Every number is bounded (`wire_decimal`, the one parser every wire number goes through,
JSON numbers and numeric strings alike): at most `MAX_SIGNIFICANT_DIGITS` significant
digits, a decimal exponent within ±`MAX_ADJUSTED_EXPONENT`, at most `MAX_NUMBER_TEXT_CHARS`
characters of text. A value outside them, NaN or Infinity raises `BadWireValue` naming the
field and the limit: its item fails, and nothing downstream ever computes with
``1e999999999`` (``decimal.Overflow``) or turns it into an int (minutes of CPU). ``-0`` is 0.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.errors import BadWireValue

# A plain decimal number as text: optional sign, digits with an optional point, optional
# exponent. Rejects "NaN", "Infinity", "1_000", "0x1f" and display strings like "$1,000".
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE_TEXT = re.compile(r"[+-]?(?:s?nan|inf(?:inity)?)", re.IGNORECASE)

# Bounds of a wire number. The price columns are NUMERIC without a precision (PostgreSQL
# holds 131072 digits before the point, 16383 after; audit_score is computed, not read), so
# markets set the bounds, not the columns: the smallest unit of an 18-decimal token is 1e-18,
# the cheapest quoted prices ~1e-15, the largest supplies ~1e18 tokens (raw 18-decimal amounts
# ~1e36), and GeckoTerminal prints prices with up to 63 significant digits (its on-chain
# math, tests/fixtures/upstream/geckoterminal.tokens_multi.solana.json). 80 significant
# digits and |exponent| <= 40 hold all of that with margin, and keep every later Decimal
# operation and int() instant.
MAX_SIGNIFICANT_DIGITS = 80
MAX_ADJUSTED_EXPONENT = 40  # |value| < 1e41
MIN_ADJUSTED_EXPONENT = -40  # |value| >= 1e-40, zero excepted
MAX_NUMBER_TEXT_CHARS = 200  # longer text is refused unread (a 10-MB digit string costs nothing)
_MAX_INT_BITS = (10 ** (MAX_ADJUSTED_EXPONENT + 1)).bit_length()


class WireNumberOutOfBounds:
    """What the JSON decoder puts in place of a number outside the bounds (or NaN/Infinity).

    The body still decodes, so the other items of the answer are read; reading this value
    (`to_decimal`) raises `BadWireValue` for its item only.
    """

    __slots__ = ("shown", "limit")

    def __init__(self, shown: str, limit: str):
        self.shown = shown
        self.limit = limit

    def __repr__(self) -> str:
        return f"<number {self.shown}: {self.limit}>"


def _shown(raw: str) -> str:
    return raw if len(raw) <= 24 else raw[:24] + f"…({len(raw)} chars)"


def number_limit_broken(number: Decimal) -> str | None:
    """Which bound `number` breaks ("exponent above 40", ...), or None when within them all."""
    if not number.is_finite():
        return "not a finite number"
    if not number:
        return None
    adjusted = number.adjusted()
    if adjusted > MAX_ADJUSTED_EXPONENT:
        return f"exponent above the limit of {MAX_ADJUSTED_EXPONENT} (|value| < 1e{MAX_ADJUSTED_EXPONENT + 1})"
    if adjusted < MIN_ADJUSTED_EXPONENT:
        return f"exponent below the limit of {MIN_ADJUSTED_EXPONENT} (|value| >= 1e{MIN_ADJUSTED_EXPONENT})"
    digits = number.as_tuple().digits
    if len(digits) <= MAX_SIGNIFICANT_DIGITS:  # nearly always: no need to count trailing zeros
        return None
    significant = len(bytes(digits).rstrip(b"\0"))  # trailing zeros are the exponent's business
    if significant > MAX_SIGNIFICANT_DIGITS:
        return f"more than the limit of {MAX_SIGNIFICANT_DIGITS} significant digits"
    return None


def wire_decimal(raw: str, field: str = "") -> Decimal | None:
    """The bounded parser of a number's text: the Decimal, None when the text is no number
    (``"n/a"``, ``"$1,000"``), or `BadWireValue` when it is a number outside the bounds."""
    raw = raw.strip()
    if len(raw) > MAX_NUMBER_TEXT_CHARS:
        raise BadWireValue(field, _shown(raw), f"longer than the limit of {MAX_NUMBER_TEXT_CHARS} characters")
    if not _DECIMAL_TEXT.fullmatch(raw):
        if _NON_FINITE_TEXT.fullmatch(raw):
            raise BadWireValue(field, raw, "not a finite number")
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:  # an exponent beyond even Decimal's range ("1e99999999999999999999")
        raise BadWireValue(field, _shown(raw), f"exponent outside the limits of ±{MAX_ADJUSTED_EXPONENT}") from None
    return _bounded(number, field, raw)


def decoded_number(raw: str) -> Decimal | WireNumberOutOfBounds:
    """The JSON decoder's hook for a number's text: a bounded Decimal, or the marker of one
    outside the bounds (never an exception: one absurd value must not lose the whole body)."""
    try:
        number = wire_decimal(raw)
    except BadWireValue as exc:
        return WireNumberOutOfBounds(exc.value, exc.limit)
    if number is None:  # NaN/Infinity literals come through the stdlib fallback this way
        return WireNumberOutOfBounds(_shown(raw), "not a finite number")
    return number


def decoded_integer(raw: str) -> int | WireNumberOutOfBounds:
    """Like `decoded_number` for an integer literal: the int, never built from 10**6 digits."""
    if len(raw) > MAX_ADJUSTED_EXPONENT + 2:  # sign and 41 digits at most
        return WireNumberOutOfBounds(_shown(raw), f"exponent above the limit of {MAX_ADJUSTED_EXPONENT}")
    return int(raw)


def _bounded(number: Decimal, field: str, shown: str | None = None) -> Decimal:
    limit = number_limit_broken(number)
    if limit is not None:
        raise BadWireValue(field, _shown(str(number) if shown is None else shown), limit)
    return number if number else Decimal(0)  # -0, 0E-7 -> 0


def to_decimal(value: Any, field: str = "") -> Decimal | None:
    """The exact Decimal a JSON value stands for, or None when it is not a number at all.

    Raises `BadWireValue` (naming `field`) for NaN, Infinity or a number outside the bounds,
    and TypeError for a finite float (see the module docstring).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return _bounded(value, field)  # its text only when it breaks a bound: most never do
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise BadWireValue(
                field, f"{value.bit_length()}-bit integer", f"exponent above the limit of {MAX_ADJUSTED_EXPONENT}"
            )
        return _bounded(Decimal(value), field)
    if isinstance(value, WireNumberOutOfBounds):
        raise BadWireValue(field, value.shown, value.limit)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadWireValue(field, repr(value), "not a finite number")
        raise TypeError(f"got float {value!r}: decode upstream JSON with parse_float=Decimal so no digit is lost")
    if isinstance(value, str):
        return wire_decimal(value, field)
    return None


def to_positive_decimal(value: Any, field: str = "") -> Decimal | None:
    """Like `to_decimal`, but only a number greater than zero (a usable price or amount)."""
    number = to_decimal(value, field)
    return number if number is not None and number > 0 else None


def to_fraction(value: Any, field: str = "") -> Decimal | None:
    """A fraction such as a tax rate ("0.05" = 5 %); None when absent, "" or negative."""
    number = to_decimal(value, field)
    return number if number is not None and number >= 0 else None


def parse_display_number(value: Any, field: str = "") -> Decimal | None:
    """A number that may be formatted for display: "$521,967,819" -> Decimal("521967819").

    Accepts what `to_decimal` accepts plus a leading currency sign and thousands commas.
    Anything else ("6.98 ETH", "n/a") is None.
    """
    if isinstance(value, str):
        value = value[: MAX_NUMBER_TEXT_CHARS * 2].strip().removeprefix("$").replace(",", "").strip()
    return to_decimal(value, field)


def to_int(value: Any, field: str = "") -> int | None:
    """An integer from an int, an integral Decimal or an integral numeric string; else None.

    Bounded like every wire number, so int() never expands ``1e999999999``.
    """
    if isinstance(value, bool):
        return None
    number = to_decimal(value, field)
    if number is None or number != number.to_integral_value():
        return None
    return value if isinstance(value, int) else int(number)


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


def datetime_from_millis(value: Any, field: str = "") -> datetime | None:
    """A UTC datetime from Unix milliseconds (int, Decimal or string); None when unusable."""
    millis = to_decimal(value, field)
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
