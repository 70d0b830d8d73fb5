"""One measured run of each kind: the system at a token count, the naive crawler, a profile.

A system run: reset Kafka topics and tables, start the market and the functions, seed
the set, optionally measure the functions idle, start the eventing plane, let the first
ticks pass (warm-up: connections, Binance listing, USDT rate), then measure a window
that starts on a tick boundary. CPU, upstream requests and committed prices are counted
inside the window; ticks scheduled inside it are then given a grace period to finish
and are judged by `bench.ticks.analyse`.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from bench.infra import BenchInfra
from bench.processes import GroupFigures, ProcessFigures, ProcessMeter
from bench.system import LocalSystem, SeededSet, SystemConfig
from bench.ticks import PRICE_JOB_PREFIX, Freshness, PriceJob, analyse, parse_job_id
from local.services import PROJECT_ROOT
from local.stack import FUNCTIONS

log = logging.getLogger(__name__)

CADENCE = timedelta(seconds=5)
FUNCTION_NAMES = tuple(f.name for f in FUNCTIONS)
GRACE = 15.0  # a tick's jobs expire after two cadences; retries are 1 s and 2 s later


@dataclass
class SystemRun:
    """Everything measured in one window of the system."""

    config: SystemConfig
    seeded: SeededSet
    window_start: datetime
    window_seconds: float
    freshness: Freshness
    prices_in_window: int
    processes: dict[str, GroupFigures]
    upstream: dict[str, Any]  # the market's request counters during the window
    eventing: dict[str, Any]
    scheduler_outcomes: dict[str, float]
    idle: dict[str, GroupFigures] = field(default_factory=dict)
    idle_seconds: float = 0.0
    crashed: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    @property
    def ticks(self) -> int:
        return len(self.freshness.ticks)

    @property
    def sustained(self) -> bool:
        """Every tick fresh (none late, skipped or short), and no process died."""
        return bool(self.ticks) and not (self.freshness.stale or self.crashed)

    @property
    def prices_per_second(self) -> float:
        return self.prices_in_window / self.window_seconds


def run_system(
    infra: BenchInfra,
    config: SystemConfig,
    *,
    duration: float,
    warmup: float,
    log_dir: Path,
    idle_seconds: float = 0.0,
    profile_seconds: float = 0.0,
    profile_wall_clock: bool = False,
) -> SystemRun:
    """Run the system for one configuration and measure it (module docstring)."""
    infra.reset()
    system = LocalSystem(infra, config, log_dir)
    try:
        system.start(0)
        seeded = system.seed()
        idle, idle_elapsed = {}, 0.0
        if idle_seconds:
            meter = ProcessMeter({n: p for n, p in system.pids().items() if n in FUNCTION_NAMES}).start()
            time.sleep(idle_seconds)
            idle = meter.stop()
            idle_elapsed = meter.elapsed
        system.start(1)
        start = _next_boundary(datetime.now(timezone.utc) + timedelta(seconds=warmup))
        _sleep_until(start)
        system.reset_market_stats()
        meter = ProcessMeter({**system.pids(), **infra.pids()}).start()
        profile = None
        if profile_seconds:
            from bench.profile import record_profile

            # The first replica's worker: with several, each sees its share of the same work.
            profile = record_profile(
                system.pids()["price"][0], min(profile_seconds, duration), log_dir, wall_clock=profile_wall_clock
            )
        _sleep_until(start + timedelta(seconds=duration))
        processes = meter.stop()
        upstream = system.market_stats()
        crashed = system.check_alive()
        _wait_for_ticks(infra, start, start + timedelta(seconds=duration), seeded.jobs_per_tick)
        eventing = system.eventing_metrics()
        outcomes = system.scheduler_tick_outcomes()
        jobs = read_price_jobs(infra, since=start - 2 * CADENCE)
        attach_produce_times(infra, jobs)
        freshness = analyse(
            jobs.values(),
            window_start=start,
            window_end=start + timedelta(seconds=duration),
            cadence=CADENCE,
            jobs_per_tick=seeded.jobs_per_tick,
            prices_per_tick=seeded.symbols,
        )
        committed = committed_between(infra, start, start + timedelta(seconds=duration))
    finally:
        system.stop()
    return SystemRun(
        config,
        seeded,
        start,
        duration,
        freshness,
        committed,
        processes,
        upstream,
        eventing,
        outcomes,
        idle,
        idle_elapsed,
        crashed,
        profile,
    )


def read_price_jobs(infra: BenchInfra, since: datetime) -> dict[str, PriceJob]:
    """The top-100 price jobs from `since` on, with the commit time of each price they wrote."""
    conn = infra.connect()
    try:
        jobs: dict[str, PriceJob] = {}
        rows = conn.run(
            "SELECT job_id, status, COALESCE(tokens_requested, 0), COALESCE(tokens_succeeded, 0), started_at,"
            " finished_at, attempts FROM job_logs WHERE row_kind = 'job' AND job_id LIKE :p",
            p=PRICE_JOB_PREFIX + "%",
        )
        for job_id, status, requested, succeeded, started, finished, attempts in rows:
            parsed = parse_job_id(job_id)
            if parsed is None or parsed[0] < since:
                continue
            jobs[job_id] = PriceJob(
                job_id, parsed[0], parsed[1], status, requested, succeeded, started, finished, attempts
            )
        if infra.commit_timestamps_on():
            commits = conn.run(
                "SELECT job_id, committed_at, count(*) FROM ("
                "  SELECT job_id, token_key, min(pg_xact_commit_timestamp(xmin)) AS committed_at FROM token_prices"
                "  WHERE observed_at >= :since AND job_id LIKE :p GROUP BY job_id, token_key) firsts"
                " GROUP BY job_id, committed_at",
                since=since,
                p=PRICE_JOB_PREFIX + "%",
            )
            for job_id, committed_at, count in commits:
                if job_id in jobs:
                    jobs[job_id].commits.append((committed_at, int(count)))
        else:  # finished_at follows the commit closely
            for job in jobs.values():
                if job.finished_at is not None and job.succeeded:
                    job.commits.append((job.finished_at, job.succeeded))
        return jobs
    finally:
        conn.close()


def attach_produce_times(infra: BenchInfra, jobs: dict[str, PriceJob]) -> None:
    """Set each job's Kafka CreateTime: when the scheduler's producer wrote it."""
    from confluent_kafka import Consumer, TopicPartition

    from shared.config import Settings

    topic = Settings.model_fields["price_topic"].default
    consumer = Consumer(
        {
            "bootstrap.servers": infra.bootstrap,
            "group.id": f"bench-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset >= ends[partition] - 1:
                    remaining.discard(partition)
                # The stub types headers() as anything produce() accepts; a consumed message's are bytes.
                headers = dict(cast(list[tuple[str, bytes | None]], message.headers() or []))
                value = message.value()
                job_id = (headers.get("ce_id") or b"").decode() or (json.loads(value).get("job_id") if value else None)
                if job_id in jobs:
                    _, millis = message.timestamp()
                    jobs[job_id].produced_at = datetime.fromtimestamp(millis / 1000, timezone.utc)
    finally:
        consumer.close()


def committed_between(infra: BenchInfra, start: datetime, end: datetime) -> int:
    """Price rows whose transaction committed inside [start, end)."""
    conn = infra.connect()
    try:
        if infra.commit_timestamps_on():
            return int(
                conn.run(
                    "SELECT count(*) FROM token_prices WHERE observed_at >= :lo AND job_id LIKE :p"
                    " AND pg_xact_commit_timestamp(xmin) >= :start AND pg_xact_commit_timestamp(xmin) < :end",
                    lo=start - 2 * CADENCE,
                    p=PRICE_JOB_PREFIX + "%",
                    start=start,
                    end=end,
                )[0][0]
            )
        return int(
            conn.run(
                "SELECT COALESCE(sum(tokens_succeeded), 0) FROM job_logs WHERE row_kind = 'job' AND job_id LIKE :p"
                " AND finished_at >= :start AND finished_at < :end",
                p=PRICE_JOB_PREFIX + "%",
                start=start,
                end=end,
            )[0][0]
        )
    finally:
        conn.close()


def _wait_for_ticks(infra: BenchInfra, start: datetime, end: datetime, jobs_per_tick: int) -> None:
    """Give the window's last ticks up to GRACE seconds to finish (no job left running)."""
    deadline = time.monotonic() + GRACE
    ticks = math.ceil((end - start) / CADENCE)
    while time.monotonic() < deadline:
        jobs = read_price_jobs(infra, since=start)
        in_window = [j for j in jobs.values() if j.tick_at < end]
        if len(in_window) >= ticks * jobs_per_tick and all(j.finished_at for j in in_window):
            return
        time.sleep(1.0)


@dataclass
class NaiveRun:
    size: int
    result: dict[str, Any]
    processes: dict[str, GroupFigures]

    @property
    def ticks(self) -> list[dict[str, Any]]:
        return self.result["ticks"]


def run_naive(infra: BenchInfra, size: int, *, duration: float, log_dir: Path) -> NaiveRun:
    """The naive crawler over the token set the last system run seeded (tables kept)."""
    market = LocalSystem(infra, SystemConfig(size, lift_upstream_budgets=True), log_dir)
    try:
        market.start(0, only=frozenset({"market"}))
        argv = [
            sys.executable,
            "-m",
            "bench.naive",
            "--market",
            market.market_url,
            "--database-url",
            infra.database_url,
            "--size",
            str(size),
            "--duration",
            str(duration),
        ]
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        meter = ProcessMeter({"naive": process.pid, **infra.pids(), "market": market.pids()["market"]}).start()
        out, err = process.communicate(timeout=duration + 600)
        processes = meter.stop()
        if process.returncode != 0:
            raise RuntimeError(f"the naive crawler failed ({process.returncode}):\n{err.decode()[-2000:]}")
        result = json.loads(out)
    finally:
        market.stop()
    # Its own figures: CPU of the ticks alone (not its start-up), peak RSS read at its end.
    processes["naive"].processes = {
        process.pid: ProcessFigures(process.pid, "naive", result["cpu_seconds"], result["peak_rss_bytes"])
    }
    return NaiveRun(size, result, processes)


def _next_boundary(at: datetime) -> datetime:
    step = CADENCE.total_seconds()
    return datetime.fromtimestamp(math.ceil(at.timestamp() / step) * step, timezone.utc)


def _sleep_until(at: datetime) -> None:
    delay = (at - datetime.now(timezone.utc)).total_seconds()
    if delay > 0:
        time.sleep(delay)
