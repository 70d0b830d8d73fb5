"""ISO-8601 durations as Knative's DeliverySpec accepts them (`PT0.5S`, `PT600S`, `P1D`).

Knative parses `backoffDelay` and `timeout` with rickb777/date `period.Parse` and then
converts to milliseconds. We keep that grammar (years … seconds, a decimal fraction with
`.` or `,`, no sign) and its approximate lengths of a year and a month, so the same
manifest means the same wait here and on the cluster. A library such as isodate returns
non-timedelta objects for years/months and accepts forms Knative rejects, so the grammar is
spelled out here instead.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_NUMBER = r"(\d+(?:[.,]\d+)?)"
_PATTERN = re.compile(
    rf"^P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
# rickb777/date/period: a year is 365.2425 days, a month a twelfth of that.
_DAY = Decimal(86400)
_SECONDS_PER_UNIT = (
    Decimal("365.2425") * _DAY,
    Decimal("365.2425") * _DAY / 12,
    7 * _DAY,
    _DAY,
    Decimal(3600),
    Decimal(60),
    Decimal(1),
)


class DurationError(ValueError):
    """The text is not an ISO-8601 duration Knative would accept."""


def parse_iso8601_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration such as ``PT0.5S`` into a timedelta (microsecond precision)."""
    if not isinstance(text, str):
        raise DurationError(f"expected an ISO-8601 duration string such as PT0.5S, got {text!r}")
    match = _PATTERN.match(text.strip().upper())
    if match is None or not any(match.groups()) or text.strip().upper().endswith("T"):
        raise DurationError(f"{text!r} is not an ISO-8601 duration (examples: PT0.5S, PT2M, P1D)")
    seconds = Decimal(0)
    for value, unit_seconds in zip(match.groups(), _SECONDS_PER_UNIT):
        if value is not None:
            try:
                seconds += Decimal(value.replace(",", ".")) * unit_seconds
            except InvalidOperation:  # pragma: no cover - the regex admits only numbers
                raise DurationError(f"{text!r} has an invalid number") from None
    microseconds = int(seconds * 1_000_000)
    return timedelta(microseconds=microseconds)


def duration_to_millis(duration: timedelta) -> int:
    """Whole milliseconds, truncated like Go's ``Duration.Milliseconds()``."""
    return duration // timedelta(milliseconds=1)
