"""Every error type maps to the HTTP verdict KafkaSource acts on (README Contracts, docs/architecture.md)."""

from __future__ import annotations

import json

import pytest

from shared.errors import (
    BadMessage,
    CircuitOpen,
    DependencyUnavailable,
    PermanentUpstreamError,
    PrerequisiteMissing,
    RateLimited,
    RegionBlocked,
    RetryableUpstreamError,
    UnknownToken,
    UpstreamBanned,
)
from shared.runtime.verdict import HttpResponse, verdict_for_error


def _body(response: HttpResponse) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)


def test_rate_limited_is_429_with_retry_after_rounded_up():
    response = verdict_for_error(RateLimited("binance", "too many requests", retry_after=2.2))
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    body = _body(response)
    assert body == {"error": "binance: too many requests", "kind": "RateLimited", "retryable": True}


def test_rate_limited_without_retry_after_has_no_header_and_never_a_zero_wait():
    assert "Retry-After" not in verdict_for_error(RateLimited("coingecko", "429")).headers
    assert verdict_for_error(RateLimited("coingecko", "429", retry_after=0.01)).headers["Retry-After"] == "1"


def test_ban_is_a_rate_limit_too():
    response = verdict_for_error(UpstreamBanned("binance", "IP banned", retry_after=120, status=418))
    assert response.status == 429
    assert response.headers["Retry-After"] == "120"


def test_bad_message_is_400_with_the_reason_in_the_body():
    response = verdict_for_error(BadMessage("invalid job message: symbols: Input should be a valid list"))
    assert response.status == 400
    body = _body(response)
    assert body["error"] == "invalid job message: symbols: Input should be a valid list"
    assert body["kind"] == "BadMessage"
    assert body["retryable"] is False


@pytest.mark.parametrize(
    "exc",
    [
        UnknownToken("unknown token ethereum:0xabc"),
        PermanentUpstreamError("coingecko", "404 coin not found", status=404),
        RegionBlocked("binance", "451 unavailable in this region", status=451),
    ],
)
def test_errors_that_never_succeed_are_400(exc):
    response = verdict_for_error(exc)
    assert response.status == 400
    assert _body(response)["retryable"] is False
    assert _body(response)["kind"] == type(exc).__name__


@pytest.mark.parametrize(
    "exc",
    [
        RetryableUpstreamError("dexscreener", "timeout"),
        CircuitOpen("binance", "breaker open"),
        DependencyUnavailable("PostgreSQL unreachable"),
        PrerequisiteMissing("no top-100 set yet"),
    ],
)
def test_retryable_errors_are_503(exc):
    response = verdict_for_error(exc)
    assert response.status == 503
    body = _body(response)
    assert body["retryable"] is True
    assert body["error"] == exc.reason


@pytest.mark.parametrize("exc", [KeyError("price_usdt"), ZeroDivisionError("division by zero"), AttributeError("x")])
def test_a_bug_is_500_and_names_the_exception(exc):
    response = verdict_for_error(exc)
    assert response.status == 500
    body = _body(response)
    assert type(exc).__name__ in body["error"]
    assert body["retryable"] is True
