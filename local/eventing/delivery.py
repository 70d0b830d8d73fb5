"""Deliver one event: attempts with backoff, then the dead-letter sink, else drop (b.3–b.6).

Shared by KafkaSource (Knative's policy from `spec.delivery`) and PingSource (sdk-go's fixed
policy). Every attempt is counted and logged as one JSON line; the function never raises for
a failed delivery — it returns the final disposition so the caller can commit the offset.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass

from local.eventing.cloudevent import CloudEvent, is_valid_extension_name
from local.eventing.retry_policy import RetryPolicy
from local.eventing.senders import AttemptResult, EventSender
from local.eventing.telemetry import (
    DEAD_LETTERED,
    DELIVERED,
    DROPPED,
    FAILED,
    RETRYING,
    EventingMetrics,
    log_outcome,
)

ERROR_DATA_MAX_BYTES = 1024


@dataclass(frozen=True)
class DeliveryReport:
    """Result of all attempts at one destination."""

    delivered: bool
    attempts: int
    last: AttemptResult


@dataclass(frozen=True)
class DeliveryContext:
    """Who is delivering, for counters and log lines."""

    source_key: str
    metrics: EventingMetrics
    log_fields: dict


async def send_with_retries(
    sender: EventSender,
    event: CloudEvent,
    policy: RetryPolicy,
    *,
    is_retryable: Callable[[int], bool],
    context: DeliveryContext,
    dead_letter: bool = False,
) -> DeliveryReport:
    """Up to 1 + policy.retry attempts; a non-retryable status stops at once (b.3)."""
    attempt = 0
    while True:
        attempt += 1
        result = await sender.send(event, policy.timeout_seconds)
        if result.ok:
            outcome = DELIVERED
        elif attempt > policy.retry or (result.status is not None and not is_retryable(result.status)):
            outcome = FAILED
        else:
            outcome = RETRYING
        context.metrics.attempt(context.source_key, attempt=attempt, status=result.status, dead_letter=dead_letter)
        log_outcome(
            logging.INFO if outcome == DELIVERED else logging.WARNING,
            f"{'dead-letter ' if dead_letter else ''}delivery attempt {outcome}",
            source=context.source_key,
            target="dead_letter_sink" if dead_letter else "sink",
            url=sender.address,
            event_id=event.id,
            event_type=event.type,
            attempt=attempt,
            status=result.status,
            error=result.error,
            latency_ms=round(result.latency_seconds * 1000, 1),
            outcome=outcome,
            **context.log_fields,
        )
        if outcome != RETRYING:
            return DeliveryReport(delivered=result.ok, attempts=attempt, last=result)
        await asyncio.sleep(policy.delay_before_retry(attempt))


def error_extensions(destination: str, failure: AttemptResult) -> dict[str, str]:
    """Extensions a dead-lettered event carries (b.5, RecordDispatcherImpl.errorTransform).

    Always `knativeerrordest`; with a response also `knativeerrorcode`, one extension per
    `kne-*` response header (prefix removed, lower-cased) and `knativeerrordata` (base64 of
    the first ≤1024 body bytes; left out for an empty body).

    Beyond Knative, always `knativeerrorreason`: why the last attempt failed (the network
    error, or the status). Knative adds nothing but the destination for a network error, so
    an event could be dead-lettered with no code and no reason.
    """
    extensions = {"knativeerrordest": destination, "knativeerrorreason": failure_reason(failure)}
    if failure.status is None:
        return extensions
    extensions["knativeerrorcode"] = str(failure.status)
    for name, value in failure.headers:
        if name.lower().startswith("kne-"):
            extension = name[4:].lower()
            if is_valid_extension_name(extension):
                extensions[extension] = value
    if failure.body:
        extensions["knativeerrordata"] = base64.b64encode(failure.body[:ERROR_DATA_MAX_BYTES]).decode("ascii")
    return extensions


def failure_reason(failure: AttemptResult) -> str:
    """Why an attempt failed, in one line: the network error, or the HTTP status."""
    if failure.status is None:
        return failure.error or "no response"
    return f"HTTP {failure.status}" + (f": {failure.error}" if failure.error else "")


async def deliver(
    event: CloudEvent,
    sink: EventSender,
    policy: RetryPolicy,
    *,
    is_retryable: Callable[[int], bool],
    context: DeliveryContext,
    dead_letter_sink: EventSender | None = None,
) -> str:
    """Deliver to the sink, else to the dead-letter sink, else drop; returns the disposition.

    Dispositions: `delivered`, `dead_lettered` or `dropped`. In every case the caller may
    consider the record completed (b.6: a failed DLS does not block the partition).
    """
    report = await send_with_retries(sink, event, policy, is_retryable=is_retryable, context=context)
    if report.delivered:
        context.metrics.delivered(context.source_key)
        return DELIVERED
    if dead_letter_sink is not None:
        dead_event = event.with_extensions(error_extensions(sink.address, report.last))
        dead_report = await send_with_retries(
            dead_letter_sink, dead_event, policy, is_retryable=is_retryable, context=context, dead_letter=True
        )
        if dead_report.delivered:
            context.metrics.dead_lettered(context.source_key)
            log_outcome(
                logging.WARNING,
                "event dead-lettered",
                source=context.source_key,
                event_id=event.id,
                event_type=event.type,
                url=dead_letter_sink.address,
                status=report.last.status,
                reason=failure_reason(report.last),
                outcome=DEAD_LETTERED,
                **context.log_fields,
            )
            return DEAD_LETTERED
    context.metrics.dropped(context.source_key)
    log_outcome(
        logging.ERROR,
        "EVENT DROPPED: the sink failed and "
        + ("the dead-letter sink failed too" if dead_letter_sink is not None else "no dead-letter sink is configured"),
        source=context.source_key,
        event_id=event.id,
        event_type=event.type,
        status=report.last.status,
        error=report.last.error,
        outcome=DROPPED,
        **context.log_fields,
    )
    return DROPPED
