"""Retry, backoff and timeout of a KafkaSource delivery (knative-eventing.md b.1–b.4).

Pure arithmetic: which responses are retried, how long to wait before retry n, and
which defaults apply when a manifest's `spec.delivery` is absent or partial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from local.eventing.durations import (
    DurationError,
    duration_to_millis,
    parse_iso8601_duration,
)

BackoffPolicy = Literal["exponential", "linear"]
BACKOFF_POLICIES: tuple[BackoffPolicy, ...] = ("exponential", "linear")

# b.2: what the controller injects when `spec.delivery` is absent.
ABSENT_DELIVERY_RETRY = 10
ABSENT_DELIVERY_BACKOFF_DELAY_MS = 300
# b.2: `consumer.go` EgressConfigFromDelivery(..., 200) when retry is set without backoffDelay.
PRESENT_DELIVERY_DEFAULT_BACKOFF_DELAY_MS = 200
# WebClientCloudEventSender.DEFAULT_TIMEOUT_MS, also the controller's injected PT600S.
DEFAULT_TIMEOUT_MS = 600_000


class DeliverySpecError(ValueError):
    """`spec.delivery` has a value the Knative webhook would reject."""


@dataclass(frozen=True)
class RetryPolicy:
    """How one event is (re)sent: `retry` extra attempts, backoff before each, per-attempt timeout."""

    retry: int
    backoff_policy: BackoffPolicy = "exponential"
    backoff_delay_ms: int = PRESENT_DELIVERY_DEFAULT_BACKOFF_DELAY_MS
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    @property
    def max_attempts(self) -> int:
        """Total attempts = 1 + retry (b.3)."""
        return 1 + self.retry

    def delay_before_retry(self, retry_number: int) -> float:
        """Seconds to wait before retry `retry_number` (1, 2, …), per b.4.

        linear: delay × n; exponential: delay × 2ⁿ, so the first exponential retry already
        waits twice the configured delay. A zero delay means immediate retries.
        """
        if retry_number < 1:
            raise ValueError("retry numbers start at 1")
        if self.backoff_delay_ms <= 0:
            return 0.0
        if self.backoff_policy == "linear":
            return self.backoff_delay_ms * retry_number / 1000
        return self.backoff_delay_ms * (2**retry_number) / 1000

    @property
    def timeout_seconds(self) -> float:
        """Per-attempt timeout; ≤ 0 falls back to the data plane's 600 s like Knative."""
        return (self.timeout_ms if self.timeout_ms > 0 else DEFAULT_TIMEOUT_MS) / 1000


def policy_from_delivery_spec(delivery: Mapping[str, Any] | None) -> RetryPolicy:
    """The effective policy of a KafkaSource's `spec.delivery` (b.2's two very different cases).

    Absent → retry 10, exponential, 300 ms, 600 s. Present → unset fields stay unset: no
    `retry` means no retries, `backoffDelay` defaults to 200 ms, policy to exponential,
    timeout to 600 s. Raises `DeliverySpecError` for values the webhook rejects.
    """
    if delivery is None:
        return RetryPolicy(
            retry=ABSENT_DELIVERY_RETRY,
            backoff_policy="exponential",
            backoff_delay_ms=ABSENT_DELIVERY_BACKOFF_DELAY_MS,
            timeout_ms=DEFAULT_TIMEOUT_MS,
        )
    if not isinstance(delivery, Mapping):
        raise DeliverySpecError("spec.delivery must be a mapping")

    retry = delivery.get("retry", 0)
    if retry is None:
        retry = 0
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise DeliverySpecError(f"spec.delivery.retry must be an integer >= 0, got {retry!r}")

    requested = delivery.get("backoffPolicy") or "exponential"
    policy = next((p for p in BACKOFF_POLICIES if p == requested), None)
    if policy is None:
        raise DeliverySpecError(f"spec.delivery.backoffPolicy must be exponential or linear, got {requested!r}")

    delay_ms = PRESENT_DELIVERY_DEFAULT_BACKOFF_DELAY_MS
    if delivery.get("backoffDelay") is not None:
        delay_ms = _millis(delivery["backoffDelay"], "backoffDelay")

    timeout_ms = DEFAULT_TIMEOUT_MS
    if delivery.get("timeout") is not None:
        timeout_ms = _millis(delivery["timeout"], "timeout")
        if timeout_ms <= 0:
            raise DeliverySpecError(f"spec.delivery.timeout must be a positive duration, got {delivery['timeout']!r}")

    if delivery.get("retryAfterMax") is not None:
        # Rejected by the webhook unless the `delivery-retryafter` feature is enabled (it is not
        # by default), and never honoured by the Kafka dispatcher anyway (b.1).
        raise DeliverySpecError(
            "spec.delivery.retryAfterMax is rejected by Knative unless the delivery-retryafter feature "
            "is enabled, and the Kafka dispatcher ignores it; remove it"
        )
    return RetryPolicy(retry=retry, backoff_policy=policy, backoff_delay_ms=delay_ms, timeout_ms=timeout_ms)


def _millis(value: Any, field: str) -> int:
    try:
        return duration_to_millis(parse_iso8601_duration(value))
    except DurationError as exc:
        raise DeliverySpecError(f"spec.delivery.{field}: {exc}") from None


def is_retryable_status(status: int) -> bool:
    """KafkaSource classification (b.3): retry 5xx, 404, 408, 409, 429; others fail at once."""
    return status >= 500 or status in (404, 408, 409, 429)


def is_success_status(status: int) -> bool:
    """Any status below 300 acknowledges the event; the body is not inspected."""
    return status < 300


# PingSource's adapter uses cloudevents/sdk-go: 5 retries, exponential from 50 ms
# (Period × 2^tries, tries from 1), and sdk-go's own set of retryable statuses.
PING_RETRY_POLICY_RETRIES = 5
PING_BACKOFF_DELAY_MS = 50
_SDK_GO_RETRYABLE = frozenset({404, 413, 425, 429, 500, 502, 503, 504})


def ping_retry_policy(timeout_ms: int) -> RetryPolicy:
    """The fixed policy of PingSource sends (knative-eventing.md e)."""
    return RetryPolicy(
        retry=PING_RETRY_POLICY_RETRIES,
        backoff_policy="exponential",
        backoff_delay_ms=PING_BACKOFF_DELAY_MS,
        timeout_ms=timeout_ms,
    )


def is_retryable_status_for_ping(status: int) -> bool:
    """cloudevents/sdk-go's default retryable statuses, used by the PingSource adapter."""
    return status in _SDK_GO_RETRYABLE
