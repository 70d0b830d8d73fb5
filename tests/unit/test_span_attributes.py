"""Span attributes that must never go wrong: SQL summaries by the conventions, URLs without secrets,
trace context written into the Kafka headers, and tracing off unless an OTLP endpoint is set."""

from __future__ import annotations

import httpx
import pytest

from shared.config import Settings
from shared.crawler import store
from shared.observability.logging import register_secret
from shared.observability.traces import Tracing, safe_url, statement_summary, traces_endpoint, with_trace_headers


@pytest.mark.parametrize(
    ("sql", "operation", "collection", "summary"),
    [
        ("BEGIN", "BEGIN", None, "BEGIN"),
        ("COMMIT", "COMMIT", None, "COMMIT"),
        (
            "SELECT token_key FROM tokens WHERE token_key = ANY(CAST(:keys AS text[]))",
            "SELECT",
            "tokens",
            "SELECT tokens",
        ),
        (
            "SELECT * FROM unnest(CAST(:k AS text[])) AS x(k) JOIN tokens t ON t.token_key = x.k",
            "SELECT",
            "tokens",
            "SELECT tokens",
        ),
        (
            "INSERT INTO tokens AS t (token_key) VALUES (:k) ON CONFLICT (token_key) DO UPDATE SET symbol = EXCLUDED.symbol",
            "INSERT",
            "tokens",
            "INSERT tokens",
        ),
        (
            "UPDATE token_set_members SET left_at = now() WHERE token_set = :set",
            "UPDATE",
            "token_set_members",
            "UPDATE token_set_members",
        ),
        ("SELECT fold_candle_ticks()", "SELECT", None, "SELECT"),
        (
            "WITH a AS (INSERT INTO job_logs (x) VALUES (1)), b AS (DELETE FROM job_logs WHERE false) SELECT 1",
            None,
            None,
            "INSERT job_logs DELETE job_logs",
        ),
    ],
)
def test_a_statement_is_summarised_by_its_operations_and_tables(sql, operation, collection, summary) -> None:
    result = statement_summary(sql)
    assert (result.operation, result.collection, result.text) == (operation, collection, summary)


def test_the_price_insert_names_every_table_it_writes_and_no_cte() -> None:
    import inspect

    source = inspect.getsource(store.write_prices)
    sql = source[source.index('"""', source.index("conn.run(")) + 3 :]
    sql = sql[: sql.index('"""')]
    result = statement_summary(sql)
    assert result.text == "INSERT token_prices INSERT token_candle_ticks INSERT token_latest_prices"
    assert (result.operation, result.collection) == ("INSERT", None)  # three tables: no single collection


def test_a_url_loses_user_info_and_credential_query_values() -> None:
    register_secret("registered-secret-42")
    url = httpx.URL(
        "https://user:pw@api.example.com/v1/x?symbols=BTC&api_key=k123&x_cg_pro_api_key=k456&note=registered-secret-42"
    )
    clean = safe_url(url)
    assert clean.startswith("https://api.example.com/v1/x?symbols=BTC&")
    for secret in ("pw", "k123", "k456", "registered-secret-42"):
        assert secret not in clean
    assert "api_key=REDACTED" in clean


def test_the_send_span_context_replaces_the_job_s_traceparent_header() -> None:
    headers = [("ce_id", b"1"), ("ce_traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    carrier = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    written = with_trace_headers(headers, carrier)
    assert [v for k, v in written if k == "ce_traceparent"] == [carrier["traceparent"].encode()]
    assert with_trace_headers(headers, {}) == headers


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="")) is None
    assert not Tracing.from_settings(Settings(otel_exporter_otlp_endpoint=""), "price").enabled
    assert (
        traces_endpoint(Settings(otel_exporter_otlp_endpoint="http://collector:4318/"))
        == "http://collector:4318/v1/traces"
    )
    assert (
        traces_endpoint(
            Settings(
                otel_exporter_otlp_endpoint="http://c:4318", otel_exporter_otlp_traces_endpoint="http://t:4318/custom"
            )
        )
        == "http://t:4318/custom"
    )
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="http://c:4318", otel_sdk_disabled=True)) is None


# --- the HTTP layer's client spans, against a real HTTP server ----------------------------------------


class _Upstream:
    """A local HTTP server answering GET with the next of `answers` (status, delay seconds)."""

    def __init__(self, answers: list[tuple[int, float]]):
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        pending = list(answers)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, delay = pending.pop(0) if pending else (200, 0.0)
                time.sleep(delay)
                body = b'{"price": "1.5"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _traced_http(url: str, **overrides):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.config import UpstreamSettings
    from shared.upstream.http import UpstreamHttp

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fields = {
        "base_url": url,
        "max_retries": 1,
        "backoff_initial_seconds": 0.0,
        "backoff_max_seconds": 0.0,
        "rate_limit_per_minute": 1000,
        **overrides,
    }
    http = UpstreamHttp(
        "binance",
        UpstreamSettings(**fields),
        headers={"x-mbx-apikey": "header-secret-5e1b"},
        tracer=provider.get_tracer("test"),
    )
    return http, exporter


def test_each_attempt_is_a_client_span_with_its_status_and_no_secret() -> None:
    upstream = _Upstream([(503, 0.0), (200, 0.0)])
    http, exporter = _traced_http(upstream.url)
    try:
        assert http.get_json("/api/v3/ticker/price", {"symbol": "BTCUSDT", "api_key": "query-secret-77"}) == {
            "price": "1.5"
        }
    finally:
        http.close()
        upstream.close()
    failed, ok = exporter.get_finished_spans()
    port = int(upstream.url.rsplit(":", 1)[1])
    for span in (failed, ok):
        assert span.name == "GET" and span.kind.name == "CLIENT"
        assert span.attributes["http.request.method"] == "GET"
        assert (span.attributes["server.address"], span.attributes["server.port"]) == ("127.0.0.1", port)
        assert span.attributes["url.full"] == f"{upstream.url}/api/v3/ticker/price?symbol=BTCUSDT&api_key=REDACTED"
        assert not [v for v in span.attributes.values() if "secret" in str(v)]
    assert failed.attributes["http.response.status_code"] == 503 and failed.attributes["error.type"] == "503"
    assert failed.status.status_code.name == "ERROR"
    assert ok.attributes["http.response.status_code"] == 200 and "error.type" not in ok.attributes
    assert ok.status.status_code.name == "UNSET"


def test_an_attempt_without_an_answer_names_the_transport_error() -> None:
    from shared.errors import RetryableUpstreamError

    upstream = _Upstream([(200, 1.0)])
    http, exporter = _traced_http(upstream.url, max_retries=0, timeout_seconds=0.1)
    try:
        with pytest.raises(RetryableUpstreamError, match="timed out"):
            http.get_json("/api/v3/ticker/price")
    finally:
        http.close()
        upstream.close()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "httpx.ReadTimeout"
    assert "http.response.status_code" not in span.attributes and span.status.status_code.name == "ERROR"


def test_a_process_exports_its_batched_spans_when_it_exits_as_its_function() -> None:
    """The batch would wait a minute: only the flush at exit can deliver the span before the child ends."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers.otlp import OtlpReceiver

    script = (
        "from shared.runtime.resources import Resources\n"
        "resources = Resources()\n"
        "with resources.tracing.tracer.start_as_current_span('tick trending'):\n"
        "    pass\n"
    )
    root = Path(__file__).resolve().parents[2]
    with OtlpReceiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            PYTHONPATH=str(root),
            K_SERVICE="scheduler",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="60000",
        )
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        spans = receiver.spans()
    assert [(s.service, s.name, s.parent_id) for s in spans] == [("scheduler", "tick trending", None)]
