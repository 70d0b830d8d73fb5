"""Freshness of the 5-s price cadence, from what the system recorded (pure: no I/O).

Definitions (docs/performance.md repeats them):

- **tick time**: the time of the PingSource event, which the scheduler copies into the
  job's `timestamp` and into its `job_id` (`top100-price:<tick>:<batch>`). Knative's
  0-499 ms PingSource jitter comes before it and is not counted.
- **scheduled time**: the cron boundary the tick belongs to (tick time floored to 5 s).
- **commit time**: when the transaction holding a price row committed
  (`pg_xact_commit_timestamp(xmin)`, exact). Without commit timestamps the job's
  `job_logs.finished_at` stands in (a little later: it follows the commit).
- **tick-to-commit latency** of a price: its commit time minus its tick time; a price
  re-written by a retry counts at its first commit.
- **late tick**: one whose prices did not all commit before the next tick was due
  (scheduled time + 5 s): a job still missing, failed, expired or committed after it.
- **skipped tick**: a scheduled time with no job at all (the plane or the scheduler
  skipped it, or its jobs were lost).
- **short tick**: on time, but fewer than 99 % of the scheduled tokens got a price (a
  source failed or its budget ran out: those tokens' prices went stale). A tick is
  *fresh* when it is none of late, skipped or short.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

PRICE_JOB_PREFIX = "top100-price:"
MIN_PRICED_SHARE = 0.99
DONE_STATUSES = frozenset({"succeeded", "partial"})
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class PriceJob:
    """One price job of a tick, as job_logs and token_prices recorded it."""

    job_id: str
    tick_at: datetime
    batch: int
    status: str
    requested: int
    succeeded: int
    received_at: datetime | None  # job_logs.started_at: the function got the event
    finished_at: datetime | None
    attempts: int = 1
    produced_at: datetime | None = None  # Kafka CreateTime of the job message
    commits: list[tuple[datetime, int]] = field(default_factory=list)  # (commit time, prices first committed)

    @property
    def committed_at(self) -> datetime | None:
        return max((at for at, _ in self.commits), default=None)


def parse_job_id(job_id: str) -> tuple[datetime, int] | None:
    """(tick time, batch) of a top-100 price job id, or None for any other job."""
    if not job_id.startswith(PRICE_JOB_PREFIX):
        return None
    try:
        stamp, batch = job_id[len(PRICE_JOB_PREFIX) :].rsplit(":", 1)
        tick = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
        return tick, int(batch)
    except ValueError:
        return None


def scheduled_time(tick_at: datetime, cadence: timedelta) -> datetime:
    """The cron boundary a tick belongs to (PingSource jitter only ever delays a tick)."""
    step = cadence.total_seconds()
    return EPOCH + timedelta(seconds=math.floor((tick_at - EPOCH).total_seconds() / step) * step)


def weighted_percentile(samples: Sequence[tuple[float, int]], q: float) -> float | None:
    """The q-th percentile (0-100) of values given with integer weights (nearest rank)."""
    ordered = sorted((v, w) for v, w in samples if w > 0)
    total = sum(w for _, w in ordered)
    if not total:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= rank:
            return value
    return ordered[-1][0]


@dataclass
class Distribution:
    """p50, p99 and max of a latency in seconds (None when nothing was measured)."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    count: int = 0

    @classmethod
    def of(cls, samples: Sequence[tuple[float, int]]) -> Distribution:
        if not samples:
            return cls()
        return cls(
            weighted_percentile(samples, 50),
            weighted_percentile(samples, 99),
            max(v for v, _ in samples),
            sum(w for _, w in samples),
        )


@dataclass
class TickOutcome:
    scheduled_at: datetime
    jobs_seen: int
    prices: int
    completed_at: datetime | None  # last commit of the tick, if every job committed
    late: bool
    skipped: bool
    short: bool = False

    @property
    def fresh(self) -> bool:
        return not (self.late or self.skipped or self.short)


@dataclass
class Freshness:
    """What the window's ticks did."""

    ticks: list[TickOutcome]
    tick_to_commit: Distribution  # per price
    tick_to_complete: Distribution  # per tick: scheduled-time independent, from its tick time
    tick_to_produced: Distribution  # per job: scheduler + Kafka producer
    produced_to_received: Distribution  # per job: Kafka + eventing plane + HTTP
    received_to_commit: Distribution  # per job: inside the price function
    prices: int
    expected_prices: int
    retried_jobs: int
    failed_jobs: int

    @property
    def late(self) -> int:
        return sum(t.late and not t.skipped for t in self.ticks)

    @property
    def skipped(self) -> int:
        return sum(t.skipped for t in self.ticks)

    @property
    def short(self) -> int:
        return sum(t.short and not t.late for t in self.ticks)

    @property
    def stale(self) -> int:
        """Ticks that were not fresh: late, skipped or short."""
        return sum(not t.fresh for t in self.ticks)


def analyse(
    jobs: Iterable[PriceJob],
    *,
    window_start: datetime,
    window_end: datetime,
    cadence: timedelta,
    jobs_per_tick: int,
    prices_per_tick: int,
) -> Freshness:
    """Tick outcomes and latency distributions of the ticks scheduled in [window_start, window_end)."""
    by_tick: dict[datetime, list[PriceJob]] = {}
    for job in jobs:
        by_tick.setdefault(scheduled_time(job.tick_at, cadence), []).append(job)

    def seconds(later: datetime | None, earlier: datetime | None) -> float | None:
        return None if later is None or earlier is None else (later - earlier).total_seconds()

    ticks: list[TickOutcome] = []
    per_price: list[tuple[float, int]] = []
    per_tick: list[tuple[float, int]] = []
    to_produced: list[tuple[float, int]] = []
    to_received: list[tuple[float, int]] = []
    in_function: list[tuple[float, int]] = []
    prices = retried = failed = 0
    boundary = scheduled_time(window_start, cadence)
    if boundary < window_start:
        boundary += cadence
    while boundary < window_end:
        tick_jobs = by_tick.get(boundary, [])
        committed = [j for j in tick_jobs if j.status in DONE_STATUSES and j.commits]
        complete = len({j.batch for j in committed}) >= jobs_per_tick
        # the last commit of the committed jobs (each has at least one)
        completed_at = max((at for j in committed for at, _ in j.commits), default=None) if complete else None
        late = completed_at is None or completed_at > boundary + cadence
        tick_prices = 0
        for job in tick_jobs:
            retried += job.attempts > 1
            failed += job.status not in DONE_STATUSES
            for at, n in job.commits:
                per_price.append(((at - job.tick_at).total_seconds(), n))
                tick_prices += n
            if (v := seconds(job.produced_at, job.tick_at)) is not None:
                to_produced.append((v, 1))
            if (v := seconds(job.received_at, job.produced_at)) is not None:
                to_received.append((v, 1))
            if (v := seconds(job.committed_at, job.received_at)) is not None:
                in_function.append((v, 1))
        if completed_at is not None:
            per_tick.append(((completed_at - min(j.tick_at for j in tick_jobs)).total_seconds(), 1))
        prices += tick_prices
        short = tick_prices < MIN_PRICED_SHARE * prices_per_tick
        ticks.append(TickOutcome(boundary, len(tick_jobs), tick_prices, completed_at, late, not tick_jobs, short))
        boundary += cadence
    return Freshness(
        ticks=ticks,
        tick_to_commit=Distribution.of(per_price),
        tick_to_complete=Distribution.of(per_tick),
        tick_to_produced=Distribution.of(to_produced),
        produced_to_received=Distribution.of(to_received),
        received_to_commit=Distribution.of(in_function),
        prices=prices,
        expected_prices=prices_per_tick * len(ticks),
        retried_jobs=retried,
        failed_jobs=failed,
    )
