"""The Kafka broker, then PostgreSQL, restarted under the running system while jobs flow.

Each restart is a real stop and start of the session's own broker / cluster (same data, same
port): SIGTERM for Kafka (a clean broker shutdown, as in a rolling restart), SIGINT for
PostgreSQL (fast shutdown: open sessions are cut). Nobody touches the functions or the
eventing plane: they must notice, report the outage on their readiness endpoints while it
lasts, reconnect by themselves, and account for every job (committed, or dead-lettered with a
reason). What was committed before the restart must still be there afterwards.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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
    wrong_prices,
)

pytestmark = [pytest.mark.infra, pytest.mark.slow]

JOBS_PER_SECOND = 2.0
BEFORE_SECONDS = 8.0  # load before the restart
DOWN_SECONDS = 10.0  # kept down this long after it stopped: long enough for every function to be probed
# while down, even when a probe takes a few seconds (the Kafka ping times out after 3 s) on a busy machine
AFTER_SECONDS = 10.0  # load after it is back
SETTLE_SECONDS = 180.0


@dataclass
class Outage:
    """What the readiness endpoints said around one restart."""

    dependency: str
    needed_by: tuple[str, ...]
    stopped_at: float = 0.0
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
) -> tuple[JobBook, Outage, int]:
    """Jobs at a steady rate; the dependency stopped after BEFORE_SECONDS and started DOWN_SECONDS later."""
    book = JobBook(system, market, f"restart-{dependency}")
    outage = Outage(dependency, needed_by)
    kinds = itertools.cycle(["top100", "trending", "top100", "metadata", "top100", "trending"])
    restart_error: list[BaseException] = []

    def restart() -> None:
        try:
            stop()
            outage.stopped_at = time.monotonic()
            time.sleep(DOWN_SECONDS)
            outage.started_at = time.monotonic()
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
        if restart_error or now - started > 120:
            break
        time.sleep(0.2)
    restarter.join(60)
    stop_watching.set()
    watcher.join(30)
    assert not restart_error, restart_error
    assert outage.back_at, f"{dependency} did not come back"
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
    assert outcome.pending == [], (
        f"{len(outcome.pending)} jobs neither committed nor dead-lettered: " + outcome.describe_pending()
    )
    assert all(d.headers.get("ce_knativeerrordest") for d in outcome.dead.values())
    partial, prices = outcome.partial_attempts(ledger)
    assert partial == []
    wrong = wrong_prices(prices, market, frozen_at)
    assert wrong == []
    assert database_invariants(ledger) == INVARIANTS_OK
    committed_after = ledger.value("SELECT count(*) FROM token_prices")
    assert committed_after >= committed_before  # nothing committed was lost
    # The outage was visible while it lasted: no function that needs the dependency said "ready".
    while_down = outage.while_down()
    assert set(while_down) == set(outage.needed_by), while_down
    assert all(set(answers) == {"503"} for answers in while_down.values()), while_down
    # Nothing took the internal-error path (500): every failure had a known type.
    errors = {
        source: counts.get("500", 0) - responses_before.get(source, {}).get("500", 0)
        for source, counts in responses_of(system).items()
    }
    assert not any(errors.values()), errors
    # Jobs written after it came back are all committed: the system healed by itself.
    later = [j for j in book.expected if int(j.rsplit("-", 1)[1]) > len(book.expected) - 8]
    assert all(j in outcome.committed for j in later), [(j, outcome.rows.get(j)) for j in later]
    FIGURES.add(
        f"restart={name}",
        down_seconds=round(outage.back_at - outage.stopped_at, 1),
        readiness_while_down=while_down,
        not_ready_seconds=outage.not_ready_seconds(),
        readiness_reason=sorted(outage.reasons)[:2],
        eventing_health=dict(outage.eventing_health),
        jobs=len(book.expected) + len(outcome.audits),
        committed=len(outcome.committed),
        redelivered_then_committed=outcome.redelivered,
        dead_lettered=len(outcome.dead),
        dead_letter_codes=outcome.dead_letter_codes(),
        dead_letter_reasons=outcome.dead_letter_reasons(),
        lost=0,
        partial_attempts=0,
        wrong_rows=0,
        price_rows_before=committed_before,
        price_rows_after=committed_after,
        ready_again_after=round(recovered_in, 1),
    )


@pytest.mark.timeout(360)
def test_kafka_restart_under_load(system: RunningSystem, market: SimulatedMarket, ledger: Ledger) -> None:
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    infra, responses = system.infra, responses_of(system)
    book, outage, before = run_through_restart(
        system,
        market,
        ledger,
        dependency="kafka",
        needed_by=("price", "metadata"),  # they publish events
        stop=infra.stop_kafka,
        start=infra.start_kafka,
    )
    assert "Kafka unreachable" in " ".join(outage.reasons), outage.reasons
    check_and_report("kafka", system, market, ledger, frozen_at, book, outage, before, responses)


@pytest.mark.timeout(360)
def test_postgres_restart_under_load(system: RunningSystem, market: SimulatedMarket, ledger: Ledger) -> None:
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    infra, responses = system.infra, responses_of(system)
    book, outage, before = run_through_restart(
        system,
        market,
        ledger,
        dependency="postgres",
        needed_by=system.function_names(),
        stop=infra.stop_postgres,
        start=infra.start_postgres,
    )
    assert "PostgreSQL unreachable" in " ".join(outage.reasons), outage.reasons
    # The read API's first request after the restart is served: its pool replaced what the restart killed.
    if "quotes" in system.children:
        status, body = http_get_json(f"{system.function_url('quotes')}/v1/prices/BTC", timeout=5)
        assert status == 200 and body.get("price_usdt"), (status, body)
    check_and_report("postgres", system, market, ledger, frozen_at, book, outage, before, responses)


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
