"""The event outbox: an event whose data committed is published even when Kafka refused it at first.

A job stages its event (`stage_event`) in the transaction that commits the data the event
announces (db/migrations/0016_event_outbox.sql), and after the commit publishes it
(`publish_staged`), which deletes the row once Kafka confirmed. A publish that fails leaves the
row, and whichever comes first publishes it again under the same CloudEvent id:

- the job's redelivery, which stages the same event again and publishes it;
- an expired redelivery, which publishes what its earlier attempts staged
  (`publish_job_events`) before it ends the job;
- any later job that published its own event, which then publishes every row left longer
  than `EVENT_OUTBOX_DRAIN_AFTER_SECONDS` (`drain_stranded`): the jobs dead-lettered or
  never redelivered.

At least once on the topic: a publish Kafka took but whose confirmation was lost is sent
again, with the same id, which consumers deduplicate by.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from shared.crawler.store import Conn
from shared.errors import DependencyUnavailable
from shared.events import OutboundEvent
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An outbox row: the event and the topic it goes to."""

    id: int
    topic: str
    event: OutboundEvent


def stage_event(conn: Conn, topic: str, event: OutboundEvent, job_id: str | None) -> None:
    """Keep `event` for `topic` in the caller's transaction, beside the data it announces.

    Staged again (a redelivery), the row takes this attempt's event: its data is what this
    attempt's transaction committed, under the same id.
    """
    conn.run(
        """
        INSERT INTO event_outbox (event_id, event_source, event_type, topic, job_id, record_key, subject,
                                  dataschema, extensions, event_time, data)
        VALUES (:id, :src, :type, :topic, :job, :key, :subject, :schema, CAST(:ext AS jsonb), :time, :data)
        ON CONFLICT (event_id, event_source) DO UPDATE SET topic = EXCLUDED.topic, data = EXCLUDED.data,
            extensions = EXCLUDED.extensions, event_time = EXCLUDED.event_time, staged_at = now()
        """,
        id=event.id,
        src=event.source,
        type=event.type,
        topic=topic,
        job=job_id,
        key=event.key,
        subject=event.subject,
        schema=event.dataschema,
        ext=json.dumps(event.extensions),
        time=event.time,
        data=event.body(),
    )


def publish_staged(resources: Resources, topic: str, event: OutboundEvent) -> None:
    """After the commit that staged `event`: publish it and drop its row, then publish what others left.

    Raises `DependencyUnavailable` when Kafka does not confirm it; its row stays for the retry.
    """
    resources.producer.publish(topic, [event])
    with resources.db.connection() as conn:
        rows = conn.run(
            """
            WITH sent AS (DELETE FROM event_outbox WHERE event_id = :id AND event_source = :src)
            SELECT EXISTS (SELECT 1 FROM event_outbox WHERE staged_at < now() - make_interval(secs => :after))
            """,
            id=event.id,
            src=event.source,
            after=resources.settings.event_outbox_drain_after_seconds,
        )
    if rows[0][0]:
        drain_stranded(resources)


def publish_job_events(resources: Resources, job_id: str) -> int:
    """Publish every event `job_id` staged that Kafka never confirmed; return how many.

    Raises `DependencyUnavailable` when Kafka does not confirm them (the rows stay).
    """
    with resources.db.transaction() as conn:
        staged = _locked(conn, "job_id = :job", job=job_id, limit=resources.settings.event_outbox_drain_batch)
        _publish_and_delete(resources, conn, staged)
    for item in staged:
        log.warning(
            "job %s: published %s %s, which an earlier attempt committed", job_id, item.event.type, item.event.id
        )
    return len(staged)


def drain_stranded(resources: Resources) -> int:
    """Publish the events left in the outbox longer than the drain delay, oldest first; return how many.

    Best effort, after the caller's own event went out: Kafka failing here fails nothing (the
    rows stay for the next job), so it is logged, not raised.
    """
    settings = resources.settings
    try:
        with resources.db.transaction() as conn:
            staged = _locked(
                conn,
                "staged_at < now() - make_interval(secs => :after)",
                after=settings.event_outbox_drain_after_seconds,
                limit=settings.event_outbox_drain_batch,
            )
            _publish_and_delete(resources, conn, staged)
    except DependencyUnavailable as exc:
        log.warning("stranded outbox events not published yet: %s", exc.reason)
        return 0
    for item in staged:
        log.warning(
            "published stranded %s %s (job %s)", item.event.type, item.event.id, item.event.extensions.get("jobid")
        )
    return len(staged)


def _locked(conn: Conn, where: str, *, limit: int, **params: object) -> list[StagedEvent]:
    # SKIP LOCKED: two drains side by side never publish the same row twice.
    rows = conn.run(
        "SELECT id, topic, event_id, event_source, event_type, record_key, subject, dataschema,"
        " CAST(extensions AS text), event_time, data FROM event_outbox"
        f" WHERE {where} ORDER BY staged_at, id LIMIT :limit FOR UPDATE SKIP LOCKED",
        limit=limit,
        **params,
    )
    return [
        StagedEvent(
            int(r[0]),
            r[1],
            OutboundEvent(
                type=r[4],
                source=r[3],
                data=bytes(r[10]),
                key=r[5],
                id=r[2],
                time=r[9],
                subject=r[6],
                extensions=json.loads(r[8]),
                dataschema=r[7],
            ),
        )
        for r in rows
    ]


def _publish_and_delete(resources: Resources, conn: Conn, staged: Sequence[StagedEvent]) -> None:
    by_topic: dict[str, list[StagedEvent]] = defaultdict(list)
    for item in staged:
        by_topic[item.topic].append(item)
    for topic, items in by_topic.items():
        resources.producer.publish(topic, [i.event for i in items])
        conn.run("DELETE FROM event_outbox WHERE id = ANY(CAST(:ids AS bigint[]))", ids=[i.id for i in items])
