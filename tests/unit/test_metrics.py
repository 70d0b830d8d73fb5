"""shared.observability.metrics: names per Prometheus conventions, promtool-clean exposition, scrape-time gauges.

Metrics are process-wide (one MeterProvider per process), so tests assert on differences
of the exposed samples, never on absolute values.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from local.eventing.telemetry import watch_eventing
from shared.config import Settings
from shared.crawler.freshness import PriceFreshnessProbe
from shared.errors import RetryableUpstreamError
from shared.observability import metrics
from shared.observability.catalogue import CATALOGUE
from shared.upstream import UpstreamClients
from shared.upstream.events import EventKind, UpstreamEvent
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; `make setup` installs it)"
)
NAME = re.compile(r"^crawler_[a-z][a-z0-9_]*[a-z0-9]$")  # one prefix for the application's metrics
RESERVED_LABELS = {"le", "quantile", "job", "instance", "__name__"}


def exposed(name: str, **labels: str) -> float:
    """Current value of an exposed sample (0 when absent)."""
    return metrics.sample_value(metrics.render_prometheus(), name, **labels) or 0.0


def promtool_check(text: bytes) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None  # the tests that call it skip without it
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30)


# --- the catalogue ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(CATALOGUE.values()), ids=lambda s: s.name)
def test_catalogued_names_follow_prometheus_conventions(spec):
    assert NAME.match(spec.exported_name), spec.exported_name
    assert not spec.name.endswith("_total"), "the exporter adds _total to counters"
    if spec.kind in ("counter", "observable_counter"):
        assert spec.exported_name.endswith("_total")
    else:
        assert not spec.exported_name.endswith("_total")
    if spec.unit == "s":
        assert spec.exported_name.removesuffix("_total").endswith("_seconds")
    assert spec.description and not spec.description[0].islower()
    assert not RESERVED_LABELS & set(spec.labels)
    assert all(re.match(r"^[a-z][a-z0-9_]*$", label) for label in spec.labels)


def test_every_metric_is_documented():
    text = (ROOT / "docs" / "observability.md").read_text()
    missing = [s.exported_name for s in CATALOGUE.values() if f"`{s.exported_name}`" not in text]
    assert not missing, f"add to docs/observability.md: {missing}"


def test_exported_names_are_unique():
    names = [s.exported_name for s in CATALOGUE.values()]
    assert len(names) == len(set(names))


def _metric_names_used_in_code() -> set[str]:
    """First arguments of metrics.count/observe/set_gauge calls across the code base."""
    found = set()
    for path in [*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py"), *ROOT.glob("local/**/*.py")]:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("count", "observe", "set_gauge")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "metrics"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def test_every_metric_the_code_records_is_catalogued():
    used = _metric_names_used_in_code()
    assert "crawler_jobs_received" in used  # the scan finds the job runner's calls
    assert used <= set(CATALOGUE), f"not in shared.observability.CATALOGUE: {sorted(used - set(CATALOGUE))}"


# --- exposition ---------------------------------------------------------------------------------


def _exercise_every_pushed_metric() -> None:
    labels = {"function": "price", "job_type": "price", "token_type": "top100"}
    metrics.count("crawler_jobs_received", **labels)
    metrics.count("crawler_jobs_completed", status="succeeded", **labels)
    metrics.count("crawler_jobs_failed", reason="RetryableUpstreamError", **labels)
    metrics.count("crawler_jobs_skipped", reason="expired", **labels)
    metrics.count("crawler_jobs_rejected", **labels)
    metrics.count("crawler_jobs_dead_lettered", job_type="price", status="running")
    metrics.observe("crawler_job_duration", 0.42, **labels)
    metrics.count("crawler_db_rows_upserted", 98, table="token_prices", **labels)
    metrics.count("crawler_prices_suspect", 2, token_set="top100")
    metrics.count("crawler_events_handled", function="price", verdict="done")
    metrics.count("crawler_candle_ticks_folded", 1000)
    metrics.count("crawler_candle_fold_failures")
    metrics.observe("crawler_candle_fold_duration", 0.021)
    metrics.set_gauge("crawler_dependency_up", 1, function="price", dependency="postgresql")
    metrics.count("crawler_scheduler_ticks", schedule="top100-price", outcome="emitted")
    metrics.set_gauge("crawler_scheduler_last_tick_timestamp", 1.767e9, schedule="top100-price")
    metrics.count("crawler_quotes_requests", route="price", status="200")
    metrics.count("crawler_trades_api_requests", route="trades", method="POST", status="202")
    metrics.count("crawler_trades_fills", function="trade_normalizer", outcome="new")
    metrics.count("crawler_trades_enriched", function="trade_enricher", outcome="enriched")
    metrics.count("crawler_trades_alerts", function="trade_analyser", rule="overtrading")
    metrics.observe("crawler_quotes_request_duration", 0.003, route="price")
    metrics.count("crawler_archive_writes", outcome="written", source="binance")
    metrics.set_gauge("crawler_stats_chain_health", 2, chain="bsc")
    metrics.set_gauge("crawler_stats_bridge_duration", 420, route="ethereum-bsc-usdt", provider="lifi")
    metrics.set_gauge("crawler_stats_bridge_slow_after", 600, route="ethereum-bsc-usdt")
    metrics.count("crawler_stock_quotes", outcome="rejected", reason="high_below_low")
    metrics.observe("crawler_stock_job_duration", 0.4, schedule="stock-quotes")
    metrics.count("crawler_stock_gold_runs", status="succeeded")
    metrics.set_gauge("crawler_stock_gold_last_run_nodes", 6, kind="model", status="built")
    metrics.set_gauge("crawler_stock_gold_last_success_timestamp", 1.767e9)
    for kind, status, seconds in (
        ("request", 200, 0.05),
        ("request", None, 10.0),
        ("rate_limit_wait", None, 0.5),
        ("weight_wait", None, 12.0),
        ("cooldown_wait", None, 1.0),
        ("retry", 503, 0.2),
        ("banned", 418, 120.0),
        ("breaker", None, 0.0),
    ):
        metrics.record_upstream_event(
            UpstreamEvent(
                "binance", EventKind(kind), "/api/v3/ticker/price", status, seconds, "open" if kind == "breaker" else ""
            )
        )
    watch_eventing(
        lambda: {
            "sources": {
                "kafkasources/default/price-request-source": {
                    "events": 3,
                    "attempts": 4,
                    "retries": 1,
                    "delivered": 2,
                    "dead_lettered": 1,
                    "dropped": 0,
                    "ticks_skipped": 0,
                    "responses": {"200": 2, "400": 1, "network_error": 1},
                    "lag": {"price-crawler.price.request": {"0": 5, "1": 0}},
                }
            }
        }
    )


@needs_promtool
def test_exposition_passes_promtool_check_metrics():
    _exercise_every_pushed_metric()
    text = metrics.render_prometheus()
    result = promtool_check(text)
    assert result.returncode == 0 and not result.stdout and not result.stderr, (
        result.stdout.decode() + result.stderr.decode()
    )
    # Every pushed family is there (scrape-time ones need a database or clients, tested below).
    for spec in CATALOGUE.values():
        if spec.kind in ("counter", "histogram", "gauge") or spec.name.startswith("crawler_eventing_"):
            assert f"# TYPE {spec.exported_name} " in text.decode(), spec.exported_name


def test_exposition_has_no_otel_scope_labels_nor_target_info():
    _exercise_every_pushed_metric()
    text = metrics.render_prometheus().decode()
    assert "target_info" not in text
    if "scope_info_enabled" in metrics.PrometheusMetricReader.__init__.__code__.co_varnames:
        assert "otel_scope_name" not in text


def test_help_comes_from_the_catalogue_whatever_the_caller_says():
    metrics.count(
        "crawler_jobs_skipped",
        description="something else",
        reason="expired",
        function="price",
        job_type="price",
        token_type="top100",
    )
    text = metrics.render_prometheus().decode()
    assert f"# HELP crawler_jobs_skipped_total {CATALOGUE['crawler_jobs_skipped'].description}" in text


def test_upstream_events_move_their_metrics():
    def event(kind, status=None, seconds=0.0, detail=""):
        metrics.record_upstream_event(
            UpstreamEvent("dexscreener", EventKind(kind), "/latest/dex/pairs", status, seconds, detail)
        )

    before = {
        "requests": exposed("crawler_upstream_requests_total", api="dexscreener", status="429"),
        "latency": exposed("crawler_upstream_request_duration_seconds_count", api="dexscreener"),
        "waits": exposed("crawler_upstream_rate_limit_waits_total", api="dexscreener", reason="retry_after"),
        "waited": exposed("crawler_upstream_rate_limit_wait_seconds_total", api="dexscreener", reason="retry_after"),
        "limited": exposed("crawler_upstream_events_total", api="dexscreener", kind="rate_limited"),
        "opened": exposed("crawler_upstream_breaker_transitions_total", api="dexscreener", state="open"),
    }
    event("request", 429, 0.03)
    event("cooldown_wait", seconds=1.5)
    event("rate_limited", seconds=30)
    event("breaker", detail="open")
    assert exposed("crawler_upstream_requests_total", api="dexscreener", status="429") == before["requests"] + 1
    assert exposed("crawler_upstream_request_duration_seconds_count", api="dexscreener") == before["latency"] + 1
    assert (
        exposed("crawler_upstream_rate_limit_waits_total", api="dexscreener", reason="retry_after")
        == before["waits"] + 1
    )
    assert exposed(
        "crawler_upstream_rate_limit_wait_seconds_total", api="dexscreener", reason="retry_after"
    ) == pytest.approx(before["waited"] + 1.5)
    assert exposed("crawler_upstream_events_total", api="dexscreener", kind="rate_limited") == before["limited"] + 1
    assert (
        exposed("crawler_upstream_breaker_transitions_total", api="dexscreener", state="open") == before["opened"] + 1
    )


# --- scrape-time gauges ---------------------------------------------------------------------------


def test_breaker_state_and_binance_weight_are_read_from_the_clients(monkeypatch):
    monkeypatch.setenv("COINGECKO_BREAKER_FAILURE_THRESHOLD", "1")
    monkeypatch.setenv("COINGECKO_MAX_RETRIES", "0")
    transport = ReplayTransport(
        {
            "/api/v3/ticker/price": Reply.sample(
                "binance.ticker_price.symbols.json", headers={"X-MBX-USED-WEIGHT-1M": "42"}
            ),
            "/api/v3/ping": Reply.json({"error": "down"}, status=500),
        }
    )
    clients = UpstreamClients.from_settings(
        Settings(), transport=transport, on_event=metrics.record_upstream_event, **FakeClock().http_options()
    )
    metrics.watch_upstream(clients)
    assert metrics.sample_value(metrics.render_prometheus(), "crawler_upstream_used_weight", api="binance") is None

    clients.binance.http.get_json("/api/v3/ticker/price", weight=4)
    with pytest.raises(RetryableUpstreamError):  # a 500, retried, then given up
        clients.coingecko.http.get_json("/api/v3/ping")

    text = metrics.render_prometheus()
    assert metrics.sample_value(text, "crawler_upstream_used_weight", api="binance") == 42
    assert metrics.sample_value(text, "crawler_upstream_breaker_state", api="binance", state="closed") == 1
    assert metrics.sample_value(text, "crawler_upstream_breaker_state", api="coingecko", state="open") == 1
    assert metrics.sample_value(text, "crawler_upstream_breaker_state", api="coingecko", state="closed") == 0
    assert metrics.sample_value(text, "crawler_upstream_breaker_state", api="dexscreener") is None  # never built
    clients.close()


def test_a_failing_scrape_time_source_never_breaks_the_scrape():
    def broken():
        raise RuntimeError("plane gone")

    watch_eventing(broken)
    metrics.count("crawler_events_handled", function="price", verdict="done")
    text = metrics.render_prometheus()
    assert metrics.sample_value(text, "crawler_events_handled_total", function="price", verdict="done") >= 1
    assert metrics.sample_value(text, "crawler_eventing_dead_letters_total") is None
    watch_eventing(lambda: {"sources": {}})


def test_freshness_probe_reports_nothing_before_it_ever_read_the_database():
    probe = PriceFreshnessProbe("postgresql://nobody:nothing@127.0.0.1:1/none", timeout_seconds=0.5)
    assert probe.read() == []
    probe.close()


def test_sample_value_sums_matching_series():
    text = '# TYPE x_total counter\nx_total{a="1",b="p"} 2\nx_total{a="1",b="q"} 3\nx_total{a="2",b="p"} 5\n'
    assert metrics.sample_value(text, "x_total", a="1") == 5
    assert metrics.sample_value(text, "x_total") == 10
    assert metrics.sample_value(text, "x_total", a="3") is None
