"""Reading decoded upstream JSON: exact decimals, tolerant of strings, loud about floats."""

import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.errors import BadWireValue
from shared.wire import (
    WireNumberOutOfBounds,
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
        "1_000",
        "0x1f",
        "$1,000",
        "abc",
        [],
        {},
    ],
)
def test_non_numbers_are_unknown(raw):
    assert to_decimal(raw) is None


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("-inf", "not a finite number"),
        (Decimal("NaN"), "not a finite number"),
        (Decimal("-Infinity"), "not a finite number"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("1e400", "exponent above the limit of 40"),
        ("1e999999999", "exponent above the limit of 40"),
        (Decimal("1E+999999999"), "exponent above the limit of 40"),
        ("1e-999999999", "exponent below the limit of -40"),
        (10**60, "exponent above the limit of 40"),
        ("1." + "3" * 90, "more than the limit of 80 significant digits"),
        ("9" * 10**6, "longer than the limit of 200 characters"),
        (WireNumberOutOfBounds("1e400", "exponent above the limit of 40"), "exponent above the limit of 40"),
    ],
)
def test_absurd_numbers_are_bad_wire_values_naming_field_and_limit(raw, limit):
    with pytest.raises(BadWireValue, match=limit) as caught:
        to_decimal(raw, "priceUsd")
    assert caught.value.field == "priceUsd" and str(caught.value).startswith("priceUsd ")
    assert not caught.value.retryable


def test_bounds_hold_what_markets_show():
    # GeckoTerminal's 63 significant digits, a 1e-18 smallest unit, a 1e36 raw supply.
    long_price = "2.01740501818281139006336492319318380811954562178395002842369476"
    assert to_decimal(long_price) == Decimal(long_price)
    assert to_decimal("0.000000000000000001") == Decimal("1E-18")
    assert to_decimal(10**36) == Decimal(10**36)
    assert to_decimal("1e40") == Decimal("1e40")


def test_negative_zero_is_zero():
    for raw in ("-0", "-0.0", Decimal("-0E-5"), Decimal("-0")):
        value = to_decimal(raw)
        assert value == 0 and not value.is_signed()


def test_to_int_never_expands_a_huge_exponent():
    started = time.monotonic()
    with pytest.raises(BadWireValue):
        to_int(Decimal("1E+999999999"), "market_cap_rank")
    with pytest.raises(BadWireValue):
        to_int("1e999999", "market_cap_rank")
    assert time.monotonic() - started < 0.5


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
