"""The simulated Finnhub: the recorded format, moving prices in US/Eastern hours, its limits and refusals.

Served over real HTTP by the session's simulated market and read with the production client.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from local.market.apis.finnhub import FinnhubApi, quote_body
from local.market.server import SimulatedMarket
from shared.config import FinnhubSettings
from shared.errors import PermanentUpstreamError, RateLimited
from shared.stocks.models import NoQuoteData, StockQuote
from shared.stocks.normalize_finnhub import is_new_quote, normalise_quote
from shared.upstream.finnhub import FinnhubClient, is_not_covered
from shared.upstream.jsonbody import decode_json
from tests.helpers.upstream_doubles import sample_bytes

# Monday 2025-07-21, 11:00 EDT (15:00 UTC): the session is open.
IN_SESSION = datetime(2025, 7, 21, 15, 0, tzinfo=timezone.utc)
# Saturday 2025-07-19: the close of Friday the 18th (20:00 UTC = 16:00 EDT) stands still.
WEEKEND = datetime(2025, 7, 19, 12, 0, tzinfo=timezone.utc)
FRIDAY_CLOSE = int(datetime(2025, 7, 18, 20, 0, tzinfo=timezone.utc).timestamp())


def client(market: SimulatedMarket, key: str = "test-key") -> FinnhubClient:
    """The production client, its own budgets opened wide: these tests probe the market's limits."""
    settings = FinnhubSettings(
        base_url=market.base_url("finnhub"),
        api_key=key,
        max_retries=0,
        rate_limit_per_minute=1000,
        rate_limit_per_second=1000,
    )
    return FinnhubClient.from_settings(settings)


def test_the_answer_has_the_recorded_shape_and_json_numbers(simulated_market: SimulatedMarket) -> None:
    simulated_market.clock.freeze(IN_SESSION)
    raw = client(simulated_market).http._client.get("/api/v1/quote", params={"symbol": "AAPL"})
    recorded = decode_json(sample_bytes("finnhub.quote.aapl_2025.json"))
    body = decode_json(raw.content)
    assert sorted(body) == sorted(recorded)
    assert all(isinstance(v, Decimal | int) for v in body.values())
    assert body["t"] == int(IN_SESSION.timestamp())
    quote = normalise_quote("AAPL", body, IN_SESSION)
    assert isinstance(quote, StockQuote)
    assert quote.day_low <= quote.current_price <= quote.day_high and quote.day_low <= quote.day_open
    assert quote.change == quote.current_price - quote.previous_close


def test_prices_move_in_session_and_stand_still_outside() -> None:
    moving = {quote_body("AAPL", IN_SESSION.timestamp() + s)["c"] for s in range(0, 600, 30)}
    assert len(moving) > 5
    frozen = [quote_body("AAPL", WEEKEND.timestamp() + s) for s in range(0, 7200, 600)]
    assert all(body == frozen[0] for body in frozen) and frozen[0]["t"] == FRIDAY_CLOSE
    # Before Monday's open (08:00 EDT) the quote is still Friday's close.
    assert quote_body("AAPL", datetime(2025, 7, 21, 12, 0, tzinfo=timezone.utc).timestamp())["t"] == FRIDAY_CLOSE


def test_a_frozen_weekend_quote_is_no_new_quote(simulated_market: SimulatedMarket) -> None:
    simulated_market.clock.freeze(WEEKEND)
    finnhub = client(simulated_market)
    first = normalise_quote("MSFT", finnhub.quote("MSFT"), WEEKEND)
    simulated_market.clock.advance(6)
    second = normalise_quote("MSFT", finnhub.quote("MSFT"), WEEKEND)
    assert isinstance(first, StockQuote) and isinstance(second, StockQuote)
    assert not is_new_quote(second, first)


def test_an_unknown_symbol_is_zeros_and_an_uncovered_one_403(simulated_market: SimulatedMarket) -> None:
    finnhub = client(simulated_market)
    assert normalise_quote("ZZZZ", finnhub.quote("ZZZZ"), IN_SESSION) == NoQuoteData("ZZZZ")
    with pytest.raises(PermanentUpstreamError, match="You don't have access to this resource") as caught:
        finnhub.quote("VOD.L")
    assert is_not_covered(caught.value)


def test_30_per_second_and_60_per_minute_with_the_real_429_body(simulated_market: SimulatedMarket) -> None:
    finnhub = client(simulated_market, key="burst")
    for _ in range(30):
        finnhub.quote("AAPL")
    with pytest.raises(RateLimited, match="API limit reached. Please try again later. Remaining Limit: 0"):
        finnhub.quote("AAPL")
    other = client(simulated_market, key="minute")
    api = simulated_market.apis["finnhub"]
    assert isinstance(api, FinnhubApi)
    api.configure(per_second=1000)
    for _ in range(60):
        other.quote("TSLA")
    with pytest.raises(RateLimited, match="API limit reached"):
        other.quote("TSLA")
    assert client(simulated_market, key="third").quote("TSLA")["c"] > 0  # limits are per key
