"""Dead letters end their job: a job whose event reached a dead-letter topic is `dead_lettered`.

A dead-letter record is the failed event itself (same id, source, type and data) plus the
extensions the KafkaSource dispatcher adds (docs/knative-eventing.md b.5):
`knativeerrordest` always, and with a response `knativeerrorcode` (its HTTP status) and
`knativeerrordata` (base64 of the first ≤1024 bytes of its body, our JSON reason). Without a
response the function was down or timed out: its `job_logs` row still says `running`.

The request KafkaSources send dead letters to the deadletter function directly (their
`deadLetterSink`), not to a KafkaSink: a KafkaSink cannot take one while the broker is down,
and Knative then drops it. `DeadLetter` is what such an event says, derived without I/O
(`dead_letter_of`); `record_dead_letter` keeps it in `dead_letters` and ends the job's row as
`dead_lettered` in one transaction, then forwards the pending dead letters to their
dead-letter topic (the records a binary KafkaSink writes, which the replay CLI reads).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.crawler import store
from shared.crawler.job_runner import job_id_for
from shared.crawler.jobs import parse_job_message
from shared.errors import BadMessage, DependencyUnavailable
from shared.events import InboundEvent
from shared.kafka import EventProducer, RawRecord
from shared.observability import metrics
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)

# The source a KafkaSource gives a plain record (a.3): .../kafkasources/<fn>-request-source#<topic>.
_REQUEST_SOURCE = re.compile(r"/kafkasources/([a-z0-9-]+?)-request-source(?:#|$)")
_REASON_MAX = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What one dead-lettered event says about its job."""

    job_id: str  # the id the job runner logged the job under
    row_ids: tuple[str, ...]  # every job_logs id the attempt may have written (its job id, its rejection)
    job_type: str
    token_type: str | None
    event_id: str
    status: int | None  # the function's last HTTP status; None when it never answered
    reason: str


def dead_letter_of(event: InboundEvent, *, max_bytes: int, max_symbols: int) -> DeadLetter:
    """Read a dead-lettered event: which job it was, and why it failed."""
    rejected_id = f"rejected:{event.source}#{event.id}"  # the job runner's id for a refused message
    try:
        job = parse_job_message(event.data, max_bytes=max_bytes, max_symbols=max_symbols)
    except BadMessage:
        job = None
    row_ids: tuple[str, ...]
    if job is None:
        job_id, job_type, token_type, row_ids = rejected_id, _function_of(event.source), None, (rejected_id,)
    else:
        job_id = job_id_for(job, event)
        job_type, token_type, row_ids = job.job_type, job.token_type, (job_id, rejected_id)
    status = _status_of(event.extensions.get("knativeerrorcode"))
    return DeadLetter(
        job_id=job_id,
        row_ids=row_ids,
        job_type=job_type,
        token_type=token_type,
        event_id=event.id,
        status=status,
        reason=_reason(event.extensions, status),
    )


FORWARD_TICK_TYPE = "dev.knative.sources.ping"


def take_dead_letter_or_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """A PingSource tick forwards the pending dead letters; any other event is a dead letter.

    The tick is why a dead letter kept while Kafka was down does not wait for the next one.
    """
    if event.type == FORWARD_TICK_TYPE:
        return {"forwarded": forward_pending(resources)}
    return record_dead_letter(event, resources)


def record_dead_letter(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Keep the dead letter and end its job, in one transaction; then forward what is pending.

    PostgreSQL down raises `DependencyUnavailable` (503): the KafkaSource retries the delivery to
    this dead-letter sink. Kafka down does not fail it: the dead letter is safe in PostgreSQL and
    is forwarded to its dead-letter topic at a later dead letter (`forward_pending`).
    """
    settings = resources.settings
    letter = dead_letter_of(event, max_bytes=settings.job_max_body_bytes, max_symbols=settings.job_max_symbols)
    kept = stored_dead_letter(event, letter, topic=dead_letter_topic(settings, event.source, letter.job_type))
    with resources.db.transaction() as conn:
        stored = store.store_dead_letter(conn, kept)
        # Idempotent: a redelivered dead letter finds its row ended already and changes nothing.
        changed = store.dead_letter_job(
            conn,
            store.JobRecord(letter.job_id, letter.job_type, letter.token_type, letter.event_id),
            row_ids=letter.row_ids,
            reason=letter.reason,
        )
    if stored:
        metrics.count(
            "crawler_jobs_dead_lettered",
            description="Dead letters the deadletter function stored (once per event), their job ended dead_lettered",
            job_type=letter.job_type,
            status=str(letter.status or "none"),
        )
        log.warning("job %s dead-lettered: %s", letter.job_id, letter.reason)
    forwarded = forward_pending(resources)
    return {
        "job_id": letter.job_id,
        "status": "dead_lettered",
        "reason": letter.reason,
        "rows_changed": changed,
        "stored": stored,
        "forwarded": forwarded,
    }


def forward_pending(resources: Resources) -> int | None:
    """Forward the stored dead letters not yet on their topic; the count, or None when Kafka (or
    PostgreSQL) refused. Never raises for that: what is not forwarded now stays pending."""
    settings = resources.settings
    try:
        with resources.db.transaction() as conn:
            pending = store.pending_dead_letters(conn, settings.dead_letter_forward_batch)
            by_topic: dict[str, list[store.PendingDeadLetter]] = {}
            for row in pending:
                by_topic.setdefault(row.topic, []).append(row)
            producer = resources.once("dead_letter_producer", lambda: _forwarding_producer(settings))
            for topic, rows in by_topic.items():
                # A little longer than librdkafka's own message timeout, so its verdict arrives first.
                producer.publish_records(
                    topic,
                    [forwarded_record(row) for row in rows],
                    timeout=settings.dead_letter_forward_timeout_seconds + 1.0,
                )
            # Marked only after Kafka confirmed every record: at least once on the topic.
            store.mark_dead_letters_forwarded(conn, [row.id for row in pending])
    except DependencyUnavailable as exc:
        log.warning("dead letters kept in PostgreSQL, not forwarded yet: %s", exc)
        return None
    return len(pending)


def _forwarding_producer(settings: Settings) -> EventProducer:
    """A producer whose records expire when the forward gives up (`message.timeout.ms`).

    With the default (30 s) a record queued while the broker was down would still go out once it
    is back, and the next dead letter would forward the still-pending row a second time.
    """
    return EventProducer(
        settings.kafka_bootstrap_servers,
        client_id=f"{settings.function_name or 'deadletter'}-forward",
        extra={"message.timeout.ms": int(settings.dead_letter_forward_timeout_seconds * 1000)},
    )


def stored_dead_letter(event: InboundEvent, letter: DeadLetter, *, topic: str | None) -> store.StoredDeadLetter:
    """The `dead_letters` row of a dead-lettered event: the event whole, and why it failed."""
    attributes = {"specversion": "1.0", "id": event.id, "source": event.source, "type": event.type}
    for name, value in (("time", event.time), ("subject", event.subject), ("datacontenttype", event.datacontenttype)):
        if value is not None:
            attributes[name] = value
    attributes.update(event.extensions)
    return store.StoredDeadLetter(
        event_id=event.id,
        event_source=event.source,
        event_type=event.type,
        job_id=letter.job_id,
        job_type=letter.job_type,
        dead_letter_topic=topic,
        # A KafkaSink keys its record by `partitionkey` (docs/knative-eventing.md c): the same here.
        record_key=event.extensions.get("partitionkey"),
        data=event.data,
        attributes=attributes,
        error_code=letter.status,
        reason=letter.reason,
    )


def forwarded_record(row: store.PendingDeadLetter) -> RawRecord:
    """The record a binary-mode KafkaSink would have written: `ce_<attribute>` headers, `content-type`,
    the data as value; the shape the replay CLI reads (`ce_knativeerrorcode`, `ce_knativeerrordata`, ...)."""
    headers = [
        ("content-type" if name == "datacontenttype" else f"ce_{name}", value.encode())
        for name, value in row.attributes.items()
    ]
    return row.key, row.data, headers


def dead_letter_topic(settings: Settings, source: str, job_type: str) -> str | None:
    """The dead-letter topic of the source that gave the event up, as its KafkaSink had it.

    A plain record's source names its KafkaSource (`<fn>-request-source`): that function's
    topic, whatever the record says (a price job written to the audit topic is the audit
    source's dead letter). A CloudEvent record keeps its producer's source: the job's type
    names the function (the scheduler routes each job type to its function's topic). None
    when neither is a known function: the dead letter is kept in PostgreSQL only.
    """
    topics = {
        "price": settings.price_dead_letter_topic,
        "metadata": settings.metadata_dead_letter_topic,
        "audit": settings.audit_dead_letter_topic,
    }
    return topics.get(_function_of(source)) or topics.get(job_type)


def _function_of(source: str) -> str:
    """The function a plain record was meant for, from its KafkaSource's name; else `unknown`."""
    match = _REQUEST_SOURCE.search(source)
    return match.group(1) if match else "unknown"


def _status_of(code: str | None) -> int | None:
    try:
        return int(code) if code else None
    except ValueError:
        return None


def _reason(extensions: dict[str, str], status: int | None) -> str:
    destination = extensions.get("knativeerrordest", "the sink")
    if status is None:  # no HTTP response: connection refused or timed out (the function died)
        return f"dead-lettered without a response from {destination} (the function was down or timed out)"
    detail = _error_text(extensions.get("knativeerrordata"))
    return f"dead-lettered after HTTP {status}" + (f": {detail}" if detail else "")


def _error_text(data: str | None) -> str:
    """The function's reason from `knativeerrordata`: the `error` of its JSON body, else the text."""
    if not data:
        return ""
    try:
        body = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return data[:_REASON_MAX]
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # cut at 1024 bytes, or not JSON
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return parsed["error"][:_REASON_MAX]
    return body.decode("utf-8", "replace")[:_REASON_MAX]
