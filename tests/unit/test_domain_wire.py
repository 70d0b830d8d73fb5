"""Reading decoded upstream JSON: exact decimals, tolerant of strings, loud about floats."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.crawler.domain.wire import (
    datetime_from_iso,
    datetime_from_millis,
    parse_display_number,
    require_utc,
    to_decimal,
    to_fraction,
    to_int,
    to_positive_decimal,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("0.00000000001234"), Decimal("0.00000000001234")),
        ("0.00000000001234", Decimal("0.00000000001234")),
        (" 2701.37 ", Decimal("2701.37")),
        ("7.821066970851871e-11", Decimal("7.821066970851871e-11")),
        (42, Decimal(42)),
        ("-1", Decimal(-1)),
    ],
)
def test_numbers_keep_every_digit(raw, expected):
    value = to_decimal(raw)
    assert value == expected
    assert str(value) == str(expected)  # same digits and exponent, not just equal


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "  ",
        True,
        False,
        "NaN",
        "Infinity",
        "1_000",
        "0x1f",
        "$1,000",
        "abc",
        [],
        {},
        Decimal("NaN"),
        float("nan"),
        float("inf"),
    ],
)
def test_non_numbers_are_unknown(raw):
    assert to_decimal(raw) is None


def test_a_finite_float_is_a_bug_and_raises():
    with pytest.raises(TypeError, match="parse_float=Decimal"):
        to_decimal(0.1)


def test_positive_and_fraction_filters():
    assert to_positive_decimal("0") is None
    assert to_positive_decimal("-2") is None
    assert to_positive_decimal("3") == Decimal(3)
    assert to_fraction("") is None
    assert to_fraction("0") == Decimal(0)
    assert to_fraction("-0.1") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$521,967,819", Decimal("521967819")),
        ("417.50253280497", Decimal("417.50253280497")),
        ("6.98 ETH", None),
        (None, None),
    ],
)
def test_display_numbers(raw, expected):
    assert parse_display_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(7, 7), ("7", 7), (Decimal("7.0"), 7), ("7.5", None), (True, None), (None, None)]
)
def test_integers(raw, expected):
    assert to_int(raw) == expected


def test_timestamps():
    assert datetime_from_millis(1620250931000) == datetime(2021, 5, 5, 21, 42, 11, tzinfo=timezone.utc)
    assert datetime_from_millis(None) is None
    assert datetime_from_millis("soon") is None
    assert datetime_from_iso("2025-01-18T10:39:31Z") == datetime(2025, 1, 18, 10, 39, 31, tzinfo=timezone.utc)
    assert datetime_from_iso("yesterday") is None


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        require_utc(datetime(2025, 1, 1))
    assert require_utc(datetime(2025, 1, 1, tzinfo=timezone.utc)).tzinfo is timezone.utc
