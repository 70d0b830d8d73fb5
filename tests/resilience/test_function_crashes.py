"""Functions killed with SIGKILL again and again while jobs flow: every job is accounted for.

For about two minutes jobs are written to the request topics (top-100 prices, trending crawls
that trigger audits, top-100 metadata refreshes) while, every few seconds, one function is
SIGKILLed: either its gunicorn worker (the master forks a new one) or the whole process group
(the supervisor starts it again, as Knative restarts a crashed pod). Then every job must be
committed (a final job_logs row) or dead-lettered with a reason, and the database must hold no
partial job and no duplicate: each committed attempt of a job wrote every token of the job,
each price is the market's exact price, the latest price is the newest observation, each
(token, provider) has one audit, and the top-100 set is whole.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter

import pytest

from local.market.server import SimulatedMarket
from tests.resilience.harness import (
    FIGURES,
    INVARIANTS_OK,
    JobBook,
    Ledger,
    RunningSystem,
    database_invariants,
    wrong_prices,
)

pytestmark = [pytest.mark.infra, pytest.mark.slow]

RUN_SECONDS = 110.0
KILL_EVERY_SECONDS = 4.0
JOBS_PER_SECOND = 2.0
METADATA_EVERY_SECONDS = 20.0
# (function, worker only?) in turn: the price function takes most of the load and most kills.
KILLS = [
    ("price", True),
    ("price", False),
    ("audit", True),
    ("metadata", False),
    ("price", False),
    ("audit", False),
    ("price", True),
    ("metadata", True),
]
SETTLE_SECONDS = 180.0  # the audit source's last retries wait 32 and 64 s


@pytest.mark.timeout(480)  # 2 minutes of kills, then up to 3 minutes of settling
def test_sigkill_during_a_two_minute_run_loses_no_job_and_leaves_no_partial_row(
    system: RunningSystem, market: SimulatedMarket, ledger: Ledger
) -> None:
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    book = JobBook(system, market, "crash")
    kills: Counter[str] = Counter()
    restarts_before = dict(system.restarts)
    kinds = itertools.cycle(["top100", "trending", "top100", "top100", "trending"])
    kill_plan = itertools.cycle(KILLS)
    started = time.monotonic()
    next_job, next_kill, next_metadata = started, started + 2.0, started + 5.0

    while (now := time.monotonic()) - started < RUN_SECONDS:
        if now >= next_job:
            book.send(next(kinds))
            next_job += 1 / JOBS_PER_SECOND
        if now >= next_metadata:
            book.send("metadata")
            next_metadata += METADATA_EVERY_SECONDS
        if now >= next_kill:
            function, worker_only = next(kill_plan)
            system.kill(function, worker_only=worker_only)
            kills[f"{function}:{'worker' if worker_only else 'process'}"] += 1
            next_kill += KILL_EVERY_SECONDS
        time.sleep(0.05)
    load_seconds = time.monotonic() - started
    ready_after = system.wait_ready(timeout=60)

    # Every job settles: committed (final job_logs row) or dead-lettered with a reason.
    outcome = book.settle(ledger, SETTLE_SECONDS)
    assert outcome.pending == [], (
        f"{len(outcome.pending)} jobs neither committed nor dead-lettered: " + outcome.describe_pending()
    )
    unexplained = [j for j, d in outcome.dead.items() if not d.headers.get("ce_knativeerrordest")]
    assert unexplained == [], unexplained

    # No partial job: every committed attempt wrote every token of its job, at the market's exact price.
    partial, prices = outcome.partial_attempts(ledger)
    assert partial == []
    wrong = wrong_prices(prices, market, frozen_at)
    assert wrong == []
    for job_id in outcome.committed & set(book.expected):
        kind, keys = book.expected[job_id]
        if kind != "metadata":
            assert outcome.rows[job_id]["tokens_succeeded"] == len(keys), outcome.rows[job_id]
    # No duplicate, nothing torn.
    invariants = database_invariants(ledger)
    assert invariants == INVARIANTS_OK

    restarts = {name: system.restarts.get(name, 0) - restarts_before.get(name, 0) for name in system.restarts}
    # A job given up while its function was down ends 'dead_lettered' once the deadletter
    # function read its dead letter (until then: 'running' or 'failed'); its data is all or nothing.
    dead_log_status = Counter(outcome.rows[j]["status"] if j in outcome.rows else "no row" for j in outcome.dead)
    FIGURES.add(
        "sigkill",
        seconds=round(load_seconds),
        kills=sum(kills.values()),
        kills_by_target=dict(kills),
        restarts=restarts,
        jobs=len(book.expected) + len(outcome.audits),
        committed=len(outcome.committed),
        redelivered_then_committed=outcome.redelivered,
        dead_lettered=len(outcome.dead),
        dead_letter_codes=outcome.dead_letter_codes(),
        dead_letter_reasons=outcome.dead_letter_reasons(),
        dead_lettered_log_status=dict(dead_log_status),
        lost=0,
        partial_attempts=len(partial),
        duplicates=0,
        wrong_rows=len(wrong),
        price_rows=len(prices),
        ready_after_last_kill=ready_after,
    )
