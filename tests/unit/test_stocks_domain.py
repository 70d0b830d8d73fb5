"""The stock system's pure domain: Finnhub quote answers -> quote, no data or a typed rejection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.errors import BadMessage
from shared.stocks.market_hours import in_regular_session, trading_day
from shared.stocks.models import NoQuoteData, QuoteRejected, RejectionReason, StockQuote
from shared.stocks.normalize_finnhub import QuoteRules, is_new_quote, normalise_quote
from shared.stocks.symbols import DEFAULT_SYMBOLS, canonical_symbol, instrument_key, parse_symbol_list
from shared.upstream.jsonbody import decode_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
FETCHED = datetime(2025, 7, 21, 18, 0, tzinfo=timezone.utc)
# Finnhub's answer for a symbol it has nothing for (INDEX.md, Finnhub: "zeroed prices and null change fields").
UNKNOWN = '{"c":0,"d":null,"dp":null,"h":0,"l":0,"o":0,"pc":0,"t":0}'


def sample(name: str) -> Any:
    return decode_json((FIXTURES / name).read_bytes())


def quote_of(body: Any, symbol: str = "AAPL", **rules: Any) -> Any:
    return normalise_quote(symbol, body, FETCHED, QuoteRules(**rules) if rules else None)


def good(**changes: Any) -> dict[str, Any]:
    body = sample("finnhub.quote.aapl_2025.json")
    body.update(changes)
    return body


def test_the_recorded_2025_answer_is_an_exact_usd_quote() -> None:
    quote = quote_of(sample("finnhub.quote.aapl_2025.json"), "aapl")
    assert isinstance(quote, StockQuote)
    assert quote.instrument_key == "stock:AAPL" and quote.symbol == "AAPL" and quote.currency == "USD"
    assert quote.current_price == Decimal("211.18") and quote.day_low == Decimal("209.7045")
    assert quote.change == Decimal("1.16") and quote.change_percent == Decimal("0.5523")
    assert quote.market_time == datetime(2025, 7, 20, 20, 0, tzinfo=timezone.utc)
    assert quote.fetched_at == FETCHED


def test_the_2020_shape_without_d_and_dp_is_a_quote() -> None:
    quote = normalise_quote("AAPL", sample("finnhub.quote.json"), datetime(2020, 2, 26, tzinfo=timezone.utc))
    assert isinstance(quote, StockQuote)
    assert quote.change is None and quote.change_percent is None
    assert quote.previous_close == Decimal("259.45")


def test_the_openapi_example_has_no_t_and_is_rejected() -> None:
    outcome = quote_of(sample("finnhub.quote.openapi_example.json"))
    assert isinstance(outcome, QuoteRejected) and outcome.reason is RejectionReason.MISSING_FIELD


def test_all_zero_is_no_data_never_a_price_of_zero() -> None:
    assert quote_of(decode_json(UNKNOWN), "ZZZZ") == NoQuoteData("ZZZZ")
    assert quote_of({"c": 0, "h": 0, "l": 0, "o": 0, "pc": 0}, "ZZZZ") == NoQuoteData("ZZZZ")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"c": 0}, RejectionReason.NOT_POSITIVE),
        ({"c": Decimal("-1.5")}, RejectionReason.NOT_POSITIVE),
        ({"pc": 0}, RejectionReason.NOT_POSITIVE),
        ({"o": Decimal("-210.87")}, RejectionReason.NOT_POSITIVE),
        ({"l": Decimal("-1")}, RejectionReason.NOT_POSITIVE),
        ({"c": None}, RejectionReason.MISSING_FIELD),
        ({"h": None}, RejectionReason.MISSING_FIELD),
        ({"t": None}, RejectionReason.MISSING_FIELD),
        ({"c": "211.18"}, RejectionReason.BAD_NUMBER),
        ({"c": True}, RejectionReason.BAD_NUMBER),
        ({"h": Decimal("209.0"), "l": Decimal("210.0")}, RejectionReason.HIGH_BELOW_LOW),
        ({"c": Decimal("1E+9")}, RejectionReason.ABSURD_PRICE),
        ({"t": 1753041600000}, RejectionReason.TIME_IN_MILLISECONDS),
        ({"t": 0}, RejectionReason.TIME_INVALID),
        ({"t": -5}, RejectionReason.TIME_INVALID),
        ({"t": Decimal("1753041600.5")}, RejectionReason.TIME_INVALID),
        ({"t": 86400}, RejectionReason.TIME_INVALID),
        ({"t": int((FETCHED + timedelta(hours=1)).timestamp())}, RejectionReason.TIME_IN_FUTURE),
    ],
)
def test_a_broken_rule_is_a_rejection_with_its_reason(changes: dict[str, Any], reason: RejectionReason) -> None:
    outcome = quote_of(good(**changes))
    assert isinstance(outcome, QuoteRejected), outcome
    assert outcome.reason is reason and outcome.symbol == "AAPL" and outcome.detail


@pytest.mark.parametrize("literal", ["1e400", "NaN", "Infinity", "-Infinity", "9" * 500])
def test_hostile_numbers_off_the_wire_are_bad_numbers(literal: str) -> None:
    text = json.dumps({"c": 1, "h": 2, "l": 1, "o": 1, "pc": 1, "t": 1753041600}).replace('"c": 1', f'"c": {literal}')
    outcome = quote_of(decode_json(text))
    assert isinstance(outcome, QuoteRejected) and outcome.reason in {
        RejectionReason.BAD_NUMBER,
        RejectionReason.ABSURD_PRICE,
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], RejectionReason.NOT_AN_OBJECT),
        ("API limit reached", RejectionReason.NOT_AN_OBJECT),
        ({"error": "API limit reached. Please try again later. Remaining Limit: 0"}, RejectionReason.ERROR_BODY),
        ({"error": "You don't have access to this resource."}, RejectionReason.ERROR_BODY),
    ],
)
def test_bodies_that_are_no_quote_are_rejected(body: Any, reason: RejectionReason) -> None:
    outcome = quote_of(body)
    assert isinstance(outcome, QuoteRejected) and outcome.reason is reason


def test_negative_change_is_a_quote() -> None:
    quote = quote_of(good(d=Decimal("-3.2"), dp=Decimal("-1.5")))
    assert isinstance(quote, StockQuote) and quote.change == Decimal("-3.2")


def test_the_price_ceiling_is_configuration() -> None:
    assert isinstance(quote_of(good(), max_price=Decimal(100)), QuoteRejected)


def test_symbols_and_keys() -> None:
    assert DEFAULT_SYMBOLS == ("AAPL", "MSFT", "TSLA", "GOOGL", "AMZN")
    assert instrument_key(" brk.b ") == "stock:BRK.B"
    assert parse_symbol_list("aapl, MSFT,,aapl,tsla") == ("AAPL", "MSFT", "TSLA")
    for bad in ["", "AAPL MSFT", "A/B", "../x", "ÄPPLE", "A" * 20]:
        with pytest.raises(BadMessage):
            canonical_symbol(bad)


def test_market_hours_follow_us_eastern_with_daylight_saving() -> None:
    # 13:30 UTC is 09:30 EDT in July but 08:30 EST in January.
    assert in_regular_session(datetime(2025, 7, 21, 13, 30, tzinfo=timezone.utc))
    assert not in_regular_session(datetime(2025, 1, 21, 13, 30, tzinfo=timezone.utc))
    assert in_regular_session(datetime(2025, 1, 21, 14, 30, tzinfo=timezone.utc))
    assert not in_regular_session(datetime(2025, 7, 21, 20, 0, tzinfo=timezone.utc))  # 16:00 EDT: closed
    assert not in_regular_session(datetime(2025, 7, 20, 15, 0, tzinfo=timezone.utc))  # a Sunday
    # 02:00 UTC on the 22nd is still the 21st in New York: the candle's day.
    assert str(trading_day(datetime(2025, 7, 22, 2, 0, tzinfo=timezone.utc))) == "2025-07-21"


def _at(moment: datetime, price: str = "211.18") -> StockQuote:
    quote = quote_of(good(c=Decimal(price), t=int(moment.timestamp())))
    assert isinstance(quote, StockQuote)
    return quote


def test_a_frozen_t_is_not_a_new_quote() -> None:
    friday_close = _at(datetime(2025, 7, 18, 20, 0, tzinfo=timezone.utc))
    assert is_new_quote(friday_close, None)
    assert not is_new_quote(friday_close, friday_close)  # the same t on every call of the weekend
    sunday_stamp = _at(datetime(2025, 7, 20, 20, 0, tzinfo=timezone.utc))  # Finnhub moved t, not the price
    assert not is_new_quote(sunday_stamp, friday_close)
    after_hours_trade = _at(datetime(2025, 7, 18, 22, 0, tzinfo=timezone.utc), "212.00")
    assert is_new_quote(after_hours_trade, friday_close)  # outside the session, but a new price
    monday = _at(datetime(2025, 7, 21, 14, 0, tzinfo=timezone.utc))
    assert is_new_quote(monday, sunday_stamp)  # in session: a new t is a new quote
    assert not is_new_quote(friday_close, monday)  # older than the latest
