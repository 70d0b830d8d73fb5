"""The benchmark's judgements, on hand-made records: what counts as late, skipped, minimum.

Run with `.venv/bin/python -m pytest bench/tests -q` (no Kafka, PostgreSQL or market needed).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bench.profile import summarise
from bench.report import missed_by
from bench.run import nice
from bench.system import SeededSet
from bench.ticks import PriceJob, analyse, parse_job_id, scheduled_time, weighted_percentile
from bench.upstream import minimum_per_tick, observed_per_tick, per_minute_against_limit

CADENCE = timedelta(seconds=5)
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def job(
    tick_offset: float, batch: int, commit_after: float | None, *, status: str = "succeeded", prices: int = 100
) -> PriceJob:
    """A price job of the tick at T0 + tick_offset (jitter included) committed `commit_after` s later."""
    tick = T0 + timedelta(seconds=tick_offset)
    commits = [] if commit_after is None else [(tick + timedelta(seconds=commit_after), prices)]
    return PriceJob(
        f"top100-price:{tick:%Y%m%dT%H%M%S.%f}Z:{batch}",
        tick,
        batch,
        status,
        prices,
        prices,
        tick + timedelta(seconds=0.05),
        tick + timedelta(seconds=commit_after or 0),
        commits=commits,
    )


def test_job_ids_give_tick_time_and_batch():
    assert parse_job_id("top100-price:20260101T120000.250000Z:3") == (T0 + timedelta(seconds=0.25), 3)
    assert parse_job_id("trending:20260101T120000.250000Z") is None
    assert parse_job_id("top100-price:garbage:1") is None


def test_jitter_never_moves_a_tick_to_the_next_boundary():
    assert scheduled_time(T0 + timedelta(seconds=4.99), CADENCE) == T0
    assert scheduled_time(T0 + timedelta(seconds=5.0), CADENCE) == T0 + CADENCE


def test_weighted_percentile_counts_every_price():
    samples = [(0.1, 98), (2.0, 2)]  # 98 prices fast, 2 slow
    assert weighted_percentile(samples, 50) == 0.1
    assert weighted_percentile(samples, 98) == 0.1
    assert weighted_percentile(samples, 99) == 2.0
    assert weighted_percentile([], 50) is None


def test_on_time_late_incomplete_and_skipped_ticks():
    jobs = [
        job(0.3, 0, 0.2),
        job(0.3, 1, 0.4),  # tick 0: both batches before the next tick
        job(5.1, 0, 0.2),
        job(5.1, 1, 6.0),  # tick 1: one batch commits after tick 2 was due
        job(10.2, 0, 0.2),  # tick 2: batch 1 never arrived
        job(20.4, 0, 0.1),
        job(20.4, 1, None, status="failed"),  # tick 4: a batch failed; tick 3 absent
    ]
    result = analyse(
        jobs, window_start=T0, window_end=T0 + 5 * CADENCE, cadence=CADENCE, jobs_per_tick=2, prices_per_tick=200
    )
    assert [(t.late, t.skipped) for t in result.ticks] == [
        (False, False),
        (True, False),
        (True, False),
        (True, True),
        (True, False),
    ]
    assert (result.late, result.skipped) == (3, 1)
    assert result.stale == 4
    assert result.prices == 600 and result.expected_prices == 1000
    assert result.failed_jobs == 1
    assert result.tick_to_commit.max == pytest.approx(6.0)
    assert result.tick_to_complete.count == 2  # ticks 0 and 1 completed (1 late); 2 and 4 never did
    assert result.tick_to_complete.max == pytest.approx(6.0)


def test_a_tick_that_prices_too_few_tokens_is_short_not_fresh():
    jobs = [job(0.2, 0, 0.3, status="partial", prices=90), job(5.2, 0, 0.3, prices=100)]
    result = analyse(
        jobs, window_start=T0, window_end=T0 + 2 * CADENCE, cadence=CADENCE, jobs_per_tick=1, prices_per_tick=100
    )
    assert [t.fresh for t in result.ticks] == [False, True]
    assert (result.late, result.short, result.stale) == (0, 1, 1)


def test_ticks_outside_the_window_are_not_judged():
    jobs = [job(-5 + 0.2, 0, 30.0), job(0.2, 0, 0.3), job(10.1, 0, 30.0)]
    result = analyse(
        jobs, window_start=T0, window_end=T0 + 2 * CADENCE, cadence=CADENCE, jobs_per_tick=1, prices_per_tick=100
    )
    assert len(result.ticks) == 2
    assert result.late == 0 and result.skipped == 1


def test_minimum_requests_follow_the_apis_batch_limits():
    seeded = SeededSet(
        members=1000,
        symbols=1000,
        jobs_per_tick=10,
        on_binance=440,
        dex_by_chain={"ethereum": 206, "solana": 125, "base": 1},
        coingecko_only=17,
    )
    minimum = minimum_per_tick(seeded)
    assert minimum["binance"] == pytest.approx(1 + 5 / 3600)  # one ticker for every pair
    assert minimum["dexscreener"] == 7 + 5 + 1  # 30 addresses per request per chain
    assert minimum["coingecko"] == pytest.approx(1 + 5 / 120)  # one simple/price + the USDT rate


def test_binance_only_sets_need_no_other_api():
    minimum = minimum_per_tick(SeededSet(members=10, symbols=10, jobs_per_tick=1, on_binance=10))
    assert minimum["dexscreener"] == 0 and minimum["coingecko"] == 0


def test_observed_requests_and_binance_weight_per_minute():
    stats = {
        "apis": {
            "binance": {"total": 24, "routes": {"/api/v3/ticker/price": 24}},
            "dexscreener": {"total": 60, "routes": {"/tokens/v1/{chainId}/{tokenAddresses}": 60}},
        }
    }
    assert observed_per_tick(stats, ticks=12) == {"binance": 2.0, "dexscreener": 5.0, "coingecko": 0.0}
    used = per_minute_against_limit(stats, window_seconds=60)
    assert used["binance"] == (96.0, 6000, "weight")
    assert used["dexscreener"] == (60.0, 300, "requests")


def test_profile_buckets_charge_socket_time_to_the_library_above_it():
    collapsed = "\n".join(
        [
            "run (gunicorn/workers/gthread.py);insert_prices (shared/crawler/store.py);execute (pg8000/core.py);"
            "sendall (socket.py) 30",
            "run (gunicorn/workers/gthread.py);get_json (shared/upstream/http.py);send (httpx/_client.py) 50",
            "run (gunicorn/workers/gthread.py);wait (threading.py) 20",
        ]
    )
    summary = summarise(collapsed)
    buckets = dict(summary["buckets"])
    assert buckets["PostgreSQL driver (pg8000)"] == 30.0
    assert buckets["upstream HTTP client (httpx/httpcore/h11)"] == 50.0
    assert summary["samples"] == 100
    jobs_only = summarise(collapsed, only_jobs=True)
    assert jobs_only["samples"] == 0  # no job_runner frame in these stacks


def test_verdicts_say_by_how_much():
    assert missed_by(0.05, 0.1, lower_is_better=True) == "met"
    assert missed_by(0.45, 0.1, lower_is_better=True) == "MISSED (4.5× off)"
    assert missed_by(5000, 50000, lower_is_better=False) == "MISSED (10.0× off)"


def test_probe_sizes_are_readable():
    assert nice(3162.3) == 3200
    assert nice(316.2) == 320
    assert nice(70) == 70


def test_stock_rows_judge_p99_against_the_goal_beside_the_original() -> None:
    from bench.report import stock_rows
    from bench.stocks import StockFigures

    figures = StockFigures(
        10, 6.0, True, new_quotes=3, bronze=[0.01, 0.02, 0.5], gold=[2.0, 3.0, 16.0], build_seconds=[1.5, 2.5]
    )
    bronze, gold, builds = stock_rows(figures)
    assert bronze[2] == "0.020 / 0.500" and bronze[3] == "the original: ~6" and bronze[-1] == "met"
    assert gold[2] == "3.000 / 16.000" and gold[-2] == "p99 ≤ 15 s" and gold[-1] == "MISSED (1.1× off)"
    assert builds[2] == "2.0 / 2.5" and builds[-1] == "long-lived worker"
    assert not figures.goals_met
    assert stock_rows(None) == []
