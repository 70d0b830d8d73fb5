"""The scheduler: turns PingSource ticks into job messages on the request topics.

A tick names its schedule in the PingSource data (`{"schedule": "top100-price"}`).
Before emitting, it checks the backlog: when the consumers have not caught up with
earlier ticks, the tick is skipped (and counted), so ticks never pile up behind a slow
pipeline. Only records of ticks that have not expired count: one slow record at the head
of a partition keeps every record behind it uncommitted (KafkaSource commits up to its
first unfinished record), though those are delivered already or, expired, skipped at once;
counting them made the scheduler skip every tick for as long as the slow record took. Top-100 price ticks on an empty database request the metadata job at once.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace

from shared.crawler import store
from shared.crawler.contracts import JOB_MESSAGE_SCHEMA
from shared.crawler.domain import chains
from shared.crawler.domain.schedule import SCHEDULES, PriceBatch, PriceMember, Schedule, price_batches, tick_jobs
from shared.crawler.jobs import is_ticker
from shared.errors import BadMessage
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.observability.traces import current_traceparent
from shared.observability.tracing import child_traceparent
from shared.runtime.resources import Resources

log = logging.getLogger(__name__)

JOB_EVENT_TYPE = "price-crawler.job.requested"


def schedule_of(event: InboundEvent) -> Schedule:
    """The schedule a PingSource event names; BadMessage if none or unknown."""
    try:
        data = json.loads(event.data or b"{}")
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise BadMessage('ping data is not JSON: expected {"schedule": "<name>"}') from None
    name = data.get("schedule") if isinstance(data, dict) else None
    if name not in SCHEDULES:
        raise BadMessage(f"unknown schedule {name!r}: expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]


def run_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Emit the jobs of one tick (or skip it when the previous ticks are still queued)."""
    settings = resources.settings
    schedule = schedule_of(event)
    tick = _tick_time(event)
    topic = getattr(settings, schedule.topic_setting)
    tick_span = (
        trace.get_current_span()
    )  # the event's span (shared.observability.traces.event_span): this tick is its root
    tick_span.update_name(f"tick {schedule.name}")
    tick_span.set_attribute("crawler.schedule", schedule.name)
    traceparent = current_traceparent() or child_traceparent(event.traceparent)

    batches: list[PriceBatch] = []
    if schedule.name == "top100-price":
        with resources.db.connection() as conn:
            members = store.set_members_with_price_source(conn, "top100", settings.top100_size)
        if not members:
            # An empty database: fetch the top-100 metadata at once instead of waiting a day.
            _emit(resources, SCHEDULES["top100-metadata"], tick, traceparent)
            metrics.count("crawler_scheduler_ticks", schedule=schedule.name, outcome="bootstrapped")
            return {"schedule": schedule.name, "emitted": 0, "metadata_requested": True}
        batches = price_batches(
            _schedulable_members(members, settings.stablecoin_symbols),
            discovery_size=settings.top100_price_batch_size,
            dex_job_size=settings.top100_price_dex_job_size,
            routed_job_size=settings.top100_price_routed_job_size,
        )

    if schedule.batched:
        per_tick = len(batches)
        lag = _backlog(resources, topic, since=datetime.now(timezone.utc) - schedule.expires_after)
        if lag is not None and lag > per_tick * settings.scheduler_max_backlog_ticks:
            metrics.count(
                "crawler_scheduler_ticks",
                schedule=schedule.name,
                outcome="skipped",
                description="Scheduler ticks by outcome (emitted, skipped, bootstrapped)",
            )
            log.warning("tick %s skipped: %d jobs still queued on %s", schedule.name, lag, topic)
            return {"schedule": schedule.name, "emitted": 0, "skipped": True, "backlog": lag}

    emitted = _emit(resources, schedule, tick, traceparent, batches)
    metrics.count("crawler_scheduler_ticks", schedule=schedule.name, outcome="emitted")
    metrics.set_gauge(
        "crawler_scheduler_last_tick_timestamp",
        tick.timestamp(),
        schedule=schedule.name,
        description="Unix time of the last emitted tick per schedule",
        unit="s",
    )
    return {"schedule": schedule.name, "emitted": emitted, "topic": topic}


def _schedulable_members(
    members: list[tuple[store.KnownToken, str | None]], stablecoins: frozenset[str]
) -> list[PriceMember]:
    """The set's tokens a job may carry: stablecoins never scheduled, each symbol once
    (the highest-ranked token of a symbol is the one a job prices).

    A symbol the job contract rejects would make the whole batch a dead letter, so it is
    left out (and logged) rather than sent.
    """
    seen: dict[str, PriceMember] = {}
    for token, last_source in members:
        symbol = token.symbol.upper()
        if symbol in stablecoins or symbol in seen:
            continue
        dex = chains.dexscreener_contracts(token.chain, token.contract, token.contracts)
        seen[symbol] = PriceMember(symbol, last_source, dex[0][0] if dex else None)
    invalid = [s for s in seen if not is_ticker(s)]
    if invalid:
        log.warning(
            "not scheduling %d symbols the job contract rejects: %s",
            len(invalid),
            ", ".join(repr(s[:40]) for s in invalid[:10]),
        )
    return [m for s, m in seen.items() if is_ticker(s)]


def _emit(
    resources: Resources, schedule: Schedule, tick: datetime, traceparent: str, batches: list[PriceBatch] | None = None
) -> int:
    settings = resources.settings
    jobs = tick_jobs(schedule, tick, batches=batches, traceparent=traceparent)
    events = [
        OutboundEvent(
            type=JOB_EVENT_TYPE,
            source=f"/price-crawler/scheduler/{schedule.name}",
            data=job,
            key=key,
            id=job["job_id"],
            time=tick,
            subject=schedule.name,
            extensions={"traceparent": traceparent},
            dataschema=JOB_MESSAGE_SCHEMA,
        )
        for key, job in jobs
    ]
    resources.producer.publish(getattr(settings, schedule.topic_setting), events)
    return len(events)


def _backlog(resources: Resources, topic: str, since: datetime) -> int | None:
    """Records of `topic` written since `since` that the price KafkaSource has not committed."""
    settings = resources.settings
    return resources.lag_reader.lag(settings.price_consumer_group, topic, since=since)


def _tick_time(event: InboundEvent) -> datetime:
    try:
        return datetime.fromisoformat((event.time or "").replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)
