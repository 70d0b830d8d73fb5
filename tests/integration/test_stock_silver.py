"""Stock silver on the real PostgreSQL: typed, exact, deduplicated on (symbol, market time), rules as constraints."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pg8000.native
import pytest

from shared.db.connection import connect
from shared.stocks.models import QuoteRejected, RejectionReason, StockQuote
from shared.stocks.normalize_finnhub import normalise_quote
from shared.stocks.store import insert_quotes, latest_quote, record_rejections, rejection_counts
from shared.upstream.jsonbody import decode_json
from tests.helpers.upstream_doubles import sample_bytes

pytestmark = pytest.mark.infra
FETCHED = datetime(2025, 7, 21, 18, 0, tzinfo=timezone.utc)


def aapl() -> StockQuote:
    quote = normalise_quote("AAPL", decode_json(sample_bytes("finnhub.quote.aapl_2025.json")), FETCHED)
    assert isinstance(quote, StockQuote)
    return quote


def test_a_quote_is_stored_exactly_once_per_market_time(clean_db: str) -> None:
    conn = connect(clean_db)
    try:
        quote = aapl()
        assert insert_quotes(conn, [quote]) == [quote]
        refetched = dataclasses.replace(quote, fetched_at=FETCHED + timedelta(seconds=6))
        assert insert_quotes(conn, [refetched]) == []  # the frozen t again: no new row
        later = dataclasses.replace(
            quote, market_time=quote.market_time + timedelta(days=1), current_price=Decimal("212.0001")
        )
        assert insert_quotes(conn, [later]) == [later]
        assert conn.run("SELECT count(*) FROM stock_quotes") == [[2]]
        stored = latest_quote(conn, "AAPL")
        assert stored == later and stored is not None and stored.day_low == Decimal("209.7045")
        assert latest_quote(conn, "MSFT") is None
    finally:
        conn.close()


def test_the_original_rules_hold_in_the_table_too(clean_db: str) -> None:
    conn = connect(clean_db)
    try:
        for broken in (
            dataclasses.replace(aapl(), current_price=Decimal(0)),
            dataclasses.replace(aapl(), day_high=Decimal(1), day_low=Decimal(2)),
            dataclasses.replace(aapl(), instrument_key="stock:MSFT"),
        ):
            with pytest.raises(pg8000.native.DatabaseError, match="check constraint"):
                insert_quotes(conn, [broken])
        assert conn.run("SELECT count(*) FROM stock_quotes") == [[0]]
    finally:
        conn.close()


def test_rejections_are_logged_and_counted_by_reason(clean_db: str) -> None:
    conn = connect(clean_db)
    try:
        rejected = [
            QuoteRejected("AAPL", RejectionReason.TIME_IN_MILLISECONDS, "t 1753041600000 is milliseconds"),
            QuoteRejected("TSLA", RejectionReason.HIGH_BELOW_LOW, "day high 1 below day low 2"),
            QuoteRejected("MSFT", RejectionReason.HIGH_BELOW_LOW, "day high 3 below day low 4"),
        ]
        record_rejections(conn, rejected, FETCHED, job_id="job-1")
        assert rejection_counts(conn) == {"time_in_milliseconds": 1, "high_below_low": 2}
    finally:
        conn.close()
