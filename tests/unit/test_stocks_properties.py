"""Property-based tests of the Finnhub quote rule (issue #20).

For any answer - right shape with hostile values, or any JSON at all - `normalise_quote`
returns a quote that keeps the original's silver rules, `NoQuoteData`, or a rejection with
a reason; never another exception, never a price of 0, never a float. Bodies go through the
production decoder, as an upstream would send them. Deterministic (`derandomize`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.stocks.models import NoQuoteData, QuoteRejected, RejectionReason, StockQuote
from shared.stocks.normalize_finnhub import QuoteRules, normalise_quote
from tests.unit.test_wire_properties import Raw, anything, assert_storable, dump, numbers, wire

PROPERTIES = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
FETCHED = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)
RULES = QuoteRules()

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(5000), places=4, allow_nan=False)


def raw(value: object) -> Raw:
    """A number as the JSON literal an upstream writes."""
    return Raw(str(value))


market_times = st.integers(min_value=946_684_800, max_value=int(FETCHED.timestamp()))
field_values = st.one_of(st.none(), numbers, prices.map(raw), st.integers(-(10**13), 10**13), st.just(0), anything)


def assert_outcome(outcome: Any) -> None:
    assert isinstance(outcome, StockQuote | NoQuoteData | QuoteRejected), outcome
    if isinstance(outcome, QuoteRejected):
        assert isinstance(outcome.reason, RejectionReason) and outcome.detail
        return
    if isinstance(outcome, StockQuote):
        assert_storable(outcome)
        for price in (outcome.current_price, outcome.day_open, outcome.previous_close, outcome.day_low):
            assert 0 < price <= RULES.max_price
        assert outcome.day_high >= outcome.day_low
        assert outcome.market_time <= FETCHED + RULES.max_clock_skew
        assert outcome.currency == "USD" and outcome.instrument_key == "stock:AAPL"


@PROPERTIES
@given(
    st.fixed_dictionaries(
        {},
        optional={field: field_values for field in ("c", "d", "dp", "h", "l", "o", "pc", "t", "error")},
    )
)
def test_any_quote_shaped_answer_is_a_valid_quote_or_a_reason(body: dict[str, Any]) -> None:
    started = time.perf_counter()
    assert_outcome(normalise_quote("AAPL", wire(body), FETCHED))
    assert time.perf_counter() - started < 2.0


@PROPERTIES
@given(anything)
def test_any_json_at_all_is_a_reason_or_a_quote(body: Any) -> None:
    assert_outcome(normalise_quote("AAPL", wire(body), FETCHED))


@PROPERTIES
@given(st.lists(prices, min_size=5, max_size=5), market_times)
def test_a_sane_answer_keeps_every_digit(values: list[Decimal], t: int) -> None:
    c, o, pc, a, b = values
    body = {"c": c, "d": c - pc, "dp": Decimal("0.5"), "h": max(a, b), "l": min(a, b), "o": o, "pc": pc, "t": t}
    body = {k: raw(v) for k, v in body.items()}
    quote = normalise_quote("AAPL", wire(body), FETCHED)
    assert isinstance(quote, StockQuote)
    assert (quote.current_price, quote.day_high, quote.day_low) == (c, max(a, b), min(a, b))
    assert quote.market_time == datetime.fromtimestamp(t, tz=timezone.utc)


@PROPERTIES
@given(st.lists(prices, min_size=5, max_size=5), market_times)
def test_t_in_milliseconds_is_always_named(values: list[Decimal], t: int) -> None:
    c, o, pc, a, b = values
    body = {k: raw(v) for k, v in {"c": c, "h": max(a, b), "l": min(a, b), "o": o, "pc": pc, "t": t * 1000}.items()}
    outcome = normalise_quote("AAPL", wire(body), FETCHED)
    assert isinstance(outcome, QuoteRejected) and outcome.reason is RejectionReason.TIME_IN_MILLISECONDS


@PROPERTIES
@given(st.lists(prices, min_size=2, max_size=2, unique=True), market_times)
def test_high_below_low_is_never_a_quote(pair: list[Decimal], t: int) -> None:
    low, high = max(pair), min(pair)  # swapped on purpose
    body = {k: raw(v) for k, v in {"c": high, "h": high, "l": low, "o": high, "pc": high, "t": t}.items()}
    outcome = normalise_quote("AAPL", wire(body), FETCHED)
    assert isinstance(outcome, QuoteRejected) and outcome.reason is RejectionReason.HIGH_BELOW_LOW


def test_the_bodies_are_written_as_an_upstream_sends_them() -> None:
    assert dump({"c": raw(Decimal("1.5"))}) == '{"c":1.5}'
