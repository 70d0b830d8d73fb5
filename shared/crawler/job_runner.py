"""Running one job message: parse, log, run the pipeline, record the outcome.

Shared by the price, metadata and audit functions so that every job gets the same
treatment: a bad message is rejected with its reason (job_logs + 400 → dead letter),
a job gets one `job_logs` row with counts and status plus a row per failed token,
and a retryable failure is recorded and re-raised (→ 429/503 → KafkaSource retries).
With the bronze archive on, each attempt's job message is archived before the pipeline runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, get_args

from shared.crawler import event_outbox, store
from shared.crawler.candle_fold import candle_fold
from shared.crawler.jobs import JobMessage, JobType, TokenType, parse_job_message
from shared.crawler.models import TokenFailure
from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.observability import metrics
from shared.observability.logging import log_context
from shared.observability.traces import current_traceparent
from shared.observability.tracing import child_traceparent, trace_id_of
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a pipeline gets: the job, its identity, trace context and the process's clients."""

    job: JobMessage
    job_id: str
    event: InboundEvent
    resources: Resources
    traceparent: str
    received_at: datetime
    # When the job's first attempt started (this attempt's `received_at` on the first one).
    first_received_at: datetime | None = None

    @property
    def observed_at(self) -> datetime:
        """The observation time of the job's prices: a redelivery observes under the first
        attempt's identity, so its rows and its price.updated event are the first attempt's."""
        return self.first_received_at or self.received_at


@dataclass
class JobOutcome:
    """What a pipeline reports: counts, per-token failures, and details for the response body."""

    requested: int
    succeeded: int
    failures: list[TokenFailure] = field(default_factory=list)
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Rows written per table (e.g. {"token_prices": 98}), counted in crawler_db_rows_upserted_total.
    rows_upserted: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.requested == 0 or not self.failures:
            return "succeeded"
        return "partial" if self.succeeded else "failed"


Pipeline = Callable[[JobContext], JobOutcome]


def job_id_for(job: JobMessage, event: InboundEvent) -> str:
    """The job's id: its own `job_id`, else one derived from the event (stable on redelivery)."""
    return job.job_id or f"{event.source}#{event.id}"


def run_job(
    event: InboundEvent, resources: Resources, *, function: str, accepts: Collection[str], pipeline: Pipeline
) -> dict[str, Any]:
    """Handle one job event end to end; return the response body of a done job."""
    settings = resources.settings
    try:
        job = parse_job_message(event.data, max_bytes=settings.job_max_body_bytes, max_symbols=settings.job_max_symbols)
        if job.job_type not in accepts:
            raise BadMessage(
                f"job_type {job.job_type!r} is not handled by the {function} function "
                f"(expected one of {sorted(accepts)})"
            )
    except BadMessage as exc:
        _record_rejection(event, resources, function, exc)
        raise

    job_id = job_id_for(job, event)
    # This job is a new span in the trace of the event (or of the job message, for plain Kafka records):
    # the recorded process span when tracing is on, else a fresh span id for the logs and the events it writes.
    traceparent = current_traceparent() or child_traceparent(event.traceparent or job.traceparent)
    labels = {"function": function, "job_type": job.job_type, "token_type": job.token_type}
    metrics.count("crawler_jobs_received", description="Job messages received", **labels)
    started = time.monotonic()
    received_at = datetime.now(timezone.utc)
    record = store.JobRecord(job_id=job_id, job_type=job.job_type, token_type=job.token_type, event_id=event.id)
    with log_context(job_id=job_id, trace_id=trace_id_of(traceparent)):
        requested = len(job.symbols) + len(job.contracts) + len(job.token_keys)
        if job.expires_at is not None and received_at > job.expires_at:
            return _end_expired(resources, record, job, requested, labels)
        with resources.db.connection() as conn:
            attempt = store.begin_job(conn, record, received_at, requested)
        archive = resources.archive
        if archive is not None:  # replay reads from it which tokens this attempt asked for
            archive.record_job(
                job_id,
                job.job_type,
                job.token_type,
                event.data,
                received_at,
                {"trace_id": trace_id_of(traceparent) or "", "event_id": event.id},
            )
        ctx = JobContext(job, job_id, event, resources, traceparent, received_at, attempt.first_started_at)
        try:
            outcome = pipeline(ctx)
        except Exception as exc:
            metrics.count(
                "crawler_jobs_failed",
                description="Jobs that failed and will be retried or dead-lettered",
                reason=type(exc).__name__,
                **labels,
            )
            _record_failure(resources, record, requested, exc)
            raise
        if outcome.rows_upserted.get("token_prices"):
            candle_fold(resources).request()  # the committed ticks reach the gold candles shortly
        with resources.db.connection() as conn:
            store.finish_job(
                conn,
                record,
                status=outcome.status,
                message=outcome.message,
                tokens_requested=outcome.requested,
                tokens_succeeded=outcome.succeeded,
                failures=outcome.failures,
            )
        elapsed = time.monotonic() - started
        metrics.count("crawler_jobs_completed", status=outcome.status, **labels)
        metrics.observe("crawler_job_duration", elapsed, **labels)
        for table, rows in outcome.rows_upserted.items():
            metrics.count("crawler_db_rows_upserted", rows, table=table, **labels)
        log.info(
            "job %s %s: %d/%d tokens in %.3f s (attempt %d)",
            job_id,
            outcome.status,
            outcome.succeeded,
            outcome.requested,
            elapsed,
            attempt.number,
            extra={"failed_tokens": len(outcome.failures)},
        )
        return {
            "job_id": job_id,
            "status": outcome.status,
            "requested": outcome.requested,
            "succeeded": outcome.succeeded,
            "failed": len(outcome.failures),
            "failures": [{"token": f.ref, "reason": f.reason} for f in outcome.failures[:50]],
            **outcome.details,
        }


def _end_expired(
    resources: Resources, record: store.JobRecord, job: JobMessage, requested: int, labels: dict[str, str]
) -> dict[str, Any]:
    """A tick's job delivered after it expired: newer ticks superseded it, so it ends `expired`.

    Not a failure and never dead-lettered: the answer is 200 once `job_logs` says so. While
    PostgreSQL is down that write fails with `DependencyUnavailable` (503), so KafkaSource
    retries until the database is back and the outcome is recorded. The events of what an
    earlier attempt committed (shared/crawler/event_outbox.py) are published before.
    """
    expired = job.expires_at.isoformat() if job.expires_at else "an unknown time"
    reason = f"expired at {expired}: superseded by newer ticks"
    # An earlier attempt may have committed data whose event Kafka never confirmed (its publish
    # failed, then the tick expired): that event goes out first, under its own id, so the
    # committed prices are announced. Kafka down: 503, and the retry ends the job later.
    if announced := event_outbox.publish_job_events(resources, record.job_id):
        reason += f"; {announced} event(s) of what an earlier attempt committed published now"
    with resources.db.connection() as conn:
        ending = store.expire_job(conn, record, reason=reason, tokens_requested=requested)
    if ending.status != "expired":  # an earlier attempt finished it; this redelivery changes nothing
        log.info("job %s delivered again after it expired; it stays %s", record.job_id, ending.status)
        return {"job_id": record.job_id, "status": ending.status, "reason": f"already {ending.status}; {reason}"}
    if ending.newly_ended:  # counted once recorded, not per attempt or redelivery
        metrics.count("crawler_jobs_completed", status="expired", **labels)
        metrics.count(
            "crawler_jobs_skipped",
            description="Jobs skipped because newer ticks superseded them",
            reason="expired",
            **labels,
        )
    log.info("job %s expired: %s", record.job_id, reason)
    return {"job_id": record.job_id, "status": "expired", "reason": reason}


def _record_rejection(event: InboundEvent, resources: Resources, function: str, exc: BadMessage) -> None:
    metrics.count("crawler_jobs_rejected", **_rejected_labels(event, function))
    log.warning("rejected job message %s: %s", event.id, exc.reason)
    try:
        with resources.db.connection() as conn:
            store.finish_job(
                conn,
                store.JobRecord(f"rejected:{event.source}#{event.id}", function, None, event.id),
                status="rejected",
                message=exc.reason,
                tokens_requested=0,
                tokens_succeeded=0,
                failures=[],
            )
    except Exception as db_exc:  # the dead-letter topic still carries the reason
        log.warning("could not log rejection of %s: %s", event.id, db_exc)


def _rejected_labels(event: InboundEvent, function: str) -> dict[str, str]:
    """Job type and token set of a rejected message when it names valid ones (bounded label values)."""
    try:
        data = json.loads(event.data)
    except (ValueError, TypeError, RecursionError):  # the message was rejected for this already
        data = None
    data = data if isinstance(data, dict) else {}
    job_type = str(data["job_type"]) if data.get("job_type") in get_args(JobType) else "invalid"
    token_type = str(data["token_type"]) if data.get("token_type") in get_args(TokenType) else "invalid"
    return {"function": function, "job_type": job_type, "token_type": token_type}


def _record_failure(resources: Resources, record: store.JobRecord, requested: int, exc: Exception) -> None:
    log.warning("job %s failed: %s", record.job_id, exc)
    try:
        with resources.db.connection() as conn:
            store.finish_job(
                conn,
                record,
                status="failed",
                message=f"{type(exc).__name__}: {exc}",
                tokens_requested=requested,
                tokens_succeeded=0,
                failures=[],
            )
    except Exception as db_exc:
        log.warning("could not log failure of %s: %s", record.job_id, db_exc)
