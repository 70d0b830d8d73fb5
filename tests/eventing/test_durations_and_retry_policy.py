"""ISO-8601 durations and the KafkaSource retry policy (knative-eventing.md b.1–b.4) — pure logic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from local.eventing.durations import (
    DurationError,
    duration_to_millis,
    parse_iso8601_duration,
)
from local.eventing.retry_policy import (
    DeliverySpecError,
    RetryPolicy,
    is_retryable_status,
    is_retryable_status_for_ping,
    ping_retry_policy,
    policy_from_delivery_spec,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT600S", timedelta(seconds=600)),
        ("PT0.3S", timedelta(milliseconds=300)),
        ("PT0,25S", timedelta(milliseconds=250)),
        ("PT1M30.5S", timedelta(seconds=90.5)),
        ("PT2H", timedelta(hours=2)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT1H", timedelta(days=1, hours=1)),
        ("PT0S", timedelta(0)),
        ("pt1s", timedelta(seconds=1)),
    ],
)
def test_valid_durations(text, expected):
    assert parse_iso8601_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "0.5S", "PT-1S", "-PT1S", "PT1.5", "1 second", "P1S", "PT1S2M", "PT1SX"]
)
def test_invalid_durations(text):
    with pytest.raises(DurationError):
        parse_iso8601_duration(text)


def test_non_string_duration_is_rejected_clearly():
    with pytest.raises(DurationError, match="ISO-8601"):
        parse_iso8601_duration(cast(Any, 5))


def test_years_and_months_use_knatives_approximate_lengths():
    assert parse_iso8601_duration("P1Y") == timedelta(days=365.2425)
    assert parse_iso8601_duration("P1M") == timedelta(days=365.2425 / 12)


def test_milliseconds_are_truncated():
    assert duration_to_millis(parse_iso8601_duration("PT0.0005S")) == 0
    assert duration_to_millis(parse_iso8601_duration("PT1.2345S")) == 1234


# --- b.2 defaults -----------------------------------------------------------------------------


def test_absent_delivery_gets_the_controller_defaults():
    policy = policy_from_delivery_spec(None)
    assert policy == RetryPolicy(retry=10, backoff_policy="exponential", backoff_delay_ms=300, timeout_ms=600_000)
    waits = [policy.delay_before_retry(n) for n in range(1, 11)]
    assert waits[0] == pytest.approx(0.6) and waits[1] == pytest.approx(1.2) and waits[-1] == pytest.approx(307.2)
    assert sum(waits) == pytest.approx(613.8)  # ~10 minutes in total


def test_present_delivery_leaves_unset_fields_unset():
    policy = policy_from_delivery_spec({"deadLetterSink": {"uri": "http://dls"}})
    assert policy.retry == 0 and policy.max_attempts == 1
    assert policy.backoff_policy == "exponential"
    assert policy.backoff_delay_ms == 200
    assert policy.timeout_seconds == 600


def test_retry_without_backoff_delay_defaults_to_200ms():
    policy = policy_from_delivery_spec({"retry": 3})
    assert policy.backoff_delay_ms == 200
    assert policy.delay_before_retry(1) == pytest.approx(0.4)


def test_all_fields():
    policy = policy_from_delivery_spec(
        {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT0.5S", "timeout": "PT30S", "format": "json"}
    )
    assert policy == RetryPolicy(retry=5, backoff_policy="linear", backoff_delay_ms=500, timeout_ms=30_000)


# --- b.4 arithmetic ---------------------------------------------------------------------------


def test_linear_backoff_is_delay_times_n():
    policy = RetryPolicy(retry=3, backoff_policy="linear", backoff_delay_ms=250)
    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [0.25, 0.5, 0.75]


def test_exponential_backoff_is_delay_times_two_to_the_n():
    policy = RetryPolicy(retry=3, backoff_policy="exponential", backoff_delay_ms=100)
    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]


def test_zero_delay_means_immediate_retries():
    policy = policy_from_delivery_spec({"retry": 2, "backoffDelay": "PT0S"})
    assert policy.delay_before_retry(1) == 0 and policy.delay_before_retry(2) == 0


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError):
        RetryPolicy(retry=1).delay_before_retry(0)


@pytest.mark.parametrize(
    ("delivery", "message"),
    [
        ({"retry": -1}, "retry"),
        ({"retry": "3"}, "retry"),
        ({"retry": True}, "retry"),
        ({"backoffPolicy": "fibonacci"}, "backoffPolicy"),
        ({"backoffDelay": "500ms"}, "backoffDelay"),
        ({"timeout": "PT0S"}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"retryAfterMax": "PT10S"}, "retryAfterMax"),
    ],
)
def test_invalid_delivery_specs_are_rejected(delivery, message):
    with pytest.raises(DeliverySpecError, match=message):
        policy_from_delivery_spec(delivery)


# --- b.3 classification -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599, 404, 408, 409, 429])
def test_retryable_statuses(status):
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [300, 301, 400, 401, 403, 405, 410, 413, 422])
def test_statuses_that_go_to_the_dead_letter_sink_at_once(status):
    assert not is_retryable_status(status)


def test_ping_policy_is_sdk_go_s():
    policy = ping_retry_policy(timeout_ms=30_000)
    assert policy.retry == 5
    assert [policy.delay_before_retry(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert is_retryable_status_for_ping(503) and is_retryable_status_for_ping(413)
    assert not is_retryable_status_for_ping(501) and not is_retryable_status_for_ping(400)
