"""The stock gold layer: the real `dbt build` of dbt/stocks against the real PostgreSQL, on known
silver quotes, compared with values computed by hand (a daily candle across a US/Eastern day
boundary, STDDEV_POP against Python's pstdev); the dbt tests fail the build on a bad row.

One build per scenario, in module-scoped fixtures (a build takes a few seconds)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pg8000.native
import pytest
import yaml
from jsonschema import Draft202012Validator

from local import services
from shared.config import Settings
from shared.crawler.quotes.app import QuotesApp
from shared.events import InboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.stocks.gold import DbtWorker, GoldOutcome, dbt_python, run_gold
from shared.stocks.handler import run_stocks_tick
from shared.stocks.models import StockQuote
from shared.stocks.settings import LOCAL_DBT, StockSettings
from shared.stocks.store import insert_quotes

pytestmark = pytest.mark.infra


@pytest.fixture(autouse=True)
def _dbt_installed() -> None:
    # make setup installs it; a suite that cannot run the gold layer fails, never a silent skip.
    if not LOCAL_DBT.exists():
        pytest.fail(f"dbt is not installed at {LOCAL_DBT}: run make setup", pytrace=False)


UTC = timezone.utc
GOLD = "stocks_gold_test"


def quote(symbol: str, at: datetime, c: str, h: str, low: str, fetched_delay: int = 1) -> StockQuote:
    return StockQuote(
        instrument_key=f"stock:{symbol}",
        symbol=symbol,
        current_price=Decimal(c),
        change=Decimal("-0.5"),
        change_percent=Decimal("-0.25"),
        day_high=Decimal(h),
        day_low=Decimal(low),
        day_open=Decimal(c),
        previous_close=Decimal("99"),
        market_time=at,
        fetched_at=at + timedelta(seconds=fetched_delay),
    )


# Monday 2025-07-21 and Tuesday 2025-07-22, EDT (UTC-4). The third AAPL quote is on 22 July in
# UTC but 21 July 23:30 on the US/Eastern wall clock: it belongs to Monday's candle.
AAPL = [
    quote("AAPL", datetime(2025, 7, 21, 13, 30, tzinfo=UTC), "100", "101", "99"),
    quote("AAPL", datetime(2025, 7, 21, 19, 59, tzinfo=UTC), "102", "103", "98"),
    quote("AAPL", datetime(2025, 7, 22, 3, 30, tzinfo=UTC), "104", "104", "98"),
    quote("AAPL", datetime(2025, 7, 22, 4, 30, tzinfo=UTC), "105", "106", "104"),
    quote("AAPL", datetime(2025, 7, 22, 14, 0, tzinfo=UTC), "103", "106", "102"),
]
MSFT = [
    quote("MSFT", datetime(2025, 7, 21, 15, 0, tzinfo=UTC), "490.5", "495", "480"),
    quote("MSFT", datetime(2025, 7, 22, 15, 0, tzinfo=UTC), "500.25", "511", "489"),
    quote("MSFT", datetime(2025, 7, 22, 15, 6, tzinfo=UTC), "510.75", "512", "489"),
]


@dataclass
class Built:
    url: str
    first: GoldOutcome
    second: dict  # the handler's summary of the stock-gold tick
    succeeded_runs_before: float  # crawler_stock_gold_runs_total{status="succeeded"} before that tick (process-wide)

    def rows(self, sql: str) -> list[list]:
        conn = _connect(self.url)
        try:
            return conn.run(sql)
        finally:
            conn.close()


def _connect(url: str) -> pg8000.native.Connection:
    parsed = services.postgres._PgUrl.parse(url)
    return pg8000.native.Connection(
        parsed.user, host=parsed.host, port=parsed.port, password=parsed.password, database=parsed.database
    )


def _settings(tmp: Path, gold: str, silver: str = "public") -> StockSettings:
    return StockSettings(dbt_work_dir=str(tmp), gold_schema=gold, silver_schema=silver)


@pytest.fixture(scope="module")
def built(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    services.empty_database(database_url)
    conn = _connect(database_url)
    try:
        conn.run(f"DROP SCHEMA IF EXISTS {GOLD} CASCADE")
        for q in AAPL + MSFT:
            insert_quotes(conn, [q])
    finally:
        conn.close()
    work = tmp_path_factory.mktemp("dbt")
    first = run_gold(_settings(work, GOLD), database_url)
    # A new quote, then the incremental history takes it in on the next build.
    conn = _connect(database_url)
    try:
        insert_quotes(conn, [quote("MSFT", datetime(2025, 7, 22, 15, 12, tzinfo=UTC), "511", "513", "489")])
    finally:
        conn.close()
    # The second build goes through the stocks function's handler, as the stock-gold tick does.
    resources = Resources(Settings(database_url=database_url))
    resources.once("stocks.settings", lambda: _settings(work, GOLD))
    before = metrics.sample_value(metrics.render_prometheus(), "crawler_stock_gold_runs_total", status="succeeded")
    try:
        event = InboundEvent(
            id="gold-1", source="/ping", type="dev.knative.sources.ping", data=b'{"schedule":"stock-gold"}',
            time="2025-07-22T15:13:03Z",
        )  # fmt: skip
        second = run_stocks_tick(event, resources)
    finally:
        resources.close()
    yield Built(database_url, first, second, before or 0.0)
    conn = _connect(database_url)
    try:
        conn.run(f"DROP SCHEMA IF EXISTS {GOLD} CASCADE")
    finally:
        conn.close()


def test_the_build_runs_every_model_and_every_test(built: Built) -> None:
    outcome = built.first
    assert outcome.ok, outcome.summary()
    assert (outcome.models_built, outcome.models_failed, outcome.tests_failed) == (6, 0, 0)
    assert outcome.tests_passed >= 30 and outcome.status == "succeeded"
    second = built.second
    assert (second["status"], second["models_built"], second["tests_failed"]) == ("succeeded", 6, 0), second
    print(f"dbt build (6 models, {outcome.tests_passed} tests): {outcome.duration_seconds:.1f} s first, "
          f"{second['duration_seconds']:.1f} s incremental")  # fmt: skip


def test_the_gold_tick_is_in_job_logs_and_metrics(built: Built) -> None:
    rows = built.rows(
        "SELECT job_id, status, tokens_requested, tokens_succeeded, tokens_failed, message FROM job_logs"
        " WHERE job_type = 'stock_gold'"
    )
    assert [r[:5] for r in rows] == [["stock-gold:20250722T151303.000000Z", "succeeded", 6, 6, 0]]
    assert "models 6 built" in rows[0][5]
    text = metrics.render_prometheus()
    # Counters are per process: other tests of the session may have built gold before this tick.
    runs = metrics.sample_value(text, "crawler_stock_gold_runs_total", status="succeeded")
    assert runs == built.succeeded_runs_before + 1
    assert metrics.sample_value(text, "crawler_stock_gold_last_run_nodes", kind="model", status="built") == 6


def test_daily_candles_follow_the_us_eastern_trading_day(built: Built) -> None:
    rows = built.rows(
        f"SELECT candle_date, candle_open, candle_high, candle_low, candle_close, trend_line, quote_count"
        f" FROM {GOLD}.gold_candlestick WHERE symbol = 'AAPL' ORDER BY candle_date"
    )
    monday, tuesday = AAPL[:3], AAPL[3:]
    expected = [
        # 21 July Eastern: 09:30, 15:59 and 23:30 EDT (the last one 03:30 UTC on 22 July).
        [date(2025, 7, 21), Decimal("100"), Decimal("104"), Decimal("98"), Decimal("104"),
         sum(q.current_price for q in monday) / 3, 3],
        [date(2025, 7, 22), Decimal("105"), Decimal("106"), Decimal("102"), Decimal("103"),
         sum(q.current_price for q in tuesday) / 2, 2],
    ]  # fmt: skip
    assert [[*r[:5], r[5], r[6]] for r in rows] == expected
    # Both symbols have two trading days (well inside the last 12).
    assert built.rows(f"SELECT symbol, count(*) FROM {GOLD}.gold_candlestick GROUP BY 1 ORDER BY 1") == [
        ["AAPL", 2],
        ["MSFT", 2],
    ]


def test_treechart_is_latest_day_average_and_population_stddev(built: Built) -> None:
    rows = {r[0]: r[1:] for r in built.rows(
        f"SELECT symbol, latest_day, avg_price, volatility, relative_volatility, quote_count FROM {GOLD}.gold_treechart"
    )}  # fmt: skip
    msft = MSFT + [quote("MSFT", datetime(2025, 7, 22, 15, 12, tzinfo=UTC), "511", "513", "489")]
    for symbol, quotes, latest in (("AAPL", AAPL, AAPL[3:]), ("MSFT", msft, msft[1:])):
        prices = [q.current_price for q in quotes]
        latest_day, avg_price, volatility, relative, count = rows[symbol]
        assert latest_day == date(2025, 7, 22) and count == len(prices)
        # PostgreSQL's avg carries 16 decimals of a repeating fraction: equal to that precision.
        assert abs(avg_price - sum(q.current_price for q in latest) / len(latest)) < Decimal("1e-12")
        expected = statistics.pstdev(prices)  # Decimal in, Decimal out: population, not sample
        assert abs(Decimal(volatility) - expected) < Decimal("1e-12")
        assert abs(Decimal(relative) - expected / statistics.mean(prices)) < Decimal("1e-12")
    assert statistics.pstdev([q.current_price for q in AAPL]) != statistics.stdev([q.current_price for q in AAPL])


def test_kpis_latest_and_incremental_history(built: Built) -> None:
    assert built.rows(f"SELECT symbol, current_price FROM {GOLD}.gold_kpi ORDER BY 1") == [
        ["AAPL", Decimal("103")],
        ["MSFT", Decimal("511")],
    ]
    assert built.rows(f"SELECT symbol, current_price, market_time_utc FROM {GOLD}.gold_kpi_latest ORDER BY 1") == [
        ["AAPL", Decimal("103"), datetime(2025, 7, 22, 14, 0, tzinfo=UTC)],
        ["MSFT", Decimal("511"), datetime(2025, 7, 22, 15, 12, tzinfo=UTC)],
    ]
    # Every quote once: the second (incremental) build added the new one and repeated none.
    assert built.rows(f"SELECT count(*), count(DISTINCT (symbol, market_time_utc)) FROM {GOLD}.gold_kpi_history") == [
        [9, 9]
    ]


OPENAPI = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())


def get(app: QuotesApp, target: str, documented_path: str) -> tuple[int, dict]:
    """GET `target` from the quotes app; the body checked against docs/openapi.yaml."""
    response = app.handle_http("GET", target, {}, b"")
    body = json.loads(response.body)
    answer = OPENAPI["paths"][documented_path]["get"]["responses"][str(response.status)]
    if "$ref" in answer:
        answer = OPENAPI["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    schema = {**answer["content"]["application/json"]["schema"], "components": OPENAPI["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, (target, errors[:3])
    return response.status, body


@pytest.fixture(scope="module")
def quotes_app(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotesApp]:
    resources = Resources(Settings(database_url=built.url))
    resources.once("stocks.settings", lambda: _settings(tmp_path_factory.mktemp("dbt-reads"), GOLD))
    app = QuotesApp(resources=resources)
    yield app
    app.close()


def test_the_quotes_api_reads_silver_and_gold_as_exact_decimals(quotes_app: QuotesApp) -> None:
    status, body = get(quotes_app, "/v1/stocks/quotes?symbols=msft,AAPL,ZZZZ", "/v1/stocks/quotes")
    assert status == 200 and [q["symbol"] for q in body["quotes"]] == ["MSFT", "AAPL"]
    assert body["quotes"][0]["current_price"] == "511" and body["quotes"][0]["currency"] == "USD"
    assert body["errors"] == [{"symbol": "ZZZZ", "status": 404, "error": "no quote yet for ZZZZ"}]
    status, body = get(quotes_app, "/v1/stocks/kpis", "/v1/stocks/kpis")
    aapl = next(k for k in body["kpis"] if k["symbol"] == "AAPL")
    prices = [q.current_price for q in AAPL]
    assert aapl["current_price"] == "103" and aapl["latest_day"] == "2025-07-22"
    assert abs(Decimal(aapl["volatility"]) - statistics.pstdev(prices)) < Decimal("1e-12")
    assert aapl["latest_day_avg_price"] == "104"
    status, body = get(quotes_app, "/v1/stocks/AAPL/candles", "/v1/stocks/{symbol}/candles")
    assert status == 200 and body["timezone"] == "America/New_York"
    assert [(c["date"], c["open"], c["high"], c["low"], c["close"], c["trend_line"]) for c in body["candles"]] == [
        ("2025-07-21", "100", "104", "98", "104", "102"),
        ("2025-07-22", "105", "106", "102", "103", "104"),
    ]
    assert get(quotes_app, "/v1/stocks/NOPE/candles", "/v1/stocks/{symbol}/candles")[0] == 404
    assert get(quotes_app, "/v1/stocks/a%20b/candles", "/v1/stocks/{symbol}/candles")[0] == 400
    assert get(quotes_app, "/v1/stocks/quotes?symbols=AAPL,,MSFT", "/v1/stocks/quotes")[0] == 400


def test_a_quote_with_high_below_low_fails_the_data_tests(
    database_url: str, built: Built, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Silver's own constraints refuse such a row, so it goes into a copy of silver without them.
    conn = _connect(database_url)
    try:
        conn.run("DROP SCHEMA IF EXISTS bad_silver CASCADE")
        conn.run("DROP SCHEMA IF EXISTS stocks_gold_bad CASCADE")
        conn.run("CREATE SCHEMA bad_silver")
        conn.run("CREATE TABLE bad_silver.stock_quotes (LIKE public.stock_quotes INCLUDING DEFAULTS)")
        conn.run("INSERT INTO bad_silver.stock_quotes SELECT * FROM public.stock_quotes")
        conn.run("UPDATE bad_silver.stock_quotes SET day_high = 1 WHERE symbol = 'AAPL'")
    finally:
        conn.close()
    try:
        outcome = run_gold(
            _settings(tmp_path_factory.mktemp("dbt-bad"), "stocks_gold_bad", silver="bad_silver"), database_url
        )
        assert not outcome.ok and outcome.status in ("partial", "failed")
        failed = {f.name.split(".")[0] for f in outcome.failures if f.kind == "test"}
        assert "assert_silver_high_at_least_low" in failed
        assert outcome.tests_failed >= 1
        assert "high_at_least_low" in outcome.summary()
    finally:
        conn = _connect(database_url)
        try:
            conn.run("DROP SCHEMA IF EXISTS bad_silver CASCADE")
            conn.run("DROP SCHEMA IF EXISTS stocks_gold_bad CASCADE")
        finally:
            conn.close()


def test_the_worker_builds_again_and_again_in_one_dbt_process(
    database_url: str, built: Built, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The stocks function's way (the handler's build above went through one too): dbt imported
    # and the project loaded once, each build a request to the same process.
    work = tmp_path_factory.mktemp("dbt-worker")
    settings = _settings(work, GOLD)
    worker = DbtWorker(dbt_python(settings.dbt_command()), log_file=work / "logs" / "worker.log")
    try:
        first = run_gold(settings, database_url, worker=worker)
        pid = worker.pid
        second = run_gold(settings, database_url, worker=worker)
        assert pid is not None and worker.pid == pid
    finally:
        worker.close()
    assert worker.pid is None
    for outcome in (first, second):
        assert outcome.ok, outcome.summary()
        assert (outcome.models_built, outcome.tests_failed) == (
            6,
            0,
        ) and outcome.tests_passed == built.first.tests_passed
    # Partial parsing reused: the second build wrote no new full parse (dbt's own file is there).
    assert (work / "target" / "partial_parse.msgpack").is_file()
    print(f"worker builds: {first.duration_seconds:.1f} s (start included), {second.duration_seconds:.1f} s")
