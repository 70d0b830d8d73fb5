"""Gold candles, KPIs and volatility on real PostgreSQL, checked against brute force.

`store.insert_prices` queues the ticks it inserted and `store.fold_candle_ticks` folds them
into the candles; every test computes the expected candles from the same ticks in plain
Python and compares them exactly (the Decimal text included), whatever order, redelivery
and fold timing the ticks met.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.crawler import store
from shared.crawler.candle_fold import DeferredCandleFold
from shared.crawler.gold import RESOLUTIONS, candles, kpis, volatility
from shared.crawler.models import PriceQuote, TokenProfile
from shared.db.connection import ConnectionPool, connect

ORIGIN = datetime(2000, 1, 1, tzinfo=timezone.utc)
KEYS = ("native:bitcoin", "solana:PicoMint1111111111111111111111111111111", "ethereum:0x" + "ab" * 20)


@pytest.fixture
def pool(clean_db):
    pool = ConnectionPool(clean_db, size=4)
    with pool.transaction() as conn:
        store.upsert_tokens(
            conn,
            [
                TokenProfile(key=k, symbol=f"T{i}", name=None, chain=None, address=None, source="test")
                for i, k in enumerate(KEYS)
            ],
        )
    yield pool
    pool.close()


def bucket(at: datetime, width: timedelta) -> datetime:
    return ORIGIN + ((at - ORIGIN) // width) * width


def brute_force_candles(ticks: list[PriceQuote]) -> dict[tuple[str, str, datetime], tuple]:
    """OHLC by rescanning every unique tick (the last price seen for a (token, time) wins nothing:
    duplicates carry the same price)."""
    unique = {(t.token_key, t.observed_at): t for t in ticks}
    groups: dict[tuple[str, str, datetime], list[PriceQuote]] = defaultdict(list)
    for tick in unique.values():
        for name, width in RESOLUTIONS.items():
            groups[(tick.token_key, name, bucket(tick.observed_at, width))].append(tick)
    out = {}
    for key, members in groups.items():
        members.sort(key=lambda t: t.observed_at)
        prices = [t.price_usdt for t in members]
        out[key] = (
            str(members[0].price_usdt),
            str(max(prices)),
            str(min(prices)),
            str(members[-1].price_usdt),
            members[0].observed_at,
            members[-1].observed_at,
            len(members),
        )
    return out


def stored_candles(url: str) -> dict[tuple[str, str, datetime], tuple]:
    conn = connect(url)
    try:
        rows = conn.run(
            "SELECT token_key, resolution, bucket_start, open, high, low, close, open_at, close_at, ticks"
            " FROM token_candles"
        )
    finally:
        conn.close()
    return {(r[0], r[1], r[2]): (str(r[3]), str(r[4]), str(r[5]), str(r[6]), r[7], r[8], r[9]) for r in rows}


def random_ticks(rng: random.Random, start: datetime, span: timedelta, count: int) -> list[PriceQuote]:
    ticks = []
    for _ in range(count):
        key = rng.choice(KEYS)
        # Millisecond times: several ticks per minute bucket, a few per exact second.
        at = start + timedelta(milliseconds=rng.randrange(int(span.total_seconds() * 1000)))
        if key.startswith("solana"):
            price = Decimal(f"0.0000000000{rng.randrange(10000, 99999)}")  # ~1e-11: every digit must survive
        else:
            price = Decimal(rng.randrange(1, 10**9)) / Decimal(10 ** rng.randrange(0, 9))
        ticks.append(PriceQuote(key, "T", price, "test", at))
    return ticks


def insert(pool: ConnectionPool, batch: list[PriceQuote], job: str = "job", *, fold: bool = True) -> int:
    """Store a price batch as a job does; fold its ticks into the candles unless told not to."""
    with pool.transaction() as conn:
        inserted = store.insert_prices(conn, batch, job)
    if fold:
        with pool.connection() as conn:
            store.fold_candle_ticks(conn)
    return inserted


def queued_ticks(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return conn.run("SELECT count(*) FROM token_candle_ticks")[0][0]


def test_candles_equal_brute_force_with_out_of_order_and_redelivered_ticks(pool, clean_db):
    rng = random.Random(20250625)
    # Crosses midnight UTC, so 1 d candles have two buckets.
    ticks = random_ticks(rng, datetime(2025, 6, 25, 22, 40, tzinfo=timezone.utc), timedelta(hours=3), 900)
    rng.shuffle(ticks)
    batches = []
    i = 0
    while i < len(ticks):
        size = rng.randrange(1, 60)
        batches.append(ticks[i : i + size])
        i += size
    for n, batch in enumerate(batches):
        # Each batch carries a duplicate of one of its ticks, as a re-read source would;
        # folds come at random points, several batches apart.
        insert(pool, batch + batch[:1], f"job-{n}", fold=rng.random() < 0.3)
        if n % 5 == 0:  # Kafka redelivers a fifth of the jobs after they committed
            assert insert(pool, batch, f"job-{n}", fold=False) == 0
    # A late redelivery of everything, in another order.
    for batch in reversed(batches[:10]):
        insert(pool, batch, fold=False)

    with pool.connection() as conn:
        store.fold_candle_ticks(conn)
    assert queued_ticks(pool) == 0
    expected = brute_force_candles(ticks)
    assert stored_candles(clean_db) == expected
    assert {k[1] for k in expected} == set(RESOLUTIONS)
    assert len({k[2] for k in expected if k[1] == "1d"}) == 2


def test_concurrent_batches_give_the_brute_force_candles(pool, clean_db):
    rng = random.Random(7)
    ticks = random_ticks(rng, datetime(2025, 6, 26, 9, 0, tzinfo=timezone.utc), timedelta(minutes=20), 600)
    chunks = [ticks[i::4] for i in range(4)]
    errors: list[BaseException] = []

    def writer(chunk: list[PriceQuote]) -> None:
        try:
            for j in range(0, len(chunk), 15):
                insert(pool, chunk[j : j + 15])  # each writer folds too: folds meet folds and inserts
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert queued_ticks(pool) == 0  # the last fold of each writer waited for the others, skipped nothing
    assert stored_candles(clean_db) == brute_force_candles(ticks)


def test_only_committed_new_ticks_are_queued(pool, clean_db):
    at = datetime(2025, 6, 27, 12, 0, 5, tzinfo=timezone.utc)
    tick = PriceQuote(KEYS[0], "BTC", Decimal("100.25"), "test", at)
    with pytest.raises(RuntimeError):
        with pool.transaction() as conn:
            store.insert_prices(conn, [tick], "job")
            raise RuntimeError("the job failed before its commit")
    assert queued_ticks(pool) == 0
    assert insert(pool, [tick], fold=False) == 1
    assert insert(pool, [tick], fold=False) == 0  # redelivered: not queued again
    assert queued_ticks(pool) == 1 and stored_candles(clean_db) == {}  # candles wait for the fold
    with pool.connection() as conn:
        assert store.fold_candle_ticks(conn) == 1
    assert stored_candles(clean_db) == brute_force_candles([tick])


def test_deferred_fold_runs_after_its_delay_and_flushes_on_close(pool, clean_db):
    at = datetime(2025, 6, 27, 13, 0, tzinfo=timezone.utc)
    first = [PriceQuote(KEYS[0], "BTC", Decimal("100"), "test", at)]
    second = [PriceQuote(KEYS[0], "BTC", Decimal("101"), "test", at + timedelta(seconds=5))]
    fold = DeferredCandleFold(pool, delay=1.0)  # long enough to see the tick still queued under load
    try:
        insert(pool, first, fold=False)
        fold.request()
        fold.request()  # joins the pending fold
        assert queued_ticks(pool) == 1  # not yet: after the delay
        deadline = time.monotonic() + 5
        while queued_ticks(pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_candles(clean_db) == brute_force_candles(first)

        insert(pool, second, fold=False)
        fold.request()
    finally:
        fold.close()  # a pending fold runs now, not after its delay
    assert queued_ticks(pool) == 0
    assert stored_candles(clean_db) == brute_force_candles(first + second)


def test_candles_survive_tick_retention(pool, clean_db):
    now = datetime.now(timezone.utc)
    old = [PriceQuote(KEYS[0], "BTC", Decimal("100.5"), "test", now - timedelta(days=10, minutes=m)) for m in range(3)]
    insert(pool, old)
    before = stored_candles(clean_db)
    with pool.transaction() as conn:
        store.run_maintenance(conn, price_retention_days=7, job_log_retention_days=14)
        assert conn.run("SELECT count(*) FROM token_prices")[0][0] == 0  # the ticks are gone
    assert stored_candles(clean_db) == before  # the candles are not


def test_minute_candles_are_pruned_after_35_days_hours_and_days_kept(pool, clean_db):
    long_ago = datetime.now(timezone.utc) - timedelta(days=40)
    insert(pool, [PriceQuote(KEYS[0], "BTC", Decimal("90"), "test", long_ago)])
    with pool.transaction() as conn:
        store.run_maintenance(conn, price_retention_days=7, job_log_retention_days=14)
    assert sorted(k[1] for k in stored_candles(clean_db)) == ["1d", "1h"]


def test_resolutions_mirror_the_table(pool):
    with pool.connection() as conn:
        rows = dict(conn.run("SELECT resolution, width FROM candle_resolutions()"))
    assert rows == RESOLUTIONS


def test_candle_reads_page_in_order(pool):
    start = datetime(2025, 6, 25, 10, 0, tzinfo=timezone.utc)
    insert(
        pool,
        [
            PriceQuote(KEYS[0], "BTC", Decimal(100 + m), "test", start + timedelta(minutes=m, seconds=5))
            for m in range(10)
        ],
    )
    with pool.connection() as conn:
        first = candles(conn, KEYS[0], "1m", start=start, end=start + timedelta(hours=1), limit=4)
        rest = candles(
            conn, KEYS[0], "1m", start=start, end=start + timedelta(hours=1), after=first[-1].bucket_start, limit=100
        )
    assert [c.close for c in first + rest] == [Decimal(100 + m) for m in range(10)]
    assert [c.bucket_start for c in first + rest] == [start + timedelta(minutes=m) for m in range(10)]


def test_kpis_over_24_hours_equal_brute_force(pool):
    rng = random.Random(3)
    with pool.connection() as conn:
        db_now = conn.run("SELECT now()")[0][0]
    key = KEYS[2]
    # 30 hours of ticks up to a little before now, so the window cuts through a partial hour.
    ticks = [
        PriceQuote(
            key,
            "T2",
            Decimal(rng.randrange(10**6, 2 * 10**6)) / 1000,
            "test",
            db_now - timedelta(seconds=rng.randrange(5, 30 * 3600)),
        )
        for _ in range(2000)
    ]
    rng.shuffle(ticks)
    for j in range(0, len(ticks), 100):
        insert(pool, ticks[j : j + 100])
    with pool.connection() as conn:
        answered = kpis(conn, [key, KEYS[0]])
    assert set(answered) == {key}  # only tokens with a price are answered
    got = answered[key]
    unique = sorted({t.observed_at: t for t in ticks}.values(), key=lambda t: t.observed_at)
    window = [t for t in unique if t.observed_at >= got.window_start]
    assert got.window_start == bucket(got.as_of - timedelta(hours=24), timedelta(minutes=1))
    assert got.price_usdt == unique[-1].price_usdt
    assert got.open_24h == window[0].price_usdt and got.open_24h_at == window[0].observed_at
    assert got.high_24h == max(t.price_usdt for t in window)
    assert got.low_24h == min(t.price_usdt for t in window)
    assert got.ticks_24h == len(window)
    assert got.change_24h == unique[-1].price_usdt - window[0].price_usdt
    assert got.change_pct_24h == (got.change_24h * 100 / window[0].price_usdt).quantize(Decimal("0.0001"))


def test_kpis_of_a_token_without_recent_ticks_have_no_window(pool):
    insert(pool, [PriceQuote(KEYS[0], "BTC", Decimal("1"), "test", datetime.now(timezone.utc) - timedelta(days=3))])
    with pool.connection() as conn:
        got = kpis(conn, [KEYS[0], KEYS[1]])
    assert set(got) == {KEYS[0]}
    assert got[KEYS[0]].open_24h is None and got[KEYS[0]].change_pct_24h is None and got[KEYS[0]].ticks_24h == 0


def test_volatility_equals_brute_force(pool):
    with pool.connection() as conn:
        db_now = conn.run("SELECT now()")[0][0]
    key = KEYS[0]
    this_hour = bucket(db_now, timedelta(hours=1))
    closes = [Decimal("100"), Decimal("101.5"), Decimal("99.25"), Decimal("102"), Decimal("98.125")]
    # One tick per hour for the last five hours, and one ten hours back (outside a 5-period window).
    insert(
        pool,
        [PriceQuote(key, "BTC", c, "test", this_hour - timedelta(hours=4 - i)) for i, c in enumerate(closes)]
        + [PriceQuote(key, "BTC", Decimal("500"), "test", this_hour - timedelta(hours=10))],
    )
    with pool.connection() as conn:
        got = volatility(conn, key, "1h", periods=5)
        empty = volatility(conn, KEYS[1], "1d", periods=30)
    returns = [b / a - 1 for a, b in zip(closes, closes[1:])]
    assert got.samples == 5 and got.window_start == this_hour - timedelta(hours=4)
    assert got.mean == statistics.mean(closes)
    assert abs(got.stddev - statistics.stdev(closes)) < Decimal("1e-15")
    assert abs(got.relative - statistics.stdev(closes) / statistics.mean(closes)) < Decimal("1e-15")
    assert abs(got.returns_stddev - statistics.stdev(returns)) < Decimal("1e-15")
    assert empty.samples == 0 and empty.stddev is None and empty.relative is None


def test_a_process_that_exits_folds_what_it_queued(pool, clean_db):
    """Scale to zero: a worker stopped before its fold was due still leaves no tick queued."""
    script = (
        "from datetime import datetime, timezone\n"
        "from decimal import Decimal\n"
        "from shared.crawler import store\n"
        "from shared.crawler.models import PriceQuote\n"
        "from shared.crawler.candle_fold import candle_fold\n"
        "from shared.runtime.resources import Resources\n"
        "resources = Resources()\n"
        "with resources.db.transaction() as conn:\n"
        f"    store.insert_prices(conn, [PriceQuote({KEYS[0]!r}, 'BTC', Decimal('64000.5'), 'test',\n"
        "                                          datetime(2025, 6, 28, tzinfo=timezone.utc))], 'job')\n"
        "candle_fold(resources).request()  # due in a minute: only the exit can fold it\n"
    )
    env = {**os.environ, "DATABASE_URL": clean_db, "CANDLE_FOLD_DELAY_SECONDS": "60"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert queued_ticks(pool) == 0
    assert [c[0] for c in stored_candles(clean_db).values()] == ["64000.5"] * 3
