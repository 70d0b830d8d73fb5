"""Schedules and the jobs one tick emits (pure: no Kafka, no database).

| schedule          | PingSource cron     | topic                             | job                      |
|-------------------|---------------------|-----------------------------------|--------------------------|
| `top100-price`    | `*/5 * * * * *`     | price-crawler.price.request       | price / top100, batched  |
| `top100-metadata` | `0 0 0 * * *`       | price-crawler.metadata.request    | metadata / top100        |
| `trending`        | `0 * * * * *`       | price-crawler.price.request       | price+metadata / trending|

Trending jobs travel on the price topic: its KafkaSource is unordered, so a slow
trending crawl never holds back a 5-s top-100 batch (DESIGN.md §2, pipelines isolated).
A tick's jobs expire after two cadences: a consumer that receives one later skips it,
because a newer tick already superseded it (ticks never pile up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence


@dataclass(frozen=True, slots=True)
class Schedule:
    """What one PingSource tick asks for."""

    name: str
    topic_setting: str  # the Settings field naming the topic
    job_type: str
    token_type: str
    cadence: timedelta
    batched: bool = False

    @property
    def expires_after(self) -> timedelta:
        return self.cadence * 2


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("top100-price", "price_topic", "price", "top100", timedelta(seconds=5), batched=True),
        Schedule("top100-metadata", "metadata_topic", "metadata", "top100", timedelta(hours=24)),
        Schedule("trending", "price_topic", "price", "trending", timedelta(minutes=1)),
    )
}


def shard(symbols: Sequence[str], batch_size: int) -> list[list[str]]:
    """Split a token set into batches that fit one upstream batch request each."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [list(symbols[i : i + batch_size]) for i in range(0, len(symbols), batch_size)]


def tick_jobs(schedule: Schedule, tick: datetime, *, symbols: Sequence[str] = (), batch_size: int = 100,
              traceparent: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The (partition key, job message) pairs one tick emits.

    Job ids are derived from the schedule and the tick time, so a PingSource retry of
    the same tick produces the same ids and job_logs counts it as a redelivery.
    """
    stamp = tick.strftime("%Y%m%dT%H%M%S.%fZ")
    base = {
        "job_type": schedule.job_type,
        "token_type": schedule.token_type,
        "timestamp": tick.isoformat().replace("+00:00", "Z"),
        "expires_at": (tick + schedule.expires_after).isoformat().replace("+00:00", "Z"),
    }
    if traceparent:
        base["traceparent"] = traceparent
    if not schedule.batched:
        return [(schedule.token_type, {**base, "symbols": [], "job_id": f"{schedule.name}:{stamp}"})]
    batches = shard(list(symbols), batch_size)
    return [
        # Distinct keys spread a tick's batches over the topic's partitions.
        (f"{schedule.token_type}:{i}",
         {**base, "symbols": batch, "job_id": f"{schedule.name}:{stamp}:{i}", "batch": i, "batches": len(batches)})
        for i, batch in enumerate(batches)
    ]
