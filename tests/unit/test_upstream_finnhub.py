"""The Finnhub client: recorded quote answers, its two budgets, its real 429 and 403 bodies, its key."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from shared.config import FinnhubSettings, Settings
from shared.errors import PermanentUpstreamError, RateLimited
from shared.observability.logging import secrets_of
from shared.upstream import UpstreamClients
from shared.upstream.finnhub import FinnhubClient, is_not_covered
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply

KEY = "d1secretfinnhubkey0000"
LIMIT_BODY = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
NOT_COVERED_BODY = {"error": "You don't have access to this resource."}


def finnhub(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> FinnhubClient:
    settings = FinnhubSettings(base_url="https://finnhub.test", api_key=KEY, backoff_initial_seconds=0.01, **overrides)
    return FinnhubClient.from_settings(settings, transport=transport, **clock.http_options())


def test_a_quote_is_one_get_with_the_key_in_its_header_and_exact_numbers() -> None:
    clock = FakeClock()
    transport = ReplayTransport({"/api/v1/quote": Reply.sample("finnhub.quote.aapl_2025.json")})
    body = finnhub(transport, clock).quote("AAPL")
    assert body["c"] == Decimal("211.18") and body["l"] == Decimal("209.7045") and body["t"] == 1753041600
    (request,) = transport.requests
    assert request.url.path == "/api/v1/quote" and request.url.params["symbol"] == "AAPL"
    assert request.headers["x-finnhub-token"] == KEY
    assert KEY not in str(request.url)  # never in a URL (access logs, the archive's params)


def test_no_key_sends_no_header() -> None:
    transport = ReplayTransport({"/api/v1/quote": Reply.sample("finnhub.quote.json")})
    FinnhubClient.from_settings(FinnhubSettings(base_url="https://finnhub.test"), transport=transport).quote("AAPL")
    assert "x-finnhub-token" not in transport.requests[0].headers


def test_the_real_429_body_is_rate_limited_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    transport = ReplayTransport({"/api/v1/quote": Reply.json(LIMIT_BODY, status=429)})
    with caplog.at_level(logging.DEBUG), pytest.raises(RateLimited, match="API limit reached") as caught:
        finnhub(transport, clock).quote("AAPL")
    assert caught.value.status == 429
    assert len(transport.requests) == 2  # FINNHUB_MAX_RETRIES defaults to 1: the minute is spent
    assert KEY not in caplog.text and KEY not in str(caught.value)


def test_403_is_permanent_for_that_symbol_and_never_retried() -> None:
    clock = FakeClock()
    transport = ReplayTransport({"/api/v1/quote": Reply.json(NOT_COVERED_BODY, status=403)})
    client = finnhub(transport, clock)
    with pytest.raises(PermanentUpstreamError, match="access to this resource") as caught:
        client.quote("BMW.DE")
    assert is_not_covered(caught.value) and len(transport.requests) == 1
    assert client.http.breaker_state == "closed"  # the API answered: no outage
    assert not is_not_covered(RateLimited("finnhub", "x"))


def test_30_per_second_burst_cap_beside_60_per_minute() -> None:
    clock = FakeClock()
    transport = ReplayTransport({"/api/v1/quote": Reply.sample("finnhub.quote.aapl_2025.json")})
    client = finnhub(transport, clock)
    for _ in range(30):
        client.quote("AAPL")
    assert clock.elapsed == 0  # the burst the plan allows
    client.quote("AAPL")
    assert clock.elapsed == pytest.approx(1.0)  # the 31st waits for the second to pass
    for _ in range(29):
        client.quote("AAPL")
    assert clock.elapsed == pytest.approx(1.0)  # 60 in the first minute
    with pytest.raises(RateLimited, match="60 requests/min"):
        client.quote("AAPL")  # the 61st would wait ~59 s, beyond FINNHUB_MAX_WAIT_SECONDS
    assert len(transport.requests) == 60


def test_the_factory_builds_the_finnhub_client_and_its_key_is_a_registered_secret() -> None:
    settings = Settings().with_upstream("finnhub", api_key=KEY)
    clients = UpstreamClients.from_settings(settings, transport=ReplayTransport())
    assert clients.finnhub is clients.finnhub
    assert clients.breaker_states() == {"finnhub": "closed"}
    assert KEY in secrets_of(settings)
    clients.close()
