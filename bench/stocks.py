"""`python -m bench.stocks`: the stock system's latencies beside the original's timeline.

The original (original-spec/stock-analytics-architecture.vi.md, §2.2 and §4.1) takes about 6 s
from the Finnhub answer to bronze (producer → Kafka → consumer → MinIO) and about 61 s to gold
(the Airflow DAG every minute, then dbt). Here: the real pipeline (shared/stocks/pipeline.py)
on the bench's own Kafka and PostgreSQL (bench/infra.py), the simulated Finnhub over HTTP, a
moto S3 server for bronze, and the real `dbt build` of dbt/stocks, requested after each tick
that stored new quotes (shared/stocks/gold_runner.py), at the real 6 s cadence.

    API → bronze   the answer received → its raw body written to S3 (in the request's thread)
    API → gold     the answer received → a dbt build that began after the quote's commit has
                   finished (the quote is then in gold_kpi_latest, gold_candlestick, ...)

Goals (issue #20): bronze within 1 s of the answer, gold within 15 s of the quote.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.infra import BenchInfra

ORIGINAL = {"API → bronze": 6.0, "API → gold": 61.0}
GOALS = {"API → bronze": 1.0, "API → gold": 15.0}
IN_SESSION = datetime(2025, 7, 21, 15, 0, tzinfo=timezone.utc)  # a Monday, 11:00 EDT


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class StockFigures:
    """One stock run: every latency measured, the builds, and the machine's load around it."""

    ticks: int
    interval: float
    worker: bool  # the function's long-lived dbt worker, else a fresh dbt process per build
    new_quotes: int = 0
    bronze: list[float] = field(default_factory=list)  # API → bronze, seconds per answer
    gold: list[float] = field(default_factory=list)  # API → gold, seconds per new quote
    build_seconds: list[float] = field(default_factory=list)
    cold_build_seconds: float = 0.0
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()

    def p50(self, name: str) -> float | None:
        values = self.bronze if name == "API → bronze" else self.gold
        return percentile(values, 0.5) if values else None

    def p99(self, name: str) -> float | None:
        values = self.bronze if name == "API → bronze" else self.gold
        return percentile(values, 0.99) if values else None

    @property
    def goals_met(self) -> bool:
        bronze, gold = self.p99("API → bronze"), self.p99("API → gold")
        return (
            bronze is not None and gold is not None and bronze <= GOALS["API → bronze"] and gold <= GOALS["API → gold"]
        )

    def render(self) -> str:
        """The run as the plain-text table `python -m bench.stocks` prints."""
        load = lambda xs: " ".join(f"{x:.2f}" for x in xs)  # noqa: E731
        lines = [
            f"stock analytics, {self.ticks} ticks of 5 symbols every {self.interval:g} s ({self.new_quotes} new "
            f"quotes, {len(self.build_seconds)} gold builds; first build {self.cold_build_seconds:.1f} s; dbt "
            f"{'long-lived worker' if self.worker else 'fresh process per build'}; load average "
            f"{load(self.load_before)} before, {load(self.load_after)} after)",
            "",
            f"{'latency':<14}{'p50':>9}{'p99':>9}{'original':>10}{'goal':>8}",
        ]
        for name in ORIGINAL:
            p50, p99 = self.p50(name), self.p99(name)
            if p50 is None or p99 is None:
                lines.append(f"{name:<14}{'-':>9}{'-':>9}")
            else:
                lines.append(f"{name:<14}{p50:>8.3f}s{p99:>8.3f}s{ORIGINAL[name]:>9.0f}s{GOALS[name]:>7.0f}s")
        if self.build_seconds:
            lines.append(
                f"\ndbt build (6 models, 41 tests): p50 {statistics.median(self.build_seconds):.1f} s, "
                f"max {max(self.build_seconds):.1f} s"
            )
        return "\n".join(lines)


def measure(infra: BenchInfra, *, ticks: int = 15, interval: float = 6.0, worker: bool = True) -> StockFigures:
    """Run the stock pipeline `ticks` times on `infra` (started) and measure it (module docstring)."""
    from moto.server import ThreadedMotoServer

    from local import services
    from local.market.server import SimulatedMarket
    from shared.archive.bronze import BronzeArchive
    from shared.config import FinnhubSettings, Settings
    from shared.db.connection import ConnectionPool
    from shared.kafka import EventProducer
    from shared.stocks.gold import DbtWorker, dbt_python, run_gold
    from shared.stocks.gold_runner import GoldRunner
    from shared.stocks.pipeline import run_stock_quotes
    from shared.stocks.settings import StockSettings
    from shared.stocks.symbols import DEFAULT_SYMBOLS
    from shared.upstream.finnhub import FinnhubClient

    figures = StockFigures(ticks, interval, worker, load_before=os.getloadavg())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 and market servers' request lines
    s3_port = services.free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    market = SimulatedMarket(port=0).__enter__()
    market.clock.freeze(IN_SESSION)
    archive = BronzeArchive.from_settings(
        Settings(archive_enabled=True, s3_endpoint_url=f"http://127.0.0.1:{s3_port}", s3_bucket="bench-stocks",
                 archive_create_bucket=True)
    )  # fmt: skip
    answered: dict[str, float] = {}  # symbol → when its latest answer arrived (wall clock)

    def on_response(api, path, params, response):
        received = time.time()
        answered[str((params or {}).get("symbol"))] = received
        key = archive.record_response(api, path, params, response)
        figures.bronze.append(time.time() - received)
        return key

    client = FinnhubClient.from_settings(
        FinnhubSettings(base_url=market.base_url("finnhub"), api_key="bench"), on_response=on_response
    )
    pool = ConnectionPool(infra.database_url, size=2)
    producer = EventProducer(infra.bootstrap)
    work = tempfile.mkdtemp(prefix="bench-dbt-")
    settings = StockSettings(dbt_work_dir=work, dbt_worker=worker)
    dbt = DbtWorker(dbt_python(settings.dbt_command()), log_file=Path(work) / "logs" / "worker.log") if worker else None
    builds: list[tuple[float, float, bool]] = []

    def build() -> None:
        began = time.time()
        outcome = run_gold(settings, infra.database_url, worker=dbt)
        builds.append((began, time.time(), outcome.ok))

    try:
        with pool.connection() as conn:
            conn.run("TRUNCATE stock_quotes, stock_quote_rejections")
        cold = time.time()
        build()  # tables created, dbt's partial parse written: the steady state starts after it
        figures.cold_build_seconds = time.time() - cold
        builds.clear()
        runner = GoldRunner(settings.gold_min_interval_seconds)
        committed: list[tuple[float, float]] = []  # (answer received, committed) per new quote
        for _ in range(ticks):
            tick = time.time()
            market.clock.advance(interval)
            outcome = run_stock_quotes(
                DEFAULT_SYMBOLS,
                client,
                pool.transaction,
                publish=lambda events: producer.publish("stock-quotes", events),
            )
            done = time.time()
            committed += [(answered[q.symbol], done) for q in outcome.new]
            if outcome.new:
                runner.request(build)
            time.sleep(max(0.0, tick + interval - time.time()))
        deadline = time.time() + 120
        while (runner.busy or not builds or builds[-1][0] < committed[-1][1]) and time.time() < deadline:
            time.sleep(0.2)
        for received, at in committed:
            after = [end for began, end, ok in builds if ok and began >= at]
            if after:
                figures.gold.append(min(after) - received)
    finally:
        if dbt is not None:
            dbt.close()
        producer.close()
        pool.close()
        client.http.close()
        market.__exit__(None, None, None)
        s3.stop()
    figures.new_quotes = len(committed)
    figures.build_seconds = [end - began for began, end, _ in builds]
    figures.load_after = os.getloadavg()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stocks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=15, help="quote ticks (6 s apart)")
    parser.add_argument("--interval", type=float, default=6.0, help="seconds between ticks (the PingSource's 6)")
    parser.add_argument(
        "--fresh-process",
        action="store_true",
        help="a fresh dbt process per build (STOCKS_DBT_WORKER=false) instead of the function's long-lived worker",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    infra = BenchInfra()
    infra.start()
    try:
        figures = measure(infra, ticks=args.ticks, interval=args.interval, worker=not args.fresh_process)
    finally:
        infra.stop()
    print("\n" + figures.render())
    return 0 if figures.goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
