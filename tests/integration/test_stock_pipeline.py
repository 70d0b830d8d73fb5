"""One stock-quotes job against the simulated Finnhub over HTTP and the real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from local.market.server import SimulatedMarket
from shared.config import FinnhubSettings
from shared.db.connection import ConnectionPool
from shared.stocks.models import RejectionReason
from shared.stocks.pipeline import run_stock_quotes
from shared.stocks.store import rejection_counts
from shared.upstream.finnhub import FinnhubClient

pytestmark = pytest.mark.infra
IN_SESSION = datetime(2025, 7, 21, 15, 0, tzinfo=timezone.utc)  # Monday, 11:00 EDT


def test_a_job_stores_new_quotes_once_and_names_every_other_outcome(
    simulated_market: SimulatedMarket, clean_db: str
) -> None:
    simulated_market.clock.freeze(IN_SESSION)
    client = FinnhubClient.from_settings(FinnhubSettings(base_url=simulated_market.base_url("finnhub"), api_key="k"))
    pool = ConnectionPool(clean_db, size=2)
    clock = simulated_market.clock.now_datetime
    try:
        symbols = ["AAPL", "MSFT", "ZZZZ", "VOD.L"]
        first = run_stock_quotes(symbols, client, pool.transaction, clock=clock, job_id="j1")
        assert [q.instrument_key for q in first.new] == ["stock:AAPL", "stock:MSFT"]
        assert first.no_data == ["ZZZZ"] and first.not_covered == ["VOD.L"] and not first.rejected
        again = run_stock_quotes(symbols, client, pool.transaction, clock=clock, job_id="j2")
        assert again.new == [] and again.repeats == ["AAPL", "MSFT"]  # the same t: no new quote
        simulated_market.clock.advance(6)
        later = run_stock_quotes(["AAPL"], client, pool.transaction, clock=clock, job_id="j3")
        assert len(later.new) == 1 and later.new[0].market_time > first.new[0].market_time
        with pool.connection() as conn:
            assert conn.run("SELECT symbol, count(*) FROM stock_quotes GROUP BY symbol ORDER BY 1") == [
                ["AAPL", 2],
                ["MSFT", 1],
            ]
    finally:
        pool.close()
        client.http.close()


def test_a_future_t_is_a_logged_rejection(simulated_market: SimulatedMarket, clean_db: str) -> None:
    simulated_market.clock.freeze(IN_SESSION)
    client = FinnhubClient.from_settings(FinnhubSettings(base_url=simulated_market.base_url("finnhub")))
    pool = ConnectionPool(clean_db, size=2)
    try:
        # Our clock an hour behind the market's: Finnhub's t is in our future.
        behind = datetime(2025, 7, 21, 14, 0, tzinfo=timezone.utc)
        outcome = run_stock_quotes(["TSLA"], client, pool.transaction, clock=lambda: behind)
        assert [r.reason for r in outcome.rejected] == [RejectionReason.TIME_IN_FUTURE]
        with pool.connection() as conn:
            assert rejection_counts(conn) == {"time_in_future": 1}
            assert conn.run("SELECT count(*) FROM stock_quotes") == [[0]]
    finally:
        pool.close()
        client.http.close()
