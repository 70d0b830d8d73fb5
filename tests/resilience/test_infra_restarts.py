"""The Kafka broker, then PostgreSQL, stopped under the running system while jobs flow: for 10 s
(a restart), then for 60 s (a long outage).

Each restart is a real stop and start of the session's own broker / cluster (same data, same
port): SIGTERM for Kafka (a clean broker shutdown, as in a rolling restart), SIGINT for
PostgreSQL (fast shutdown: open sessions are cut). Nobody touches the functions or the
eventing plane: they must notice, report the outage on their readiness endpoints while it
lasts, reconnect by themselves, and account for every job. The jobs carry the `expires_at` the
scheduler gives their ticks. Every metadata, trending and audit job must be committed and
none dead-lettered: the KafkaSources retry for two minutes. A price tick whose freshness ran
out during the outage must end `expired` (200, counted), never as a failure or a dead letter.
What was committed before the stop must still be there afterwards.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from local.market.server import SimulatedMarket
from shared.db import connection
from shared.db.connection import ConnectionPool, connect
from shared.errors import DependencyUnavailable
from tests.resilience.harness import (
    FIGURES,
    INVARIANTS_OK,
    JobBook,
    Ledger,
    PrivateInfra,
    RunningSystem,
    database_invariants,
    http_get_json,
    observed_twice,
    wrong_prices,
)

pytestmark = [pytest.mark.infra, pytest.mark.slow]

JOBS_PER_SECOND = 2.0
BEFORE_SECONDS = 8.0  # load before the restart
RESTART_DOWN_SECONDS = 10.0  # a restart: long enough for every function to be probed while down, even when a
# probe takes a few seconds (the Kafka ping times out after 3 s) on a busy machine
OUTAGE_DOWN_SECONDS = 60.0  # a long outage (issue #22): shorter than the request sources' 2-min retry window
AFTER_SECONDS = 10.0  # load after it is back
SETTLE_SECONDS = 180.0
# Jobs other than top-100 price ticks: worth doing after any outage the retries ride out.
NEVER_EXPIRED_KINDS = ("trending", "metadata")


@dataclass
class Outage:
    """What the readiness endpoints said around one restart."""

    dependency: str
    needed_by: tuple[str, ...]
    down_seconds: float = RESTART_DOWN_SECONDS
    stopped_at: float = 0.0
    stopped_wall: datetime | None = None  # wall-clock times, to compare with the jobs' expires_at
    started_wall: datetime | None = None
    expired_metric_before: float = 0.0  # the price function's expired-job count when it began
    started_at: float = 0.0
    back_at: float = 0.0
    # (function, asked at, answered at, status)
    probes: list[tuple[str, float, float, int | None]] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)
    eventing_health: Counter[str] = field(default_factory=Counter)

    def watch(self, system: RunningSystem, stop: threading.Event) -> None:
        """Probe every function's readiness (and the plane's health) until `stop` is set."""

        def probe(name: str) -> None:
            while not stop.is_set():
                asked = time.monotonic()
                status, body = system.readiness(name, timeout=10)
                self.probes.append((name, asked, time.monotonic(), status))
                if status == 503:
                    self.reasons.add(str(body.get("detail")))
                stop.wait(0.3)

        threads = [threading.Thread(target=probe, args=(n,), daemon=True) for n in system.function_names()]
        for thread in threads:
            thread.start()
        while not stop.wait(0.5):
            status, body = system.eventing_status()
            self.eventing_health[str(body.get("status", status))] += 1
        for thread in threads:
            thread.join(15)

    def while_down(self) -> dict[str, Counter[str]]:
        """Readiness answers of the functions that need the dependency, asked and answered while it was down."""
        seen: dict[str, Counter[str]] = {}
        for name, asked, answered, status in self.probes:
            if name in self.needed_by and asked >= self.stopped_at and answered <= self.started_at:
                seen.setdefault(name, Counter())[str(status)] += 1
        return seen

    def not_ready_seconds(self) -> dict[str, float]:
        """Per function, from its first 503 to its last one."""
        times: dict[str, list[float]] = {}
        for name, asked, _, status in self.probes:
            if status == 503:
                times.setdefault(name, []).append(asked)
        return {name: round(t[-1] - t[0], 1) for name, t in times.items()}


def run_through_restart(
    system: RunningSystem,
    market: SimulatedMarket,
    ledger: Ledger,
    *,
    dependency: str,
    needed_by: tuple[str, ...],
    stop: Callable[[], None],
    start: Callable[[], float],
    down_seconds: float = RESTART_DOWN_SECONDS,
) -> tuple[JobBook, Outage, int]:
    """Jobs at a steady rate; the dependency stopped after BEFORE_SECONDS and started `down_seconds` later."""
    book = JobBook(system, market, f"down{down_seconds:.0f}-{dependency}", expiring=True)
    outage = Outage(dependency, needed_by, down_seconds)
    kinds = itertools.cycle(["top100", "trending", "top100", "metadata", "top100", "trending"])
    restart_error: list[BaseException] = []

    def restart() -> None:
        try:
            stop()
            outage.stopped_at, outage.stopped_wall = time.monotonic(), datetime.now(timezone.utc)
            time.sleep(down_seconds)
            outage.started_at, outage.started_wall = time.monotonic(), datetime.now(timezone.utc)
            start()
            outage.back_at = time.monotonic()
        except BaseException as exc:  # reported by the main thread
            restart_error.append(exc)

    restarter = threading.Thread(target=restart, name=f"restart-{dependency}")
    stop_watching = threading.Event()
    watcher = threading.Thread(target=outage.watch, args=(system, stop_watching), name="readiness-watch")
    started = time.monotonic()
    next_job, committed_before = started, None
    while True:
        now = time.monotonic()
        if now >= next_job:
            book.send(next(kinds))
            next_job += 1 / JOBS_PER_SECOND
        if committed_before is None and now - started >= BEFORE_SECONDS:
            # What is committed now must survive the restart.
            committed_before = ledger.value("SELECT count(*) FROM token_prices")
            watcher.start()
            restarter.start()
        if outage.back_at and now - outage.back_at >= AFTER_SECONDS:
            break
        if restart_error or now - started > BEFORE_SECONDS + down_seconds + AFTER_SECONDS + 100:
            break
        time.sleep(0.2)
    restarter.join(60)
    stop_watching.set()
    watcher.join(30)
    assert not restart_error, restart_error
    assert outage.back_at, f"{dependency} did not come back"
    assert committed_before is not None, "the load before the outage never ran"
    return book, outage, committed_before


def responses_of(system: RunningSystem) -> dict[str, dict[str, int]]:
    """The eventing plane's count of function answers per status, per source."""
    return {source: counts.get("responses", {}) for source, counts in system.eventing_metrics().items()}


def check_and_report(
    name: str,
    system: RunningSystem,
    market: SimulatedMarket,
    ledger: Ledger,
    frozen_at: float,
    book: JobBook,
    outage: Outage,
    committed_before: int,
    responses_before: dict[str, dict[str, int]],
) -> None:
    recovered_in = system.wait_ready(timeout=60)
    outcome = book.settle(ledger, SETTLE_SECONDS)
    # Nothing lost: every job committed, expired or dead-lettered.
    assert outcome.pending == [], (
        f"{len(outcome.pending)} jobs neither committed nor dead-lettered: " + outcome.describe_pending()
    )
    # Nothing dead-lettered: the retries outlast the outage, and a superseded tick is no failure.
    assert outcome.dead == {}, (outcome.dead_letter_codes(), outcome.dead_letter_reasons())
    # Every metadata, trending and audit job committed.
    kinds = {j: kind for j, (kind, _) in book.expected.items()}
    not_done = [
        (j, outcome.rows.get(j, {}).get("status"))
        for j in [*book.expected, *outcome.audits]
        if kinds.get(j, "audit") in (*NEVER_EXPIRED_KINDS, "audit") and j not in outcome.committed
    ]
    assert not_done == [], not_done
    # Only price ticks expire, only once their expires_at has passed, and every tick whose whole
    # freshness lay inside the outage expired (it could not be done while the dependency was down).
    expired = outcome.expired
    assert {kinds[j] for j in expired} <= {"top100"}, sorted(expired)
    early = [j for j in expired if outcome.rows[j]["finished_at"] <= book.expires_at[j]]
    assert early == [], [(j, outcome.rows[j]["finished_at"], book.expires_at[j]) for j in early]
    assert outage.stopped_wall and outage.started_wall
    superseded = {
        j
        for j, kind in kinds.items()
        if kind == "top100" and book.sent_at[j] > outage.stopped_wall and book.expires_at[j] < outage.started_wall
    }
    assert superseded <= expired, sorted(superseded - expired)
    assert all("superseded" in outcome.rows[j]["message"] for j in expired)
    partial, prices = outcome.partial_attempts(ledger)
    assert partial == []
    wrong = wrong_prices(prices, market, frozen_at)
    assert wrong == []
    twice = observed_twice(prices)
    assert twice == []
    invariants = database_invariants(ledger)
    assert invariants == INVARIANTS_OK
    committed_after = ledger.value("SELECT count(*) FROM token_prices")
    assert committed_after >= committed_before  # nothing committed was lost
    # The outage was visible while it lasted: no function that needs the dependency said "ready".
    while_down = outage.while_down()
    assert set(while_down) == set(outage.needed_by), while_down
    assert all(set(answers) == {"503"} for answers in while_down.values()), while_down
    # Nothing took the internal-error path (500): every failure had a known type.
    responses = responses_of(system)
    assert responses and responses_before, "the eventing plane's counters (/status) could not be read"
    errors = {
        source: counts.get("500", 0) - responses_before.get(source, {}).get("500", 0)
        for source, counts in responses.items()
    }
    assert not any(errors.values()), errors
    # The expired outcome is counted where operators look: the price function's job metric.
    expired_metric = jobs_completed(system, "price", "expired") - outage.expired_metric_before
    assert expired_metric == len(expired), (expired_metric, len(expired))
    # The system healed by itself: once the backlog is worked off, fresh price jobs are done and
    # none expires. (A tick written just after the dependency came back may expire in the backlog
    # of the outage: its 10 s can pass while the consumers rejoin and the queued jobs go first.)
    # Metadata is ordered, one job in flight: a fresh one waits behind the outage's backlog by
    # design, and every metadata job of the run was checked committed above.
    healed = JobBook(system, market, f"healed-{name}", expiring=True)
    for kind in ("top100", "trending"):
        healed.send(kind)
    after = healed.settle(ledger, 60)
    assert after.pending == [] and after.dead == {} and after.expired == set(), after.rows
    assert set(healed.expected) | after.audits <= after.committed, after.rows
    FIGURES.add(
        f"{'outage' if outage.down_seconds > RESTART_DOWN_SECONDS else 'restart'}={name}",
        down_seconds=round(outage.back_at - outage.stopped_at, 1),
        readiness_while_down=while_down,
        not_ready_seconds=outage.not_ready_seconds(),
        readiness_reason=sorted(outage.reasons)[:2],
        eventing_health=dict(outage.eventing_health),
        jobs=len(book.expected) + len(outcome.audits),
        jobs_by_kind=dict(Counter([*kinds.values(), *["audit"] * len(outcome.audits)])),
        committed=len(outcome.committed),
        expired=len(expired),
        expired_metric=round(expired_metric),
        redelivered_then_committed=outcome.redelivered,
        dead_lettered=len(outcome.dead),
        lost=len(outcome.pending),
        duplicated=len(twice) + invariants["duplicate_job_rows"] + invariants["duplicate_audits"],
        partial_attempts=len(partial),
        wrong_rows=len(wrong),
        retries={source: counts for source, counts in retries_since(responses, responses_before).items() if counts},
        price_rows_before=committed_before,
        price_rows_after=committed_after,
        ready_again_after=round(recovered_in, 1),
        settled_after=round(time.monotonic() - outage.back_at, 1),
    )


def jobs_completed(system: RunningSystem, function: str, status: str) -> float:
    """crawler_jobs_completed of one status, summed over job types, as the function exports it."""
    with urllib.request.urlopen(f"{system.function_url(function)}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = rf'^crawler_jobs_completed_total\{{(?=[^}}]*status="{status}")[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


def retries_since(responses: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per source, the function's non-2xx answers (each one retried) since `before`."""
    return {
        source.rsplit("/", 1)[-1]: {
            status: count - before.get(source, {}).get(status, 0)
            for status, count in counts.items()
            if not status.startswith("2") and count - before.get(source, {}).get(status, 0)
        }
        for source, counts in responses.items()
    }


def kafka_down(system: RunningSystem, market: SimulatedMarket, ledger: Ledger, down_seconds: float) -> None:
    """The broker stopped for `down_seconds` under load; then every check of `check_and_report`."""
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    infra, responses, expired_before = system.infra, responses_of(system), jobs_completed(system, "price", "expired")
    book, outage, before = run_through_restart(
        system,
        market,
        ledger,
        dependency="kafka",
        needed_by=("price", "metadata"),  # they publish events
        stop=infra.stop_kafka,
        start=infra.start_kafka,
        down_seconds=down_seconds,
    )
    outage.expired_metric_before = expired_before
    assert "Kafka unreachable" in " ".join(outage.reasons), outage.reasons
    check_and_report("kafka", system, market, ledger, frozen_at, book, outage, before, responses)


def postgres_down(system: RunningSystem, market: SimulatedMarket, ledger: Ledger, down_seconds: float) -> None:
    """The database stopped for `down_seconds` under load; then every check of `check_and_report`."""
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    infra, responses, expired_before = system.infra, responses_of(system), jobs_completed(system, "price", "expired")
    book, outage, before = run_through_restart(
        system,
        market,
        ledger,
        dependency="postgres",
        needed_by=system.function_names(),
        stop=infra.stop_postgres,
        start=infra.start_postgres,
        down_seconds=down_seconds,
    )
    outage.expired_metric_before = expired_before
    assert "PostgreSQL unreachable" in " ".join(outage.reasons), outage.reasons
    # The read API's first request after the restart is served: its pool replaced what the restart killed.
    if "quotes" in system.children:
        status, body = http_get_json(f"{system.function_url('quotes')}/v1/prices/BTC", timeout=5)
        assert status == 200 and body.get("price_usdt"), (status, body)
    check_and_report("postgres", system, market, ledger, frozen_at, book, outage, before, responses)


@pytest.mark.timeout(360)
def test_kafka_restart_under_load(system: RunningSystem, market: SimulatedMarket, ledger: Ledger) -> None:
    kafka_down(system, market, ledger, RESTART_DOWN_SECONDS)


@pytest.mark.timeout(360)
def test_postgres_restart_under_load(system: RunningSystem, market: SimulatedMarket, ledger: Ledger) -> None:
    postgres_down(system, market, ledger, RESTART_DOWN_SECONDS)


@pytest.mark.timeout(420)
def test_a_60s_kafka_outage_dead_letters_nothing(
    system: RunningSystem, market: SimulatedMarket, ledger: Ledger
) -> None:
    kafka_down(system, market, ledger, OUTAGE_DOWN_SECONDS)


@pytest.mark.timeout(420)
def test_a_60s_postgres_outage_dead_letters_nothing(
    system: RunningSystem, market: SimulatedMarket, ledger: Ledger
) -> None:
    postgres_down(system, market, ledger, OUTAGE_DOWN_SECONDS)


def test_a_session_ended_mid_use_is_unavailable_then_replaced(
    private_infra: PrivateInfra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_terminate_backend (SQLSTATE 57P01, as at a shutdown) on a connection about to be used: the pool
    says the dependency is unavailable (503: retried, not a 500 bug), drops it and reconnects next time."""
    monkeypatch.setattr(connection, "CHECK_IDLE_AFTER_SECONDS", 3600.0)  # as if lent out at once
    pool = ConnectionPool(private_infra.database_url, size=1)
    admin = connect(private_infra.database_url)
    try:
        with pool.connection() as conn:
            backend = conn.run("SELECT pg_backend_pid()")[0][0]
        admin.run("SELECT pg_terminate_backend(:pid)", pid=backend)
        with pytest.raises(DependencyUnavailable):
            with pool.connection() as conn:
                conn.run("SELECT 1")
        with pool.connection() as conn:
            assert conn.run("SELECT pg_backend_pid()")[0][0] != backend
    finally:
        admin.close()
        pool.close()


def test_a_session_ended_while_idle_costs_no_request_an_error(private_infra: PrivateInfra) -> None:
    """What a database restart leaves in an idle pool: dead connections. The next borrower gets a live one."""
    pool = ConnectionPool(private_infra.database_url, size=2)
    admin = connect(private_infra.database_url)
    try:
        with pool.connection() as first, pool.connection() as second:
            backends = {c.run("SELECT pg_backend_pid()")[0][0] for c in (first, second)}
        for backend in backends:
            admin.run("SELECT pg_terminate_backend(:pid)", pid=backend)
        time.sleep(connection.CHECK_IDLE_AFTER_SECONDS + 0.2)
        with pool.connection() as conn:
            assert conn.run("SELECT pg_backend_pid()")[0][0] not in backends
    finally:
        admin.close()
        pool.close()
